#!/usr/bin/env bash
# Fuzzes every target in fuzz/ for SECONDS each (default 60) and fails if any finds a crash, a
# panic, a failed assertion, a timeout or an out-of-memory. Usage:
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz (pinned) when missing and works on the stable toolchain: targets are built
# with libFuzzer's coverage instrumentation and without a sanitizer (Rust's own checks, debug
# assertions and overflow checks included, find what matters in safe code). Set
# FUZZ_SANITIZER=address to build with AddressSanitizer instead (it needs `-Z` flags, which
# RUSTC_BOOTSTRAP=1 lets a stable compiler take).
#
# Each target starts from its committed corpus (fuzz/corpus/TARGET, read only) and writes what
# it finds to fuzz/target/corpus/TARGET; FUZZ_GROW=1 writes to the committed corpus instead
# (then minimise it: cargo fuzz cmin -s none TARGET). FUZZ_JOBS targets run at once (default:
# the number of cores, at most 2). A crash leaves its input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.1
SECONDS_EACH=${1:-60}
shift || true
SANITIZER=${FUZZ_SANITIZER:-none}
TIMEOUT=${FUZZ_TIMEOUT:-10}
RSS_LIMIT_MB=${FUZZ_RSS_LIMIT_MB:-2048}
JOBS=${FUZZ_JOBS:-$(( $(nproc) < 2 ? $(nproc) : 2 ))}

if ! cargo fuzz --version 2>/dev/null | grep -q "cargo-fuzz $CARGO_FUZZ_VERSION"; then
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
if [ "$SANITIZER" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi

cd fuzz
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  mapfile -t TARGETS < <(cargo fuzz list)
fi

echo "==> building ${#TARGETS[@]} fuzz targets (sanitizer: $SANITIZER)"
build_started=$(date +%s)
# cargo fuzz has no --locked: refuse a stale fuzz/Cargo.lock before building.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build --sanitizer "$SANITIZER" --codegen-units 16
echo "    built in $(( $(date +%s) - build_started )) s"

BIN=target/x86_64-unknown-linux-gnu/release
LOGS=target/fuzz-logs
mkdir -p "$LOGS"

# The dictionary of a target's input format (libFuzzer inserts its tokens while mutating).
dictionary() {
  case $1 in
    whatsapp | telegram | webchat) echo dicts/json.dict ;;
    twilio | email_webhook) echo dicts/form.dict ;;
    email_mime) echo dicts/mime.dict ;;
    *) echo "dicts/$1.dict" ;;
  esac
}

# One target: libFuzzer for SECONDS_EACH seconds; the last lines of its log are its figures.
run_target() {
  local target=$1 work=target/corpus/$1 dict=()
  if [ "${FUZZ_GROW:-0}" = 1 ]; then
    work=corpus/$target
  fi
  if [ -f "$(dictionary "$target")" ]; then
    dict=(-dict="$(dictionary "$target")")
  fi
  mkdir -p "$work" "corpus/$target" "artifacts/$target"
  if "$BIN/$target" "$work" "corpus/$target" "${dict[@]}" \
      -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_LIMIT_MB" \
      -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
      >"$LOGS/$target.log" 2>&1; then
    echo ok >"$LOGS/$target.status"
  else
    echo failed >"$LOGS/$target.status"
  fi
}

echo "==> fuzzing each target for $SECONDS_EACH s, $JOBS at a time"
fuzz_started=$(date +%s)
running=0
for target in "${TARGETS[@]}"; do
  rm -f "$LOGS/$target.status"
  run_target "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

# The figures of one run: executions, executions per second, coverage (edges), features,
# corpus entries, peak memory.
figure() { grep -oE "$2" "$LOGS/$1.log" | tail -1 | grep -oE '[0-9]+$' || echo "?"; }
failed=()
printf '%-14s %7s %12s %9s %6s %7s %7s %8s\n' target result execs execs/s cov ft corpus rss_mb
for target in "${TARGETS[@]}"; do
  status=$(cat "$LOGS/$target.status" 2>/dev/null || echo failed)
  printf '%-14s %7s %12s %9s %6s %7s %7s %8s\n' "$target" "$status" \
    "$(figure "$target" 'stat::number_of_executed_units: *[0-9]+')" \
    "$(figure "$target" 'stat::average_exec_per_sec: *[0-9]+')" \
    "$(figure "$target" 'cov: [0-9]+')" \
    "$(figure "$target" 'ft: [0-9]+')" \
    "$(figure "$target" 'corp: [0-9]+')" \
    "$(figure "$target" 'stat::peak_rss_mb: *[0-9]+')"
  if [ "$status" != ok ]; then
    failed+=("$target")
  fi
done
echo "    fuzzed in $(( $(date +%s) - fuzz_started )) s"

if [ ${#failed[@]} -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "==> $target failed (its log: fuzz/$LOGS/$target.log):"
    grep -m1 -A4 -E 'panicked at|ERROR: libFuzzer' "$LOGS/$target.log" || true
    tail -n 8 "$LOGS/$target.log"
    echo "    reproduce: cd fuzz && cargo fuzz run -s $SANITIZER $target artifacts/$target/<file>"
  done
  echo "fuzz: ${#failed[@]} of ${#TARGETS[@]} targets failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#TARGETS[@]} targets ran ${SECONDS_EACH} s each without a failure"
