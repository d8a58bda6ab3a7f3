#!/usr/bin/env bash
# Fixture for the Wine tests: cross-builds the Windows parts (x64 and x86), makes the loaders
# (loaders.sh: wine32 under qemu-i386 where the kernel runs no 32-bit programs), creates this run's
# Wine prefix (a 64-bit one; with wine32 its WOW64 half runs the x86 programs), keeps its
# wineserver running until wine.cleanup (so no test races a wineserver that is shutting down
# after the previous program), and makes the keys and certificates test_client_crypto.exe reads
# (no openssl under Wine).
set -euo pipefail
: "${WINE_DIR:?}" "${MINGW_BUILD_DIR:?}" "${MINGW32_BUILD_DIR:?}" "${SOURCE_DIR:?}"
BUILD_DIR=$MINGW_BUILD_DIR BUILD_DIR32=$MINGW32_BUILD_DIR bash "$SOURCE_DIR/scripts/build-mingw.sh" >"$WINE_DIR.build.log" 2>&1 ||
  { tail -50 "$WINE_DIR.build.log"; exit 1; }
bash "$(dirname "$0")/run.sh" --stop || true
rm -rf "$WINE_DIR"
mkdir -p "$WINE_DIR/material"
bash "$(dirname "$0")/loaders.sh"
export WINEPREFIX=$WINE_DIR/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export PATH=$WINE_DIR/loaders/lib/wine:$PATH:/usr/lib/wine
# The wineserver first (it needs the prefix's directory), persistent for 10 minutes after the
# last program exits; wine.cleanup ends it.
mkdir -p "$WINEPREFIX"
wineserver -p600 </dev/null >/dev/null 2>&1 # no descriptor of ctest's kept open
# Under qemu-i386 (loaders.sh) wineboot also makes the prefix's WOW64 half by emulation.
boot_limit=300
[ -f "$WINE_DIR/loaders/x86-emulated" ] && boot_limit=900
timeout "$boot_limit" wine64 wineboot -i >"$WINE_DIR/wineboot.log" 2>&1 || { cat "$WINE_DIR/wineboot.log"; exit 1; }
cd "$WINE_DIR/material"
material() { # alg name [options]: the same files test_client_crypto makes for itself on Linux
  local alg=$1 name=$2
  shift 2
  openssl req -x509 -newkey "$alg" "$@" -nodes -keyout "$name.key" -subj "/CN=$name" -days 1 \
    -outform DER -out "$name.crt" 2>/dev/null
  openssl pkey -in "$name.key" -pubout -outform DER -out "$name.pub"
}
material rsa:2048 r
material ec e -pkeyopt ec_paramgen_curve:P-384
material ec c -pkeyopt ec_paramgen_curve:P-256
echo "wine.setup: $(wine64 --version) prefix $WINEPREFIX"
# Whether the wine32.* tests can run here (they exit 77, skipped, where they cannot).
if [ -f "$WINE_DIR/loaders/x86-emulated" ] && wine --version >/dev/null 2>&1; then
  echo "wine.setup: 32-bit programs run here under qemu-i386 (wine32.* tests run, emulated)"
elif wine --version >/dev/null 2>&1; then
  echo "wine.setup: 32-bit programs run here (wine32.* tests run)"
else
  echo "wine.setup: 32-bit programs do not run here (wine --version: exit $?): wine32.* tests are skipped"
fi
