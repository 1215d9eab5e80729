#!/usr/bin/env bash
# Load during work (issue 11): wrk with 64 connections on the data routes
# of `autonama serve` (tests/cli/load_routes.lua cycles /api/v1/data/ohlc
# stored and bucketed, /api/v1/data/indicators and /api/v1/symbols) while an
# ingest (a month of real 1m candles of BTC/USDT and ETH/USDT, served by
# tests/fake_binance from AN_DATA_DIR) and indicator runs write to the same
# store: PostgreSQL (`autonama ingest` and `autonama indicators`) and, under
# AN_CHECK_ALL=1, DuckDB (the same work as tasks run inside serve, which
# holds the file). Asserts zero socket errors and zero
# non-2xx replies, and the ingested series equal (row counts and a SHA-256
# of `autonama export`) to the same ingest into a fresh store without load.
# Prints wrk's totals (requests, req/s, p50 and p99 latency, errors).
# The server allows 128 connections per client here (the 64 of wrk must not
# meet AUTONAMA_HTTP_MAX_CONNECTIONS_PER_CLIENT, a limit of its own).
# make test runs 15 s of load; AN_CHECK_ALL=1 the issue's 60 s. Skipped on
# the sanitizer build (AN_SANITIZE): wrk's load is not a memory test, and
# the ASan server is too slow for the figures to mean anything.
# Needs AN_BIN, AN_SRC, AN_DATA_DIR, AUTONAMA_TEST_PG; wrk (scripts/bootstrap).
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
DATA=${AN_DATA_DIR:?}
: "${AUTONAMA_TEST_PG:?run through make test}"
if [ "${AN_SANITIZE:-0}" = 1 ] || [ "${AN_SANITIZE:-}" = ON ]; then
    echo "# skipped on the sanitizer build (see the header)"
    echo "0 passed, 0 failed"
    exit 0
fi
work=$(mktemp -d /tmp/autonama-load.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
ingest_pid="" wrk_pid=""
trap 'for p in $serve_pid $server_pid $ingest_pid $wrk_pid; do kill $p 2>/dev/null; done; rm -rf "$work"' EXIT
observed=$work/observed.jsonl

command -v wrk >/dev/null || {
    bad "wrk is not installed (scripts/bootstrap installs the Debian package wrk)"
    finish
    exit 1
}
seconds=15
[ "${AN_CHECK_ALL:-0}" = 1 ] && seconds=60
seconds=${AN_LOAD_SECONDS:-$seconds}
SYMS=BTC/USDT,ETH/USDT
SINCE=2021-04-20
UNTIL=2021-05-21
start_fake_binance --data-dir "$DATA" || exit 1

# series_sums: "SYMBOL rows sha256" per ingested series, from `autonama export`
series_sums() {
    local s
    for s in BTC/USDT ETH/USDT; do
        "$BIN" export --symbol "$s" --timeframe 1m >"$work/export.csv" 2>/dev/null
        echo "$s $(($(wc -l <"$work/export.csv") - 1)) $(sha256sum <"$work/export.csv" | cut -c1-16)"
    done
}

# task RUN_NAME JSON: POST the task to serve, wait for its end; $state
task() {
    req POST "/api/v1/tasks/$1" -H "Authorization: Bearer load-key" -d "$2"
    local id
    id=$(body "j['id']")
    state=""
    for _ in $(seq 1 1200); do
        req GET "/api/v1/tasks/$id"
        state=$(body "j['state']")
        case $state in SUCCESS | FAILURE | INTERRUPTED) return ;; esac
        sleep 0.1
    done
}

# the indicator runs, one after the other, until wrk ends: $runs, $ind_ok
indicator_runs() {
    runs=0 ind_ok=0
    while kill -0 "$wrk_pid" 2>/dev/null; do
        if [ "$1" = duckdb ]; then # in serve: the file is serve's
            task calculate_indicators_for_symbol '{"symbols":["BTC/USDT","ETH/USDT"],"timeframes":"1h"}'
            [ "$state" = SUCCESS ] && ind_ok=$((ind_ok + 1))
        else
            "$BIN" indicators --symbols BTC/USDT,ETH/USDT --timeframe 1h >/dev/null 2>&1 &&
                ind_ok=$((ind_ok + 1))
        fi
        runs=$((runs + 1))
    done
}

# load_run MODE: the reference ingest, then the same under load
load_run() {
    local mode=$1 args
    echo "# mode $mode"
    mode_env "$mode"
    export AUTONAMA_BINANCE_BACKOFF_MS=200 AUTONAMA_API_KEY=load-key
    # the reference: the same ingest into a fresh store, nothing else running
    reset_mode "$mode"
    t0=$SECONDS
    "$BIN" ingest --symbols "$SYMS" --timeframe 1m --since $SINCE --until $UNTIL >"$work/ref.json" 2>"$work/ref.err"
    check "$mode: the reference ingest (no load) succeeds ($((SECONDS - t0)) s)" \
        test "$(json "$work/ref.json" "j['status']")" = completed
    series_sums >"$work/ref.sums"
    sed "s/^/# $mode: reference: /" "$work/ref.sums"

    # the loaded run: stored 1h candles to read, serve, then wrk while the
    # ingest and indicator runs write (on DuckDB through serve's task API:
    # serve holds the file)
    reset_mode "$mode"
    "$BIN" import "$DATA/BTC_USDT-1h.json" "$DATA/ETH_USDT-1h.json" >/dev/null 2>&1
    "$BIN" indicators --symbols BTC/USDT --timeframe 1h >/dev/null 2>&1
    start_serve AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
        AUTONAMA_BEAT_HEALTH_INTERVAL=0 AUTONAMA_HTTP_MAX_CONNECTIONS_PER_CLIENT=128 \
        AUTONAMA_FALLBACK_PATH="$work/fallback.duckdb" || {
        bad "$mode: serve did not start: $(tail -3 "$work/serve.err")"
        return
    }
    wrk -t 2 -c 64 -d "${seconds}s" --timeout 10s --latency -s "$SRC/tests/cli/load_routes.lua" \
        "$base" >"$work/wrk.out" 2>&1 &
    wrk_pid=$!
    sleep 1
    t0=$SECONDS
    if [ "$mode" = duckdb ]; then
        args="{\"symbols\":[\"BTC/USDT\",\"ETH/USDT\"],\"timeframe\":\"1m\",\"since\":\"$SINCE\",\"until\":\"$UNTIL\"}"
        ( # its own body file: the indicator runs' requests go on meanwhile
            mkdir -p "$work/ingest" && work=$work/ingest
            task update_market_data "$args"
            echo "$state" >"$work/load.state"
        ) &
    else
        "$BIN" ingest --symbols "$SYMS" --timeframe 1m --since $SINCE --until $UNTIL \
            >"$work/load.json" 2>"$work/load.err" &
    fi
    ingest_pid=$!
    indicator_runs "$mode"
    wait "$ingest_pid"
    ingest_rc=$?
    ingest_s=$((SECONDS - t0))
    ingest_pid=""
    wait "$wrk_pid"
    wrk_pid=""
    if [ "$mode" = duckdb ]; then
        check "$mode: the ingest under load succeeds ($(cat "$work/ingest/load.state" 2>/dev/null), $ingest_s s)" \
            test "$(cat "$work/ingest/load.state" 2>/dev/null)" = SUCCESS
    else
        check "$mode: the ingest under load succeeds (exit $ingest_rc, $ingest_s s)" \
            test "$ingest_rc:$(json "$work/load.json" "j['status']")" = 0:completed
    fi
    check "$mode: every indicator run under load succeeds ($ind_ok of $runs)" test "$ind_ok" = "$runs" -a "$runs" -gt 0
    echo "# $mode: the ingest took $ingest_s s, started 1 s into the $seconds s of load; $runs indicator runs"
    totals=$(grep '^totals ' "$work/wrk.out")
    sed -n "s/^ *\(Requests\/sec:.*\)/# $mode: wrk: \1/p; s/^ *\(Latency .*\)/# $mode: wrk: \1/p" "$work/wrk.out"
    echo "# $mode: wrk: 64 connections, $seconds s: ${totals:-no totals: $(tail -3 "$work/wrk.out")}"
    check "$mode: wrk ran requests ($(v requests))" test "$(v requests)" -gt 0
    check "$mode: zero non-2xx replies ($(v non2xx))" test "$(v non2xx)" = 0
    check "$mode: zero socket errors (connect $(v connect), read $(v read), write $(v write), timeout $(v timeout))" \
        test "$(v connect)$(v read)$(v write)$(v timeout)" = 0000
    stop_serve
    series_sums >"$work/load.sums"
    sed "s/^/# $mode: under load: /" "$work/load.sums"
    check "$mode: the ingested series equal the ingest without load (rows and SHA-256)" \
        cmp -s "$work/ref.sums" "$work/load.sums"
}
v() { printf '%s\n' "$totals" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

load_run postgres
[ "${AN_CHECK_ALL:-0}" = 1 ] && load_run duckdb
finish
