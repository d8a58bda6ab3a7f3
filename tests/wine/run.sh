#!/usr/bin/env bash
# Runs a Windows executable of build-mingw/ under wine64 in this test run's prefix; with
# SIGNUM_WINE_ARCH=x86 one of build-mingw32/ under the 32-bit loader (exit 77, ctest's skip,
# when this machine's kernel runs no 32-bit programs). `run.sh --stop` ends the prefix's
# wineserver.
set -euo pipefail
: "${WINE_DIR:?}" "${MINGW_BUILD_DIR:?}"
export WINEPREFIX=$WINE_DIR/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export PATH=$WINE_DIR/loaders/lib/wine:$PATH:/usr/lib/wine
export SIGNUM_TEST_MATERIAL="Z:$WINE_DIR/material"
if [ "${1:-}" = --stop ]; then
  [ -d "$WINEPREFIX" ] && { wineserver -k 2>/dev/null || true; }
  exit 0
fi
exe=$1
shift
loader=wine64 dir=$MINGW_BUILD_DIR
if [ "${SIGNUM_WINE_ARCH:-x64}" = x86 ]; then
  : "${MINGW32_BUILD_DIR:?}"
  loader=wine dir=$MINGW32_BUILD_DIR
  command -v wine >/dev/null || { echo "FAIL: wine (wine32) is not installed"; exit 1; }
  rc=0
  wine --version >/dev/null 2>&1 || rc=$?
  if [ "$rc" = 126 ]; then
    echo "SKIP (x86 tests not run): $(command -v wine) cannot be executed on this machine:" \
      "its kernel runs no 32-bit programs"
    exit 77
  fi
  [ "$rc" = 0 ] || { echo "FAIL: wine --version exited $rc"; exit 1; }
fi
limit=100
# wine32 under qemu-i386 (tests/wine/loaders.sh): a program's start alone takes tens of seconds.
[ "$loader" = wine ] && [ -f "$WINE_DIR/loaders/x86-emulated" ] && limit=500
exec timeout "$limit" "$loader" "$dir/$exe" "$@"
