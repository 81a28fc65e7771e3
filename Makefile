# The two Quick start commands. Everything else is plain CMake + Ninja.
.PHONY: demo test deps

deps:
	@scripts/install-deps.sh

demo: deps
	@cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@ninja -C build hmmsim_demo >/dev/null
	@./build/src/demo/hmmsim_demo

test: deps
	@scripts/test.sh
