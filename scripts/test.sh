#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test through ctest: CMocka unit tests and
# integration tests against a real signum-server (SoftHSMv2, SQLite, openssl, pkcs11-tool).
# The suite runs twice: on the normal build, then on an AddressSanitizer + UBSan build, where
# a memory error or a leak found at the server's exit fails the test that stopped it. Last, a
# short libFuzzer run of every harness in tests/fuzz (scripts/fuzz.sh; release runs are longer).
# --packaging: then also the install test of the Debian and RPM packages (tests/packaging/run.sh:
# builds them, installs the .debs into a clean bookworm root made with mmdebstrap, signs there,
# purges; about 10 minutes, root, the Debian mirror).
# --wine32: where x86 programs run under qemu-i386 (a kernel without 32-bit support:
# tests/wine/loaders.sh), wine32.csp runs every case, not its short suite (one emulated program
# per case: about 20 minutes more); elsewhere it runs every case anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging=0
for arg in "$@"; do
  case $arg in
    --packaging) packaging=1 ;;
    --wine32) export SIGNUM_WINE32_FULL=1 ;;
    *) echo "test.sh: unknown argument $arg (known: --packaging, --wine32)" >&2; exit 2 ;;
  esac
done
if [ "$packaging" = 1 ]; then bash scripts/install-deps.sh --packaging; else bash scripts/install-deps.sh; fi

echo "== build (RelWithDebInfo) and test"
BUILD_DIR=build bash scripts/build.sh
(cd build && ctest --output-on-failure --timeout 600 -j2)

echo "== build (ASan + UBSan) and test"
BUILD_DIR=build-asan BUILD_TYPE=Debug bash scripts/build.sh -DSIGNUM_SANITIZE=ON
(cd build-asan && ctest --output-on-failure --timeout 900 -j2)

echo "== fuzz (libFuzzer + ASan + UBSan, 10 s per target)"
bash scripts/fuzz.sh --seconds 10

if [ "$packaging" = 1 ]; then
  echo "== packages: build, lintian, rpm, install into a clean bookworm root, purge"
  bash tests/packaging/run.sh
fi
