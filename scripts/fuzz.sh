#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz, clang, ASan + UBSan) into build-fuzz and runs
# each target for a given time on its committed seed corpus plus what earlier runs found.
#   scripts/fuzz.sh                      15 s per target (the test run uses --seconds 10)
#   scripts/fuzz.sh --seconds 600        a release run: at least 10 minutes per target
#   scripts/fuzz.sh --targets "jwt ipc"  some targets only
# Crashes, leaks, timeouts and broken properties are written to fuzz-out/crashes/ and make the
# script exit 1; the growing corpus is kept in fuzz-out/corpus/<target>/. Prints, per target,
# executions, coverage (cov: edges, ft: features) and corpus size.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=15
targets="sign_request b64 jwt chain ipc pkcs11 tsa_req"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--targets \"t1 t2\"]" >&2; exit 2 ;;
  esac
done

# Input caps per target: above every committed seed, at or under what the product reads
# (sign bodies are capped at 64 KiB but their fields at a few KiB; IPC stays under a socket
# buffer so the harness's write never blocks).
declare -A max_len=([sign_request]=16384 [b64]=4096 [jwt]=12288 [chain]=24576 [ipc]=65536
                    [pkcs11]=4096 [tsa_req]=17408)

build=${FUZZ_BUILD_DIR:-build-fuzz}
out=fuzz-out
echo "== fuzz: build ($build, clang, ASan + UBSan + libFuzzer)"
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DSIGNUM_FUZZ=ON -DSIGNUM_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_all -j"$(nproc)" >/dev/null

mkdir -p "$out/crashes" "$out/logs"
# Fresh certificate chains each run (keys made and deleted by openssl in a temporary
# directory), next to the committed ones.
python3 tests/fuzz/make_seeds.py --certs "$out/corpus/chain"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
unset SIGNUM_DEBUG SIGNUM_P11_LOG

failed=()
summary=()
for t in $targets; do
  [ -n "${max_len[$t]:-}" ] || { echo "fuzz: unknown target $t" >&2; exit 2; }
  work="$out/corpus/$t"
  log="$out/logs/$t.log"
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  echo "== fuzz: $t for ${seconds}s (max_len ${max_len[$t]})"
  start=$(date +%s)
  rc=0
  "$build/tests/fuzz/fuzz_$t" "$work" "tests/fuzz/corpus/$t" "${dict[@]}" \
    -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/crashes/$t-" >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "$work" -type f | wc -l)
  line=$(printf '%-13s %4ss  execs %-10s cov %-6s ft %-7s corpus %s' "$t" "$took" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "$corpus")
  if [ "$rc" -ne 0 ]; then
    line="$line  FAILED (exit $rc; see $log)"
    failed+=("$t")
    grep -E 'ERROR|property broken|runtime error|SUMMARY' "$log" | head -5 >&2 || true
  fi
  summary+=("$line")
  echo "$line"
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; inputs in $out/crashes/" >&2
  exit 1
fi
echo "fuzz: 0 crashes"
