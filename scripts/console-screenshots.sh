#!/usr/bin/env bash
# Refreshes the console screenshots shown in the README (docs/img/console-*.png) from the
# browser test's own screenshots: runs ctest console.browser in ${BUILD_DIR:-build} (it writes
# them into the build tree, never into the sources), then copies a few into docs/img/.
# Usage: bash scripts/console-screenshots.sh [--no-run]   (--no-run: copy the last run's)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
shots="$build_dir/tests/console/screenshots"
if [ "${1:-}" != "--no-run" ]; then
  (cd "$build_dir" && ctest -R '^console\.browser$' --output-on-failure)
fi
mkdir -p docs/img
# Not the TOTP enrolment (it shows a secret) nor the audit detail (it shows local paths).
for name in 02-dashboard 06-project 08-key 09-policy-invalid 12-approvals 14-narrow-dashboard; do
  [ -f "$shots/$name.png" ] || { echo "console-screenshots: no $shots/$name.png" >&2; exit 1; }
  cp "$shots/$name.png" "docs/img/console-${name#*-}.png"
done
echo "console-screenshots: docs/img/console-*.png updated"
