# The lab's build. `make` compiles the release binaries and puts ./TCPechod
# and ./TCPecho in this directory, where the lab's commands expect them.

CARGO ?= cargo
# Your port (labs/port.sh): 8000 + the last number of this machine's IPv4
# address + a slot for your user. `make run PORT=8123` for another one.
PORT ?= $(shell labs/port.sh 2>/dev/null || echo 8000)
BINARIES := TCPechod TCPecho
# Docker's compose: the plugin (docker compose) where it is installed, else
# the separate program (docker-compose, as Debian ships it).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: all build run test stress lint bench clean
.PHONY: static docker-image docker-compose-up docker-compose-logs docker-compose-down
.PHONY: lab-image lab-shell

all: build

# TCPechod and TCPecho are then linked again, statically: a process with
# fewer mappings forks and exits faster, which is what a fork server does
# all day (see bench/RESULTS.md), and a static binary runs in an image that
# holds nothing else (server.Dockerfile). If static linking is not possible
# here, the dynamic ones stay.
build:
	$(CARGO) build --release -p tcpechod --bins
	for binary in TCPechod TCPecho; do \
	    $(CARGO) rustc --release --bin $$binary -- -C target-feature=+crt-static \
	        || echo "make: could not link $$binary statically; using the dynamic one"; \
	done
	@# Copied under a new name, then renamed over the old one: a ./TCPechod
	@# that is running (in another terminal) keeps its file, and the copy
	@# cannot fail with "Text file busy". The new name is this run's own
	@# ($$$$: the shell's PID), so that two builds at once do not collide.
	@for binary in $(BINARIES); do \
	    cp $${CARGO_TARGET_DIR:-target}/release/$$binary .$$binary.new.$$$$ \
	        && mv -f .$$binary.new.$$$$ $$binary || exit 1; \
	done

# The server on your port. Ctrl-C sends SIGINT to the whole foreground
# group: the server ends gracefully, and the shell of this recipe, which
# would die of the signal at once and have make report "Interrupt", runs
# `:` instead and waits for the server's own exit status.
run: build
	@echo "Starting TCPechod on port $(PORT) (labs/port.sh); stop it with Ctrl-C."
	@trap : INT; ./TCPechod $(PORT); status=$$?; trap - INT; exit $$status

# Every test: unit tests, and integration tests that run the real binaries
# (the stress suite included). --no-fail-fast: every test binary runs even
# after one fails, and the status is non-zero if any test failed.
test:
	$(CARGO) test --release --workspace --no-fail-fast

# The stress and fault suite alone: floods, limits, misbehaving clients,
# signals under load, resources running out, hostile arguments.
stress:
	$(CARGO) test --release --test stress --test faults --test hostile_arguments

# The code's own gates, as CI runs them: the workspace, and the student's
# crate (labs/student, a crate of its own), both of its versions.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	cd labs/student && $(CARGO) fmt --check
	cd labs/student && $(CARGO) clippy --all-targets -- -D warnings
	cd labs/student && $(CARGO) clippy --all-targets --no-default-features -- -D warnings

# The benchmark: every server model, the C baseline (and socat, if
# installed), into bench/out/: RESULTS.md and rate.svg (connection rate,
# throughput, memory; about 3 minutes), then SCALING.md, scale-memory.svg
# and scale-latency.svg (10 to 10,000 clients at once; about 5 minutes),
# beside the reference results in bench/.
C_SERVERS = --c-server target/forkechod $$(test -x target/forkechod-static && echo --c-static-server target/forkechod-static)
bench: build
	$(CARGO) build --release -p echobench
	cp $${CARGO_TARGET_DIR:-target}/release/echobench .echobench.new.$$$$ && mv -f .echobench.new.$$$$ echobench
	$(CC) -O2 -Wall -o target/forkechod bench/c/forkechod.c
	$(CC) -O2 -Wall -static -o target/forkechod-static bench/c/forkechod.c \
	    || echo "make: no static C library: the static C baseline is skipped"
	./echobench suite --server ./TCPechod $(C_SERVERS) --out bench/out
	./echobench scale --server ./TCPechod $(C_SERVERS) --out bench/out

# Statically linked TCPechod and TCPecho, in a target directory of their
# own (target/static), for the image. (--target: the flag must not reach
# the build's own helpers, which cannot be static.)
HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
STATIC := target/static/$(HOST)/release
static:
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --release \
	    --target $(HOST) --target-dir target/static -p tcpechod --bins

# The server image of the containers exercise, tcpechod-server
# (server.Dockerfile, FROM scratch): the static binaries and the clients'
# input, copied into target/docker, which is all docker build sees. For
# this machine's architecture only: the binaries are built here (see
# server.Dockerfile for the other one).
docker-image: static
	mkdir -p target/docker
	cp $(STATIC)/TCPechod $(STATIC)/TCPecho target/docker/
	seq -f "line %g, sent every few hundred milliseconds" 1 100000 > target/docker/lines.txt
	docker build -t tcpechod-server -f server.Dockerfile target/docker

# Seed 001's exercise (compose.yaml): a server and three clients.
docker-compose-up: docker-image
	$(COMPOSE) up -d

docker-compose-logs:
	$(COMPOSE) logs -f

# SIGTERM to every container, and SIGKILL to those still running 1 s later.
docker-compose-down:
	$(COMPOSE) down -t 1

# The lab's container, for a laptop without Linux (.devcontainer/lab.Dockerfile,
# every tool of the lab; see ./lab-shell): lab-image builds the image
# tcpechod-lab again, lab-shell opens a shell in it over this folder.
lab-image:
	./lab-shell --build

lab-shell:
	./lab-shell

clean:
	rm -f $(BINARIES) echobench
	$(CARGO) clean --release -p tcpechod -p echobench

# What a teacher gives students (teacher/handout.sh): dist/tcpechod-lab/, a
# git repository of one commit to push as a template repository, and
# dist/tcpechod-lab.tar.gz; `make handout NAME=redes-2027` names them. NAME
# counts only on the command line: some systems (WSL) set it in the
# environment to the machine's name. A handout has no teacher/, and there
# this target only says so.
.PHONY: handout
HANDOUT_NAME = $(if $(filter command line,$(origin NAME)),$(NAME),tcpechod-lab)
HANDOUT_LANG = $(filter es%,$(firstword $(LC_ALL) $(LC_MESSAGES) $(LANG)))
handout:
	$(if $(wildcard teacher/handout.sh),,$(error $(if $(HANDOUT_LANG),esta copia ya es el material de los estudiantes (no tiene teacher/): no hay nada que preparar,this tree is already a handout (it has no teacher/): there is nothing to hand out)))
	@bash teacher/handout.sh --name '$(HANDOUT_NAME)' --out dist

# What a student hands in (statement, section 4): the server of
# labs/student, the answer sheet and what the checker says, in
# entrega-USER.tar.gz (labs/entrega.sh). `make submit` is the same.
.PHONY: entrega submit
entrega submit:
	@bash labs/entrega.sh
