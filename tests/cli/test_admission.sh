#!/usr/bin/env bash
# Heavy queries must not stall everyone (issue 11, fault 3): on a store of
# generated 1m candles (1,000,000 on DuckDB, 200,000 on PostgreSQL; written in
# SQL, not imported: seconds),
#   - 12 concurrent bucketed reads (timeframe=4h, limit=5000) and one cheap
#     request (a 5-row read): it answers within 2 s (before: it waited behind
#     all twelve; /health's time is printed too); heavy reads beyond AUTONAMA_HTTP_HEAVY_MAX get 503 with
#     Retry-After and a JSON body at once, the admitted ones 200;
#   - AUTONAMA_HTTP_QUERY_TIMEOUT set very low: the heavy read is cancelled,
#     503 with Retry-After and a JSON body naming the timeout, and the store is
#     not marked down (a small read right after answers 200). On DuckDB and
#     PostgreSQL.
# Needs AN_BIN, AN_SRC, AUTONAMA_TEST_PG.
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through make test}"
work=$(mktemp -d /tmp/autonama-admission.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
PY=$SRC/.deps/venv/bin/python
ROWS=1000000
HEAVY="/api/v1/data/ohlc?symbol=GEN/USDT&timeframe=4h&limit=5000"
SMALL="/api/v1/data/ohlc?symbol=GEN/USDT&timeframe=1m&limit=5"

# the generated series: 1m candles from 2017-07-14, a smooth walk
fill_duckdb() {
    "$PY" - "$work/store.duckdb" "$ROWS" <<'PY'
import duckdb, sys
c = duckdb.connect(sys.argv[1])
c.execute(f"""INSERT INTO trading.ohlc_data SELECT 'GEN/USDT', '1m',
  TIMESTAMP '2017-07-14' + to_minutes(i), 100 + sin(i / 997.0), 101 + sin(i / 997.0),
  99 + sin(i / 997.0), 100 + sin((i + 1) / 997.0), 1 + i % 7 FROM range({int(sys.argv[2])}) t(i)""")
# rows written by SQL, not by autonama: the series catalog with them
c.execute("""INSERT INTO trading.ohlc_series SELECT symbol, timeframe, min("timestamp"),
  max("timestamp"), count(*) FROM trading.ohlc_data GROUP BY symbol, timeframe""")
PY
}
fill_pg() {
    PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -h "$POSTGRES_SERVER" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" \
        -d "$POSTGRES_DB" -c "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high,
        low, close, volume) SELECT 'GEN/USDT', '1m', timestamptz '2017-07-14' + i * interval '1 minute',
        100 + sin(i / 997.0), 101 + sin(i / 997.0), 99 + sin(i / 997.0), 100 + sin((i + 1) / 997.0),
        1 + i % 7 FROM generate_series(0, $1 - 1) i" -c "INSERT INTO trading.ohlc_series SELECT
        symbol, timeframe, min(\"timestamp\"), max(\"timestamp\"), count(*) FROM trading.ohlc_data
        GROUP BY symbol, timeframe" >/dev/null
}
# GET PATH OUT: "status seconds" on stdout, headers in OUT.h, body in OUT
get() { curl -s -o "$2" -D "$2.h" -w '%{http_code} %{time_total}\n' "$base$1"; }
retry_json_503() { # OUT: 503, Retry-After, a JSON error body
    grep -qi '^Retry-After: 1' "$1.h" &&
        "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["status"] == 503 and j["error"] else 1)' "$1"
}

for mode in duckdb postgres; do
    echo "# == $mode"
    mode_env $mode
    reset_mode $mode
    t0=$(date +%s%3N)
    # PostgreSQL writes 1,000,000 rows in half a minute: a fifth there
    [ $mode = postgres ] && ROWS=200000
    if [ $mode = duckdb ]; then fill_duckdb; else fill_pg $ROWS; fi
    echo "# $mode: $ROWS candles written in $(($(date +%s%3N) - t0)) ms"
    serve_env=(AUTONAMA_HTTP_CACHE_TTL_MS=0 AUTONAMA_HTTP_WORKERS=4 AUTONAMA_HTTP_HEAVY_MAX=2
        AUTONAMA_SYMBOLS=GEN/USDT AUTONAMA_FRESHNESS_MAX_AGE=10000000000)
    start_serve || bad "$mode: serve did not start: $(tail -n 3 "$work/serve.err")"
    get "$HEAVY" "$work/warm" >/dev/null
    t0=$(date +%s%3N)
    pids=""
    for i in $(seq 1 12); do
        get "$HEAVY" "$work/heavy$i" >"$work/heavy$i.st" &
        pids="$pids $!"
    done
    sleep 0.2
    cheap=$(get /health "$work/cheap")
    small=$(get "$SMALL" "$work/small")
    wait $pids
    t1=$(date +%s%3N)
    ok200=0 ref=0 other=""
    for i in $(seq 1 12); do
        read -r st _ <"$work/heavy$i.st"
        if [ "$st" = 200 ]; then
            ok200=$((ok200 + 1))
        elif [ "$st" = 503 ] && retry_json_503 "$work/heavy$i"; then
            ref=$((ref + 1))
        else
            other="$other $st"
        fi
    done
    echo "# $mode: 12 heavy reads in $((t1 - t0)) ms: $ok200 answered 200, $ref refused 503; /health: $cheap; a 5-row read: $small"
    # the cheap request is the 5-row read (on DuckDB /health scans the series
    # for its freshness check, behind the lock an admitted heavy read holds)
    check "$mode: a cheap request during 12 heavy reads answers within 2 s (a 5-row read: $small)" \
        awk -v s="${small#* }" 'BEGIN { exit !(s < 2.0) }'
    check "$mode: heavy reads are 200 or 503 + Retry-After + JSON, some of each ($ok200 200,$ref 503,${other:- no other})" \
        test "$ok200" -ge 1 -a "$ref" -ge 1 -a -z "$other"
    stop_serve

    serve_env=(AUTONAMA_HTTP_CACHE_TTL_MS=0 AUTONAMA_HTTP_QUERY_TIMEOUT=1 AUTONAMA_SYMBOLS=GEN/USDT)
    start_serve || bad "$mode: serve did not start: $(tail -n 3 "$work/serve.err")"
    st=$(get "$HEAVY" "$work/slow")
    check "$mode: AUTONAMA_HTTP_QUERY_TIMEOUT=1 cancels the heavy read: 503 + Retry-After + JSON ($st: $(head -c 160 "$work/slow"))" \
        bash -c "[ '${st% *}' = 503 ] && grep -q 'AUTONAMA_HTTP_QUERY_TIMEOUT' '$work/slow'" && retry_json_503 "$work/slow"
    stop_serve
    serve_env=(AUTONAMA_HTTP_CACHE_TTL_MS=0 AUTONAMA_SYMBOLS=GEN/USDT)
    start_serve
    st=$(get "$SMALL" "$work/after")
    check "$mode: with the default timeout the same server answers reads (${st% *})" test "${st% *}" = 200
    stop_serve
done

finish
