#!/usr/bin/env bash
# Runs a Windows executable of build-mingw/ under wine64 in this test run's prefix
# (`run.sh --stop` ends the prefix's wineserver).
set -euo pipefail
: "${WINE_DIR:?}" "${MINGW_BUILD_DIR:?}"
export WINEPREFIX=$WINE_DIR/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export PATH=$PATH:/usr/lib/wine
export SIGNUM_TEST_MATERIAL="Z:$WINE_DIR/material"
if [ "${1:-}" = --stop ]; then
  [ -d "$WINEPREFIX" ] && { wineserver -k 2>/dev/null || true; }
  exit 0
fi
exe=$1
shift
exec timeout 100 wine64 "$MINGW_BUILD_DIR/$exe" "$@"
