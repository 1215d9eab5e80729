#!/usr/bin/env bash
# bench/api: wrk on loopback, 64 connections, against
#   GET /api/v1/data/ohlc?symbol=BENCH/USDT&timeframe=1m&limit=500
# served by `autonama serve` over a store of 1,000,000 1m candles, side by side
# in the same run with nginx serving the identical reply body as a static file
# (the ceiling). Prints requests/s, p99 latency and errors of both, and our
# share of nginx's requests/s, and the CPU each server spends per request
# (the figure a shared, noisy machine disturbs least). Target: >= 0.3 of
# nginx, p99 < 20 ms, 0 errors.
#
#   bench/api.sh [duckdb|postgres|all]    (default: all; postgres needs
#                                          AUTONAMA_TEST_PG: scripts/run-bench api)
# Then the varied-URL workload (random `start`, limit 500) with the reply cache
# off and on: requests/s, p50, p99, errors (issue 12).
# Environment: AN_BENCH_SECONDS (10), AN_BENCH_ROUNDS (3), AN_BENCH_CONNECTIONS (64),
# AN_BENCH_THREADS (wrk threads, 2), AN_BENCH_ROWS (1000000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AN_BIN:-$root/build/autonama}
SECS=${AN_BENCH_SECONDS:-10}
CONNS=${AN_BENCH_CONNECTIONS:-64}
THREADS=${AN_BENCH_THREADS:-2}
ROWS=${AN_BENCH_ROWS:-1000000}
ROUNDS=${AN_BENCH_ROUNDS:-3}
which=${1:-all}
command -v wrk >/dev/null || { echo "bench/api: wrk not found (scripts/bootstrap installs it)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "bench/api: nginx not found (scripts/bootstrap installs nginx-light)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "bench/api: $BIN not built (make build)" >&2; exit 1; }

work=$(mktemp -d /tmp/autonama-bench-api.XXXXXX)
serve_pid=
nginx_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# 1,000,000 1m candles, a random walk, as a freqtrade JSON file (the name
# gives the symbol and timeframe)
python3 - "$work/BENCH_USDT-1m.json" "$ROWS" <<'PY'
import json, random, sys
random.seed(42)
n = int(sys.argv[2])
t = 1577836800000  # 2020-01-01
p = 7200.0
rows = []
for i in range(n):
    o = p
    c = max(1.0, o + random.gauss(0, o * 0.001))
    h = max(o, c) + abs(random.gauss(0, o * 0.0005))
    l = min(o, c) - abs(random.gauss(0, o * 0.0005))
    rows.append([t + i * 60000, round(o, 2), round(h, 2), round(l, 2), round(c, 2),
                 round(random.uniform(0.1, 50), 6)])
    p = c
with open(sys.argv[1], "w") as f:
    json.dump(rows, f)
PY

URL_PATH="/api/v1/data/ohlc?symbol=BENCH/USDT&timeframe=1m&limit=500"

# wrk's summary -> "req/s p99_ms errors"; a second argument is a Lua script
# (the varied-URL workload), then the output is "req/s p50_ms p99_ms errors"
ms() {
    python3 -c "import sys,re; v=sys.argv[1]; m=re.match(r'([0-9.]+)(us|ms|s)', v); \
print('%.2f' % (float(m.group(1)) * {'us': 1e-3, 'ms': 1, 's': 1e3}[m.group(2)]) if m else 'nan')" "$1"
}
run_wrk() {
    local out
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency ${2:+-s "$2"} "$1" 2>&1)
    printf '%s\n' "$out" | awk '/requests in/ {print $1}' >"$work/wrk.n"
    local rps p99 non2xx sock p50
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ {print $2}')
    p50=$(printf '%s\n' "$out" | awk '$1 == "50%" {print $2}')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx or 3xx responses:/ {print $5}')
    sock=$(printf '%s\n' "$out" | awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}')
    # p99 in ms whatever unit wrk chose
    p99=$(ms "$p99")
    if [ -n "${2:-}" ]; then
        echo "$rps $(ms "$p50") $p99 $(( ${non2xx:-0} + ${sock:-0} ))"
    else
        echo "$rps $p99 $(( ${non2xx:-0} + ${sock:-0} ))"
    fi
}

# CPU time (user + system, clock ticks) of processes and their children's
# threads: serve, or nginx's master and workers. CPU per request is the figure
# a shared, noisy machine disturbs least (req/s moves with whatever else runs)
cpu_ticks() {
    local t=0 p
    for p in "$@" $(pgrep -P "$1" 2>/dev/null); do
        [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$t"
}
# run_wrk on URL $1 while measuring the CPU of processes $2...: "req/s,p99,errors,us_cpu_per_request"
run_wrk_cpu() {
    local url=$1 t0 t1 raw
    shift
    t0=$(cpu_ticks "$@")
    raw=$(run_wrk "$url")
    t1=$(cpu_ticks "$@")
    python3 -c "import sys; n=int(sys.argv[3] or 0); \
print('%s,%.2f' % (sys.argv[4], (int(sys.argv[2]) - int(sys.argv[1])) / $(getconf CLK_TCK) / n * 1e6 if n else float('nan')))" \
        "$t0" "$t1" "$(cat "$work/wrk.n")" "$(echo $raw | tr ' ' ',')"
}

# The varied-URL workload (what charting clients do; it defeats a reply
# cache): ohlc pages of limit 500 whose `start` is drawn at random over the
# stored range, with the reply cache off and on. A few pages are checked
# first (500 candles from `start` on, as the store holds them).
bench_varied() {
    local aport=$1 mode=$2
    cat >"$work/varied.lua" <<EOF
math.randomseed(os.time())
request = function()
    local s = 1577836800000 + math.random(0, $ROWS - 501) * 60000
    return wrk.format("GET", "/api/v1/data/ohlc?symbol=BENCH/USDT&timeframe=1m&order=asc&limit=500&start=" .. s)
end
EOF
    local ttl res=""
    for ttl in 0 1000; do
        AUTONAMA_HTTP_CACHE_TTL_MS=$ttl AUTONAMA_HTTP_ADDR=127.0.0.1:$aport "$BIN" serve \
            >/dev/null 2>"$work/serve.err" &
        serve_pid=$!
        for _ in $(seq 1 100); do
            curl -sf -o /dev/null "http://127.0.0.1:$aport/health" && break
            sleep 0.1
        done
        python3 - "http://127.0.0.1:$aport" "$ROWS" <<'PY' || { echo "bench/api: varied pages wrong" >&2; return 1; }
import json, random, sys, urllib.request
base, rows = sys.argv[1], int(sys.argv[2])
for _ in range(5):
    s = 1577836800000 + random.randrange(rows - 501) * 60000
    url = "%s/api/v1/data/ohlc?symbol=BENCH/USDT&timeframe=1m&order=asc&limit=500&start=%d" % (base, s)
    c = json.load(urllib.request.urlopen(url))["candles"]
    assert len(c) == 500 and all(k["ts"] == s + i * 60000 for i, k in enumerate(c)), url
PY
        res="$res $(run_wrk "http://127.0.0.1:$aport" "$work/varied.lua" | tr ' ' ',')"
        kill -0 "$serve_pid" 2>/dev/null || res="$res died"
        kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
        serve_pid=
    done
    python3 - "$mode" "$CONNS" "$SECS" "$ROWS" $res <<'PY'
import sys
mode, conns, secs, rows = sys.argv[1:5]
print("bench/api varied URLs (%s store, %s 1m candles): GET ohlc limit=500, random start,"
      " wrk %s connections, %s s" % (mode, format(int(rows), ","), conns, secs))
print("  %-22s %12s %8s %8s %8s" % ("", "requests/s", "p50 ms", "p99 ms", "errors"))
for name, r in zip(("reply cache off", "reply cache on"), sys.argv[5:7]):
    rps, p50, p99, err = r.split(",")
    print("  %-22s %12.0f %8s %8s %8s" % (name, float(rps), p50, p99, err))
if "died" in sys.argv[5:]:
    print("  the server DIED under the load")
PY
}

start_nginx() {
    local port=$1
    mkdir -p "$work/nginx/www" "$work/nginx/tmp"
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
    open_file_cache max=16;
    open_file_cache_valid 60s;
    tcp_nopush on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port reuseport;
        location / { root $work/nginx/www; default_type application/json; }
    }
}
EOF
    "$NGINX" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
    nginx_pid=$!
    for _ in $(seq 1 50); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/ohlc.json" && return 0
        sleep 0.1
    done
    echo "bench/api: nginx did not start:" >&2
    cat "$work/nginx/error.log" >&2
    return 1
}

bench_mode() {
    local mode=$1
    unset POSTGRES_SERVER POSTGRES_PORT POSTGRES_USER POSTGRES_PASSWORD POSTGRES_DB AUTONAMA_STORE
    export AUTONAMA_LOG_LEVEL=warn DUCKDB_PATH=$work/bench.duckdb
    # serve only: no beat task (an ingest from an exchange this machine
    # cannot reach, indicators) runs beside the measured requests
    export AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_BEAT_HEALTH_INTERVAL=0
    if [ "$mode" = postgres ]; then
        local ci=${AUTONAMA_TEST_PG:?postgres mode needs AUTONAMA_TEST_PG: run scripts/run-bench api}
        export POSTGRES_SERVER=$(kv "$ci" host) POSTGRES_PORT=$(kv "$ci" port)
        export POSTGRES_USER=$(kv "$ci" user) POSTGRES_PASSWORD=$(kv "$ci" password)
        export POSTGRES_DB=$(kv "$ci" dbname) AUTONAMA_STORE=postgres
        PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -h "$POSTGRES_SERVER" -p "$POSTGRES_PORT" \
            -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SET client_min_messages=warning" \
            -c "DROP SCHEMA IF EXISTS trading CASCADE; DROP SCHEMA IF EXISTS analytics CASCADE;
                DROP SCHEMA IF EXISTS optimization CASCADE; DROP SCHEMA IF EXISTS autonama CASCADE" \
            >/dev/null
    else
        rm -f "$work/bench.duckdb" "$work/bench.duckdb.wal"
    fi
    "$BIN" migrate >/dev/null
    local t0=$SECONDS
    "$BIN" import "$work/BENCH_USDT-1m.json" >/dev/null
    if [ "$mode" = postgres ]; then
        # what autovacuum would do after a bulk load, done now rather than
        # in the middle of the measurement (it stalled replies for ~1 s there)
        PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -h "$POSTGRES_SERVER" -p "$POSTGRES_PORT" \
            -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "VACUUM (ANALYZE) trading.ohlc_data" >/dev/null
    fi
    echo "# $mode: imported $ROWS candles in $((SECONDS - t0)) s"

    local aport nport
    aport=$(free_port)
    AUTONAMA_HTTP_ADDR=127.0.0.1:$aport "$BIN" serve >/dev/null 2>"$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$aport/health" && break
        sleep 0.1
    done
    curl -sf -o "$work/body.json" "http://127.0.0.1:$aport$URL_PATH" ||
        { echo "bench/api: autonama did not answer:" >&2; cat "$work/serve.err" >&2; return 1; }
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); assert j['count'] == 500, j['count']" \
        "$work/body.json"
    nport=$(free_port)
    rm -rf "$work/nginx"
    mkdir -p "$work/nginx/www"
    cp "$work/body.json" "$work/nginx/www/ohlc.json"
    # nginx's workers may run as another user (www-data when started as root)
    chmod a+rx "$work" "$work/nginx" "$work/nginx/www"
    chmod a+r "$work/nginx/www/ohlc.json"
    start_nginx "$nport"
    # the same bytes from both
    curl -s -o "$work/a.json" "http://127.0.0.1:$aport$URL_PATH"
    curl -s -o "$work/n.json" "http://127.0.0.1:$nport/ohlc.json"
    cmp -s "$work/a.json" "$work/n.json" ||
        { echo "bench/api: the two bodies differ" >&2; return 1; }
    local size
    size=$(stat -c %s "$work/body.json")
    # warm up both, then measure alternately
    wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:$aport$URL_PATH" >/dev/null 2>&1
    wrk -t"$THREADS" -c"$CONNS" -d2s "http://127.0.0.1:$nport/ohlc.json" >/dev/null 2>&1
    local ours="" theirs="" raw r
    for r in $(seq 1 "$ROUNDS"); do # alternating, medians reported
        ours="$ours $(run_wrk_cpu "http://127.0.0.1:$aport$URL_PATH" "$serve_pid")"
        theirs="$theirs $(run_wrk_cpu "http://127.0.0.1:$nport/ohlc.json" "$nginx_pid")"
    done
    kill "$nginx_pid" && wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
    kill "$serve_pid" && wait "$serve_pid" 2>/dev/null || true
    serve_pid=
    bench_varied "$aport" "$mode"
    # for context: every request read from the store and encoded (reply cache off)
    AUTONAMA_HTTP_CACHE_TTL_MS=0 AUTONAMA_HTTP_ADDR=127.0.0.1:$aport "$BIN" serve >/dev/null \
        2>"$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 1 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$aport$URL_PATH" && break
        sleep 0.1
    done
    raw=$(run_wrk "http://127.0.0.1:$aport$URL_PATH")
    kill "$serve_pid" && wait "$serve_pid" 2>/dev/null || true
    serve_pid=
    python3 - "$mode" "$size" "$CONNS" "$SECS" "$ROWS" "$ours" "$theirs" $raw <<'PY'
import statistics, sys
mode, size, conns, secs, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def med(runs):
    runs = [r.split(",") for r in runs.split()]
    return (statistics.median(float(r[0]) for r in runs),
            "%.2f" % statistics.median(float(r[1]) for r in runs),
            str(sum(int(r[2]) for r in runs)), len(runs),
            statistics.median(float(r[3]) for r in runs))

o_rps, o_p99, o_err, n, o_cpu = med(sys.argv[6])
n_rps, n_p99, n_err, _, n_cpu = med(sys.argv[7])
print("bench/api (%s store, %s 1m candles): GET ohlc limit=500, %d-byte body, "
      "wrk %s connections, %d alternating rounds of %s s (medians; errors summed)"
      % (mode, format(int(rows), ","), size, conns, n, secs))
print("  %-22s %12s %10s %8s %14s" % ("", "requests/s", "p99 ms", "errors", "CPU us/request"))
print("  %-22s %12.0f %10s %8s %14.2f" % ("autonama serve", o_rps, o_p99, o_err, o_cpu))
print("  %-22s %12.0f %10s %8s %14.2f" % ("nginx (static file)", n_rps, n_p99, n_err, n_cpu))
r_rps, r_p99, r_err = sys.argv[8:11]
print("  %-22s %12.0f %10s %8s   (context: every request read from the store)" %
      ("autonama, cache off", float(r_rps), r_p99, r_err))
ratio = o_rps / n_rps if n_rps else float("nan")
verdict = "met" if ratio >= 0.3 and float(o_p99) < 20 and int(o_err) == 0 else "NOT met"
print("  ratio autonama/nginx requests/s: %.2f  (target >= 0.3, p99 < 20 ms, 0 errors: %s)"
      % (ratio, verdict))
print("  ratio autonama/nginx CPU per request: %.2f  (the server's own CPU, wrk's not counted)"
      % (o_cpu / n_cpu if n_cpu else float("nan")))
PY
}

case $which in
all)
    bench_mode duckdb
    if [ -n "${AUTONAMA_TEST_PG:-}" ]; then bench_mode postgres; fi
    ;;
duckdb | postgres) bench_mode "$which" ;;
*) echo "usage: bench/api.sh [duckdb|postgres|all]" >&2; exit 2 ;;
esac
