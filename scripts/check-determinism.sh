#!/usr/bin/env bash
# A seed must replay the same run in every build. Runs the same random
# seeds in the GCC build and the clang sanitizer build and compares their
# step-by-step logs (every operation and its result); any difference
# (unsequenced draws, iteration over host pointers, ...) fails.
set -euo pipefail
cd "$(dirname "$0")/.."
a=${1:-build}
b=${2:-build-clang}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {  # build mix seed steps
  HMMSIM_RANDOM_MIX=$2 HMMSIM_RANDOM_SEED=$3 HMMSIM_RANDOM_STEPS=$4 HMMSIM_RANDOM_VERBOSE=1 \
    "$1/tests/mm_tests" --gtest_filter=RandomMm.Replay 2>&1 |
    grep -E '^\[[0-9]+\]'
}

for spec in "base 7 400" "thp 7 200" "device 7 80"; do
  set -- $spec
  run "$a" "$1" "$2" "$3" >"$tmp/a"
  run "$b" "$1" "$2" "$3" >"$tmp/b"
  if ! cmp -s "$tmp/a" "$tmp/b"; then
    echo "determinism: $1 seed $2 differs between $a and $b:" >&2
    diff "$tmp/a" "$tmp/b" | head -20 >&2
    exit 1
  fi
  echo "determinism: $1 seed $2, $3 steps: $(wc -l <"$tmp/a") log lines identical in $a and $b"
done
