#!/usr/bin/env bash
# Configures and builds one flavour: scripts/build.sh [plain|asan|fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-plain}
jobs=$(nproc)
case "$flavour" in
  plain) cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPUNCHGATE_WERROR=ON >/dev/null
         ninja -C build -j "$jobs" ;;
  asan)  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPUNCHGATE_SANITIZE=ON -DPUNCHGATE_BENCH=OFF \
               -DPUNCHGATE_WERROR=ON >/dev/null
         ninja -C build-asan -j "$jobs" ;;
  fuzz)  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
               -DPUNCHGATE_FUZZ=ON -DPUNCHGATE_TESTS=OFF -DPUNCHGATE_BENCH=OFF >/dev/null
         ninja -C build-fuzz -j "$jobs" fuzzers ;;
  *) echo "usage: scripts/build.sh [plain|asan|fuzz]" >&2; exit 2 ;;
esac
