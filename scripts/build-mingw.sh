#!/usr/bin/env bash
# Cross-builds the Windows parts (agent-core: client library, signum-agent.exe, signum-util.exe,
# and the unit tests as .exe) with mingw-w64 into BUILD_DIR (default build-mingw). The
# third-party libraries come from scripts/build-mingw-deps.sh (cached).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-mingw}
DEPS_DIR=${DEPS_DIR:-build-mingw-deps}
DEPS_DIR=$DEPS_DIR bash scripts/build-mingw-deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/mingw-w64-x86_64.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGNUM_MINGW_DEPS="$(realpath "$DEPS_DIR")/prefix" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
