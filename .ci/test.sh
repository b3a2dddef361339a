#!/usr/bin/env bash
# Every test: installs dependencies, builds Release (compiling the CUDA backend where nvcc is found) and runs the
# suite, builds the CPU code with ASan+UBSan and runs it again,
# then installs the package and builds an outside project against it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
jobs=$(nproc)

echo "== release build (with the CUDA backend where nvcc is found: TG_CUDA=AUTO)"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$jobs"
(cd build/release && ctest -j"$jobs" --output-on-failure)

echo "== sanitizer build (ASan + UBSan)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTG_SANITIZE=ON -DTG_CUDA=OFF -DTG_BUILD_BENCH=OFF >/dev/null
cmake --build build/asan -j"$jobs"
(cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -j"$jobs" --output-on-failure)

echo "== install and link an outside project"
rm -rf build/prefix build/consumer
cmake --install build/release --prefix "$PWD/build/prefix" >/dev/null
cmake -S tests/install -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$PWD/build/prefix" >/dev/null
cmake --build build/consumer
./build/consumer/consumer

echo "all tests passed"
