#!/usr/bin/env bash
# bench/backfill: candles/s of `autonama ingest` backfilling one full year of
# 1m candles (525,600) of one symbol from the fake exchange (no faults, no
# rate limit), side by side in the same run with `autonama import` of the
# same rows from a file (the ceiling of the store path), and the ratio.
# Target: ratio >= 0.8.
#
# Each round starts from an empty store; rounds alternate ingest and import
# so the machine's noise hits both alike; the best round of each is compared
# (as bench/ingest does: on a shared 2-core machine the fastest round is the
# one least disturbed), every round's time is printed too. Runs on the DuckDB store, and on PostgreSQL 15 when
# AUTONAMA_TEST_PG is set (scripts/run-bench starts it).
#   bench/backfill.sh [ROUNDS]   (AN_BIN: the autonama binary, default build/autonama)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AN_BIN:-$root/build/autonama}
ROUNDS=${1:-5}
work=$(mktemp -d /tmp/autonama-bench-backfill.XXXXXX)
# the CLI tests' helpers: kv, mode_env, reset_mode, start_fake_binance
SRC=$root
# shellcheck source=../tests/cli/lib.sh
. "$root/tests/cli/lib.sh"
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT

START=1672531200000             # 2023-01-01
END=$((START + 365 * 86400000)) # 2024-01-01
ROWS=525600
# --cache-blocks: the server keeps the whole year rendered, so what is
# measured is our client and store, not the fake's candle generation
start_fake_binance --generate "BENUSDT:1m:$START:$END" --server-time-ms $((END + 30000)) \
    --seed 3 --weight-limit 100000000 --cache-blocks 600 ||
    { echo "bench/backfill: the fake exchange did not start" >&2; exit 1; }
bench_env() { # a store mode, with no rate limit of ours
    mode_env "$1"
    export AUTONAMA_BINANCE_WEIGHT_BUDGET=1000000
    unset AUTONAMA_BINANCE_TIMEOUT_MS AUTONAMA_BINANCE_BACKOFF_MS
}
now() { date +%s.%N; }
rows_of() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# warm-up: render the year on the server, and keep its candles as a file
bench_env duckdb
reset_mode duckdb
"$BIN" ingest --symbols BEN/USDT --since 2023-01-01 >/dev/null
"$BIN" export --symbol BEN/USDT --timeframe 1m >"$work/BENUSDT-1m.csv"
got=$(($(wc -l <"$work/BENUSDT-1m.csv") - 1))
[ "$got" -eq "$ROWS" ] || { echo "bench/backfill: warm-up stored $got candles, not $ROWS" >&2; exit 1; }

modes=duckdb
[ -n "${AUTONAMA_TEST_PG:-}" ] && modes="duckdb postgres"
status=0
for mode in $modes; do
    bench_env "$mode"
    ing=() imp=()
    for r in $(seq 1 "$ROUNDS"); do
        reset_mode "$mode"
        t0=$(now)
        n=$("$BIN" ingest --symbols BEN/USDT --since 2023-01-01 | rows_of "j['categories']['crypto']['symbols']['BEN/USDT']['inserted']")
        t1=$(now)
        [ "$n" -eq "$ROWS" ] || { echo "bench/backfill: $mode ingest stored $n" >&2; exit 1; }
        ing+=("$(python3 -c "print($t1 - $t0)")")
        reset_mode "$mode"
        t0=$(now)
        n=$("$BIN" import "$work/BENUSDT-1m.csv" --symbol BEN/USDT --timeframe 1m | rows_of "j['files'][0]['inserted']")
        t1=$(now)
        [ "$n" -eq "$ROWS" ] || { echo "bench/backfill: $mode import stored $n" >&2; exit 1; }
        imp+=("$(python3 -c "print($t1 - $t0)")")
    done
    python3 - "$mode" "$ROWS" "${ing[*]}" "${imp[*]}" <<'PY' || status=1
import sys
mode, rows = sys.argv[1], int(sys.argv[2])
ing = [float(x) for x in sys.argv[3].split()]
imp = [float(x) for x in sys.argv[4].split()]
a, b = min(ing), min(imp)
ratio = (rows / a) / (rows / b)
print(f"backfill {mode:8s} ingest (fake exchange) {rows / a:10,.0f} candles/s  "
      f"[{', '.join(f'{x:.2f}' for x in ing)} s]")
print(f"backfill {mode:8s} import (file)          {rows / b:10,.0f} candles/s  "
      f"[{', '.join(f'{x:.2f}' for x in imp)} s]")
verdict = "PASS" if ratio >= 0.8 else "FAIL"
print(f"backfill {mode:8s} ratio ingest/import    {ratio:10.2f}  (target >= 0.8) {verdict}")
sys.exit(0 if ratio >= 0.8 else 1)
PY
done
exit $status
