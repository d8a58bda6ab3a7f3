#!/usr/bin/env bash
# Makes $WINE_DIR/loaders/lib/wine, the Wine loaders every Wine test puts first in its PATH:
# Debian's wine64 (a copy: Wine finds the 32-bit loader it starts for an x86 program beside its
# own executable), wineserver, and `wine`, the 32-bit loader (wine32):
# - where the kernel runs 32-bit programs, Debian's /usr/lib/wine/wine itself;
# - where it does not (no IA32 emulation, as on some VMs) but qemu-i386 exists, a script that
#   runs that same wine32 loader under qemu's user-mode emulation of an i386 CPU (slow: a
#   program's start costs tens of seconds of CPU; the marker file x86-emulated says so, and the
#   harness gives such programs longer timeouts);
# - else none: the x86 tests exit 77 (skipped, never passed), saying why.
# The directory mirrors Debian's layout (lib/wine beside lib/<triplet>, share/wine) because Wine
# finds ntdll and its data relative to the loader.
set -euo pipefail
: "${WINE_DIR:?}"
root=$WINE_DIR/loaders
bin=$root/lib/wine
rm -rf "$root"
mkdir -p "$bin" "$root/share"
cp /usr/lib/wine/wine64 "$bin/wine64"
ln -s /usr/lib/wine/wineserver64 "$bin/wineserver"
for triplet in x86_64-linux-gnu i386-linux-gnu; do
  ln -s "/usr/lib/$triplet" "$root/lib/$triplet"
done
ln -s /usr/share/wine "$root/share/wine"
if [ ! -x /usr/lib/wine/wine ]; then
  echo "loaders: no 32-bit loader (wine32 is not installed)"
elif /usr/lib/wine/wine --version >/dev/null 2>&1; then
  ln -s /usr/lib/wine/wine "$bin/wine"
  echo "loaders: 32-bit programs run natively"
elif command -v qemu-i386 >/dev/null && qemu-i386 /usr/lib/wine/wine --version >/dev/null 2>&1; then
  # The i386 loader runs from a copy in this directory, its argv[0] this script: Wine starts a
  # further x86 program with the loader beside its own executable under that name (the kernel
  # could not run /usr/lib/wine/wine itself). WINELOADERNOEXEC: it does not re-execute itself
  # either; the options it answers before that step (--version) it answers as it is.
  cp /usr/lib/wine/wine "$bin/wine-i386"
  cat >"$bin/wine" <<'EOS'
#!/bin/sh
# wine32 under qemu-i386 user-mode emulation: this kernel runs no 32-bit programs.
here=$(dirname "$(readlink -f "$0")")
case "${1:-}" in --version | --help) exec qemu-i386 -0 "$here/wine" "$here/wine-i386" "$@" ;; esac
WINELOADERNOEXEC=1 exec qemu-i386 -0 "$here/wine" "$here/wine-i386" "$@"
EOS
  chmod 755 "$bin/wine"
  touch "$root/x86-emulated"
  echo "loaders: the kernel runs no 32-bit programs: wine32 runs under qemu-i386 (emulated, slow)"
else
  echo "loaders: the kernel runs no 32-bit programs and qemu-i386 cannot run wine32: x86 tests are skipped"
fi
