#!/usr/bin/env bash
# `autonama ingest` beyond Binance 1m: the provider interface (the files
# provider feeding crypto from the real candle files and forex from files the
# test writes; categories without a provider), calendar intervals (1w, 1M)
# from the fake exchange, and hole repair, on all three store modes.
# Needs AN_BIN, AN_DATA_DIR, AN_SRC, AUTONAMA_TEST_PG, AUTONAMA_TEST_TS.
set -uo pipefail

BIN=${AN_BIN:?}
DATA=${AN_DATA_DIR:?}
SRC=${AN_SRC:?}
: "${AUTONAMA_TEST_PG:?run through make test}" "${AUTONAMA_TEST_TS:?run through make test}"
work=$(mktemp -d /tmp/autonama-sources.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null; rm -rf "$work"' EXIT

# a freqtrade JSON file as CSV (timestamp,open,high,low,close,volume)
json_csv() { # FILE OUT
    python3 - "$1" >"$2" <<'PY'
import json, sys
print("timestamp,open,high,low,close,volume")
for r in json.load(open(sys.argv[1])):
    print(",".join([str(r[0])] + [repr(float(x)) for x in r[1:6]]))
PY
}

json_csv "$DATA/BTC_USDT-1h.json" "$work/btc1h.csv"
json_csv "$DATA/ETH_USDT-1h.json" "$work/eth1h.csv"

# forex files: two monthly files of EUR/USD 1h that overlap by one equal candle
mkdir -p "$work/fx" "$work/fxbad"
python3 - "$work/fx" <<'PY'
import sys, random
d = sys.argv[1]
rnd = random.Random(11)
t0 = 1704067200000  # 2024-01-01
rows, p = [], 1.1
for i in range(24 * 60):  # 60 days of hours
    o = p
    c = round(o * (1 + rnd.gauss(0, 0.001)), 5)
    h = round(max(o, c) + rnd.random() * 0.0005, 5)
    l = round(min(o, c) - rnd.random() * 0.0005, 5)
    rows.append((t0 + i * 3600000, o, h, l, c, round(rnd.random() * 1000, 2)))
    p = c
def write(name, part):
    with open(f"{d}/{name}", "w") as f:
        f.write("timestamp,open,high,low,close,volume\n")
        for r in part:
            f.write(",".join(str(x) for x in r) + "\n")
write("EUR_USD-1h-2024-01.csv", rows[: 31 * 24 + 1])  # one candle into February
write("EUR_USD-1h-2024-02.csv", rows[31 * 24:])
with open(f"{d}/../eurusd.csv", "w") as f:
    f.write("timestamp,open,high,low,close,volume\n")
    for r in rows:
        f.write(",".join(str(x) for x in r) + "\n")
PY
cp "$work/fx/"*.csv "$work/fxbad/"
# the second file disagrees with the first about their shared candle
python3 - "$work/fxbad/EUR_USD-1h-2024-02.csv" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().splitlines()
f = lines[1].split(",")
f[5] = str(float(f[5]) + 1)
lines[1] = ",".join(f)
open(p, "w").write("\n".join(lines) + "\n")
PY

# the fake exchange: weekly and monthly candles, and a 1m series for holes
START=1577836800000 # 2020-01-01
END=1704067200000   # 2024-01-01
start_fake_binance --generate MMMUSDT:1M:$START:$END --generate MMMUSDT:1w:$START:$END \
    --generate HHHUSDT:1m:$START:$((START + 2 * 86400000)) --server-time-ms $((END + 30000)) --seed 5
server_csv MMMUSDT 1M $START $END "$work/m1M.csv"
server_csv MMMUSDT 1w $START $END "$work/m1w.csv"
server_csv HHHUSDT 1m $START $((START + 2 * 86400000)) "$work/h1m.csv"
check "the fake exchange serves 48 monthly candles" test "$(($(wc -l <"$work/m1M.csv") - 1))" = 48

for mode in duckdb postgres timescaledb; do
    echo "# mode $mode"
    mode_env $mode
    reset_mode $mode

    # crypto from the real files through the files provider
    AUTONAMA_CRYPTO_PROVIDER=files AUTONAMA_CRYPTO_SOURCE=$DATA "$BIN" ingest --symbols BTC/USDT,ETH/USDT \
        --timeframe 1h --since 2020-12-01 >"$work/r1.json" 2>/dev/null
    check "$mode: files provider: every candle of both real 1h files" \
        test "$(json "$work/r1.json" "(j['status'], j['categories']['crypto']['provider'], [s['inserted'] for s in j['categories']['crypto']['symbols'].values()])")" = "('completed', 'files', [5482, 5482])"
    check "$mode: files provider: BTC/USDT 1h equals the file" same_as BTC/USDT 1h "$work/btc1h.csv"
    check "$mode: files provider: ETH/USDT 1h equals the file" same_as ETH/USDT 1h "$work/eth1h.csv"
    AUTONAMA_CRYPTO_PROVIDER=files AUTONAMA_CRYPTO_SOURCE=$DATA "$BIN" ingest --symbols BTC/USDT \
        --timeframe 1h --since 2020-12-01 >"$work/r2.json" 2>/dev/null
    check "$mode: files provider: a second run writes nothing" \
        test "$(json "$work/r2.json" "(j['summary']['total_skipped'], j['categories']['crypto']['symbols']['BTC/USDT']['inserted'])")" = "(1, 0)"

    # forex fed by files: two overlapping monthly files make one series
    export AUTONAMA_FOREX_PROVIDER=files AUTONAMA_FOREX_SOURCE=$work/fxbad AUTONAMA_FOREX_SYMBOLS=EUR/USD
    "$BIN" ingest --categories forex --timeframe 1h --since 2024-01-01 >"$work/r3.json" 2>"$work/r3.err"
    rc=$?
    check "$mode: forex: files that disagree are refused, naming the candle (exit $rc)" \
        test "$rc:$(json "$work/r3.json" "j['categories']['forex']['symbols']['EUR/USD']['status']")" = "1:failed"
    check "$mode: forex: the refusal says why" grep -q "disagree about the candle at 2024-02-01" "$work/r3.json"
    export AUTONAMA_FOREX_SOURCE=$work/fx
    "$BIN" ingest --categories crypto,forex --symbols EUR/USD --timeframe 1h --since 2024-01-01 \
        >"$work/r4.json" 2>/dev/null
    check "$mode: two categories in one run; --symbols names forex's symbol" \
        test "$(json "$work/r4.json" "(j['categories_processed'], j['categories']['forex']['symbols']['EUR/USD']['inserted'], j['categories']['crypto']['symbols']['EUR/USD']['status'])")" = "(2, 1440, 'failed')"
    check "$mode: forex: EUR/USD equals the two files merged" same_as EUR/USD 1h "$work/eurusd.csv"
    unset AUTONAMA_FOREX_PROVIDER AUTONAMA_FOREX_SOURCE AUTONAMA_FOREX_SYMBOLS
    "$BIN" ingest --categories stock >"$work/r5.json" 2>"$work/r5.err"
    rc=$?
    check "$mode: a category without a provider fails clearly (exit $rc)" \
        test "$rc:$(json "$work/r5.json" "j['categories']['stock']['status']")" = "1:failed"
    check "$mode: ... naming the setting" grep -q "AUTONAMA_STOCK_PROVIDER" "$work/r5.err"

    # calendar intervals from the exchange
    "$BIN" ingest --symbols MMM/USDT --timeframe 1M --since 2020-01-01 >"$work/r6.json" 2>/dev/null
    check "$mode: 1M: 48 monthly candles" \
        test "$(json "$work/r6.json" "(j['status'], j['categories']['crypto']['symbols']['MMM/USDT']['inserted'])")" = "('completed', 48)"
    check "$mode: 1M equals the exchange's" same_as MMM/USDT 1M "$work/m1M.csv"
    "$BIN" ingest --symbols MMM/USDT --timeframe 1M >"$work/r7.json" 2>/dev/null
    check "$mode: 1M: an incremental run refetches only the open month" \
        test "$(json "$work/r7.json" "(j['categories']['crypto']['symbols']['MMM/USDT']['fetched'], j['categories']['crypto']['symbols']['MMM/USDT']['inserted'])")" = "(1, 0)"
    "$BIN" ingest --symbols MMM/USDT --timeframe 1w --since 2020-01-01 >"$work/r8.json" 2>/dev/null
    check "$mode: 1w equals the exchange's (weeks open on Monday)" same_as MMM/USDT 1w "$work/m1w.csv"

    # holes: two separate ranges leave a hole; a backfill over both repairs it
    "$BIN" ingest --symbols HHH/USDT --since 2020-01-01T10:00 --until 2020-01-02 >/dev/null 2>&1
    "$BIN" ingest --symbols HHH/USDT --since 2020-01-01 --until 2020-01-01T06:00 >"$work/r9a.json" 2>/dev/null
    check "$mode: a range before the stored one fetches just that range" \
        test "$(json "$work/r9a.json" "j['categories']['crypto']['symbols']['HHH/USDT']['fetched']")" = 360
    "$BIN" ingest --symbols HHH/USDT --since 2020-01-01 >"$work/r9.json" 2>/dev/null
    check "$mode: holes: the 4-hour hole is found and refetched, then the tail" \
        test "$(json "$work/r9.json" "(j['categories']['crypto']['symbols']['HHH/USDT']['holes_repaired'], j['categories']['crypto']['symbols']['HHH/USDT']['inserted'])")" = "(1, 1680)"
    check "$mode: holes: HHH/USDT equals the exchange's two days" same_as HHH/USDT 1m "$work/h1m.csv"
done

"$BIN" ingest --categories bonds >"$work/r10.json" 2>"$work/r10.err"
rc=$?
check "an unknown category is bad input (exit $rc)" test "$rc" = 2
check "... named in the error" grep -q "'bonds' is not one of crypto|forex|stock|commodity" "$work/r10.err"

finish
