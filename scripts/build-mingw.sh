#!/usr/bin/env bash
# Cross-builds the Windows parts with mingw-w64: first the x86 (32-bit) providers for 32-bit
# hosts such as Office's signtool (client library, signumksp.dll, signumcsp.dll and their test
# programs) into BUILD_DIR32 (default: BUILD_DIR followed by 32), then everything x64 (agent-core:
# client library, signum-agent.exe, signum-util.exe, the providers, the unit tests as .exe, and
# the installer, which carries the x86 providers too) into BUILD_DIR (default build-mingw). The
# third-party libraries come from scripts/build-mingw-deps.sh (cached, one directory per
# architecture: DEPS_DIR and DEPS_DIR32). MINGW32=0 leaves the x86 build out (and the x86
# providers out of the installer). Extra arguments go to both cmake configurations.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-mingw}
BUILD_DIR32=${BUILD_DIR32:-${BUILD_DIR%/}32}
DEPS_DIR=${DEPS_DIR:-build-mingw-deps}
DEPS_DIR32=${DEPS_DIR32:-build-mingw32-deps}
MINGW32=${MINGW32:-1}
x86_build="" # empty: the installer has no x86 providers
if [ "$MINGW32" != 0 ]; then
  MINGW_HOST=i686-w64-mingw32 DEPS_DIR=$DEPS_DIR32 bash scripts/build-mingw-deps.sh
  cmake -S . -B "$BUILD_DIR32" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/mingw-w64-i686.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGNUM_MINGW_DEPS="$(realpath "$DEPS_DIR32")/prefix" "$@" >/dev/null
  cmake --build "$BUILD_DIR32" -j"$(nproc)"
  x86_build=$(realpath "$BUILD_DIR32")
fi
MINGW_HOST=x86_64-w64-mingw32 DEPS_DIR=$DEPS_DIR bash scripts/build-mingw-deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/mingw-w64-x86_64.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGNUM_MINGW_DEPS="$(realpath "$DEPS_DIR")/prefix" \
  -DSIGNUM_MINGW32_BUILD="$x86_build" "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
