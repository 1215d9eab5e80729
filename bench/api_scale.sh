#!/usr/bin/env bash
# bench/api_scale: the varied-URL workload of issue 12, what charting clients
# do and what no reply cache can serve: every request asks
#   GET /api/v1/data/ohlc?symbol=<random of 4>&timeframe=1m&limit=500&order=asc&start=<random>
# wrk with 64 connections on loopback. Side by side in one run, per store:
#   - autonama with the reply cache off and the block cache off
#     (AUTONAMA_HTTP_BLOCK_CACHE_MB=0), the reply cache off and the block
#     cache on (its default), then both on; the rows are checked again
#     after each load (from a warm block cache) and its counters printed;
#   - on PostgreSQL, the seed's stack (bench/peer: FastAPI + uvicorn 2 workers +
#     psycopg2, pinned in .deps/venv-peer) on the same database, same URLs;
#   - nginx serving a static body of the same size (the machine's ceiling).
# Before measuring, 20 random URLs are fetched from autonama (and the peer)
# and their candles compared with the store's rows read by psql (PostgreSQL)
# or with the generated file (DuckDB): same rows, same values.
# Prints req/s, p50, p99 and errors (non-2xx + socket) of each, and the ratios.
#
#   bench/api_scale.sh [duckdb|postgres|all]   (postgres needs AUTONAMA_TEST_PG:
#                                               scripts/run-bench api_scale)
# Environment: AN_BENCH_ROWS (1000000: the candles of all 4 symbols together),
# AN_BENCH_SECONDS (10), AN_BENCH_CONNECTIONS (64), AN_BENCH_THREADS (2),
# AN_BENCH_WARM (2: seconds of the same load before each measure),
# AN_BENCH_BLOCK_MB (unset: the block cache's default size; /metrics'
# autonama_http_block_max_bytes is printed), AN_BENCH_TMP (/tmp: where the
# generated files and the DuckDB store go, removed at the end),
# AN_BENCH_DUCKDB_READERS (e.g. "1 4": DuckDB with the reply cache off once per
# AUTONAMA_DUCKDB_READERS value, same run, with the ratio to the first; unset:
# once, with the default), AN_BENCH_BLOCK_WARM (unset: the default, true;
# false: the block cache fills as requests ask), AN_BENCH_WARM_WAIT (900:
# seconds to wait for the block cache's warming before measuring).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AN_BIN:-$root/build/autonama}
SECS=${AN_BENCH_SECONDS:-10}
CONNS=${AN_BENCH_CONNECTIONS:-64}
THREADS=${AN_BENCH_THREADS:-2}
ROWS=${AN_BENCH_ROWS:-1000000}
NSYM=4
which=${1:-all}
for t in wrk curl psql; do
    command -v $t >/dev/null || { echo "bench/api_scale: $t not found (scripts/bootstrap installs it)" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench/api_scale: nginx not found (scripts/bootstrap installs nginx-light)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench/api_scale: $BIN not built (make build)" >&2; exit 1; }

# the peer's own venv, pinned, installed once
PEER_VENV=$root/.deps/venv-peer
if ! "$PEER_VENV/bin/python" -c 'import fastapi, uvicorn, psycopg2' 2>/dev/null; then
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/python" -m pip install -q -r "$root/bench/peer/requirements.txt" ||
        { echo "bench/api_scale: could not install bench/peer/requirements.txt" >&2; exit 1; }
fi

PY=$root/.deps/venv/bin/python # with duckdb (the generator and the DuckDB checks)
"$PY" -c 'import duckdb' 2>/dev/null || { echo "bench/api_scale: $PY has no duckdb (scripts/bootstrap)" >&2; exit 1; }
WARM=${AN_BENCH_WARM:-2}
work=$(mktemp -d "${AN_BENCH_TMP:-/tmp}/autonama-bench-scale.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
wait_url() { # url
    for _ in $(seq 1 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
    return 1
}
stop_all() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    pids=()
}

# ROWS/NSYM 1m candles per symbol (random walks), one CSV with a header per
# symbol, written by DuckDB (.deps/venv's duckdb, pinned by scripts/bootstrap):
# 50 million candles in about 2 minutes, where a Python loop writing JSON
# took 5 minutes for 10 million
PER=$((ROWS / NSYM))
T0=1577836800000 # 2020-01-01
t_gen=$SECONDS
"$PY" - "$work" "$PER" "$NSYM" "$T0" <<'PY'
import sys, duckdb
work, n, nsym, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute("SET threads = 2")
for k in range(nsym):
    base = 1000.0 * (k + 1)
    # a log-normal walk of the close (Box-Muller normals, 0.1% a minute);
    # open the previous close, high and low around them, all to 2 decimals
    con.execute(f"""
COPY (
  WITH r AS (SELECT i, sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z,
                    random() AS u1, random() AS u2, random() AS uv FROM range({n}) t(i)),
  w AS (SELECT i, u1, u2, uv,
               {base} * exp(0.001 * sum(z) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING)) AS c
        FROM r),
  x AS (SELECT i, u1, u2, uv, round(coalesce(lag(c) OVER (ORDER BY i), {base}), 2) AS o,
               round(greatest(c, 1.0), 2) AS c FROM w)
  SELECT {t0} + i * 60000 AS timestamp, o AS open,
         round(greatest(o, c) * (1 + 0.0005 * u1), 2) AS high,
         round(least(o, c) * (1 - 0.0005 * u2), 2) AS low, c AS close,
         round(0.1 + 49.9 * uv, 6) AS volume
  FROM x ORDER BY i
) TO '{work}/S{k}_USDT-1m.csv' (HEADER, DELIMITER ',')""")
PY
echo "# $ROWS candles generated in $((SECONDS - t_gen)) s"

# wrk's Lua: a random symbol and start per request; counts non-2xx itself
cat >"$work/varied.lua" <<EOF
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
local nsym, t0, span = $NSYM, $T0, ($PER - 500) * 60000
request = function()
  local s = math.random(0, nsym - 1)
  local start = t0 + math.random(0, span / 60000) * 60000
  return wrk.format("GET", "/api/v1/data/ohlc?symbol=S" .. s .. "/USDT&timeframe=1m&limit=500&order=asc&start=" .. start)
end
EOF

# run_wrk URL [lua] -> "req/s p50_ms p99_ms errors"
run_wrk() {
    local out
    if [ -n "${2:-}" ]; then
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -s "$2" "$1" 2>&1)
    else
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$1" 2>&1)
    fi
    python3 - "$out" <<'PY'
import re, sys
out = sys.argv[1]
def ms(v):
    m = re.match(r"([0-9.]+)(us|ms|s)$", v)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)] if m else float("nan")
rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)
print("%.0f %.2f %.2f %d" % (float(rps.group(1)) if rps else 0,
                             ms(p50.group(1)) if p50 else float("nan"),
                             ms(p99.group(1)) if p99 else float("nan"), errors))
PY
}

# check_rows BASE MODE: 20 random URLs, candles equal to the store's rows
check_rows() {
    "$PY" - "$1" "$2" "$work" "$NSYM" "$T0" "$PER" <<'PY'
import duckdb, json, os, random, subprocess, sys, urllib.request
base, mode, work, nsym, t0, per = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
random.seed(7)
files = {}
for i in range(20):
    s = random.randrange(nsym)
    start = t0 + random.randrange(per - 500) * 60000
    url = f"{base}/api/v1/data/ohlc?symbol=S{s}/USDT&timeframe=1m&limit=500&order=asc&start={start}"
    got = [(c["ts"], c["open"], c["high"], c["low"], c["close"], c["volume"])
           for c in json.load(urllib.request.urlopen(url))["candles"]]
    if mode == "postgres":
        sql = ("SELECT (extract(epoch FROM timestamp) * 1000)::bigint, open, high, low, close, volume "
               "FROM trading.ohlc_data WHERE symbol = 'S%d/USDT' AND timeframe = '1m' AND "
               "timestamp >= to_timestamp(%d / 1000.0) ORDER BY timestamp LIMIT 500" % (s, start))
        out = subprocess.run(["psql", "-X", "-qAt", "-F", ",", "-c", sql], capture_output=True,
                             text=True, check=True).stdout.split()
        want = [tuple([int(r.split(",")[0])] + [float(x) for x in r.split(",")[1:]]) for r in out]
    else:
        want = [tuple([int(r[0])] + [float(x) for x in r[1:]]) for r in duckdb.sql(
            f"SELECT * FROM read_csv('{work}/S{s}_USDT-1m.csv', header = true) "
            f"WHERE timestamp >= {start} ORDER BY timestamp LIMIT 500").fetchall()]
    if got != want:
        print(f"bench/api_scale: {url}: {len(got)} candles differ from the store's {len(want)}")
        sys.exit(1)
PY
}

start_nginx() { # port body
    mkdir -p "$work/nginx/www" "$work/nginx/tmp"
    cp "$2" "$work/nginx/www/ohlc.json"
    chmod a+rx "$work" "$work/nginx" "$work/nginx/www"
    chmod a+r "$work/nginx/www/ohlc.json"
    cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$1 reuseport;
        location / { root $work/nginx/www; default_type application/json; }
    }
}
EOF
    "$NGINX" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
    pids+=($!)
    wait_url "http://127.0.0.1:$1/ohlc.json"
}

# wait_warm BASE LABEL: until the block cache's warming is done (it fills
# from the store after serve starts; AN_BENCH_WARM_WAIT seconds at most,
# 900); prints how long the fill took and what it loaded
wait_warm() {
    local t0=$SECONDS m done=0
    while [ $((SECONDS - t0)) -lt "${AN_BENCH_WARM_WAIT:-900}" ]; do
        m=$(curl -s -m 10 "$1/metrics" || true)
        # here-strings, not pipes: with pipefail a `grep -q` that stops
        # reading early fails the pipe (printf's SIGPIPE)
        grep -q '^autonama_http_block_warm_done 1' <<<"$m" && { done=1; break; }
        # a page without the line: no warming in this binary (an empty or
        # cut one, a slow answer under load: asked again)
        grep -q '^autonama_http_block_max_bytes' <<<"$m" &&
            ! grep -q '^autonama_http_block_warm_done' <<<"$m" && break
        sleep 0.5
    done
    echo "# $2: warm fill $([ $done = 1 ] && echo done || echo 'not done') after $((SECONDS - t0)) s:" \
        $(grep -E '^autonama_http_block_(warm_blocks_total|warm_bytes_total|bytes|count) ' <<<"$m")
}

results=()
bench_mode() {
    local mode=$1
    unset POSTGRES_SERVER POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB AUTONAMA_STORE
    export AUTONAMA_LOG_LEVEL=warn DUCKDB_PATH=$work/bench.duckdb
    # serve only: no beat task runs beside the measured requests
    export AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_BEAT_HEALTH_INTERVAL=0
    if [ "$mode" = postgres ]; then
        local ci=${AUTONAMA_TEST_PG:?postgres mode needs AUTONAMA_TEST_PG: run scripts/run-bench api_scale}
        export POSTGRES_SERVER=$(kv "$ci" host) POSTGRES_PORT=$(kv "$ci" port)
        export POSTGRES_USER=$(kv "$ci" user) POSTGRES_PASSWORD=$(kv "$ci" password)
        export POSTGRES_DB=$(kv "$ci" dbname) AUTONAMA_STORE=postgres
        export PGHOST=$POSTGRES_SERVER PGPORT=$POSTGRES_PORT PGUSER=$POSTGRES_USER
        export PGPASSWORD=$POSTGRES_PASSWORD PGDATABASE=$POSTGRES_DB
        psql -X -q -c "SET client_min_messages=warning" \
            -c "DROP SCHEMA IF EXISTS trading CASCADE; DROP SCHEMA IF EXISTS analytics CASCADE;
                DROP SCHEMA IF EXISTS optimization CASCADE; DROP SCHEMA IF EXISTS autonama CASCADE" >/dev/null
    else
        rm -f "$work/bench.duckdb" "$work/bench.duckdb.wal"
    fi
    "$BIN" migrate >/dev/null
    local t0=$SECONDS
    local k
    for k in $(seq 0 $((NSYM - 1))); do
        "$BIN" import --symbol "S$k/USDT" --timeframe 1m "$work/S${k}_USDT-1m.csv" >/dev/null
    done
    [ "$mode" = postgres ] && psql -X -q -c "VACUUM (ANALYZE) trading.ohlc_data" >/dev/null
    echo "# $mode: $ROWS candles ($NSYM symbols) imported in $((SECONDS - t0)) s"

    local conf cache blocks readers who port url confs=(off:0: off:on: on:on:)
    # the reply cache off with the block cache off, then on (its default
    # size), then both on; AN_BENCH_DUCKDB_READERS="1 2 4 8" adds runs with
    # both caches off and that many DuckDB read connections
    if [ "$mode" = duckdb ] && [ -n "${AN_BENCH_DUCKDB_READERS:-}" ]; then
        for readers in $AN_BENCH_DUCKDB_READERS; do confs+=("off:0:$readers"); done
    fi
    for conf in "${confs[@]}"; do
        IFS=: read -r cache blocks readers <<<"$conf"
        who=autonama-cache-$cache
        [ "$cache:$blocks" = off:0 ] && who=autonama-cache-off-blocks-off
        [ -n "$readers" ] && who=$who-readers-$readers
        port=$(free_port)
        local env=(AUTONAMA_HTTP_ADDR=127.0.0.1:$port)
        [ "$cache" = off ] && env+=(AUTONAMA_HTTP_CACHE_TTL_MS=0)
        [ "$blocks" = 0 ] && env+=(AUTONAMA_HTTP_BLOCK_CACHE_MB=0)
        [ "$blocks" != 0 ] && [ -n "${AN_BENCH_BLOCK_MB:-}" ] && env+=(AUTONAMA_HTTP_BLOCK_CACHE_MB=$AN_BENCH_BLOCK_MB)
        [ -n "$readers" ] && env+=(AUTONAMA_DUCKDB_READERS=$readers)
        [ -n "${AN_BENCH_BLOCK_WARM:-}" ] && env+=(AUTONAMA_HTTP_BLOCK_WARM=$AN_BENCH_BLOCK_WARM)
        env "${env[@]}" "$BIN" serve >/dev/null 2>"$work/serve.err" &
        pids+=($!)
        url="http://127.0.0.1:$port/api/v1/data/ohlc?symbol=S0/USDT&timeframe=1m&limit=500&order=asc&start=$T0"
        wait_url "$url" || { echo "bench/api_scale: serve did not answer:" >&2; cat "$work/serve.err" >&2; return 1; }
        [ "$blocks" != 0 ] && wait_warm "http://127.0.0.1:$port" "$mode $who"
        check_rows "http://127.0.0.1:$port" "$mode"
        curl -s -o "$work/body.json" "$url"
        wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$work/varied.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
        echo "# $mode $who: load average $(cut -d' ' -f1-3 /proc/loadavg)"
        results+=("$mode $who $(run_wrk "http://127.0.0.1:$port" "$work/varied.lua")")
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then
            echo "bench/api_scale: serve died under the load ($who):" >&2
            tail -5 "$work/serve.err" >&2
            results+=("$mode $who-DIED 0 0 0 1")
        else
            check_rows "http://127.0.0.1:$port" "$mode" # the rows again, from a warm cache
            curl -s "http://127.0.0.1:$port/metrics" | grep -E '^autonama_http_block_(hits|misses|passed|evictions|warm_blocks|warm_bytes)_total|^autonama_http_block_(bytes|count|max_bytes) ' |
                tr '\n' ' ' | sed "s/^/# $mode $who: /" && echo
        fi
        stop_all
    done
    if [ "$mode" = postgres ]; then
        port=$(free_port)
        (cd "$root/bench/peer" && exec "$PEER_VENV/bin/python" -m uvicorn app:app --host 127.0.0.1 --port "$port" \
            --workers 2 --log-level warning) 2>"$work/peer.err" &
        pids+=($!)
        wait_url "http://127.0.0.1:$port/api/v1/data/ohlc?symbol=S0/USDT&timeframe=1m&limit=500&order=asc&start=$T0" ||
            { echo "bench/api_scale: the peer did not answer:" >&2; cat "$work/peer.err" >&2; return 1; }
        check_rows "http://127.0.0.1:$port" "$mode"
        wrk -t"$THREADS" -c"$CONNS" -d"${WARM}s" -s "$work/varied.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
        echo "# $mode peer-fastapi: load average $(cut -d' ' -f1-3 /proc/loadavg)"
        results+=("$mode peer-fastapi $(run_wrk "http://127.0.0.1:$port" "$work/varied.lua")")
        stop_all
    fi
    port=$(free_port)
    start_nginx "$port" "$work/body.json"
    results+=("$mode nginx-static $(run_wrk "http://127.0.0.1:$port/ohlc.json")")
    stop_all
}

case $which in
duckdb | postgres) bench_mode "$which" ;;
all) bench_mode duckdb && bench_mode postgres ;;
*) echo "usage: bench/api_scale.sh [duckdb|postgres|all]" >&2; exit 2 ;;
esac

python3 - "$ROWS" "$CONNS" "$SECS" "${results[@]}" <<'PY'
import sys
rows, conns, secs = sys.argv[1:4]
res = [r.split() for r in sys.argv[4:]]
print(f"bench/api_scale: {rows} candles, {conns} connections, {secs} s each, random symbol and start, limit 500")
print(f"{'store':9} {'server':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
by = {}
for mode, who, rps, p50, p99, err in res:
    by[(mode, who)] = float(rps)
    print(f"{mode:9} {who:22} {float(rps):9.0f} {float(p50):8.2f} {float(p99):8.2f} {int(err):7d}")
offs = [w for m, w, *_ in res if m == "duckdb" and w.startswith("autonama-cache-off-r")]
for w in offs[1:]:
    if by[("duckdb", offs[0])] > 0:
        print(f"duckdb: {w} / {offs[0]} = {by[('duckdb', w)] / by[('duckdb', offs[0])]:.2f}x req/s")
for mode in ("duckdb", "postgres"):
    off = by.get((mode, "autonama-cache-off")) or (by.get((mode, offs[-1])) if offs and mode == "duckdb" else None)
    if off is None:
        continue
    if (mode, "peer-fastapi") in by and by[(mode, "peer-fastapi")] > 0:
        print(f"{mode}: autonama (cache off) / peer = {off / by[(mode, 'peer-fastapi')]:.1f}x (target >= 20x)")
    if by.get((mode, "autonama-cache-off-blocks-off")):
        print(f"{mode}: reply cache off, block cache on / off = {off / by[(mode, 'autonama-cache-off-blocks-off')]:.2f}x")
    if by.get((mode, "nginx-static")):
        print(f"{mode}: autonama (cache off) / nginx static = {off / by[(mode, 'nginx-static')]:.3f}")
PY
