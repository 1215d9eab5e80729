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
check_py=$here/api_check.py
spec=$here/../../src/api/openapi.json
work=$(mktemp -d /tmp/autonama-api.XXXXXX)
serve_pid=
proxy_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

status=0
observed=$work/observed.jsonl
: >"$observed"

kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mode_env() {
    unset POSTGRES_SERVER POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB DUCKDB_PATH \
        AUTONAMA_STORE AUTONAMA_SYMBOLS AUTONAMA_TIMEFRAME AUTONAMA_FRESHNESS_MAX_AGE \
        AUTONAMA_API_KEY AUTONAMA_HTTP_CORS_ORIGIN AUTONAMA_HTTP_CACHE_TTL_MS
    export AUTONAMA_LOG_LEVEL=error
    case $1 in
    duckdb) export DUCKDB_PATH=$work/store.duckdb ;;
    postgres | timescaledb)
        local ci
        [ "$1" = postgres ] && ci=$AUTONAMA_TEST_PG || ci=$AUTONAMA_TEST_TS
        export POSTGRES_SERVER=$(kv "$ci" host) POSTGRES_PORT=$(kv "$ci" port)
        export POSTGRES_USER=$(kv "$ci" user) POSTGRES_PASSWORD=$(kv "$ci" password)
        export POSTGRES_DB=$(kv "$ci" dbname) AUTONAMA_STORE=$1
        ;;
    esac
}

reset_mode() {
    case $1 in
    duckdb) rm -f "$work/store.duckdb" "$work/store.duckdb.wal" ;;
    *)
        local ci
        [ "$1" = postgres ] && ci=$AUTONAMA_TEST_PG || ci=$AUTONAMA_TEST_TS
        PGPASSWORD=$(kv "$ci" password) psql -X -q -h "$(kv "$ci" host)" -p "$(kv "$ci" port)" \
            -U "$(kv "$ci" user)" -d "$(kv "$ci" dbname)" -c "SET client_min_messages=warning" \
            -c "DROP SCHEMA IF EXISTS trading CASCADE; DROP SCHEMA IF EXISTS analytics CASCADE;
                DROP SCHEMA IF EXISTS optimization CASCADE; DROP SCHEMA IF EXISTS autonama CASCADE" \
            >/dev/null 2>&1
        ;;
    esac
}

start_serve() { # waits until it answers
    local port
    port=$(free_port)
    base=http://127.0.0.1:$port
    AUTONAMA_HTTP_ADDR=127.0.0.1:$port "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$base/openapi.json" && return 0
        sleep 0.1
    done
    echo "not ok - serve did not start:"
    sed 's/^/    /' "$work/serve.err"
    status=1
    return 1
}

stop_serve() {
    kill "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    serve_pid=
    if grep -qiE "AddressSanitizer|runtime error|LeakSanitizer" "$work/serve.err"; then
        echo "not ok - serve reported a sanitizer error:"
        sed 's/^/    /' "$work/serve.err" | head -40
        status=1
    fi
}

for mode in duckdb postgres timescaledb; do
    echo "# == $mode"
    t0=$(date +%s)
    mode_env "$mode"
    reset_mode "$mode"
    if ! "$BIN" migrate >/dev/null 2>"$work/err" ||
        ! "$BIN" import "$DATA/BTC_USDT-1m.json" "$DATA/ETH_USDT-1h.json" >/dev/null 2>>"$work/err" ||
        ! "$BIN" indicators --symbols BTC/USDT --timeframes 1m,1h --indicators sma:20,rsi:14 \
            >/dev/null 2>>"$work/err" ||
        ! "$BIN" indicators --symbols BTC/USDT --timeframe 1h >/dev/null 2>>"$work/err"; then
        echo "not ok - $mode: loading the store failed:"
        sed 's/^/    /' "$work/err"
        status=1
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
    start_serve || continue
    python3 "$check_py" check "$base" "$mode" "$DATA" "$observed" || status=1
    stop_serve
    # the same with the reply cache on, expiring every 200 ms so that replies
    # are served from it, served stale and recomputed in the background
    # throughout: they must not change
    export AUTONAMA_HTTP_CACHE_TTL_MS=200
    if [ "$mode" = duckdb ]; then
        start_serve && { python3 "$check_py" check "$base" "$mode+cache" "$DATA" "$observed" || status=1; }
        stop_serve
    fi

    if [ "$mode" = postgres ]; then
        echo "# == postgres: the database goes away and comes back"
        pport=$(free_port)
        mode_env postgres
        target_port=$POSTGRES_PORT
        export POSTGRES_PORT=$pport AUTONAMA_CONNECT_TIMEOUT=2 AUTONAMA_HTTP_CACHE_TTL_MS=0
        start_serve || continue
        python3 "$check_py" down "$base" "$observed" || status=1
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" "$target_port" &
        proxy_pid=$!
        python3 "$check_py" recovered "$base" "$observed" || status=1
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        proxy_pid=
        python3 "$check_py" down "$base" "$observed" || status=1
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" "$target_port" &
        proxy_pid=$!
        python3 "$check_py" recovered "$base" "$observed" || status=1
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" 0 & # a blackhole
        proxy_pid=$!
        sleep 0.3
        python3 "$check_py" hung "$base" "$observed" || status=1
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        python3 "$check_py" proxy "$pport" "$POSTGRES_SERVER" "$target_port" &
        proxy_pid=$!
        python3 "$check_py" recovered "$base" "$observed" || status=1
        kill "$proxy_pid" && wait "$proxy_pid" 2>/dev/null
        proxy_pid=
        stop_serve
        unset AUTONAMA_CONNECT_TIMEOUT
    fi
    echo "# $mode: $(($(date +%s) - t0)) s"
    reset_mode "$mode"
done

echo "# == openapi.json conformance"
python3 "$check_py" conformance "$spec" "$observed" '!/api/v1/tasks,/api/v1/stream' || status=1
exit $status
