# The lab's build. `make` compiles the release binaries and puts ./TCPechod
# and ./TCPecho in this directory, where the lab's commands expect them.

CARGO ?= cargo
PORT ?= 8000
BINARIES := TCPechod TCPecho echobench

.PHONY: all build run test stress lint bench clean

all: build

# TCPechod is then linked again, statically: a process with fewer mappings
# forks and exits faster, which is what a fork server does all day (see
# bench/RESULTS.md). If static linking is not possible here, the dynamic
# TCPechod stays. (The clients stay dynamic: resolving host names needs the
# C library's shared modules.)
build:
	$(CARGO) build --release --workspace --bins
	$(CARGO) rustc --release --bin TCPechod -- -C target-feature=+crt-static \
	    || echo "make: could not link TCPechod statically; using the dynamic one"
	@# Copied under a new name, then renamed over the old one: a ./TCPechod
	@# that is running (in another terminal) keeps its file, and the copy
	@# cannot fail with "Text file busy".
	@for binary in $(BINARIES); do \
	    cp target/release/$$binary .$$binary.new && mv -f .$$binary.new $$binary || exit 1; \
	done

# The server on port $(PORT) (make run PORT=8123 for another one). The
# "; exit" makes make run it through a shell, which keeps make's own
# reaction to Ctrl-C down to one line.
run: build
	@echo "Starting TCPechod on port $(PORT); stop it with Ctrl-C."
	./TCPechod $(PORT); exit $$?

# Every test: unit tests, and integration tests that run the real binaries
# (the stress suite included). --no-fail-fast: every test binary runs even
# after one fails, and the status is non-zero if any test failed.
test:
	$(CARGO) test --release --workspace --no-fail-fast

# The stress and fault suite alone: floods, limits, misbehaving clients,
# signals under load, resources running out, hostile arguments.
stress:
	$(CARGO) test --release --test stress --test faults --test hostile_arguments

# The code's own gates, as CI runs them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The benchmark: every server model, the C baseline (and socat, if
# installed), into bench/out/RESULTS.md and bench/out/rate.svg, beside the
# reference results of bench/RESULTS.md. About 3 minutes.
bench: build
	$(CC) -O2 -Wall -o target/forkechod bench/c/forkechod.c
	$(CC) -O2 -Wall -static -o target/forkechod-static bench/c/forkechod.c \
	    || echo "make: no static C library: the static C baseline is skipped"
	./echobench suite --server ./TCPechod --c-server target/forkechod \
	    $$(test -x target/forkechod-static && echo --c-static-server target/forkechod-static) --out bench/out

clean:
	rm -f $(BINARIES)
	$(CARGO) clean --release -p tcpechod -p echobench
