#!/usr/bin/env bash
# Installs every Debian package Signum needs to build, run the demo and run the tests.
# Idempotent: packages already present are left alone; apt runs only when one is missing.
# --packaging: also what building and testing the Debian and RPM packages needs.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git ca-certificates
  # style check (scripts/check-format.sh, ctest style.clang_format)
  clang-format
  # server
  libssl-dev libevent-dev libsqlite3-dev libcjson-dev libqrencode-dev
  # the PostgreSQL backend (libpq) and the PostgreSQL server the pg.* and cluster tests start
  libpq-dev postgresql
  # agent and client library
  libcurl4-openssl-dev libmbedtls-dev
  # HSM
  softhsm2 opensc gnutls-bin libp11-kit-dev
  # fuzzing (scripts/fuzz.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # tests and demo
  libcmocka-dev openssl sqlite3 curl procps python3
  # audit export tests: a real rsyslogd (plain and TLS receivers) started by the tests
  rsyslog rsyslog-openssl
  # real tools signing through libsignumpkcs11.so (tests/tools, demo)
  libengine-pkcs11-openssl openjdk-17-jdk-headless gnupg gnupg-pkcs11-scd rpm
  gcc-mingw-w64-x86-64 p11-kit util-linux
  # Windows builds tested under Wine (mingw dependencies come from Debian source packages);
  # the x86 providers for 32-bit hosts (issue 20): their compiler and the 32-bit loader, from
  # the i386 architecture (added below); qemu-user runs wine32 where the kernel runs no 32-bit
  # programs (tests/wine/loaders.sh)
  wine64 dpkg-dev gcc-mingw-w64-i686 wine32:i386 qemu-user
  # the Windows installer (installer/windows/signum.nsi)
  nsis
  # the macOS token's Objective-C compiled and run on Linux (macos-ctk/objc.cmake)
  libgnustep-base-dev
  # deployment files (ctest deploy.validate): YAML, shell and HAProxy configuration checks;
  # the HSM's TLS tunnel (ctest cluster.hsm_tunnel)
  yamllint python3-yaml shellcheck haproxy socat
  # ctest packaging.static and the agent's unit test: systemd-analyze (rpmspec: rpm, above)
  systemd
  # benchmarks (scripts/bench.sh): plots
  gnuplot-nox
  # the console's browser tests (tests/console): a real headless Chromium
  chromium
)
# Node.js runs the browser tests' driver (playwright-core, pinned in tests/console). Debian's
# nodejs (18 on bookworm) and npm unless a node is there already (a NodeSource node brings its
# own npm, and Debian's npm package would conflict with it).
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
# The packages' install test (scripts/test.sh --packaging, tests/packaging/run.sh) only:
# install-deps.sh --packaging adds these (systemd-nspawn boots the server's package under a
# real systemd: tests/packaging/nspawn.sh).
[ "${1:-}" = --packaging ] && packages+=(debhelper lintian mmdebstrap systemd-container)
# From bookworm-backports: pkcs11-provider (none in bookworm) and osslsigncode 2.9 (2.5 there).
backports=(pkcs11-provider osslsigncode)
backports_list=/etc/apt/sources.list.d/signum-backports.list

installed() {
  dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
missing_bpo=()
for p in "${backports[@]}"; do
  # osslsigncode must be the backport (2.9): bookworm's 2.5 does not count.
  if ! installed "$p" || ! dpkg-query -W -f='${Version}' "$p" | grep -q '~bpo'; then
    missing_bpo+=("$p")
  fi
done

# The browser tests' npm packages, exactly as package-lock.json pins them, into
# tests/console/node_modules (git-ignored). Skipped when that lock was installed already.
console_npm() {
  local dir lock stamp want
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/console"
  lock="$dir/package-lock.json"
  stamp="$dir/node_modules/.signum-lock-sha256"
  [ -f "$lock" ] || return 0
  want=$(sha256sum "$lock" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$dir/node_modules/playwright-core" ]; then
    echo "install-deps: tests/console/node_modules matches package-lock.json"
    return 0
  fi
  echo "install-deps: npm ci in tests/console"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
}

# wine32 is an i386 package: the architecture must be known to dpkg before apt can see it.
need_i386=0
dpkg --print-foreign-architectures | grep -qx i386 || need_i386=1

if [ ${#missing[@]} -eq 0 ] && [ ${#missing_bpo[@]} -eq 0 ]; then
  echo "install-deps: all $(( ${#packages[@]} + ${#backports[@]} )) packages present"
  console_npm
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi

echo "install-deps: installing ${missing[*]} ${missing_bpo[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ "$need_i386" = 1 ]; then
  echo "install-deps: dpkg --add-architecture i386 (wine32)"
  $sudo dpkg --add-architecture i386
fi
if [ ${#missing_bpo[@]} -gt 0 ] && [ ! -f "$backports_list" ]; then
  # Backports from the mirror this machine already uses for bookworm itself.
  mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2 == "bookworm" {print $1; exit}')
  if [ -n "$mirror" ]; then
    echo "deb $mirror bookworm-backports main" | $sudo tee "$backports_list" >/dev/null
  else
    echo "install-deps: no bookworm source found to add bookworm-backports from" >&2
  fi
fi
# A third-party source that cannot be reached must not stop us: apt warns and goes on.
$sudo apt-get update -q || echo "install-deps: apt-get update reported errors; continuing" >&2
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ${#missing_bpo[@]} -gt 0 ]; then
  $sudo apt-get install -y -q --no-install-recommends -t bookworm-backports "${missing_bpo[@]}"
fi
console_npm
