#!/usr/bin/env bash
# The optimizer end to end (issue 13) on all three store modes, with the real
# candle file BTC_USDT-1h.json: `autonama optimize` stores its rows
# (--keep, --split, --walk-forward; 1h from the rollup of ETH_USDT-1m.json), every bad input of the issue exits 2
# naming the problem and stores nothing, the task optimize_strategy runs
# through POST /api/v1/tasks (PROGRESS meta, SUCCESS), and the results are
# read back through GET /api/v1/optimization/runs and /results (validated:
# the run's grid, fees and slippage, the walk-forward's in-sample rows by
# sample=), one combination's equity curve through /equity (equal to its
# stored row), and
# bad parameters 400, 405 for other methods, 414, 503 while the store is
# unreachable; openapi.json conformance of these routes).
# Needs AN_BIN, AN_SRC, AN_DATA_DIR, AUTONAMA_TEST_PG, AUTONAMA_TEST_TS.
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
DATA=${AN_DATA_DIR:?}
: "${AUTONAMA_TEST_PG:?run through make test}" "${AUTONAMA_TEST_TS:?run through make test}"
work=$(mktemp -d /tmp/autonama-optimize.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
trap '[ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT

serve_env=(AUTONAMA_FALLBACK=false AUTONAMA_HTTP_CACHE_TTL_MS=0 AUTONAMA_BEAT_UPDATE_INTERVAL=0
    AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_BEAT_HEALTH_INTERVAL=0)
check_py=$SRC/tests/cli/api_check.py
observed=$work/observed.jsonl
: >"$observed"
req_check=/api/v1/optimization
# rows stored in optimization.results, through the API
stored_rows() {
    req GET "/api/v1/optimization/runs?limit=5000"
    body "sum(r['rows'] for r in j['runs'])"
}

OPT=(optimize --strategy sma_cross --symbols BTC/USDT --timeframe 1h)
for mode in duckdb postgres timescaledb; do
    echo "# mode $mode"
    mode_env "$mode"
    reset_mode "$mode"
    "$BIN" import "$DATA/BTC_USDT-1h.json" >/dev/null 2>&1 || bad "$mode: import failed"

    # a CLI run: every combination computed, the best 10 by sharpe stored
    "$BIN" "${OPT[@]}" --grid fast=5:50:5,slow=20:200:10 --keep 10 >"$work/run.json" 2>"$work/run.err"
    rc=$?
    check "$mode: optimize exits 0 ($rc: $(tail -1 "$work/run.err"))" test "$rc" = 0
    run1=$(json "$work/run.json" "j['run_id']")
    check "$mode: 190 combinations, 16 skipped (fast >= slow), 10 rows stored" \
        test "$(json "$work/run.json" "(j['combinations'], j['skipped'], j['rows_stored'], j['symbols'][0]['candles'])")" = "(190, 16, 10, 5482)"
    # the candles come through the indicators' load paths (engine.h)
    case $mode in duckdb) want_path=embedded ;; *) want_path=direct ;; esac
    check "$mode: the candles were read through the $want_path load path" \
        test "$(json "$work/run.json" "j['symbols'][0]['load_path']")" = "$want_path"

    # --split 0.7: in and out rows per kept combination; --walk-forward 3: one row per fold
    "$BIN" "${OPT[@]}" --grid 'fast=10|20,slow=50|100' --split 0.7 >"$work/split.json" 2>/dev/null
    check "$mode: --split stores an in and an out row per combination" \
        test "$(json "$work/split.json" "j['rows_stored']")" = 8
    "$BIN" "${OPT[@]}" --grid 'fast=10|20,slow=50|100' --walk-forward 3 --sort total_return >"$work/wf.json" 2>/dev/null
    check "$mode: --walk-forward 3 reports three folds: 4 in-sample rows and one out-of-sample row each" \
        test "$(json "$work/wf.json" "(j['rows_stored'], [f['fold'] for f in j['symbols'][0]['folds']])")" = "(15, [1, 2, 3])"
    run_wf=$(json "$work/wf.json" "j['run_id']")

    # bad input: exit 2 naming the problem, nothing stored
    bad_input() {
        local what=$1 needle=$2
        shift 2
        "$BIN" "$@" >"$work/bad.json" 2>"$work/bad.err"
        local rc=$?
        check "$mode: $what exits 2 naming the problem ($rc: $(tail -1 "$work/bad.err"))" \
            bash -c '[ "$1" = 2 ] && grep -qF -- "$2" "$3"' _ "$rc" "$needle" "$work/bad.err"
    }
    bad_input "an unknown strategy" "unknown strategy 'sma_crossing'" optimize --strategy sma_crossing --grid fast=5,slow=20 --symbols BTC/USDT --timeframe 1h
    bad_input "an unknown parameter" "no parameter 'slowest'" "${OPT[@]}" --grid fast=5,slowest=20
    bad_input "an inverted range" "inverted range" "${OPT[@]}" --grid fast=50:5:5,slow=20
    bad_input "an empty range" "'' is not a number" "${OPT[@]}" --grid fast=,slow=20
    bad_input "a grid over 1,000,000 combinations" "1001000 combinations is over the limit of 1000000" "${OPT[@]}" --grid fast=2:1002:1,slow=2:1001:1
    bad_input "... or over --max-combinations" "over the limit of 100 (--max-combinations)" "${OPT[@]}" --grid fast=2:20:1,slow=30:40:1 --max-combinations 100
    bad_input "NaN fees" "--fees: 'nan' is not a finite number" "${OPT[@]}" --grid fast=5,slow=20 --fees nan
    bad_input "negative fees" "--fees: -0.1 is not a fraction" "${OPT[@]}" --grid fast=5,slow=20 --fees -0.1
    bad_input "a period too short for the slowest window" "too few for the slowest window" "${OPT[@]}" --grid fast=5,slow=200 --since 2021-01-01 --until 2021-01-05
    bad_input "an unknown sort metric" "unknown metric 'sharp'" "${OPT[@]}" --grid fast=5,slow=20 --sort sharp
    bad_input "--split outside (0, 1)" "--split: 1.5 is not in (0, 1)" "${OPT[@]}" --grid fast=5,slow=20 --split 1.5
    # ETH/USDT has only 1m candles: its 1h candles come from the rollup
    # (on DuckDB; on every store with AN_CHECK_ALL=1: the import takes time)
    roll_rows=0 roll_runs=0
    if [ "$mode" = duckdb ] || [ "${AN_CHECK_ALL:-0}" = 1 ]; then
        "$BIN" import "$DATA/ETH_USDT-1m.json" >/dev/null 2>&1 || bad "$mode: import of 1m failed"
        "$BIN" optimize --strategy sma_cross --symbols ETH/USDT --timeframe 1h --grid 'fast=5|10,slow=20|30' >"$work/roll.json" 2>"$work/roll.err"
        check "$mode: 1h with only 1m candles stored runs on the rollup ($(tail -1 "$work/roll.err"))" \
            test "$(json "$work/roll.json" "(j['symbols'][0]['source'], j['symbols'][0]['candles'] > 100, j['rows_stored'])")" = "('ohlc_1h', True, 4)"
        roll_rows=4 roll_runs=1
    fi
    start_serve || { bad "$mode: serve did not start: $(tail -3 "$work/serve.err")"; continue; }
    check "$mode: bad input stored nothing: the runs hold 10 + 8 + 15 (+ 4) rows" test "$(stored_rows)" = $((33 + roll_rows))

    # the task through the API, with its progress
    export AUTONAMA_API_KEY=opt-key
    stop_serve
    start_serve || { bad "$mode: serve did not restart"; continue; }
    for _ in $(seq 1 50); do
        # the HTTP server answers before the task workers have started
        req POST /api/v1/tasks/optimize_strategy -H "Authorization: Bearer opt-key" \
            -d '{"strategy":"ema_cross","grid":"fast=5:20:5,slow=30:90:30","symbols":"BTC/USDT","timeframe":"1h","keep":5,"sort":"total_return"}'
        [ "$code" != 501 ] && break
        sleep 0.1
    done
    id=$(body "j.get('id', '')")
    check "$mode: POST /api/v1/tasks/optimize_strategy queues the run ($code)" test "$code" = 202
    state=""
    for _ in $(seq 1 300); do
        req GET "/api/v1/tasks/$id"
        state=$(body "j['state']")
        case $state in SUCCESS | FAILURE | INTERRUPTED) break ;; esac
        sleep 0.2
    done
    check "$mode: the task ends in SUCCESS ($state: $(body "j.get('error')"))" test "$state" = SUCCESS
    check "$mode: its meta counted the combinations (done = total = 12)" \
        test "$(body "(j['meta']['done'], j['meta']['total'])")" = "(12, 12)"
    run2=$(body "j['result']['run_id']")
    check "$mode: the task's result says 5 rows stored ($(body "j['result'].get('approach')"))" \
        test "$(body "j['result']['rows_stored']")" = 5

    # read back through the API
    req GET /api/v1/optimization/runs
    check "$mode: GET /api/v1/optimization/runs lists the task's run first ($code)" \
        test "$code:$(body "(j['runs'][0]['run_id'] == '$run2', j['runs'][0]['strategy'], j['runs'][0]['rows'], j['count'])")" = "200:(True, 'ema_cross', 5, $((4 + roll_runs)))"
    req GET "/api/v1/optimization/results?run_id=$run2&sort=total_return"
    check "$mode: GET /results?run_id= gives the task's 5 rows, best total_return first" \
        test "$code:$(body "(j['count'], all(a['metrics']['total_return'] >= b['metrics']['total_return'] for a, b in zip(j['results'], j['results'][1:])), {r['sample'] for r in j['results']})")" = "200:(5, True, {'in'})"
    req GET "/api/v1/optimization/results?run_id=$run1&symbol=BTC/USDT&sort=max_drawdown&limit=3"
    check "$mode: sort=max_drawdown gives the lowest first, limit 3" \
        test "$(body "(j['count'], all(a['metrics']['max_drawdown'] <= b['metrics']['max_drawdown'] for a, b in zip(j['results'], j['results'][1:])))")" = "(3, True)"
    req GET "/api/v1/optimization/results?run_id=$run1"
    check "$mode: the CLI's best (by sharpe) is the first row by sharpe" \
        test "$(body "j['results'][0]['parameters']")" = "$(json "$work/run.json" "j['symbols'][0]['best']['parameters']")"
    long=$(printf 'a%.0s' $(seq 1 3000))
    # the run's spec (schema v5) and the walk-forward's in-sample rows
    req GET /api/v1/optimization/runs
    check "$mode: a run carries its grid, fees and slippage" \
        test "$(body "[(r['grid'][:12], float(r['fees']), float(r['slippage']), r['spec']['walk_forward']) for r in j['runs'] if r['run_id'] == '$run_wf']")" = "[('fast=10|20,s', 0.001, 0.0, 3)]"
    req GET "/api/v1/optimization/results?run_id=$run_wf&sample=fold-2-in&sort=total_return"
    check "$mode: sample=fold-2-in gives fold 2's 4 in-sample rows, its best first" \
        test "$code:$(body "(j['count'], {r['sample'] for r in j['results']}, j['results'][0]['parameters'])")" = "200:(4, {'fold-2-in'}, $(json "$work/wf.json" "j['symbols'][0]['folds'][1]['parameters']"))"
    req GET "/api/v1/optimization/results?sample=fold%202"
    check "$mode: a bad sample is 400 naming sample ($code)" test "$code:$(body "j['parameter']")" = "400:sample"

    # one combination's equity curve and trades, recomputed
    req GET "/api/v1/optimization/results?run_id=$run1&limit=1"
    cp "$work/body" "$work/best.json"
    params=$(json "$work/best.json" "json.dumps(j['results'][0]['parameters'], separators=(',', ':'))")
    enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$params")
    req GET "/api/v1/optimization/equity?run_id=$run1&symbol=BTC/USDT&params=$enc"
    cp "$work/body" "$work/equity.json"
    check "$mode: GET /equity gives one point per candle, the row's metrics and its trades ($code)" \
        test "$code:$(python3 -c '
import json, sys
e = json.load(open(sys.argv[1])); row = json.load(open(sys.argv[2]))["results"][0]
m, rm = e["metrics"], row["metrics"]
same = all((m[k] is None and rm[k] is None) or abs(m[k] - rm[k]) <= 1e-9 * max(1, abs(rm[k])) for k in rm)
closed = [t for t in e["trades"] if t["exit_time"] is not None]
print(len(e["equity"]), e["equity"][0]["value"], same,
      abs(e["equity"][-1]["value"] - m["final_value"]) <= 1e-9 * m["final_value"],
      len(closed) == m["trades"], all(a["exit_time"] < b["entry_time"] for a, b in zip(closed, closed[1:])),
      e["fees"], e["params"] == row["parameters"])' "$work/equity.json" "$work/best.json")" = "200:5482 10000.0 True True True True 0.001 True"
    req GET "/api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1h&limit=1&order=asc"
    first=$(body "j['candles'][0]['timestamp']")
    check "$mode: the equity's timestamps are /api/v1/ohlc's ($first)" \
        test "$(json "$work/equity.json" "j['equity'][0]['timestamp']")" = "$first"
    eq_bad() {
        local what=$1 want=$2 query=$3
        req GET "/api/v1/optimization/equity?$query"
        check "$mode: equity: $what -> $want ($code: $(body "j.get('error')"))" \
            test "$code:$(body "j['parameter']")" = "$want"
    }
    eq_bad "no run_id" 400:run_id "symbol=BTC/USDT&params=$enc"
    eq_bad "an unknown run" 404:run_id "run_id=opt-none&symbol=BTC/USDT&params=$enc"
    eq_bad "a symbol not in the run" 404:symbol "run_id=$run1&symbol=ETH/USDT&params=$enc"
    eq_bad "a bad symbol" 400:symbol "run_id=$run1&symbol=nope&params=$enc"
    eq_bad "params not JSON" 400:params "run_id=$run1&symbol=BTC/USDT&params=fast"
    eq_bad "a parameter that is not a number" 400:params "run_id=$run1&symbol=BTC/USDT&params=%7B%22fast%22%3A%22x%22%2C%22slow%22%3A30%7D"
    # a well-formed combination the run does not have is not found (issue
    # 11: openapi.json's params is any object of numbers; 404, was 400)
    eq_bad "a value outside the grid" 404:params "run_id=$run1&symbol=BTC/USDT&params=%7B%22fast%22%3A7%2C%22slow%22%3A30%7D"
    eq_bad "a skipped combination" 404:params "run_id=$run1&symbol=BTC/USDT&params=%7B%22fast%22%3A50%2C%22slow%22%3A20%7D"
    eq_bad "a missing parameter" 404:params "run_id=$run1&symbol=BTC/USDT&params=%7B%22fast%22%3A10%7D"
    req GET "/api/v1/optimization/equity?run_id=$long"
    check "$mode: equity: an over-long URL is 414 ($code)" test "$code" = 414

    req GET "/api/v1/optimization/results?sort=sharp"
    check "$mode: an unknown sort is 400 naming sort ($code)" test "$code:$(body "j['parameter']")" = "400:sort"
    req GET "/api/v1/optimization/results?limit=0"
    check "$mode: limit=0 is 400 naming limit ($code)" test "$code:$(body "j['parameter']")" = "400:limit"
    req GET "/api/v1/optimization/results?symbol=nope"
    check "$mode: a bad symbol is 400 ($code)" test "$code:$(body "j['parameter']")" = "400:symbol"
    req GET "/api/v1/optimization/runs?limit=x"
    check "$mode: runs?limit=x is 400 ($code)" test "$code" = 400
    req GET "/api/v1/optimization/runs?bogus=1"
    check "$mode: an unknown parameter is 400 ($code)" test "$code" = 400
    req GET "/api/v1/optimization/results?run_id=$long"
    check "$mode: an over-long URL is 414 ($code)" test "$code" = 414
    req GET "/api/v1/optimization/runs?x=$long"
    check "$mode: ... on runs too ($code)" test "$code" = 414
    for m in POST PUT DELETE; do
        req $m /api/v1/optimization/runs
        check "$mode: $m runs is 405 ($code)" test "$code" = 405
        req $m /api/v1/optimization/results
        check "$mode: $m results is 405 ($code)" test "$code" = 405
        req $m /api/v1/optimization/equity
        check "$mode: $m equity is 405 ($code)" test "$code" = 405
    done
    unset AUTONAMA_API_KEY
    stop_serve
done

# the store unreachable: both routes answer 503 saying why
mode_env postgres
export POSTGRES_PORT=$(free_port) AUTONAMA_CONNECT_TIMEOUT=1
if start_serve; then
    req GET /api/v1/optimization/runs
    check "runs with the database down is 503 ($code)" test "$code" = 503
    req GET /api/v1/optimization/results
    check "results with the database down is 503 ($code)" test "$code" = 503
    req GET "/api/v1/optimization/equity?run_id=x&symbol=BTC/USDT&params=%7B%7D"
    check "equity with the database down is 503 ($code)" test "$code" = 503
    stop_serve
else
    bad "serve did not start with the database down: $(tail -3 "$work/serve.err")"
fi
# the task's hybrid rule: with the primary down, the run goes to the DuckDB
# fallback file (holding candles here) and says so
env -u POSTGRES_SERVER -u AUTONAMA_STORE DUCKDB_PATH="$work/fb.duckdb" "$BIN" migrate >/dev/null 2>&1
env -u POSTGRES_SERVER -u AUTONAMA_STORE DUCKDB_PATH="$work/fb.duckdb" "$BIN" import "$DATA/BTC_USDT-1h.json" >/dev/null 2>&1
AUTONAMA_FALLBACK_PATH="$work/fb.duckdb" "$BIN" tasks run optimize_strategy \
    '{"strategy":"sma_cross","symbols":"BTC/USDT","timeframe":"1h","grid":"fast=5|10,slow=20|30"}' \
    >"$work/fb.json" 2>"$work/fb.err"
rc=$?
check "the optimize task with the primary down runs on the DuckDB fallback (exit $rc: $(tail -n1 "$work/fb.err" | cut -c1-200))" \
    test "$rc/$(json "$work/fb.json" "(j['approach'], j['rows_stored'], j['symbols'][0]['load_path'])")" = "0/('duckdb_fallback', 4, 'embedded')"

echo "# openapi.json conformance of the optimizer's routes"
if python3 "$check_py" conformance "$SRC/src/api/openapi.json" "$observed" /api/v1/optimization >"$work/conf.out"; then
    ok "the optimizer's routes produce exactly the statuses openapi.json declares"
else
    grep '^not ok' "$work/conf.out"
    bad "openapi.json conformance of the optimizer's routes"
fi
finish
