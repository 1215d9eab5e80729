#!/usr/bin/env bash
# `autonama ingest` against the fake Binance server (tests/fake_binance), on
# all three store modes: backfill, incremental re-run, the open candle,
# --force, an unknown symbol, every kind of bad reply refused (holes, other
# providers and calendar intervals: test_sources.sh), and a
# backfill under every fault at 20% that must end with exactly the server's
# candles. Needs AN_BIN, AN_DATA_DIR, AN_SRC, AUTONAMA_TEST_PG, AUTONAMA_TEST_TS.
set -uo pipefail

BIN=${AN_BIN:?}
DATA=${AN_DATA_DIR:?}
SRC=${AN_SRC:?}
: "${AUTONAMA_TEST_PG:?run through make test}" "${AUTONAMA_TEST_TS:?run through make test}"
work=$(mktemp -d /tmp/autonama-ingest.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT

# 2024-01-01 .. 2024-01-15 of 1m candles for three generated symbols
START=1704067200000
END=$((START + 14 * 86400000))
start_server() { # extra args...
    start_fake_binance --generate AAAUSDT:1m:$START:$END --generate BBBUSDT:1m:$START:$END \
        --generate CCCUSDT:1m:$START:$END --server-time-ms $((END + 30000)) --seed 7 "$@"
}
control() { # path json
    curl -s -X POST -d "$2" "$BINANCE_BASE_URL/_control/$1" >/dev/null
}

same_as_server() { # SYMBOL/QUOTE
    same_as "$1" 1m "$work/server_${1/\//}.csv"
}

# faults off: the server's reference copy of each series
start_server --fault-rate 0
for s in AAAUSDT BBBUSDT CCCUSDT; do server_csv $s 1m $START $END "$work/server_$s.csv"; done
rows=$(($(wc -l <"$work/server_AAAUSDT.csv") - 1))
check "the fake server serves $rows candles per symbol" test "$rows" = 20160

for mode in duckdb postgres timescaledb; do
    echo "# mode $mode"
    mode_env $mode
    reset_mode $mode
    start_server --fault-rate 0
    "$BIN" ingest --symbols AAA/USDT,BBB/USDT,ZZZ/USDT --since 2024-01-01 >"$work/r1.json" 2>/dev/null
    check "$mode: backfill stores every candle; the unknown symbol fails alone" \
        test "$(json "$work/r1.json" "(j['status'], j['categories']['crypto']['symbols']['AAA/USDT']['inserted'], j['categories']['crypto']['symbols']['BBB/USDT']['inserted'], j['categories']['crypto']['symbols']['ZZZ/USDT']['status'])")" = "('partial', 20160, 20160, 'failed')"
    check "$mode: AAA/USDT equals the server's series" same_as_server AAA/USDT
    "$BIN" ingest --symbols AAA/USDT,BBB/USDT --since 2024-01-01 >"$work/r2.json" 2>/dev/null
    check "$mode: a second run fetches nothing new" \
        test "$(json "$work/r2.json" "(j['summary']['total_skipped'], sum(s['inserted'] + s['updated'] for s in j['categories']['crypto']['symbols'].values()))")" = "(2, 0)"
    # the open candle is corrected on the next run
    control amend "{\"symbol\":\"AAAUSDT\",\"interval\":\"1m\",\"open_time\":$((END - 60000)),\"close\":\"999.5\"}"
    "$BIN" ingest --symbols AAA/USDT >"$work/r3.json" 2>/dev/null
    check "$mode: the still-open last candle is updated, not duplicated" \
        test "$(json "$work/r3.json" "(j['categories']['crypto']['symbols']['AAA/USDT']['updated'], j['categories']['crypto']['symbols']['AAA/USDT']['inserted'])")" = "(1, 0)"
    # --force refetches a range even when it is fresh
    "$BIN" ingest --symbols BBB/USDT --since 2024-01-02 --until 2024-01-03 --force >"$work/r4.json" 2>/dev/null
    check "$mode: --force refetches the range" \
        test "$(json "$work/r4.json" "j['categories']['crypto']['symbols']['BBB/USDT']['fetched']")" = 1440
    # every kind of bad reply is refused, retried, and never reaches the store
    "$BIN" ingest --symbols CCC/USDT --since 2024-01-01 >/dev/null 2>&1
    for kind in high_below_low open_outside negative_volume misaligned duplicate out_of_order non_numeric; do
        control bad "{\"kind\":\"$kind\",\"count\":1}"
        # a forced day: full pages, so every kind of bad data has rows to spoil
        "$BIN" ingest --symbols CCC/USDT --since 2024-01-05 --until 2024-01-06 --force >"$work/r5.json" 2>/dev/null
        check "$mode: a $kind reply is refused and retried" \
            test "$(json "$work/r5.json" "(j['status'], j['categories']['crypto']['symbols']['CCC/USDT']['refused_replies'] >= 1)")" = "('completed', True)"
    done
    check "$mode: after the bad replies CCC/USDT equals the server's series" same_as_server CCC/USDT
done

# a run where every symbol fails logs the first symbol's error, not a pointer
# to the result
mode_env duckdb
reset_mode duckdb
BINANCE_BASE_URL=http://127.0.0.1:1 AUTONAMA_BINANCE_MAX_TRIES=1 "$BIN" ingest --symbols AAA/USDT \
    >"$work/down.json" 2>"$work/down.err"
check "a failed ingest's log line names the symbol's error" \
    grep -q 'msg="task finished".*state=FAILURE.*error="AAA/USDT: .*[Cc]onnect' "$work/down.err"
check "a failed ingest's log line does not just point at the result" \
    bash -c "! grep -q 'see the result' '$work/down.err'"

# every fault at 20% of requests: a backfill of 1m candles for three symbols
# still ends with exactly the server's candles. `make test` runs one month on
# both builds; `make check-all` (AN_CHECK_ALL=1) runs a full year on the
# release build (about 3 minutes).
DAYS=31
[ "${AN_CHECK_ALL:-0}" = 1 ] && [ "${AN_SANITIZE:-0}" != 1 ] && DAYS=365
echo "# faults at 20%, $DAYS days x 3 symbols"
mode_env postgres
reset_mode postgres
START=1672531200000                # 2023-01-01
END=$((START + DAYS * 86400000))
start_server --fault-rate 0.2 --faults 429,418,500,502,503,slow,truncate,malformed,wrongtype,reset \
    --slow-seconds 3
"$BIN" ingest --symbols AAA/USDT,BBB/USDT,CCC/USDT --since 2023-01-01 --max-tries 12 >"$work/f1.json" 2>"$work/f1.err"
check "faults: the backfill completes (retries: $(json "$work/f1.json" "sum(s['retries'] for s in j['categories']['crypto']['symbols'].values())"))" \
    test "$(json "$work/f1.json" "(j['status'], [s['inserted'] for s in j['categories']['crypto']['symbols'].values()])")" = "('completed', [$((DAYS * 1440)), $((DAYS * 1440)), $((DAYS * 1440))])"
control faults '{"rate":0}'
for s in AAAUSDT BBBUSDT CCCUSDT; do server_csv $s 1m $START $END "$work/server_$s.csv"; done
for s in AAA/USDT BBB/USDT CCC/USDT; do
    check "faults: $s equals the server's year (count and every value)" same_as_server $s
done
control faults '{"rate":0.2}'
"$BIN" ingest --symbols AAA/USDT,BBB/USDT,CCC/USDT --since 2023-01-01 --max-tries 12 >"$work/f2.json" 2>/dev/null
check "faults: a second run fetches nothing new" \
    test "$(json "$work/f2.json" "(j['status'], sum(s['inserted'] + s['updated'] for s in j['categories']['crypto']['symbols'].values()))")" = "('completed', 0)"

finish
