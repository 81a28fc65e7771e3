#!/usr/bin/env bash
# The whole test suite: a GCC build and a clang build with -Wthread-safety
# under AddressSanitizer and UndefinedBehaviorSanitizer, each warning-free
# (-Werror) and each running every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

jobs=$(nproc)

echo "== GCC build =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build
(cd build && ctest --output-on-failure -j"$jobs")

echo "== clang build: -Wthread-safety, ASan+UBSan =="
CXX=clang++ cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
  -DHMMSIM_THREAD_SAFETY=ON -DHMMSIM_SANITIZE=ON >/dev/null
ninja -C build-clang
(cd build-clang && ctest --output-on-failure -j"$jobs")

echo "== determinism across the two builds =="
scripts/check-determinism.sh build build-clang
