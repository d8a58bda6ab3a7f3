#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test (CMocka unit tests, integration tests
# against a real signum-server with SoftHSMv2 and SQLite) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j2
