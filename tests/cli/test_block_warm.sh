#!/usr/bin/env bash
# The block cache's warming (issue 12, AUTONAMA_HTTP_BLOCK_WARM): on a store
# of generated 1m candles (two series written in SQL, each 60,000 on
# DuckDB, 30,000 on PostgreSQL; a third under the sanitizers),
#   - `serve` fills the block cache with no request at all: every closed
#     block of both series, counted by /metrics (warm_done 1, the blocks
#     and bytes warmed) and said in the log; AUTONAMA_HTTP_BLOCK_WARM=false
#     loads nothing;
#   - requests made while it fills (random start, both orders, right after
#     the start) get the same bodies as a serve with no block cache (the
#     store's own answer), byte for byte;
#   - PostgreSQL: with the candle table locked by another session, the fill
#     waits in its read; SIGTERM then stops serve within 5 s (a warming read
#     has a 1 s deadline), with no sanitizer report.
# make test runs DuckDB whole and PostgreSQL without the no-request and
# AUTONAMA_HTTP_BLOCK_WARM=false serves (PostgreSQL only under the
# sanitizers); AN_CHECK_ALL=1 runs everything on both.
# Needs AN_BIN, AN_SRC, AUTONAMA_TEST_PG.
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through make test}"
work=$(mktemp -d /tmp/autonama-blockwarm.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
lock_pid=""
# ends the session holding the lock (killing psql alone leaves its backend
# asleep with the lock: the next test's DROP SCHEMA would wait for it)
unlock() {
    [ -n "$lock_pid" ] || return 0
    psql_ -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name = 'an_block_warm_lock'" >/dev/null 2>&1
    wait "$lock_pid" 2>/dev/null
    lock_pid=""
}
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    unlock
    rm -rf "$work"
}
trap cleanup EXIT
PY=$SRC/.deps/venv/bin/python
san=0
[ "${AN_SANITIZE:-OFF}" = ON ] || [ "${AN_SANITIZE:-0}" = 1 ] && san=1

# two series, GEN/USDT and GEO/USDT, n 1m candles each from 2017-07-14
fill_duckdb() {
    "$PY" - "$work/store.duckdb" "$1" <<'PY'
import duckdb, sys
c = duckdb.connect(sys.argv[1])
for k, sym in enumerate(("GEN/USDT", "GEO/USDT")):
    c.execute(f"""INSERT INTO trading.ohlc_data SELECT '{sym}', '1m',
      TIMESTAMP '2017-07-14' + to_minutes(i), 100 + {k} + sin(i / 997.0), 101 + sin(i / 997.0),
      99 + sin(i / 997.0), 100 + sin((i + 1) / 997.0), 1 + i % 7 FROM range({int(sys.argv[2])}) t(i)""")
c.execute("""INSERT INTO trading.ohlc_series SELECT symbol, timeframe, min("timestamp"),
  max("timestamp"), count(*) FROM trading.ohlc_data GROUP BY symbol, timeframe""")
PY
}
psql_() { PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -h "$POSTGRES_SERVER" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"; }
fill_pg() {
    psql_ -c "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low,
        close, volume) SELECT s, '1m', timestamptz '2017-07-14' + i * interval '1 minute',
        100 + sin(i / 997.0), 101 + sin(i / 997.0), 99 + sin(i / 997.0), 100 + sin((i + 1) / 997.0),
        1 + i % 7 FROM generate_series(0, $1 - 1) i, (VALUES ('GEN/USDT'), ('GEO/USDT')) v(s)" \
        -c "INSERT INTO trading.ohlc_series SELECT symbol, timeframe, min(\"timestamp\"),
        max(\"timestamp\"), count(*) FROM trading.ohlc_data GROUP BY symbol, timeframe" >/dev/null
}
metric() { curl -s "$base/metrics" | sed -n "s/^autonama_http_block_$1 //p"; }
# the closed blocks of both series (blocks.h: 1,024 bars from the epoch;
# the one holding the newest candle is open)
closed_blocks() {
    python3 -c "
t0, n, span = 1499990400000, $1, 60000 * 1024
print(2 * ((t0 + (n - 1) * 60000) // span - t0 // span))"
}
# N random URLs (seed 5) into $work/urls
urls() {
    python3 - "$1" "$2" >"$work/urls" <<'PY'
import random, sys
random.seed(5)
n = int(sys.argv[2])
for _ in range(int(sys.argv[1])):
    s = random.choice(("GEN", "GEO"))
    start = 1499990400000 + random.randrange(n) * 60000
    o = random.choice(("asc", "desc"))
    end = start + random.randrange(1, 3000) * 60000
    print(f"/api/v1/data/ohlc?symbol={s}/USDT&timeframe=1m&limit=1000&order={o}&start={start}&end={end}")
PY
}
# fetch DIR: every URL of $work/urls, 8 at a time, bodies in DIR/<line>
fetch() {
    mkdir -p "$1"
    local i=0 u p=()
    while read -r u; do
        i=$((i + 1))
        curl -s -o "$1/$i" "$base$u" &
        p+=($!)
        [ $((i % 8)) = 0 ] && wait "${p[@]}" && p=()
    done <"$work/urls"
    [ ${#p[@]} = 0 ] || wait "${p[@]}" # not `wait`: serve is a child too
}
same_bodies() { # DIR1 DIR2: same files, not empty, holding candles
    local f n=0
    for f in "$1"/*; do
        cmp -s "$f" "$2/${f##*/}" || { echo "# ${f##*/}: $(head -c 200 "$f") / $(head -c 200 "$2/${f##*/}")"; return 1; }
        grep -q '"candles":\[{' "$f" && n=$((n + 1))
    done
    [ "$n" -ge 10 ]
}

# make test: DuckDB whole, PostgreSQL without the two extra serves (under
# the sanitizers PostgreSQL only); AN_CHECK_ALL=1: every case on both
full=0
[ "${AN_CHECK_ALL:-0}" = 1 ] && full=1
modes="duckdb postgres"
[ $san = 1 ] && [ $full = 0 ] && modes=postgres
for mode in $modes; do
    echo "# == $mode"
    mode_env $mode
    reset_mode $mode
    rows=60000
    [ $mode = postgres ] && rows=30000
    [ $san = 1 ] && rows=$((rows / 3))
    if [ $mode = duckdb ]; then fill_duckdb $rows; else fill_pg $rows; fi
    want=$(closed_blocks $rows)
    urls 16 $rows
    serve_env=(AUTONAMA_HTTP_CACHE_TTL_MS=0 AUTONAMA_LOG_LEVEL=info AUTONAMA_SYMBOLS=GEN/USDT
        AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_BEAT_HEALTH_INTERVAL=0)

    # requests while it fills: the same bodies as the store's own answer
    t0=$(date +%s%3N)
    start_serve || bad "$mode: serve did not start: $(tail -n 3 "$work/serve.err")"
    before=$(metric warm_blocks_total)
    fetch "$work/$mode-filling"
    sleep 0.2
    during=$(metric warm_done)
    for _ in $(seq 1 200); do [ "$(metric warm_done)" = 1 ] && break; sleep 0.1; done
    t1=$(date +%s%3N)
    got=$(metric warm_blocks_total)
    bytes=$(metric warm_bytes_total)
    count=$(metric count)
    # nothing writes here; a drop (a change heard, a listener's reconnect)
    # is re-warmed, so each block warmed past the closed ones is one dropped
    dropped=$(metric dropped_total)
    echo "# $mode: $rows candles x 2; warmed $got blocks ($bytes bytes) in $((t1 - t0)) ms; $before warmed when the requests began; $dropped dropped"
    check "$mode: the requests began while the cache filled ($before of $want blocks warmed)" test "$before" -lt "$want"
    check "$mode: warming loaded the closed blocks the requests did not ($got warmed, $count held, $want closed, $dropped dropped)" \
        test "$count" -eq "$want" -a "$got" -gt 0 -a "$got" -le $((want + dropped)) -a "$during$(metric warm_done)" != 00
    check "$mode: the log says the cache was warmed" grep -q 'msg="block cache warmed"' "$work/serve.err"
    stop_serve
    start_serve AUTONAMA_HTTP_BLOCK_CACHE_MB=0 || bad "$mode: serve did not start"
    fetch "$work/$mode-store"
    check "$mode: the bodies served while the cache filled are the store's" same_bodies "$work/$mode-filling" "$work/$mode-store"
    stop_serve
    [ $mode = duckdb ] || [ $full = 1 ] || continue
    # no requests at all: everything closed is warmed
    start_serve || bad "$mode: serve did not start: $(tail -n 3 "$work/serve.err")"
    for _ in $(seq 1 200); do [ "$(metric warm_done)" = 1 ] && break; sleep 0.1; done
    check "$mode: with no request the cache fills with every closed block ($(metric warm_blocks_total) of $want)" \
        test "$(metric warm_blocks_total)" -eq "$want" -a "$(metric count)" -eq "$want" -a "$(metric misses_total)" -eq 0
    stop_serve
    start_serve AUTONAMA_HTTP_BLOCK_WARM=false || bad "$mode: serve did not start"
    sleep 0.5
    check "$mode: AUTONAMA_HTTP_BLOCK_WARM=false warms nothing ($(metric warm_blocks_total) blocks, done $(metric warm_done))" \
        test "$(metric warm_blocks_total)" = 0 -a "$(metric count)" = 0 -a "$(metric warm_done)" = 0
    stop_serve
done

# PostgreSQL: a fill waiting in its read does not hold up the shutdown
PGAPPNAME=an_block_warm_lock psql_ -c "BEGIN; LOCK TABLE trading.ohlc_data IN ACCESS EXCLUSIVE MODE;
    SELECT pg_sleep(30)" >/dev/null 2>&1 &
lock_pid=$!
sleep 0.5
start_serve || bad "postgres: serve did not start: $(tail -n 3 "$work/serve.err")"
sleep 0.5
blocked="$(metric warm_blocks_total) $(metric warm_done)"
t0=$(date +%s%3N)
kill "$serve_pid"
wait "$serve_pid"
st=$?
t1=$(date +%s%3N)


check "postgres: the fill was waiting on the lock (warmed, done: $blocked)" test "$blocked" = "0 0"
check "postgres: SIGTERM during the fill stops serve in $((t1 - t0)) ms (under 5,000), status $st" \
    test $((t1 - t0)) -lt 5000 -a "$st" = 0
stop_serve
unlock
finish
