# The lab's build. `make` compiles the release binaries and puts ./TCPechod
# and ./TCPecho in this directory, where the lab's commands expect them.

CARGO ?= cargo
PORT ?= 8000
BINARIES := TCPechod TCPecho

.PHONY: all build run test clean

all: build

build:
	$(CARGO) build --release --bins
	cp $(addprefix target/release/,$(BINARIES)) .

# The server on port $(PORT) (make run PORT=8123 for another one). The
# "; exit" makes make run it through a shell, which keeps make's own
# reaction to Ctrl-C down to one line.
run: build
	@echo "Starting TCPechod on port $(PORT); stop it with Ctrl-C."
	./TCPechod $(PORT); exit $$?

# Every test: unit tests, and integration tests that run the real binaries.
test:
	$(CARGO) test --release --workspace

clean:
	rm -f $(BINARIES)
	$(CARGO) clean --release -p tcpechod
