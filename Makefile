# wasmsharp — containerd-shim-wasmsharp-v1
SHELL := /bin/bash
# `make demo` and `make test` work on a fresh Debian 12 machine as root (they install what they need).

PREFIX        ?= /usr/local
CONFIGURATION ?= Release
OUT           := out/shim
SHIM          := containerd-shim-wasmsharp-v1
SHIM_GRPC     := containerd-shim-wasmsharp-grpc
DOTNET        ?= dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

# Debian packages: containerd + runc (the real thing we plug into), clang-16 + wasi-libc (test programs
# in C built to wasm32-wasi), clang + zlib (NativeAOT's linker), busybox-static (the runc comparison image),
# dpkg-dev + tcl (SQLite's source via apt-get source, its amalgamation), sqlite3 (the native reference),
# wrk (the HTTP load generator of `make bench`), containernetworking-plugins (CNI bridge/host-local/loopback
# for the pods of the CRI tests). npm (jco, which makes the WASI preview 2 test components) is installed from
# Debian only when none is on PATH: a machine's own Node.js (e.g. NodeSource's) brings its npm.
DEB_PACKAGES := containerd runc clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 wabt clang zlib1g-dev busybox-static \
                dpkg-dev tcl sqlite3 wrk containernetworking-plugins iptables

UNIT_TESTS  := tests/Wasmsharp.Ttrpc.Tests tests/Wasmsharp.Wasm.Tests tests/Wasmsharp.Shim.Tests tests/Wasmsharp.ImageTool.Tests
INTEGRATION := integration/Wasmsharp.Integration.Tests

.PHONY: all deps runtimes wasip2 cri-api cri-test build publish install deb test unit-test integration-test docker-test bench pod-bench component-bench load-bench cache-bench docker-bench demo clean

all: publish

deps:
	@command -v $(DOTNET) >/dev/null || { echo "error: the .NET 10 SDK (dotnet) is required on PATH" >&2; exit 1; }
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# containerd 1.7 / 2.1 and Docker 26 / 28 from Debian 13 / unstable, extracted privately into out/runtimes.
# (and the CRI API definitions, which the integration harness compiles).
runtimes: wasip2
	integration/scripts/fetch-runtimes.sh out/runtimes

# Debian 13's wasm32-wasip2 wasi-libc (extracted privately) and jco (npm, in out/wasip2/jco): the Wasm tests
# build their WASI preview 2 component with them.
wasip2:
	integration/scripts/fetch-wasip2.sh out/wasip2

# Only the CRI API definitions (Debian sid's golang-k8s-cri-api-dev, a small package) into out/runtimes/cri-api.
cri-api:
	SUITES= integration/scripts/fetch-runtimes.sh out/runtimes

build: cri-api
	$(DOTNET) build ContainerdShim.sln -c $(CONFIGURATION)

# The shim, and next to it the daemon it runs for containers that ask for gRPC (a separate binary so
# that the default one does not carry ASP.NET Core).
publish:
	$(DOTNET) publish src/Wasmsharp.Shim -c $(CONFIGURATION) -o $(OUT)
	$(DOTNET) publish src/Wasmsharp.Shim.Grpc -c $(CONFIGURATION) -o $(OUT)

install: publish
	install -d $(PREFIX)/bin
	install -m 0755 $(OUT)/$(SHIM) $(PREFIX)/bin/$(SHIM)
	install -m 0755 $(OUT)/$(SHIM_GRPC) $(PREFIX)/bin/$(SHIM_GRPC)
	install -m 0644 $(OUT)/libwasmtime.so $(PREFIX)/bin/libwasmtime.so

# A Debian package (out/deb/wasmsharp_VERSION_ARCH.deb): shim, libwasmtime.so, image tool, install.sh, doctor.
deb: publish
	$(DOTNET) build src/Wasmsharp.ImageTool -c $(CONFIGURATION)
	packaging/deb/build-deb.sh $(OUT) src/Wasmsharp.ImageTool/bin/$(CONFIGURATION)/net10.0 out/deb

# Unit tests, then the integration suite against a private containerd driving the published shim: the
# system's containerd (1.6 on Debian 12), then again on containerd 1.7 and 2.x from `make runtimes`
# (MATRIX_SUITES= skips those).
# The failed tests' names, then each run's counts, then the plain "N passed, N failed" summary of everything
# (CI shows the tail).
MATRIX_SUITES ?= trixie sid
# The classes that start their own containerd/dockerd of a fixed version (artifacts on 1.7/2.1, Docker
# 26/28, packaging) run once, in the first run; the matrix repeats the ctr scenarios.
MATRIX_FILTER := FullyQualifiedName!~ArtifactTests&FullyQualifiedName!~Docker2&FullyQualifiedName!~DockerIptables&FullyQualifiedName!~DebPackageTests&FullyQualifiedName!~DoctorTests&FullyQualifiedName!~InstallScriptTests
test: deps publish runtimes
	@rm -f out/test.log; mkdir -p out; status=0; runs=""; \
	count() { awk '/^(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($$i == "Passed:") p += $$(i+1); if ($$i == "Failed:") f += $$(i+1) } } \
	     END { printf "%d %d\n", p, f }' "$$1"; }; \
	run() { label=$$1; shift; "$$@" 2>&1 | tee out/test-run.log; [ $${PIPESTATUS[0]} -eq 0 ] || status=1; \
	        cat out/test-run.log >> out/test.log; set -- $$(count out/test-run.log); runs="$$runs  $$label: passed $$1, failed $$2\n"; }; \
	for p in $(UNIT_TESTS); do run "$$p" $(DOTNET) test $$p -c $(CONFIGURATION); done; \
	run "ctr suite on containerd $$(containerd --version | awk '{print $$3}')" $(DOTNET) test $(INTEGRATION) -c $(CONFIGURATION); \
	for suite in $(MATRIX_SUITES); do \
	  bin=$(CURDIR)/out/runtimes/$$suite/root/usr/bin; \
	  run "ctr suite on containerd $$($$bin/containerd --version | awk '{print $$3}')" \
	    env WASMSHARP_CONTAINERD_DIR=$$bin $(DOTNET) test $(INTEGRATION) -c $(CONFIGURATION) --no-build --filter '$(MATRIX_FILTER)'; \
	done; \
	grep -aE '^[[:space:]]+Failed [A-Za-z]' out/test.log | sed 's/^[[:space:]]*/  /' || true; \
	printf '%b' "$$runs"; set -- $$(count out/test.log); echo "tests: $$1 passed, $$2 failed"; \
	exit $$status

# Pods through containerd's CRI plugin (runc pods, and wasm pods with handler wasmsharp), on the system's containerd;
# CRI_CONTAINERD=trixie|sid runs them on containerd 1.7 / 2.1 from `make runtimes`.
cri-test: deps publish runtimes
	$(if $(CRI_CONTAINERD),WASMSHARP_CONTAINERD_DIR=$(CURDIR)/out/runtimes/$(CRI_CONTAINERD)/root/usr/bin) \
	  $(DOTNET) test $(INTEGRATION) -c $(CONFIGURATION) --filter "FullyQualifiedName~Wasmsharp.Integration.Tests.Cri"

unit-test:
	@for p in $(UNIT_TESTS); do $(DOTNET) test $$p -c $(CONFIGURATION) || exit 1; done

integration-test: cri-api wasip2 publish
	$(DOTNET) test $(INTEGRATION) -c $(CONFIGURATION)

# Only the Docker suite: Docker 26 (containerd 1.7) and Docker 28 (containerd 2.1), each on a private
# dockerd + containerd. WASMSHARP_DOCKER_SUITES="trixie" or "sid" runs one of them.
docker-test: deps publish runtimes
	$(DOTNET) test $(INTEGRATION) -c $(CONFIGURATION) --filter "FullyQualifiedName~Wasmsharp.Integration.Tests.Docker"

bench: deps cri-api wasip2 publish
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- bench

# Only the pod rows of `make bench`: a first container's start through CRI and memory per container, wasmsharp pod vs runc pod.
pod-bench: deps cri-api publish
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- pod-bench

# Only the busy-node module cache rows of `bench` (two CPU hogs: fresh modules started back to back, four at once).
cache-bench: deps cri-api publish
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- cache-bench

# Only the WASI preview 2 component rows of `bench` (component hello cached / not cached vs module hello and runc).
component-bench: deps cri-api wasip2 publish
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- component-bench

# Only the throughput and compute rows of `bench`: 200 `ctr run --rm` lifecycles 4 at a time, and compute.c as wasm
# vs native under runc.
load-bench: deps cri-api wasip2 publish
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- load-bench

# `docker run --rm` start time, ours vs runc, in a private Docker 26 and 28 (needs `make runtimes`).
docker-bench: deps publish runtimes
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- docker-bench

demo: deps cri-api publish
	$(DOTNET) run --project integration/Wasmsharp.Bench -c $(CONFIGURATION) -- demo

clean:
	rm -rf out
	find src tests integration -type d \( -name bin -o -name obj \) -prune -exec rm -rf {} +
