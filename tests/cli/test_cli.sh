#!/usr/bin/env bash
# Drives the real binary: migrate, import of every real candle file, health,
# serve over a real socket, and every kind of bad configuration, on all three
# store modes. Needs AN_BIN, AN_DATA_DIR, AUTONAMA_TEST_PG, AUTONAMA_TEST_TS.
set -uo pipefail

BIN=${AN_BIN:?AN_BIN not set}
DATA=${AN_DATA_DIR:?AN_DATA_DIR not set}
SRC=${AN_SRC:?AN_SRC not set}
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through make test}"
: "${AUTONAMA_TEST_TS:?AUTONAMA_TEST_TS not set: run through make test}"
work=$(mktemp -d /tmp/autonama-cli.XXXXXX)
trap 'rm -rf "$work"; [ -n "${serve_pid:-}" ] && kill "$serve_pid" 2>/dev/null' EXIT
# a fallback file of this run's own: the default (data/ under the working
# directory) outlives the run, and one left by an older schema failed a
# later fallback's migration when the primary was slow under load
export AUTONAMA_FALLBACK_PATH="$work/fallback.duckdb"

# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"

psql_mode() { # mode, sql -> value
    local ci
    [ "$1" = postgres ] && ci=$AUTONAMA_TEST_PG || ci=$AUTONAMA_TEST_TS
    PGPASSWORD=$(kv "$ci" password) psql -X -q -t -A -h "$(kv "$ci" host)" -p "$(kv "$ci" port)" \
        -U "$(kv "$ci" user)" -d "$(kv "$ci" dbname)" -c "SET client_min_messages=warning" -c "$2" \
        2>/dev/null | tail -n 1
}

empty_mode() { # an empty store without our schema (lib.sh reset_mode migrates)
    case $1 in
    duckdb) rm -f "$work/store.duckdb" "$work/store.duckdb.wal" ;;
    *) psql_mode "$1" "DROP SCHEMA IF EXISTS trading CASCADE; DROP SCHEMA IF EXISTS analytics CASCADE;
                      DROP SCHEMA IF EXISTS optimization CASCADE; DROP SCHEMA IF EXISTS autonama CASCADE" >/dev/null ;;
    esac
}


# one error line on stderr, non-zero exit, within 30 s, and no crash
expect_clean_failure() { # description, needle, command...
    local d=$1 needle=$2
    shift 2
    local rc
    timeout 30 "$@" >"$work/out" 2>"$work/err"
    rc=$?
    local lines
    lines=$(grep -c . "$work/err")
    if [ $rc -ne 0 ] && [ $rc -lt 124 ] && [ "$lines" -eq 1 ] && grep -qi -- "$needle" "$work/err"; then
        ok "$d (exit $rc: $(cat "$work/err"))"
    else
        bad "$d: exit $rc, $lines stderr lines, want one naming '$needle':"
        sed 's/^/    /' "$work/err"
    fi
}

declare -A ROWS=([BTC_USDT-1m.json]=42915 [ETH_USDT-1m.json]=42915 [BTC_USDT-5m.json]=65741
    [BTC_USDT-1h.json]=5482 [ETH_USDT-1h.json]=5482 [Coinbase_BTCUSD_d.csv]=1770)

for mode in duckdb postgres timescaledb; do
    echo "# mode $mode"
    mode_env $mode
    empty_mode $mode

    # a store without our schema: import and health say so, cleanly
    expect_clean_failure "$mode: import before migrate names the missing schema" "migrate" \
        "$BIN" import "$DATA/BTC_USDT-1h.json"
    "$BIN" health >"$work/h.json" 2>/dev/null
    check "$mode: health without schema exits 1 and says schema" \
        test "$?" = 1 -a "$(json "$work/h.json" "j['checks']['schema']['ok']")" = False

    "$BIN" migrate >"$work/m1.json" && "$BIN" migrate >"$work/m2.json"
    check "$mode: migrate twice applies every migration once" \
        test "$(json "$work/m1.json" "(j['migrations_applied'], j['schema_version'])")/$(json "$work/m2.json" "j['migrations_applied']")" = "(7, 7)/0"
    check "$mode: migrate reports the mode" test "$(json "$work/m1.json" "j['store_mode']")" = $mode

    for f in "${!ROWS[@]}"; do
        "$BIN" import "$DATA/$f" >"$work/i.json" 2>"$work/err"
        check "$mode: import $f stores ${ROWS[$f]} rows" \
            test "$(json "$work/i.json" "j['files'][0]['inserted']")" = "${ROWS[$f]}"
    done
    "$BIN" import "$DATA/BTC_USDT-1m.json" "$DATA/Coinbase_BTCUSD_d.csv" >"$work/i2.json" 2>/dev/null
    check "$mode: re-import changes nothing" \
        test "$(json "$work/i2.json" "[f['inserted']+f['updated'] for f in j['files']]")" = "[0, 0]"
    check "$mode: import result has the seed's shape" \
        test "$(json "$work/i2.json" "(j['status'], j['summary']['total_success'], j['summary']['total_failed'], j['categories_processed'])")" = "('completed', 2, 0, 1)"

    if [ $mode != duckdb ]; then
        # count and spot-checked values straight from the database
        check "$mode: BTC/USDT 1m row count in trading.ohlc_data" \
            test "$(psql_mode $mode "SELECT count(*) FROM trading.ohlc_data WHERE symbol='BTC/USDT' AND timeframe='1m'")" = 42915
        check "$mode: first BTC/USDT 1h candle" \
            test "$(psql_mode $mode "SELECT open||','||high||','||low||','||close||','||volume FROM trading.ohlc_data WHERE symbol='BTC/USDT' AND timeframe='1h' ORDER BY timestamp LIMIT 1")" = "19695.87,19720,19479.8,19565.47,4570.361518"
        check "$mode: oldest Coinbase daily candle" \
            test "$(psql_mode $mode "SELECT to_char(timestamp AT TIME ZONE 'UTC','YYYY-MM-DD')||','||volume FROM trading.ohlc_data WHERE symbol='BTC/USD' AND timeframe='1d' ORDER BY timestamp LIMIT 1")" = "2014-12-01,0.05656"
        check "$mode: 1h rollup of the 1m candles has one row per hour with candles" \
            test "$(psql_mode $mode "SELECT count(*) FROM trading.ohlc_1h WHERE symbol='ETH/USDT'")" = \
            "$(psql_mode $mode "SELECT count(DISTINCT date_trunc('hour', timestamp)) FROM trading.ohlc_data WHERE symbol='ETH/USDT' AND timeframe='1m'")"
        check "$mode: 1h rollup volume equals the 1m sum" \
            test "$(psql_mode $mode "SELECT round(sum(volume)::numeric, 4) FROM trading.ohlc_1h WHERE symbol='ETH/USDT'")" = \
            "$(psql_mode $mode "SELECT round(sum(volume)::numeric, 4) FROM trading.ohlc_data WHERE symbol='ETH/USDT' AND timeframe='1m'")"
    fi

    # health: the real files are from 2021, so stale under the default threshold...
    export AUTONAMA_SYMBOLS=BTC/USDT,ETH/USDT AUTONAMA_TIMEFRAME=1m
    "$BIN" health >"$work/h.json" 2>"$work/err"
    rc=$?
    check "$mode: health of 2021 data is unhealthy (exit $rc)" \
        test $rc = 1 -a "$(json "$work/h.json" "j['checks']['freshness']['ok']")" = False
    check "$mode: health names the stale symbol" grep -q "BTC/USDT 1m is stale" "$work/err"
    # ...and fresh under a threshold of 10 years
    AUTONAMA_FRESHNESS_MAX_AGE=315360000 "$BIN" health >"$work/h.json" 2>/dev/null
    rc=$?
    check "$mode: health with a 10-year threshold is healthy (exit $rc)" \
        test $rc = 0 -a "$(json "$work/h.json" "j['status']")" = healthy
    check "$mode: health gives the newest BTC/USDT candle" \
        test "$(json "$work/h.json" "j['checks']['freshness']['symbols'][0]['latest']")" = 2021-05-20T20:40:00Z
    "$BIN" health --symbols BTC/USDT,SOL/USDT --max-age 315360000 >"$work/h.json" 2>/dev/null
    check "$mode: a symbol with no data is unhealthy" \
        test "$?" = 1 -a "$(json "$work/h.json" "j['checks']['freshness']['symbols'][1]['fresh']")" = False
    unset AUTONAMA_SYMBOLS AUTONAMA_TIMEFRAME

    # a bad file is refused whole, naming the row, and nothing of it is stored
    cp "$DATA/BTC_USDT-1h.json" "$work/ZZZ_USDT-1h.json"
    sed -i 's/\[1606784400000,19565.47,19639.99,19433.15/[1606784400000,19565.47,19000.0,19433.15/' "$work/ZZZ_USDT-1h.json"
    expect_clean_failure "$mode: a file with high below low is refused" "high" \
        "$BIN" import "$work/ZZZ_USDT-1h.json"
    "$BIN" health --symbols ZZZ/USDT --timeframe 1h --max-age 315360000 >"$work/h.json" 2>/dev/null
    check "$mode: nothing of the refused file was stored" \
        test "$(json "$work/h.json" "j['checks']['freshness']['symbols'][0]['latest']")" = None

    # indicators: every symbol x timeframe, the load path reported, then incremental
    "$BIN" indicators --symbols BTC/USDT,ETH/USDT --timeframes 1m,1h,1d >"$work/ind.json" 2>"$work/err"
    rc=$?
    want_path=$([ $mode = duckdb ] && echo embedded || echo direct)
    # every series loads as the mode's default path; on a server store the
    # auto rule may take COPY after a failed direct load, with the reason in
    # the reply (the PGlite TimescaleDB server, one connection at a time,
    # refused DuckDB's second connection twice under load 15-40)
    got=$(json "$work/ind.json" "(j['status'], j['summary']['total_success'], all(s['load_path'] == '$want_path' or (s['load_path'] == 'copy' and '$want_path' == 'direct' and bool(s.get('fallback_reason'))) for s in j['series']))")
    json "$work/ind.json" "'\\n'.join('# $mode: %s %s: direct failed, COPY used: %s' % (s['symbol'], s['timeframe'], s['fallback_reason'][:200]) for s in j['series'] if s.get('fallback_reason'))" | grep . || true
    [ "$got" = "('completed', 6, True)" ] ||
        echo "# $mode: indicators: got $got; reply: $(head -c 1500 "$work/ind.json"); log: $(grep -E 'level=(warn|error)' "$work/err" | head -n 5 | cut -c1-300)"
    check "$mode: indicators for 2 symbols x 3 timeframes (exit $rc$([ $rc = 0 ] || echo ": $(tail -n 2 "$work/err" | tr "\n" " " | cut -c1-300)"))" \
        test $rc = 0 -a "$got" = "('completed', 6, True)"
    check "$mode: indicators wrote every value of BTC/USDT 1m" \
        test "$(json "$work/ind.json" "j['series'][0]['inserted'] == j['series'][0]['computed'] > 500000")" = True
    check "$mode: 1d indicators come from the 1d rollup" \
        test "$(json "$work/ind.json" "j['series'][2]['source']")" = ohlc_1d
    "$BIN" indicators --symbols BTC/USDT --timeframe 1m >"$work/ind2.json" 2>/dev/null
    check "$mode: a second indicators run sends only the newest candle's rows" \
        test "$(json "$work/ind2.json" "(j['series'][0]['sent'], j['series'][0]['inserted'], j['series'][0]['updated'])")" = "(12, 0, 0)"
    if [ $mode != duckdb ]; then
        "$BIN" indicators --symbols ETH/USDT --timeframe 1h --load-path copy >"$work/ind3.json" 2>/dev/null
        check "$mode: the copy load path" test "$(json "$work/ind3.json" "j['series'][0]['load_path']")" = copy
        check "$mode: sma_20 of BTC/USDT 1m stored in analytics.indicators" \
            test "$(psql_mode $mode "SELECT count(*) FROM analytics.indicators WHERE symbol='BTC/USDT' AND timeframe='1m' AND indicator_name='sma_20'")" = 42896
    fi
    expect_clean_failure "$mode: a bad indicator spec is refused" "bad indicator" \
        "$BIN" indicators --indicators sma:0

    # serve answers /health over a real socket, and stops on SIGTERM
    # a log of this mode's own: the background shell truncates its redirect
    # only when it runs, so a shared name could still show the previous
    # mode's port (a dead one: curl 000) when the machine is loaded
    AUTONAMA_HTTP_ADDR=127.0.0.1:0 AUTONAMA_LOG_LEVEL=info "$BIN" serve >"$work/serve-$mode.out" 2>"$work/serve-$mode.err" &
    serve_pid=$!
    port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/.*msg="listening" addr=127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve-$mode.err" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.1
    done
    code=$(curl -s -o "$work/health.json" -w '%{http_code}' "http://127.0.0.1:$port/health")
    check "$mode: GET /health answers 503 with the checks (got $code)" \
        test "$code" = 503 -a "$(json "$work/health.json" "j['checks']['connection']['ok']")" = True
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/health")
    check "$mode: POST /health is 405 (got $code)" test "$code" = 405
    code=$(curl -s -o "$work/nf.json" -w '%{http_code}' "http://127.0.0.1:$port/nope")
    check "$mode: unknown route is a JSON 404 (got $code)" \
        test "$code" = 404 -a "$(json "$work/nf.json" "j['error']")" = "no such route"
    kill -TERM $serve_pid
    wait $serve_pid
    rc=$?
    serve_pid=""
    check "$mode: serve exits 0 on SIGTERM (exit $rc)" test $rc = 0
done

echo "# AUTONAMA_TIMEFRAME is the ingest timeframe only"
mode_env duckdb
reset_mode duckdb
AUTONAMA_TIMEFRAME=1m "$BIN" import "$DATA/BTC_USDT-1h.json" >"$work/tf.json" 2>/dev/null
check "import takes a file's timeframe from its name, not AUTONAMA_TIMEFRAME" \
    test "$(json "$work/tf.json" "j['files'][0]['timeframe']")" = 1h
AUTONAMA_TIMEFRAME=1m "$BIN" import --timeframe 1h "$DATA/ETH_USDT-1h.json" >"$work/tf.json" 2>/dev/null
check "import --timeframe (the flag) still names the timeframe" \
    test "$(json "$work/tf.json" "(j['files'][0]['timeframe'], j['files'][0]['inserted'])")" = "('1h', 5482)"
AUTONAMA_TIMEFRAME=1m AUTONAMA_INDICATOR_TIMEFRAMES=1h "$BIN" indicators --symbols BTC/USDT \
    >"$work/tf.json" 2>/dev/null
check "indicators follow AUTONAMA_INDICATOR_TIMEFRAMES, not AUTONAMA_TIMEFRAME" \
    test "$(json "$work/tf.json" "[s['timeframe'] for s in j['series']]")" = "['1h']"
AUTONAMA_INDICATOR_TIMEFRAMES=1h,1d "$BIN" indicators --symbols BTC/USDT --timeframe 1h \
    >"$work/tf.json" 2>/dev/null
check "indicators --timeframe (the flag) wins over AUTONAMA_INDICATOR_TIMEFRAMES" \
    test "$(json "$work/tf.json" "[s['timeframe'] for s in j['series']]")" = "['1h']"
AUTONAMA_TIMEFRAME=1m AUTONAMA_INDICATOR_TIMEFRAMES=1h "$BIN" tasks run calculate_indicators_for_symbol \
    '{"symbols":["BTC/USDT"]}' >"$work/tf.json" 2>/dev/null
check "the indicator task (the beat's) follows AUTONAMA_INDICATOR_TIMEFRAMES" \
    test "$(json "$work/tf.json" "[s['timeframe'] for s in j['series']]")" = "['1h']"

echo "# bad configuration"
mode_env postgres
export POSTGRES_PORT=1
expect_clean_failure "unreachable server" "connection refused" "$BIN" migrate
mode_env postgres
export POSTGRES_PASSWORD=wrong-password
expect_clean_failure "wrong password" "password authentication failed" "$BIN" migrate
check "the wrong password is not echoed" bash -c "! grep -q wrong-password '$work/err' '$work/out'"
mode_env postgres
export POSTGRES_DB=no_such_db
expect_clean_failure "missing database" "no_such_db" "$BIN" migrate
# a server on loopback that accepts connections and never says a word
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
conns = []
for _ in range(40):
    s.settimeout(1)
    try: conns.append(s.accept()[0])
    except OSError: pass
' >"$work/mute.port" &
mute_pid=$!
for _ in $(seq 1 50); do [ -s "$work/mute.port" ] && break; sleep 0.1; done
mode_env postgres
export POSTGRES_PORT=$(cat "$work/mute.port") AUTONAMA_CONNECT_TIMEOUT=2
expect_clean_failure "a server that never answers times out" "timeout" "$BIN" migrate
kill $mute_pid 2>/dev/null
mode_env duckdb
export POSTGRES_PORT=notaport
expect_clean_failure "a non-numeric port" "POSTGRES_PORT" "$BIN" migrate
mode_env duckdb
expect_clean_failure "an unknown store mode" "not one of" "$BIN" migrate --store sqlite
expect_clean_failure "an unknown command" "unknown command" "$BIN" frobnicate
expect_clean_failure "an unknown flag" "unknown flag" "$BIN" migrate --nope 1
expect_clean_failure "a bad symbol list" "invalid symbol" "$BIN" health --symbols btcusdt
expect_clean_failure "a DUCKDB_PATH whose name clashes with a schema" "clashes" \
    env DUCKDB_PATH="$work/autonama.duckdb" "$BIN" migrate
mode_env duckdb
unset DUCKDB_PATH
(cd "$work" && "$BIN" migrate >"$work/default.json" 2>/dev/null)
check "the default DUCKDB_PATH (data/financial_data.duckdb) migrates" \
    test "$(json "$work/default.json" "j['migrations_applied']")" = 7 -a -f "$work/data/financial_data.duckdb"
mode_env duckdb
mkdir -p "$work/ro"
printf 'this is not a duckdb file, just text\n%.0s' $(seq 1 200) >"$work/ro/corrupt.duckdb"
export DUCKDB_PATH=$work/ro/corrupt.duckdb
expect_clean_failure "a corrupt DUCKDB_PATH" "corrupt.duckdb" "$BIN" migrate
export DUCKDB_PATH=$work/ro/good.duckdb
"$BIN" migrate >/dev/null 2>&1
chmod 0444 "$work/ro/good.duckdb"
chmod 0555 "$work/ro"
if [ "$(id -u)" -eq 0 ]; then
    # root ignores file modes: run the read-only cases as nobody
    chmod 0755 "$work"
    expect_clean_failure "a read-only DUCKDB_PATH" "read-only" \
        runuser -u nobody -- env DUCKDB_PATH="$DUCKDB_PATH" AUTONAMA_LOG_LEVEL=warn "$BIN" import "$DATA/BTC_USDT-1h.json"
    expect_clean_failure "a DUCKDB_PATH in a read-only directory" "read-only" \
        runuser -u nobody -- env DUCKDB_PATH="$work/ro/new.duckdb" AUTONAMA_LOG_LEVEL=warn "$BIN" migrate
else
    expect_clean_failure "a read-only DUCKDB_PATH" "read-only" "$BIN" import "$DATA/BTC_USDT-1h.json"
    expect_clean_failure "a DUCKDB_PATH in a read-only directory" "read-only" \
        env DUCKDB_PATH="$work/ro/new.duckdb" "$BIN" migrate
fi
chmod 0755 "$work/ro"

finish
