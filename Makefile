# The two Quick start commands. Everything else is plain CMake + Ninja.
.PHONY: selftest demo test deps build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@ninja -C build hmmsim hmmsim_demo >/dev/null

# The main job: the port of the Linux hmm-tests kselftest.
selftest: build
	@./build/src/cli/hmmsim selftest

demo: build
	@./build/src/demo/hmmsim_demo

test: deps
	@scripts/test.sh
