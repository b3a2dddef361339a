#!/usr/bin/env bash
# The main job: installs dependencies, builds Release, and runs the flagship program.
# The flagship is recipes/char_rnn (falls back to the linear-regression demo in a build without recipes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j"$(nproc)"
if [ -x build/release/recipes/char_rnn ]; then
  exec build/release/recipes/char_rnn "$@"
fi
exec build/release/docs/examples/linear_regression "$@"
