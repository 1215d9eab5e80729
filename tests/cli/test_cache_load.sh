#!/usr/bin/env bash
# The reply cache under varied URLs (issue 12's crash): `autonama serve` with
# the reply cache on, over the real BTC/USDT 1m file on DuckDB, loaded by wrk
# with 64 connections asking ohlc pages whose `start` varies at random among
# values chosen so that every key falls into the SAME cache slot, so each
# reply stored evicts (destroys) the one before it while other connections
# are sending theirs. The old send_reply put a response into the cache
# before queueing it, and an eviction in between aborted the server
# ("libmicrohttpd response.c: Failed to lock mutex", exit 134). Checks: the
# server is still up after the load and exits cleanly, wrk saw no error and
# no non-2xx, sampled pages equal the stored candles from `start` on, and
# the cache was used. AN_CHECK_ALL=1 loads longer (30 s instead of 4 s).
# Needs AN_BIN, AN_DATA_DIR.
set -uo pipefail

BIN=${AN_BIN:?AN_BIN not set}
DATA=${AN_DATA_DIR:?AN_DATA_DIR not set}
here=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/autonama-cacheload.XXXXXX)
# shellcheck source=lib.sh
. "$here/lib.sh"
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { bad "wrk not found (scripts/bootstrap installs it)"; finish; exit; }
secs=4
[ "${AN_CHECK_ALL:-0}" = 1 ] && secs=30
[ "${AN_SANITIZE:-OFF}" = ON ] || [ "${AN_SANITIZE:-0}" = 1 ] && [ "${AN_CHECK_ALL:-0}" != 1 ] && secs=3

mode_env duckdb
export AUTONAMA_LOG_LEVEL=error AUTONAMA_HTTP_CACHE_TTL_MS=60000
export AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0
export AUTONAMA_BEAT_HEALTH_INTERVAL=0
reset_mode duckdb
"$BIN" import "$DATA/BTC_USDT-1m.json" >/dev/null 2>"$work/err" || {
    bad "import failed: $(cat "$work/err")"
    finish
    exit
}

# the `start` values whose reply cache keys share one slot (http.c's key:
# "GET <path>?<k>=<v>&...#<gzip>", FNV-1a over 8-byte words and a final mix, % 128 slots),
# from the file's own candle times, written as a Lua table for wrk
python3 - "$DATA/BTC_USDT-1m.json" "$work/starts.lua" "$work/starts.txt" <<'PY'
import json, struct, sys
rows = json.load(open(sys.argv[1]))
times = [r[0] for r in rows[:-600]]

def fnv(b):
    h, M = 1469598103934665603, (1 << 64) - 1
    i = 0
    while i + 8 <= len(b):
        h = ((h ^ struct.unpack_from("<Q", b, i)[0]) * 1099511628211) & M
        i += 8
    for c in b[i:]:
        h = ((h ^ c) * 1099511628211) & M
    h ^= h >> 31  # the final mix (reply.c)
    h = (h * 0xBF58476D1CE4E5B9) & M
    return h ^ (h >> 29)

def key(t):
    return ("GET /api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1m&order=asc&limit=500&start=%d&#0"
            % t).encode()

slot = fnv(key(times[0])) % 128
same = [t for t in times if fnv(key(t)) % 128 == slot]
with open(sys.argv[2], "w") as f:
    f.write("starts = {%s}\n" % ",".join(map(str, same)))
with open(sys.argv[3], "w") as f:
    f.write("\n".join(map(str, same[::max(1, len(same) // 20)])) + "\n")
print("# %d start values share cache slot %d" % (len(same), slot))
PY
cat >>"$work/starts.lua" <<'EOF'
math.randomseed(os.time())
request = function()
    local s = starts[math.random(1, #starts)]
    return wrk.format("GET", "/api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1m&order=asc&limit=500&start=" .. s)
end
EOF

start_serve || { bad "serve did not start: $(tail -3 "$work/serve.err")"; finish; exit; }
wrk -t2 -c64 -d"${secs}s" -s "$work/starts.lua" "$base" >"$work/wrk.out" 2>&1
sed 's/^/# /' "$work/wrk.out" | grep -E 'Requests/sec|errors|Non-2xx|requests in'
check "serve is still running after ${secs} s of varied URLs with the reply cache on" \
    kill -0 "$serve_pid"
check "wrk saw no socket error and no non-2xx reply" \
    bash -c '! grep -qE "Socket errors|Non-2xx" "$1"' _ "$work/wrk.out"
check "wrk got replies" grep -qE '^ +[1-9][0-9]* requests in' "$work/wrk.out"

# sampled pages: 500 candles from `start` on, equal to the file's
python3 - "$DATA/BTC_USDT-1m.json" "$base" "$work/starts.txt" <<'PY' && good=1 || good=0
import json, sys, urllib.request
rows = json.load(open(sys.argv[1]))
ok = True
for s in map(int, open(sys.argv[3]).read().split()):
    url = "%s/api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1m&order=asc&limit=500&start=%d" % (sys.argv[2], s)
    page = json.load(urllib.request.urlopen(url))
    want = [[float(x) for x in r] for r in rows if r[0] >= s][:500]
    got = [[float(c[k]) for k in ("ts", "open", "high", "low", "close", "volume")] for c in page["candles"]]
    if want != got:
        print("# start=%d: the page differs from the file (%d rows)" % (s, len(got)))
        ok = False
sys.exit(0 if ok else 1)
PY
check "sampled pages equal the stored candles from start on" test "$good" = 1
hits() { curl -s "$base/metrics" | awk '$1 == "autonama_http_cache_hits_total" {print $2}'; }
u="$base/api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1m&order=asc&limit=500&start=$(head -1 "$work/starts.txt")"
curl -s -o /dev/null "$u"
h0=$(hits)
curl -s -o /dev/null "$u"
h1=$(hits)
check "the reply cache is on: a repeated page is a hit (hits ${h0:-none} -> ${h1:-none})" \
    test "${h1:-0}" -gt "${h0:-0}"
check "serve exits cleanly on SIGTERM" kill "$serve_pid"
wait "$serve_pid"
rc=$?
serve_pid_done=$serve_pid
serve_pid=""
check "serve's exit status is 0 (got $rc)" test "$rc" = 0
if grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer|Fatal error' "$work/serve.err"; then
    bad "serve (pid $serve_pid_done) reported: $(grep -iE 'Sanitizer|runtime error|Fatal' "$work/serve.err" | head -3)"
else
    ok "serve reported no sanitizer or libmicrohttpd fatal error"
fi
finish
