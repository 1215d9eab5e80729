#!/usr/bin/env bash
# The HTTP API over real sockets against the real `autonama serve`, on all
# three store modes: the real candle files imported, indicators computed, then
# tests/cli/api_check.py checks values against the files (and bucketing
# against an independent GROUP BY), ETag/304, gzip, every bad-input case,
# auth, CORS, health and metrics. Then, on PostgreSQL, the database goes away
# behind a TCP forwarder: 503 on data routes, /health says why, and the server
# recovers by itself when it returns. Last, every status openapi.json declares
# must have been produced, and nothing undeclared.
# Needs AN_BIN, AN_DATA_DIR, AUTONAMA_TEST_PG, AUTONAMA_TEST_TS.
set -uo pipefail

BIN=${AN_BIN:?AN_BIN not set}
DATA=${AN_DATA_DIR:?AN_DATA_DIR not set}
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through make test}"
: "${AUTONAMA_TEST_TS:?AUTONAMA_TEST_TS not set: run through make test}"
here=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$here/../.." && pwd)
check_py=$here/api_check.py
spec=$SRC/src/api/openapi.json
work=$(mktemp -d /tmp/autonama-api.XXXXXX)
# shellcheck source=lib.sh
. "$here/lib.sh"
proxy_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

observed=$work/observed.jsonl
: >"$observed"

# api_check.py NAME ARGS...: one of its phases, a check of this script
api_check() {
    local what=$1
    shift
    check "$what" python3 "$check_py" "$@"
}

for mode in duckdb postgres timescaledb; do
    echo "# == $mode"
    t0=$(date +%s)
    mode_env "$mode"
    export AUTONAMA_LOG_LEVEL=error
    reset_mode "$mode"
    if ! "$BIN" migrate >/dev/null 2>"$work/err" ||
        ! "$BIN" import "$DATA/BTC_USDT-1m.json" "$DATA/ETH_USDT-1h.json" >/dev/null 2>>"$work/err" ||
        ! "$BIN" indicators --symbols BTC/USDT --timeframes 1m,1h --indicators sma:20,rsi:14 \
            >/dev/null 2>>"$work/err" ||
        ! "$BIN" indicators --symbols BTC/USDT --timeframe 1h >/dev/null 2>>"$work/err"; then
        bad "$mode: loading the store failed:"
        sed 's/^/    /' "$work/err"
        continue
    fi
    echo "# $mode: loaded in $(($(date +%s) - t0)) s"
    export AUTONAMA_API_KEY=test-key AUTONAMA_HTTP_CORS_ORIGIN=https://example.org
    export AUTONAMA_SYMBOLS=BTC/USDT AUTONAMA_FRESHNESS_MAX_AGE=10000000000
    export AUTONAMA_HTTP_CACHE_TTL_MS=0
    # no scheduled tasks: the data must stay what was loaded (the task routes
    # are tested in test_api_tasks.sh)
    export AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0
    export AUTONAMA_BEAT_HEALTH_INTERVAL=0
    start_serve || { bad "$mode: serve did not start: $(tail -3 "$work/serve.err")"; continue; }
    api_check "$mode: the routes (api_check.py check)" check "$base" "$mode" "$DATA" "$observed"
    stop_serve
    # the same with the reply cache on, expiring every 200 ms so that replies
    # are served from it, served stale and recomputed in the background
    # throughout: they must not change
    export AUTONAMA_HTTP_CACHE_TTL_MS=200
    if [ "$mode" = duckdb ]; then
        start_serve || bad "$mode+cache: serve did not start"
        api_check "$mode+cache: the routes, served from the cache" check "$base" "$mode+cache" "$DATA" "$observed"
        stop_serve
    fi

    if [ "$mode" = postgres ]; then
        echo "# == postgres: the database goes away and comes back"
        pport=$(free_port)
        mode_env postgres
        export AUTONAMA_LOG_LEVEL=error
        target_port=$POSTGRES_PORT
        export POSTGRES_PORT=$pport AUTONAMA_CONNECT_TIMEOUT=2 AUTONAMA_HTTP_CACHE_TTL_MS=0
        start_serve || { bad "postgres: serve did not start"; continue; }
        api_check "postgres: the database goes away: 503" down "$base" "$observed"
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" "$target_port" &
        proxy_pid=$!
        api_check "postgres: the database is back: recovered" recovered "$base" "$observed"
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        proxy_pid=
        api_check "postgres: the database goes away: 503" down "$base" "$observed"
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" "$target_port" &
        proxy_pid=$!
        api_check "postgres: the database is back: recovered" recovered "$base" "$observed"
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" 0 & # a blackhole
        proxy_pid=$!
        sleep 0.3
        api_check "postgres: the database hangs: no request waits" hung "$base" "$observed"
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" "$target_port" &
        proxy_pid=$!
        api_check "postgres: the database is back: recovered" recovered "$base" "$observed"
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        proxy_pid=
        stop_serve
        unset AUTONAMA_CONNECT_TIMEOUT
    fi
    echo "# $mode: $(($(date +%s) - t0)) s"
    reset_mode "$mode"
done

echo "# == openapi.json conformance"
api_check "every status openapi.json declares, and nothing else" conformance "$spec" "$observed" '!/api/v1/tasks,/api/v1/optimization,/api/v1/stream'
finish
