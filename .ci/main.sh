#!/usr/bin/env bash
# The main job: installs dependencies, builds Release, and runs the flagship program.
# Until the char_rnn recipe lands (recipes/, issue 8) the flagship is the linear-regression training demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)"
if [ -x build/release/recipes/char_rnn ]; then
  exec build/release/recipes/char_rnn "$@"
fi
exec build/release/docs/examples/linear_regression "$@"
