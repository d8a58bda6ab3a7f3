#!/usr/bin/env bash
# Benchmarks: installs what they need, builds, and writes bench-out/report.md with PNG plots.
# Every figure is compared with a baseline measured in the same run (SoftHSMv2 directly,
# openssl speed). Benchmarks report; they are not tests and do not fail on slow figures.
# Extra arguments go to tests/bench/run.py (--quick, --reps N, --seconds S, --out DIR, --only,
# --algs, --threads, --conf, --server, --ab-server, --ab-conf, --from-json; see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
BUILD_DIR=build-bench BUILD_TYPE=Release bash scripts/build.sh
exec python3 tests/bench/run.py --build build-bench "$@"
