#!/usr/bin/env bash
# The task system against real servers of its own (a scratch PostgreSQL 15 and
# a scratch TimescaleDB/PGlite server on private ports, so they can be stopped
# and started without touching the shared test servers):
#   - fault test: an ingest of 3 symbols x one month of 1m candles; the server
#     is stopped half-way; the run completes on the DuckDB fallback; the
#     server is started again; after the replay the primary holds exactly the
#     exchange's candles (count and values), nothing duplicated; the run is
#     recorded with approach duckdb_fallback. On PostgreSQL 15 and TimescaleDB.
#   - `autonama sync --from FILE` copies a DuckDB store, and deletes from it
#     only with --move.
#   - two `autonama serve` on one PostgreSQL for >= 5 schedule periods: no task
#     ran twice at once for one symbol (from the task table), both did work.
#   - SIGTERM during a backfill: exit 0 within 10 s, the run INTERRUPTED, the
#     next run completes the data with no gaps; task history survives restarts.
# Needs AN_BIN, AN_SRC, and root or the autonama_test user (for initdb).
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=autonama_test
work=$(mktemp -d /tmp/autonama-tasks.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
server_pid="" ts_pid="" serve_pids=""
cleanup() {
    [ -n "$server_pid" ] && kill $server_pid 2>/dev/null
    [ -n "$ts_pid" ] && kill $ts_pid 2>/dev/null
    for p in $serve_pids; do kill -9 $p 2>/dev/null; done
    [ -f "$work/pg/postmaster.pid" ] && as_pg_user "$PG_BIN/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1
    sleep 0.3
    [ -n "${KEEP:-}" ] || rm -rf "$work" 2>/dev/null
}
trap cleanup EXIT

as_pg_user() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

# ---- a scratch PostgreSQL 15 -------------------------------------------------
PG_PORT=$(free_port)
pg_init() {
    if [ "$(id -u)" -eq 0 ] && ! id "$PG_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" || return 1
    fi
    mkdir -p "$work/pg" && chmod 700 "$work/pg" && chmod 755 "$work"
    printf 'pw\n' >"$work/pw"
    [ "$(id -u)" -eq 0 ] && chown "$PG_USER" "$work/pg" "$work/pw"
    as_pg_user "$PG_BIN/initdb" -D "$work/pg" -U "$PG_USER" --pwfile="$work/pw" -A scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$work/initdb.log" 2>&1 || return 1
    cat >>"$work/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$work/pg'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}
pg_start() {
    as_pg_user "$PG_BIN/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w -t 60 start >/dev/null
}
pg_stop() { as_pg_user "$PG_BIN/pg_ctl" -D "$work/pg" -m fast -w -t 60 stop >/dev/null; }
psql_pg() { PGPASSWORD=pw psql -X -qAt -h 127.0.0.1 -p $PG_PORT -U $PG_USER -d autonama -c "$1" 2>/dev/null; }

# ---- a scratch TimescaleDB (PGlite) server -------------------------------------
TS_PORT=$(free_port)
ts_start() {
    cp "$SRC/tests/services/timescale-server.mjs" "$SRC/.deps/node/timescale-server.mjs"
    mkdir -p "$work/ts"
    node "$SRC/.deps/node/timescale-server.mjs" "$TS_PORT" "$work/ts" >>"$work/ts.log" 2>&1 &
    ts_pid=$!
    for _ in $(seq 1 300); do
        PGCONNECT_TIMEOUT=2 pg_isready -q -h 127.0.0.1 -p $TS_PORT && return 0
        sleep 0.2
    done
    return 1
}
ts_stop() { kill $ts_pid 2>/dev/null; wait $ts_pid 2>/dev/null; ts_pid=""; }
# PGlite reopened on its data directory comes back without the timescaledb
# hooks ("invalid INSERT on the root table of hypertable"): the restart of the
# test server starts from a fresh directory, so the replay alone must bring
# the primary to the full data set there.
ts_restart_fresh() { rm -rf "$work/ts" && ts_start && "$BIN" migrate >/dev/null 2>&1; }
psql_ts() { PGPASSWORD=postgres psql -X -qAt -h 127.0.0.1 -p $TS_PORT -U postgres -d postgres -c "$1" 2>/dev/null; }

# ---- the fake exchange: 3 symbols x 30 days of 1m candles -----------------------
START=1704067200000 # 2024-01-01
END=$((START + 30 * 86400000))
start_server() {
    python3 "$SRC/tests/fake_binance/server.py" --port 0 --generate AAAUSDT:1m:$START:$END \
        --generate BBBUSDT:1m:$START:$END --generate CCCUSDT:1m:$START:$END \
        --server-time-ms $((END + 30000)) --seed 3 >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$work/server.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    export BINANCE_BASE_URL=http://127.0.0.1:$port
}
slow() { # seconds per klines reply (0: off)
    local rate=1
    [ "$1" = 0 ] && rate=0
    curl -s -X POST -d "{\"rate\":$rate,\"kinds\":[\"slow\"],\"slow_seconds\":$1}" \
        "$BINANCE_BASE_URL/_control/faults" >/dev/null
}
server_csv() { # SYMBOL(no slash) out
    python3 - "$BINANCE_BASE_URL" "$1" "$START" "$END" >"$2" <<'PY'
import json, sys, urllib.request
base, sym, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print("timestamp,open,high,low,close,volume")
t = start
while t < end:
    with urllib.request.urlopen(f"{base}/api/v3/klines?symbol={sym}&interval=1m&startTime={t}&endTime={end - 1}&limit=1000") as r:
        rows = json.load(r)
    if not rows:
        break
    for k in rows:
        print(",".join([str(k[0])] + [repr(float(x)) for x in k[1:6]]))
    t = rows[-1][0] + 60000
PY
}
same_as_server() { # SYMBOL/QUOTE: the primary's series equals the exchange's, value for value
    local ex=${1/\//}
    "$BIN" export --symbol "$1" --timeframe 1m >"$work/ours.csv" 2>/dev/null
    python3 - "$work/ours.csv" "$work/server_$ex.csv" <<'PY'
import sys
def load(p):
    rows = [l.strip().split(",") for l in open(p) if l.strip()][1:]
    return [(int(r[0]),) + tuple(float(x) for x in r[1:]) for r in rows]
a, b = load(sys.argv[1]), load(sys.argv[2])
sys.exit(0 if a == b and len(a) > 0 else 1)
PY
}
all_same() { same_as_server AAA/USDT && same_as_server BBB/USDT && same_as_server CCC/USDT; }

use_pg() {
    unset AUTONAMA_STORE
    export POSTGRES_SERVER=127.0.0.1 POSTGRES_PORT=$PG_PORT POSTGRES_USER=$PG_USER POSTGRES_PASSWORD=pw POSTGRES_DB=autonama
    psql_count() { psql_pg "SELECT count(*) FROM trading.ohlc_data"; }
    psql_q() { psql_pg "$1"; }
}
use_ts() {
    export POSTGRES_SERVER=127.0.0.1 POSTGRES_PORT=$TS_PORT POSTGRES_USER=postgres POSTGRES_PASSWORD=postgres POSTGRES_DB=postgres
    psql_count() { psql_ts "SELECT count(*) FROM trading.ohlc_data"; }
    psql_q() { psql_ts "$1"; }
}
export AUTONAMA_LOG_LEVEL=info AUTONAMA_BINANCE_TIMEOUT_MS=3000 AUTONAMA_BINANCE_BACKOFF_MS=50
export AUTONAMA_CONNECT_TIMEOUT=3 AUTONAMA_INGEST_PARALLEL=3 AN_DUMMY=1
TOTAL=$((3 * 30 * 1440))

start_server
for s in AAAUSDT BBBUSDT CCCUSDT; do server_csv $s "$work/server_$s.csv"; done
check "the fake server serves 43200 candles per symbol" \
    test "$(($(wc -l <"$work/server_AAAUSDT.csv") - 1))" = 43200

pg_init && pg_start && PGPASSWORD=pw psql -X -q -h 127.0.0.1 -p $PG_PORT -U $PG_USER -d postgres \
    -c "CREATE DATABASE autonama" >/dev/null
check "a scratch PostgreSQL 15 runs on port $PG_PORT" test "$(psql_pg 'SELECT 1')" = 1

# ---- the fault test ------------------------------------------------------------
fault_test() { # label stop_cmd start_cmd replay(sync|auto)
    local label=$1 stop_cmd=$2 start_cmd=$3 replay=$4
    export AUTONAMA_FALLBACK_PATH=$work/fallback-$label.duckdb
    "$BIN" migrate >/dev/null 2>"$work/migrate.err" || cat "$work/migrate.err"
    slow 0.04
    curl -s -X POST "$BINANCE_BASE_URL/_control/reset" >/dev/null
    local t0=$(now_ms)
    "$BIN" ingest --symbols AAA/USDT,BBB/USDT,CCC/USDT --since 2024-01-01 --until 2024-01-31 \
        >"$work/fault.json" 2>"$work/fault.err" &
    local ing=$!
    # half-way: half of the 132 pages fetched (the PGlite server takes one
    # connection at a time, so progress is read from the exchange's side)
    local n=0
    for _ in $(seq 1 600); do
        n=$(curl -s "$BINANCE_BASE_URL/_control/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["klines"])')
        [ "${n:-0}" -ge 66 ] && break
        kill -0 $ing 2>/dev/null || break
        sleep 0.05
    done
    $stop_cmd
    local t_stop=$(now_ms)
    echo "# $label: primary stopped after $n of 132 pages"
    slow 0
    wait $ing
    local rc=$?
    local t1=$(now_ms)
    check "$label: the primary was stopped half-way (after $n of 132 pages)" \
        test "${n:-0}" -ge 40 -a "${n:-0}" -lt 100
    check "$label: the run completes on the DuckDB fallback (exit $rc$(json "$work/fault.json" "''.join(' ' + k + ': ' + v.get('error', '') for k, v in j['categories']['crypto']['symbols'].items() if v['status'] != 'success')"))" \
        test "$rc/$(json "$work/fault.json" "(j['status'], j['approach'], j['summary']['total_success'], sorted(j['fallback']['symbols']))")" = "0/('completed', 'duckdb_fallback', 3, ['AAA/USDT', 'BBB/USDT', 'CCC/USDT'])"
    check "$label: the log says the run switched to the fallback" \
        grep -q 'switching to the DuckDB fallback' "$work/fault.err"
    check "$label: the password never appears in the log" bash -c "! grep -q 'password=' '$work/fault.err'"
    local id=$(json "$work/fault.json" "j['task']['id']")
    "$BIN" tasks >"$work/tasks-down.json" 2>/dev/null
    check "$label: while the primary is down, tasks lists the runs of the fallback file" \
        test "$(json "$work/tasks-down.json" "[(t['state'], t['approach']) for t in j['tasks'] if t['id'] == '$id']")" = "[('SUCCESS', 'duckdb_fallback')]"
    if [ "$replay" = auto ]; then
        # indicators while the primary is down: computed on the fallback file
        "$BIN" indicators --symbols AAA/USDT --timeframe 1m >"$work/ind-down.json" 2>/dev/null
        check "$label: indicators while the primary is down run on the fallback" \
            test "$(json "$work/ind-down.json" "(j['status'], j['approach'], j['series'][0]['inserted'] > 0)")" = "('completed', 'duckdb_fallback', True)"
    fi
    $start_cmd
    local t2=$(now_ms)
    if [ "$replay" = auto ]; then
        # the next task run replays the fallback file first, then runs on the primary
        "$BIN" indicators --symbols AAA/USDT --timeframe 1m >"$work/ind-up.json" 2>"$work/sync.err"
        local t3=$(now_ms)
        check "$label: the next run replays the fallback, then recomputes on the primary" \
            test "$(json "$work/ind-up.json" "(j['status'], j['approach'], j['series'][0]['recomputed_history'], j['series'][0]['inserted'], j['series'][0]['updated'])")" = "('completed', 'postgres_first', True, 0, 0)"
        check "$label: the replay is in the log" grep -q 'primary is back: replaying' "$work/sync.err"
        check "$label: the fallback's indicator rows reached the primary" \
            test "$(psql_q "SELECT count(*) FROM analytics.indicators WHERE symbol = 'AAA/USDT' AND indicator_name = 'sma_20'")" = 43181
    else
        "$BIN" sync >"$work/sync.json" 2>"$work/sync.err"
        local t3=$(now_ms)
        check "$label: the replay moves every fallback candle into the primary" \
            test "$(json "$work/sync.json" "(j['status'], j['synced']['candles'] == $TOTAL, j['synced']['series'], j['synced']['tasks'] >= 1)")" = "('completed', True, 3, True)"
    fi
    check "$label: the primary holds exactly $TOTAL candles, no duplicates" \
        test "$(psql_q 'SELECT count(*), count(DISTINCT (symbol, timeframe, "timestamp")) FROM trading.ohlc_data')" = "$TOTAL|$TOTAL"
    check "$label: every series equals the exchange's, value for value" all_same
    "$BIN" tasks show "$id" >"$work/show.json" 2>/dev/null
    check "$label: the run is recorded: SUCCESS, approach duckdb_fallback" \
        test "$(json "$work/show.json" "(j['state'], j['approach'], j['result']['approach'])")" = "('SUCCESS', 'duckdb_fallback', 'duckdb_fallback')"
    "$BIN" sync >"$work/sync2.json" 2>/dev/null
    check "$label: the fallback file was emptied: a second replay moves nothing" \
        test "$(json "$work/sync2.json" "(j['synced']['candles'], j['synced']['tasks'])")" = "(0, 0)"
    echo "# $label: ingest ${rc} in $((t1 - t0)) ms (primary stopped at $((t_stop - t0)) ms); replay of $TOTAL candles ($replay) $((t3 - t2)) ms"
}

echo "# fault test on PostgreSQL 15"
use_pg
fault_test postgres pg_stop pg_start auto

# ---- sync --from: copy, and move only when asked ---------------------------------
"$BIN" migrate >/dev/null 2>&1
env -u POSTGRES_SERVER DUCKDB_PATH="$work/legacy.duckdb" "$BIN" migrate >/dev/null 2>&1
env -u POSTGRES_SERVER DUCKDB_PATH="$work/legacy.duckdb" "$BIN" ingest --symbols AAA/USDT \
    --since 2024-01-01 --until 2024-01-02 >/dev/null 2>"$work/legacy.err"
"$BIN" sync --from "$work/legacy.duckdb" >"$work/s1.json" 2>/dev/null
"$BIN" sync --from "$work/legacy.duckdb" >"$work/s2.json" 2>/dev/null
check "sync --from copies a DuckDB store and leaves it as it was" \
    test "$(json "$work/s1.json" "(j['status'], j['moved'], j['synced']['candles'] > 0)")/$(json "$work/s2.json" "(j['synced']['candles'] == $(json "$work/s1.json" "j['synced']['candles']"), j['synced']['candles_inserted'])")" = "('completed', False, True)/(True, 0)"
"$BIN" sync --from "$work/legacy.duckdb" --move >"$work/s3.json" 2>/dev/null
"$BIN" sync --from "$work/legacy.duckdb" >"$work/s4.json" 2>/dev/null
check "sync --from --move empties the file" \
    test "$(json "$work/s3.json" "j['moved']")/$(json "$work/s4.json" "j['synced']['candles']")" = "True/0"
"$BIN" sync --from "$work/none.duckdb" >/dev/null 2>&1
check "sync --from a missing file fails cleanly (exit 1)" test $? = 1

# ---- replay of runs the primary conflicts with or refuses (issue 11, fault 6) ------
# an instance that could not log in ran a scheduled job on its fallback under
# the slot another instance claimed, and wrote a run the primary refuses
# (args that are not JSON): the replay keeps the primary's slot, moves the run
# without it, reports the refused row and leaves it in the file; exit 0
PY=$SRC/.deps/venv/bin/python
duck_sql() { # FILE SQL: prints the rows
    "$PY" -c 'import duckdb,sys; c=duckdb.connect(sys.argv[1]); [print("|".join(map(str,r))) for r in c.execute(sys.argv[2]).fetchall()]' "$1" "$2"
}
env -u POSTGRES_SERVER DUCKDB_PATH="$work/fb-slot.duckdb" "$BIN" migrate >/dev/null 2>&1
slot="update_market_data|AAA/USDT|1704067200000"
psql_pg "INSERT INTO autonama.task_runs (id, name, args, state, instance, symbol, slot) VALUES ('primary-run', 'update_market_data', '{}', 'SUCCESS', 'one', 'AAA/USDT', '$slot')" >/dev/null
duck_sql "$work/fb-slot.duckdb" "INSERT INTO autonama.task_runs (id, name, args, state, instance, symbol, slot, created_at) VALUES ('fallback-run', 'update_market_data', '{}', 'SUCCESS', 'two', 'AAA/USDT', '$slot', now()), ('bad-run', 'health_check', 'not json', 'SUCCESS', 'two', NULL, NULL, now())" >/dev/null
AUTONAMA_FALLBACK_PATH=$work/fb-slot.duckdb "$BIN" sync >"$work/slot.json" 2>"$work/slot.err"
rc=$?
check "sync of a fallback run on a claimed slot and a refused run exits 0 (exit $rc: $(tail -n 1 "$work/slot.err"))" test $rc = 0
check "it says what moved and what stayed ($(json "$work/slot.json" "(j['synced']['tasks'], j['synced']['tasks_without_slot'], j['synced']['tasks_kept'], j['kept'][:40])"))" \
    test "$(json "$work/slot.json" "(j['synced']['tasks'], j['synced']['tasks_without_slot'], j['synced']['tasks_kept'], j['kept'].startswith('bad-run: '))")" = "(1, 1, 1, True)"
check "the primary keeps its run on the slot, and the fallback's run under its own id without it" \
    test "$(psql_pg "SELECT string_agg(id || ':' || coalesce(slot, '-'), ',' ORDER BY id) FROM autonama.task_runs WHERE id IN ('primary-run', 'fallback-run')")" = "fallback-run:-,primary-run:$slot"
check "the refused run is named in the log and stays in the file, alone" \
    test "$(grep -c 'refused by the target.*id=bad-run' "$work/slot.err")/$(duck_sql "$work/fb-slot.duckdb" "SELECT string_agg(id, ',') FROM autonama.task_runs")" = "1/bad-run"
AUTONAMA_FALLBACK_PATH=$work/fb-slot.duckdb "$BIN" sync >"$work/slot2.json" 2>/dev/null
rc=$?
check "a second sync exits 0 and moves nothing more (exit $rc)" \
    test "$rc/$(json "$work/slot2.json" "(j['synced']['tasks'], j['synced']['tasks_kept'])")" = "0/(0, 1)"
psql_pg "DELETE FROM autonama.task_runs WHERE id IN ('primary-run', 'fallback-run')" >/dev/null

# ---- two serve processes on one PostgreSQL -----------------------------------------
serve_env() { # instance fallback
    AUTONAMA_INSTANCE=$1 AUTONAMA_FALLBACK_PATH=$work/fb-$1.duckdb AUTONAMA_HTTP_ADDR=127.0.0.1:0 \
        AUTONAMA_BEAT_UPDATE_INTERVAL=1 AUTONAMA_BEAT_INDICATORS_INTERVAL=2 AUTONAMA_BEAT_HEALTH_INTERVAL=2 \
        AUTONAMA_BEAT_UPDATE_SYMBOLS=AAA/USDT,BBB/USDT,CCC/USDT \
        AUTONAMA_BEAT_INDICATORS_SYMBOLS=AAA/USDT,BBB/USDT AUTONAMA_INDICATOR_TIMEFRAMES=1m \
        AUTONAMA_FRESHNESS_MAX_AGE=100000000 AUTONAMA_SYMBOLS=AAA/USDT,BBB/USDT,CCC/USDT \
        AUTONAMA_WORKERS=2 exec "$BIN" serve
}
echo "# two serve processes"
psql_pg "DELETE FROM autonama.task_runs" >/dev/null
slow 0.02
serve_env one >"$work/one.out" 2>"$work/one.err" &
p1=$!
serve_env two >"$work/two.out" 2>"$work/two.err" &
p2=$!
serve_pids="$p1 $p2"
sleep 7
kill -TERM $p1 $p2
wait $p1
r1=$?
wait $p2
r2=$?
serve_pids=""
slow 0
for i in one two; do # a sanitizer's report (its exit code) shown, not just counted
    sed -n '/WARNING: ThreadSanitizer\|ERROR: [A-Za-z]*Sanitizer\|runtime error/,+30p' \
        "$work/$i.err" | head -n 80 | sed "s/^/# $i: /"
done
check "both serve processes exit 0 on SIGTERM ($r1, $r2)" test "$r1/$r2" = 0/0
check "update-market-data ran for >= 5 periods per symbol" \
    test "$(psql_pg "SELECT min(c) FROM (SELECT count(*) c FROM autonama.task_runs WHERE name = 'update_market_data' GROUP BY symbol) x")" -ge 5
check "both processes ran scheduled tasks" \
    test "$(psql_pg "SELECT count(DISTINCT instance) FROM autonama.task_runs WHERE name = 'update_market_data' AND state = 'SUCCESS'")" = 2
check "no task ran twice at once for one symbol (from the task table)" \
    test "$(psql_pg "SELECT count(*) FROM autonama.task_runs a JOIN autonama.task_runs b ON a.name = b.name AND a.symbol = b.symbol AND a.id < b.id WHERE a.started_at < coalesce(b.finished_at, now()) AND b.started_at < coalesce(a.finished_at, now())")" = 0
check "no period of one task and symbol ran twice" \
    test "$(psql_pg "SELECT count(*) FROM (SELECT slot FROM autonama.task_runs WHERE slot IS NOT NULL GROUP BY slot HAVING count(*) > 1) x")" = 0
check "health-check ran as a scheduled task, its result in the table" \
    test "$(psql_pg "SELECT count(*) > 0 FROM autonama.task_runs WHERE name = 'health_check' AND state = 'SUCCESS' AND result->'health'->>'status' = 'healthy'")" = t
check "calculate-indicators ran as a scheduled task" \
    test "$(psql_pg "SELECT count(*) > 0 FROM autonama.task_runs WHERE name = 'calculate_indicators_for_symbol' AND state = 'SUCCESS'")" = t
check "no run is left PENDING or PROGRESS after a clean stop" \
    test "$(psql_pg "SELECT count(*) FROM autonama.task_runs WHERE state IN ('PENDING', 'PROGRESS')")" = 0
before_ids=$(psql_pg "SELECT count(*) FROM autonama.task_runs")

# ---- SIGTERM during a backfill -------------------------------------------------------
echo "# SIGTERM during a backfill"
psql_pg "TRUNCATE trading.ohlc_data, trading.ohlc_series, trading.ohlc_1h, trading.ohlc_1d" >/dev/null # the catalog and the rollup tables are kept by autonama's writes, not by TRUNCATE
slow 0.05
AUTONAMA_INGEST_LOOKBACK=43200 AUTONAMA_INSTANCE=solo AUTONAMA_FALLBACK_PATH=$work/fb-solo.duckdb \
    AUTONAMA_HTTP_ADDR=127.0.0.1:0 AUTONAMA_BEAT_UPDATE_INTERVAL=3600 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
    AUTONAMA_BEAT_HEALTH_INTERVAL=0 AUTONAMA_BEAT_UPDATE_SYMBOLS=AAA/USDT "$BIN" serve \
    >"$work/solo.out" 2>"$work/solo.err" &
ps=$!
serve_pids=$ps
for _ in $(seq 1 200); do
    [ "$(psql_pg "SELECT count(*) FROM trading.ohlc_data")" -ge 5000 ] && break
    sleep 0.05
done
t0=$(now_ms)
kill -TERM $ps
wait $ps
rc=$?
t1=$(now_ms)
serve_pids=""
slow 0
stored=$(psql_pg "SELECT count(*) FROM trading.ohlc_data")
check "SIGTERM during a backfill: exit 0 within 10 s (exit $rc in $((t1 - t0)) ms, $stored candles stored)" \
    test $rc = 0 -a $((t1 - t0)) -lt 10000 -a "$stored" -lt 43200
check "the backfill run is marked INTERRUPTED" \
    test "$(psql_pg "SELECT state FROM autonama.task_runs WHERE instance = 'solo' AND name = 'update_market_data'")" = INTERRUPTED
# an instance that dies (SIGKILL) mid-run: the next start marks its run INTERRUPTED
slow 0.05
AUTONAMA_INGEST_LOOKBACK=43200 AUTONAMA_INSTANCE=dead AUTONAMA_FALLBACK_PATH=$work/fb-dead.duckdb \
    AUTONAMA_HTTP_ADDR=127.0.0.1:0 AUTONAMA_BEAT_UPDATE_INTERVAL=3600 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
    AUTONAMA_BEAT_HEALTH_INTERVAL=0 AUTONAMA_BEAT_UPDATE_SYMBOLS=BBB/USDT "$BIN" serve \
    >"$work/dead.out" 2>"$work/dead.err" &
pd=$!
serve_pids=$pd
for _ in $(seq 1 200); do
    [ "$(psql_pg "SELECT count(*) FROM autonama.task_runs WHERE instance = 'dead' AND state = 'PROGRESS'")" = 1 ] && break
    sleep 0.05
done
kill -9 $pd
wait $pd 2>/dev/null
slow 0
sleep 5.5
AUTONAMA_TASK_STALE_AFTER=5 AUTONAMA_INSTANCE=next AUTONAMA_FALLBACK_PATH=$work/fb-next.duckdb \
    AUTONAMA_HTTP_ADDR=127.0.0.1:0 AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
    AUTONAMA_BEAT_HEALTH_INTERVAL=0 "$BIN" serve >"$work/next.out" 2>"$work/next.err" &
pn=$!
serve_pids=$pn
sleep 1.5
kill -TERM $pn
wait $pn
serve_pids=""
check "a run whose instance died is marked INTERRUPTED on the next start" \
    test "$(psql_pg "SELECT state FROM autonama.task_runs WHERE instance = 'dead'")" = INTERRUPTED
# a serve that starts while a command-line ingest runs leaves that run alone:
# the command line heartbeats its run too (issue 11, fault 9; before, serve
# marked it INTERRUPTED once its last progress write was stale)
slow 0.25
AUTONAMA_TASK_STALE_AFTER=5 "$BIN" ingest --symbols CCC/USDT --since 2024-01-01 --until 2024-01-31 \
    >"$work/cli-hb.json" 2>"$work/cli-hb.err" &
pc=$!
sleep 6.5
AUTONAMA_TASK_STALE_AFTER=5 AUTONAMA_INSTANCE=late AUTONAMA_FALLBACK_PATH=$work/fb-late.duckdb \
    AUTONAMA_HTTP_ADDR=127.0.0.1:0 AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
    AUTONAMA_BEAT_HEALTH_INTERVAL=0 "$BIN" serve >"$work/late.out" 2>"$work/late.err" &
pl=$!
serve_pids=$pl
for _ in $(seq 1 100); do
    grep -q 'scheduler started' "$work/late.err" && break
    sleep 0.05
done
hb_state=$(psql_pg "SELECT state FROM autonama.task_runs WHERE instance LIKE '%:$pc'")
kill -TERM $pl
wait $pl
serve_pids=""
wait $pc
rc=$?
slow 0
check "a serve starting during a command-line ingest leaves its run PROGRESS (saw '$hb_state')" \
    test "$hb_state" = PROGRESS
check "that ingest ends SUCCESS (exit $rc)" \
    test "$rc/$(psql_pg "SELECT state FROM autonama.task_runs WHERE id = '$(json "$work/cli-hb.json" "j['task']['id']")'")" = 0/SUCCESS
check "serve marked no live run INTERRUPTED" bash -c "! grep -q 'marked INTERRUPTED' '$work/late.err'"
"$BIN" ingest --symbols AAA/USDT --since 2024-01-01 --until 2024-01-31 >"$work/again.json" 2>/dev/null
check "the next run completes the data with no gaps" same_as_server AAA/USDT
check "task history survives restarts" \
    test "$(psql_pg "SELECT count(*) FROM autonama.task_runs")" -gt "$before_ids"
"$BIN" tasks --limit 3 >"$work/list.json" 2>/dev/null
check "autonama tasks lists the newest runs first ($(json "$work/list.json" "[(t['name'], t['state']) for t in j['tasks']]"))" \
    test "$(json "$work/list.json" "(j['count'], j['tasks'][0]['name'], j['tasks'][0]['state'])")" = "(3, 'update_market_data', 'SUCCESS')"
"$BIN" tasks show no-such-id >/dev/null 2>&1
check "tasks show of an unknown id fails (exit 1)" test $? = 1
"$BIN" tasks run calculate_indicators_for_symbol '["AAA/USDT"]' --timeframes 1m >"$work/run.json" 2>/dev/null
check "tasks run NAME ARGS runs a task with the seed's positional args, recorded" \
    test "$(json "$work/run.json" "(j['status'], j['approach'], j['series'][0]['symbol'], j['task']['state'])")/$(psql_pg "SELECT state FROM autonama.task_runs WHERE id = '$(json "$work/run.json" "j['task']['id']")'")" = "('completed', 'postgres_first', 'AAA/USDT', 'SUCCESS')/SUCCESS"

# ---- serve while the primary is down, then back ---------------------------------------
echo "# serve through an outage"
psql_pg "TRUNCATE trading.ohlc_data, trading.ohlc_series, trading.ohlc_1h, trading.ohlc_1d; DELETE FROM autonama.task_runs" >/dev/null
pg_stop
AUTONAMA_INSTANCE=outage AUTONAMA_FALLBACK_PATH=$work/fb-outage.duckdb AUTONAMA_HTTP_ADDR=127.0.0.1:0 \
    AUTONAMA_BEAT_UPDATE_INTERVAL=1 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_BEAT_HEALTH_INTERVAL=0 \
    AUTONAMA_BEAT_UPDATE_SYMBOLS=CCC/USDT AUTONAMA_INGEST_LOOKBACK=2000 "$BIN" serve \
    >"$work/outage.out" 2>"$work/outage.err" &
po=$!
serve_pids=$po
wait_log() { # pattern file: up to 30 s
    for _ in $(seq 1 300); do
        grep -q "$1" "$2" && return 0
        sleep 0.1
    done
    return 1
}
wait_log 'task finished.*approach=duckdb_fallback' "$work/outage.err"
pg_start
wait_log 'primary is back: replaying' "$work/outage.err"
wait_log 'task finished.*approach=postgres_first' "$work/outage.err"
kill -TERM $po
wait $po
ro=$?
serve_pids=""
check "serve through an outage exits 0 ($ro)" test $ro = 0
check "runs during the outage went to the fallback and were replayed into the task table" \
    test "$(psql_pg "SELECT count(*) > 0 FROM autonama.task_runs WHERE instance = 'outage' AND approach = 'duckdb_fallback' AND state = 'SUCCESS'")" = t
check "runs after the outage ran on the primary" \
    test "$(psql_pg "SELECT count(*) > 0 FROM autonama.task_runs WHERE instance = 'outage' AND approach = 'postgres_first' AND state = 'SUCCESS'")" = t
AUTONAMA_FALLBACK_PATH=$work/fb-outage.duckdb "$BIN" sync >"$work/sync-outage.json" 2>/dev/null
check "the fallback file was emptied by the automatic replay" \
    test "$(json "$work/sync-outage.json" "(j['synced']['candles'], j['synced']['tasks'])")" = "(0, 0)"
check "the candles fetched during the outage reached the primary, no gap" \
    test "$(psql_pg "SELECT count(*) = extract(epoch FROM max(\"timestamp\") - min(\"timestamp\")) / 60 + 1 AND count(*) >= 1999 FROM trading.ohlc_data WHERE symbol = 'CCC/USDT'")" = t

# ---- the fault test on TimescaleDB ------------------------------------------------
echo "# fault test on TimescaleDB (PGlite)"
if ts_start; then
    use_ts
    fault_test timescaledb ts_stop ts_restart_fresh sync
    ts_stop
else
    bad "the scratch TimescaleDB server did not start: $(tail -3 "$work/ts.log")"
fi

finish
