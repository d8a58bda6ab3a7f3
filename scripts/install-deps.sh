#!/usr/bin/env bash
# Installs every Debian package Signum needs to build, run the demo and run the tests.
# Idempotent: packages already present are left alone; apt runs only when one is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git ca-certificates
  # server
  libssl-dev libevent-dev libsqlite3-dev libcjson-dev
  # agent and client library
  libcurl4-openssl-dev libmbedtls-dev
  # HSM
  softhsm2 opensc gnutls-bin libp11-kit-dev
  # tests and demo
  libcmocka-dev openssl sqlite3 curl procps python3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A third-party source that cannot be reached must not stop us: apt warns and goes on.
$sudo apt-get update -q || echo "install-deps: apt-get update reported errors; continuing" >&2
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
