#!/usr/bin/env bash
# bench/realtime: the live path under load. The fake exchange serves N symbols
# (default 1,000) as 1m kline streams at 1 update per stream per second;
# `autonama serve` (AUTONAMA_REALTIME=true) streams them into PostgreSQL 15
# with AN_BENCH_CLIENTS (100) server-sent event clients connected, each
# subscribed to 100 symbols (curl, reading as fast as they can), plus one
# measuring client. Reported after AN_BENCH_SECONDS (300):
#   - CPU % of one core used by autonama (utime + stime from /proc);
#   - latency from the event's time (E, stamped by the fake as it sends) to
#     the row committed (autonama_realtime_store_lag_seconds{from="event"}:
#     the open candle waits for its coalesced flush, AUTONAMA_REALTIME_FLUSH_MS)
#     and to the SSE client receiving it (the measuring client: receive time
#     - E from the event id), p50 and p99, and its stages from /metrics (E ->
#     received, received -> handed to an SSE socket);
#   - messages, bad frames, store errors, SSE drops.
# Side by side in the same run (AN_BENCH_PEER=0 leaves it out): cryptofeed
# (PyPI, pinned below, installed here into .deps/venv-bench) with its Binance
# feed and its Postgres backend (bench/realtime_peer.py), consuming the same
# fake streams into the same PostgreSQL (table public.candles): its CPU %, its
# lag event -> row committed, and the CPU per message of both. cryptofeed
# accepts wss:// only: the fake serves the same streams over TLS on a second
# port for it (a self-signed certificate made here, trusted through
# SSL_CERT_FILE); autonama reads plain ws://, so the peer pays for TLS.
# cryptofeed 2.4.1: 3.x needs Python >= 3.13, the venv uses python3 (3.11).
# AN_BENCH_SERVE_ENV: more settings for serve, as NAME=value words (tests/cli/lib.sh
# clears the caller's AUTONAMA_* variables), e.g. AN_BENCH_SERVE_ENV=AUTONAMA_REALTIME_TICK_MS=0.
#   bench/realtime.sh   (AN_BIN, AUTONAMA_TEST_PG; scripts/run-bench realtime sets them)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AN_BIN:-$root/build/autonama}
PY=$root/.deps/venv/bin/python
N=${AN_BENCH_STREAMS:-1000}
SECS=${AN_BENCH_SECONDS:-300}
CLIENTS=${AN_BENCH_CLIENTS:-100}
PEER=${AN_BENCH_PEER:-1}
PEER_PY=$root/.deps/venv-bench/bin/python
if [ "$PEER" = 1 ] && ! "$PEER_PY" -c 'import cryptofeed, asyncpg' 2>/dev/null; then
    echo "# installing cryptofeed==2.4.1 asyncpg==0.32.0 into .deps/venv-bench"
    python3 -m venv "$root/.deps/venv-bench"
    "$root/.deps/venv-bench/bin/python" -m pip install -q --disable-pip-version-check cryptofeed==2.4.1 \
        asyncpg==0.32.0 >"$root/.deps/pip-bench.log" 2>&1 || {
        echo "bench/realtime: installing cryptofeed failed (.deps/pip-bench.log)" >&2
        exit 1
    }
fi
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through scripts/run-bench realtime}"
work=$(mktemp -d /tmp/autonama-bench-rt.XXXXXX)
SRC=$root
# shellcheck source=../tests/cli/lib.sh
. "$root/tests/cli/lib.sh"
serve_pid=""
cpids=()
peer_pid=""
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    for p in "${cpids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now=$(date +%s%3N)
syms=$("$PY" -c "
import string
names = []
for i in range($N):
    a = string.ascii_uppercase
    names.append('B' + a[i // 676 % 26] + a[i // 26 % 26] + a[i % 26] + 'USDT')
print(' '.join(names))")
gens=()
for s in $syms; do gens+=(--generate "$s:1m:$((now - 86400000)):$((now + 86400000))"); done
ws_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$PEER" = 1 ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
    wss_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    export FAKE_BINANCE_WSS_PORT=$wss_port FAKE_BINANCE_TLS_CERT=$work/cert.pem FAKE_BINANCE_TLS_KEY=$work/key.pem
fi
# every series' current block of candles stays cached (the default cache, 96
# blocks, would remake a 1,024-row block for nearly every event of 1,000 series)
"$PY" "$root/tests/fake_binance/server.py" --port 0 --ws-port "$ws_port" --weight-limit 100000000 \
    --cache-blocks $((2 * N + 100)) "${gens[@]}" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 300); do
    grep -q '^listening' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$work/server.out")
[ -n "$port" ] || { echo "bench/realtime: the fake exchange did not start: $(cat "$work/server.err")" >&2; exit 1; }

mode_env postgres
reset_mode postgres
slash=$(for s in $syms; do printf '%s/USDT,' "${s%USDT}"; done)
slash=${slash%,}
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$http_port
AUTONAMA_HTTP_ADDR=127.0.0.1:$http_port AUTONAMA_REALTIME=true AUTONAMA_REALTIME_SYMBOLS=$slash \
    BINANCE_BASE_URL=http://127.0.0.1:$port BINANCE_WS_URL=ws://127.0.0.1:$ws_port \
    AUTONAMA_INGEST_LOOKBACK=60 AUTONAMA_INGEST_PARALLEL=8 AUTONAMA_BINANCE_WEIGHT_BUDGET=1000000 \
    AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_BEAT_HEALTH_INTERVAL=0 \
    AUTONAMA_FALLBACK=false AUTONAMA_HTTP_MAX_STREAMS=$((CLIENTS + 10)) AUTONAMA_LOG_LEVEL=warn \
    env ${AN_BENCH_SERVE_ENV:-} "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" &
serve_pid=$!
metric() { curl -s "$base/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
for _ in $(seq 1 600); do
    kill -0 "$serve_pid" 2>/dev/null || break
    [ "$(metric autonama_realtime_gap_fills_total 2>/dev/null)" = 1 ] 2>/dev/null && break
    sleep 0.5
done
if ! kill -0 "$serve_pid" 2>/dev/null || [ -z "$(metric autonama_realtime_connections)" ]; then
    echo "bench/realtime: autonama serve did not come up:" >&2
    tail -5 "$work/serve.err" >&2
    exit 1
fi
echo "# $N streams connected ($(metric autonama_realtime_connections) connections); the first gap fill done"
if [ "$PEER" = 1 ]; then
    printf '%s\n' $syms >"$work/syms.txt"
    SSL_CERT_FILE=$work/cert.pem "$PEER_PY" "$root/bench/realtime_peer.py" "http://127.0.0.1:$port" \
        "wss://127.0.0.1:$wss_port" "$AUTONAMA_TEST_PG" "$work/syms.txt" "$work/peer.log" \
        >"$work/peer.out" 2>&1 &
    peer_pid=$!
    sleep 15 # its symbol lookup and connections
    kill -0 "$peer_pid" 2>/dev/null || { echo "bench/realtime: the peer died: $(tail -5 "$work/peer.out")" >&2; exit 1; }
fi

# CLIENTS SSE clients, 100 symbols each (or all when fewer), reading all the time
set -- $syms
PER=$((N < 100 ? N : 100))
for i in $(seq 0 $((CLIENTS - 1))); do
    from=$(((i * PER) % N))
    list=""
    for j in $(seq 0 $((PER - 1))); do
        k=$(((from + j) % N + 1))
        s=${!k}
        list="$list${list:+,}${s%USDT}/USDT"
    done
    curl -sN "$base/api/v1/stream?symbols=$list&timeframe=1m" >/dev/null &
    cpids+=($!)
done
first100=""
for j in $(seq 1 "$PER"); do s=${!j}; first100="$first100${first100:+,}${s%USDT}/USDT"; done
# the measuring client (in C: its own delay stays out of the figure)
LAT=${AN_BENCH_LAT:-$(dirname "$BIN")/bench/bench_sse_latency}
[ -x "$LAT" ] || { echo "bench/realtime: $LAT not built (make build)" >&2; exit 1; }
"$LAT" 127.0.0.1 "$http_port" "/api/v1/stream?symbols=$first100&timeframe=1m" "$SECS" >"$work/sse_lat.txt" &
mpid=$!
ticks=$(getconf CLK_TCK)
# frames the fake sent over all its connections (autonama's and the peer's)
fake_frames() { curl -s "http://127.0.0.1:$port/_control/stream" | python3 -c 'import json, sys; print(json.load(sys.stdin)["frames"])'; }
cpu() { awk '{ print $14 + $15 }' "/proc/${1:-$serve_pid}/stat"; }
# CPU ticks of serve's threads by name (src/core/thread.h names ours), for
# where the CPU per message goes; threads that exited are in neither
threads_cpu() {
    python3 - "$serve_pid" <<'PY'
import glob, sys
t = {}
for f in glob.glob("/proc/%s/task/*/stat" % sys.argv[1]):
    try:
        line = open(f).read()
    except OSError:
        continue  # the thread exited
    name, rest = line[line.index("(") + 1:line.rindex(")")], line[line.rindex(")") + 2:].split()
    t[name] = t.get(name, 0) + int(rest[11]) + int(rest[12])  # utime + stime
for k, v in t.items():
    print(k.replace(" ", "_"), v)
PY
}
threads_cpu >"$work/threads0.txt"
c0=$(cpu)
[ "$PEER" = 1 ] && p0=$(cpu "$peer_pid")
ts0=$(date -u +'%Y-%m-%d %H:%M:%S.%N')
m0=$(metric autonama_realtime_messages_total)
f0=$(fake_frames)
t0=$(date +%s.%N)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
wait "$mpid" || true
c1=$(cpu)
threads_cpu >"$work/threads1.txt"
[ "$PEER" = 1 ] && p1=$(cpu "$peer_pid")
ts1=$(date -u +'%Y-%m-%d %H:%M:%S.%N')
m1=$(metric autonama_realtime_messages_total)
f1=$(fake_frames)
t1=$(date +%s.%N)
echo "load average (1, 5, 15 min) at the start: $load0, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
curl -s "$base/metrics" >"$work/metrics.txt"
m() { awk -v m="$1" '$1 == m { print $2 }' "$work/metrics.txt"; }
read -r sse_n sse_p50 sse_p99 <"$work/sse_lat.txt"
python3 - "$c0" "$c1" "$ticks" "$t0" "$t1" "$m0" "$m1" "$f0" "$f1" "$N" "$PEER" <<PY
import sys
c0, c1, tk, t0, t1, m0, m1, f0, f1, n, peer = (float(x) for x in sys.argv[1:])
print("the fake sent %.0f frames/s (%d streams x 1/s to autonama%s)"
      % ((f1 - f0) / (t1 - t0), n, " and to the peer" if peer else ""))
wall = t1 - t0
cpu = (c1 - c0) / tk / wall * 100
msgs = m1 - m0
print("autonama: %.1f%% of one core over %.0f s, %.0f messages (%.0f/s), %.1f us CPU per message"
      % (cpu, wall, msgs, msgs / wall, (c1 - c0) / tk / max(msgs, 1) * 1e6))
PY
python3 - "$work/threads0.txt" "$work/threads1.txt" "$ticks" "$m0" "$m1" <<'PY'
import sys
def load(p):
    return {l.split()[0]: float(l.split()[1]) for l in open(p) if l.strip()}
a, b = load(sys.argv[1]), load(sys.argv[2])
tk, msgs = float(sys.argv[3]), max(float(sys.argv[5]) - float(sys.argv[4]), 1)
rows = sorted(((b[k] - a.get(k, 0)) / tk / msgs * 1e6, k) for k in b)
print("  by thread, us CPU per message: " + ", ".join("%s %.1f" % (k, v) for v, k in reversed(rows) if v >= 0.05))
PY
echo "event -> row committed: p50 $(m 'autonama_realtime_store_lag_seconds{from="event",quantile="0.5"}') s, p99 $(m 'autonama_realtime_store_lag_seconds{from="event",quantile="0.99"}') s (open candles wait for the ${AUTONAMA_REALTIME_FLUSH_MS:-1000} ms flush)"
echo "event -> SSE client ($CLIENTS clients + 1 measuring, 100 symbols each): p50 $sse_p50 ms, p99 $sse_p99 ms over $sse_n events"
ms() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[1] or "nan") * 1000))' "$(m "$1")"; }
echo "  its stages: event E -> autonama received p50 $(ms 'autonama_realtime_receive_lag_seconds{quantile="0.5"}') ms, p99 $(ms 'autonama_realtime_receive_lag_seconds{quantile="0.99"}') ms (the fake's send and the stream thread); received -> bytes handed to an SSE socket p50 $(ms 'autonama_sse_lag_seconds{quantile="0.5"}') ms, p99 $(ms 'autonama_sse_lag_seconds{quantile="0.99"}') ms (all clients, the last 4,096)"
echo "bad frames: $(awk '/^autonama_realtime_bad_frames_total/ { s += $2 } END { print s + 0 }' "$work/metrics.txt"), store errors: $(m autonama_realtime_store_errors_total), SSE dropped: $(m autonama_sse_dropped_total), SSE clients: $(m autonama_sse_clients)"
if [ "$PEER" = 1 ]; then
    q="SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed - timestamp)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed - timestamp))
       FROM candles WHERE committed BETWEEN '$ts0' AND '$ts1'"
    read -r pn pp50 pp99 < <(PGPASSWORD=$(kv "$AUTONAMA_TEST_PG" password) psql -X -qAt -F ' ' \
        -h "$(kv "$AUTONAMA_TEST_PG" host)" -p "$(kv "$AUTONAMA_TEST_PG" port)" \
        -U "$(kv "$AUTONAMA_TEST_PG" user)" -d "$(kv "$AUTONAMA_TEST_PG" dbname)" -c "$q")
    if [ "${pn:-0}" = 0 ]; then
        echo "bench/realtime: the peer stored no row in the window; its output:" >&2
        tail -5 "$work/peer.out" "$work/peer.log" >&2 2>/dev/null
    fi
    python3 - "$c0" "$c1" "$p0" "$p1" "$ticks" "$t0" "$t1" "$m0" "$m1" "$pn" "$pp50" "$pp99" <<PY
import sys
c0, c1, p0, p1, tk, t0, t1, m0, m1, pn = (float(x) for x in sys.argv[1:11])
p50, p99 = sys.argv[11], sys.argv[12]
wall = t1 - t0
ours = (c1 - c0) / tk / max(m1 - m0, 1)
peer = (p1 - p0) / tk / max(pn, 1)
print("cryptofeed 2.4.1 (its Binance feed + Postgres backend): %.1f%% of one core, %.0f rows "
      "(%.0f/s), %.1f us CPU per message; event -> row committed p50 %.3f s, p99 %.3f s"
      % ((p1 - p0) / tk / wall * 100, pn, pn / wall, peer * 1e6, float(p50 or "nan"),
         float(p99 or "nan")))
print("CPU per message, cryptofeed / autonama: %.1fx" % (peer / ours if ours else float("nan")))
PY
fi
