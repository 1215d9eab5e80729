#!/usr/bin/env bash
# bench/write_scale: what a small write costs as the candle table grows, on
# plain PostgreSQL 15 (where the 1h/1d rollups are tables kept by each
# write). For each size in AN_BENCH_ROWS_LIST (1,000,000 and 50,000,000),
# side by side in one run: 5 series of generated 1m candles are imported
# (`autonama import`), then VACUUM ANALYZE, then 3 rounds of `autonama
# import` on one series: 10 new candles after the newest, the same 10 again
# (nothing changes), 10 existing candles changed in the middle of the
# history. Each time is the whole CLI process. Afterwards it checks that the
# changed rows are stored and that the 1h rollup of every hour around them
# equals an aggregate of the rows. Issue 12's target: the cost follows what
# is written, not what is stored (50M within noise of 1M).
#   scripts/run-bench write_scale     (needs AUTONAMA_TEST_PG; 50M needs
#                                      about 12 GB of disk and 6 minutes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AN_BIN:-$root/build/autonama}
PY=${AN_PYTHON:-$root/.deps/venv/bin/python}
ci=${AUTONAMA_TEST_PG:?bench/write_scale needs AUTONAMA_TEST_PG: run scripts/run-bench write_scale}
kv() { printf '%s\n' "$ci" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
export POSTGRES_SERVER=$(kv host) POSTGRES_PORT=$(kv port) POSTGRES_USER=$(kv user)
export POSTGRES_PASSWORD=$(kv password) POSTGRES_DB=$(kv dbname)
export AUTONAMA_STORE=postgres AUTONAMA_LOG_LEVEL=warn
export PGHOST=$POSTGRES_SERVER PGPORT=$POSTGRES_PORT PGUSER=$POSTGRES_USER
export PGPASSWORD=$POSTGRES_PASSWORD PGDATABASE=$POSTGRES_DB
work=$(mktemp -d /tmp/autonama-write-scale.XXXXXX)
drop() {
    psql -X -q -c "SET client_min_messages=warning" \
        -c "DROP SCHEMA IF EXISTS trading CASCADE; DROP SCHEMA IF EXISTS analytics CASCADE;
            DROP SCHEMA IF EXISTS optimization CASCADE; DROP SCHEMA IF EXISTS autonama CASCADE" >/dev/null
}
trap 'rm -rf "$work"; drop || true' EXIT
T0=1577836800000 # 2020-01-01
NSYM=5
timed() { # seconds of one CLI run
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>"$work/err" || { echo "bench/write_scale: failed: $*" >&2; cat "$work/err" >&2; exit 1; }
    e=$(date +%s%N)
    python3 -c "print('%.3f' % (($e - $s) / 1e9))"
}
for rows in ${AN_BENCH_ROWS_LIST:-1000000 50000000}; do
    per=$((rows / NSYM))
    drop
    "$BIN" migrate >/dev/null 2>&1
    "$PY" - "$work" "$per" "$NSYM" "$T0" <<'PY'
import sys, duckdb
work, n, nsym, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute("SET threads = 2")
for k in range(nsym):
    con.execute(f"""COPY (SELECT {t0} + i * 60000 AS timestamp, 100 + (i % 997) * 0.01 AS open,
      101 + (i % 997) * 0.01 AS high, 99 + (i % 997) * 0.01 AS low,
      100.5 + (i % 997) * 0.01 AS close, 1 + (i % 89) * 0.5 AS volume
      FROM range({n}) t(i)) TO '{work}/S{k}_USDT-1m.csv' (HEADER)""")
PY
    t_load=$SECONDS
    for k in $(seq 0 $((NSYM - 1))); do
        "$BIN" import --symbol "S$k/USDT" --timeframe 1m "$work/S${k}_USDT-1m.csv" >/dev/null 2>&1
        rm -f "$work/S${k}_USDT-1m.csv"
    done
    psql -X -q -c "VACUUM (ANALYZE) trading.ohlc_data" >/dev/null
    echo "bench/write_scale: $(psql -X -A -t -c 'SELECT count(*) FROM trading.ohlc_data') candles stored" \
        "(loaded in $((SECONDS - t_load)) s, load average $(cut -d' ' -f1 /proc/loadavg))"
    last=$((T0 + (per - 1) * 60000))
    mid=$((T0 + (per / 2) * 60000))
    for r in 1 2 3; do
        { echo "timestamp,open,high,low,close,volume"
          for i in $(seq 1 10); do echo "$((last + (r - 1) * 600000 + i * 60000)),100,101,99,100.5,$r"; done
        } >"$work/new.csv"
        { echo "timestamp,open,high,low,close,volume"
          for i in $(seq 0 9); do echo "$((mid + (r * 100 + i) * 60000)),200,201,199,200.5,$r"; done
        } >"$work/old.csv"
        imp=("$BIN" import --symbol S0/USDT --timeframe 1m)
        a=$(timed "${imp[@]}" "$work/new.csv")
        b=$(timed "${imp[@]}" "$work/new.csv")
        c=$(timed "${imp[@]}" "$work/old.csv")
        printf '  round %d: 10 new candles %s s; the same 10 again %s s; 10 changed in the middle %s s\n' \
            "$r" "$a" "$b" "$c"
    done
    changed=$(psql -X -A -t -c "SELECT count(*) FROM trading.ohlc_data WHERE symbol = 'S0/USDT' AND close = 200.5")
    bad=$(psql -X -A -t -c "SELECT count(*) FROM (SELECT date_trunc('hour', \"timestamp\") h, max(high) hi,
            min(low) lo, sum(volume) v FROM trading.ohlc_data WHERE symbol = 'S0/USDT'
            AND \"timestamp\" >= date_trunc('hour', to_timestamp($mid / 1000.0) - interval '1 hour')
            AND \"timestamp\" < date_trunc('hour', to_timestamp($mid / 1000.0) + interval '1 day')
            GROUP BY 1) r JOIN trading.ohlc_1h o ON o.symbol = 'S0/USDT' AND o.\"timestamp\" = r.h
            WHERE o.high <> r.hi OR o.low <> r.lo OR o.volume <> r.v")
    echo "  check: $changed changed rows stored (want 30); hours whose 1h rollup differs from the rows: $bad (want 0)"
    [ "$changed" = 30 ] && [ "$bad" = 0 ] || { echo "bench/write_scale: the check FAILED" >&2; exit 1; }
done
