#!/usr/bin/env bash
# Many instances, one truth (issue 12): two `autonama serve` instances on one
# PostgreSQL 15 with the reply cache on and long (60 s: without the drops a
# reply would stay stale that long) and a writer in another process.
#  - instances_writer.c writes one new candle at a time through the
#    product's write path and measures, from each commit, how long until
#    both instances serve it: every write within 1 s, nothing older served
#    after; it prints p50 / p99 / max (100 writes; 1,000 with AN_CHECK_ALL=1;
#    30 under the sanitizers).
#  - a CLI `autonama import` of new candles: both serve the newest within
#    1 s, and /api/v1/symbols counts them (the series list is dropped too);
#    a third instance with AUTONAMA_HTTP_CACHE_LISTEN=false still serves the
#    old reply 1.5 s later (what the test would see without the drops),
#    and another symbol's cached reply is still a cache hit (per symbol).
#  - the listeners' connections killed (pg_terminate_backend): they
#    reconnect and the next import is again served by both within 1 s.
#  - closed history in blocks (AUTONAMA_HTTP_BLOCK_CACHE_MB): 3,000 old
#    candles of OLD/A; random candle URLs (order, start, end, limit) answered
#    by instance a (block cache on) byte for byte as by instance d (block
#    and reply caches off: the store's own answer), cold, warm (block hits
#    seen in /metrics) and after an import rewrites one old candle inside a
#    cached closed block, which both a and b serve within 1 s (25 URLs per
#    round; 10 under the sanitizers).
# The PGlite TimescaleDB server takes one connection at a time, so no
# listener there (test_catalog checks that it degrades). Needs AN_BIN,
# AN_WRITER, AUTONAMA_TEST_PG.
set -uo pipefail

BIN=${AN_BIN:?AN_BIN not set}
WRITER=${AN_WRITER:?AN_WRITER not set}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/autonama-instances.XXXXXX)
# shellcheck source=lib.sh
. "$here/lib.sh"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

[ -n "${AUTONAMA_TEST_PG:-}" ] || { bad "AUTONAMA_TEST_PG not set (scripts/test-services start)"; finish; exit; }
writes=100
[ "${AN_CHECK_ALL:-0}" = 1 ] && writes=1000
{ [ "${AN_SANITIZE:-OFF}" = ON ] || [ "${AN_SANITIZE:-0}" = 1 ]; } && [ "${AN_CHECK_ALL:-0}" != 1 ] && writes=30

mode_env postgres
export AUTONAMA_LOG_LEVEL=warn AUTONAMA_HTTP_CACHE_TTL_MS=60000
export AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0
export AUTONAMA_BEAT_HEALTH_INTERVAL=0
reset_mode postgres

# serve_one NAME [VAR=VALUE...]: an instance on a free port; sets url_NAME
serve_one() {
    local name=$1 port
    shift
    port=$(free_port)
    env AUTONAMA_HTTP_ADDR=127.0.0.1:$port "$@" "$BIN" serve >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    printf -v "url_$name" 'http://127.0.0.1:%s' "$port"
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/openapi.json" && return 0
        sleep 0.1
    done
    return 1
}
serve_one a || bad "instance a did not start: $(tail -3 "$work/a.err")"
serve_one b || bad "instance b did not start: $(tail -3 "$work/b.err")"
serve_one c AUTONAMA_HTTP_CACHE_LISTEN=false || bad "instance c did not start"
serve_one d AUTONAMA_HTTP_BLOCK_CACHE_MB=0 AUTONAMA_HTTP_CACHE_TTL_MS=0 || bad "instance d did not start"

"$WRITER" "$AUTONAMA_TEST_PG" INST/A "$writes" 1000 "$url_a" "$url_b" >"$work/w.out" 2>"$work/w.err"
rc=$?
sed 's/^/# /' "$work/w.out"
[ "$rc" = 0 ] || sed 's/^/# /' "$work/w.err"
check "each of $writes writes is served by both instances within 1 s of its commit, and nothing older after" \
    test "$rc" = 0

# newest TS URL: the newest candle time an instance serves for INST/A
# (no python per poll: its start-up alone takes 100 ms or more on a loaded machine)
newest() {
    curl -s "$1/api/v1/data/ohlc?symbol=INST/A&timeframe=1m&limit=1" | grep -o '"ts":[0-9]*' | head -1 | cut -d: -f2
}
rows() {
    curl -s "$1/api/v1/symbols" >"$work/symbols.json"
    json "$work/symbols.json" "[t['rows'] for s in j['symbols'] if s['symbol'] == 'INST/A' for t in s['stored'] if t['timeframe'] == '1m'][0]"
}
# import_new N: N more candles after the newest stored, by `autonama import`;
# sets last (the newest's time)
stored=$writes
import_new() {
    local t0=$((1767225600000 + stored * 60000)) i
    last=$((t0 + ($1 - 1) * 60000))
    {
        printf '['
        for i in $(seq 0 $(($1 - 1))); do
            [ "$i" -gt 0 ] && printf ','
            printf '[%s,100,110,90,105,%s]' $((t0 + i * 60000)) $((i + 1))
        done
        printf ']\n'
    } >"$work/INST_A-1m.json"
    stored=$((stored + $1))
    "$BIN" import "$work/INST_A-1m.json" >/dev/null 2>"$work/import.err"
}
# within MS VALUE FN URL...: "$(FN URL)" is VALUE for every URL within MS ms
within() {
    local ms=$1 want=$2 fn=$3 u t0 now n
    shift 3
    n=$#
    t0=$(date +%s%3N)
    for u in "$@"; do
        while [ "$("$fn" "$u")" != "$want" ]; do
            now=$(date +%s%3N)
            [ $((now - t0)) -gt "$ms" ] && return 1
            sleep 0.02
        done
    done
    now=$(date +%s%3N)
    echo "# served by $n instances $((now - t0)) ms after the import returned"
}
# served_within MS URL...: every URL serves $last within MS ms
served_within() {
    local ms=$1
    shift
    within "$ms" "$last" newest "$@"
}

# another symbol's cached reply survives a write of INST/A (drops are per
# symbol). OTHER/B: its URL's reply-cache slot (123) is not INST/A's (34)
echo '[[1767225600000,100,110,90,105,1]]' >"$work/OTHER_B-1m.json"
"$BIN" import "$work/OTHER_B-1m.json" >/dev/null 2>"$work/import.err" || bad "import of OTHER/B failed"
sleep 0.3 # its drop is heard before OTHER/B's reply is cached below
u_b="$url_a/api/v1/data/ohlc?symbol=OTHER/B&timeframe=1m&limit=1"
curl -s -o /dev/null "$u_b"
metric() { curl -s "$url_a/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
before=$(newest "$url_c")
rows "$url_a" >/dev/null # the series list cached by both
rows "$url_b" >/dev/null
import_new 3 || bad "import failed: $(cat "$work/import.err")"
check "a CLI import: both instances serve its newest candle within 1 s" served_within 1000 "$url_a" "$url_b"
check "both count its rows in /api/v1/symbols (the series list dropped too)" \
    test "$(rows "$url_a")/$(rows "$url_b")" = "$stored/$stored"
h0=$(metric autonama_http_cache_hits_total)
curl -s -o /dev/null "$u_b"
h1=$(metric autonama_http_cache_hits_total)
check "OTHER/B's cached reply was not dropped by INST/A's write (hits ${h0:-none} -> ${h1:-none})" \
    test "${h1:-0}" -gt "${h0:-0}"
check "the write dropped cached replies ($(metric autonama_http_cache_dropped_total) so far)" \
    test "$(metric autonama_http_cache_dropped_total)" -gt 0
sleep 1.5
check "an instance not listening still serves the older reply 1.5 s later (what the drops prevent)" \
    test "$(newest "$url_c")" = "$before"

PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -h "$POSTGRES_SERVER" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" \
    -d "$POSTGRES_DB" -tAc "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
    WHERE query = 'LISTEN autonama_candles'" >"$work/killed" 2>&1
check "the three listeners' connections were killed (a, b, d: $(cat "$work/killed"))" test "$(cat "$work/killed")" = 3
sleep 0.5 # the listeners reconnect after 0.1 s
import_new 2 || bad "import failed: $(cat "$work/import.err")"
check "after their reconnect, both serve a new import within 1 s" served_within 1000 "$url_a" "$url_b"

# ---- closed history in blocks ----
nurls=25
{ [ "${AN_SANITIZE:-OFF}" = ON ] || [ "${AN_SANITIZE:-0}" = 1 ]; } && nurls=10
T_OLD=1704067200000 # 2024-01-01: 3,000 candles span three blocks of 1,024 minutes and more
python3 - "$work/OLD_A-1m.json" "$T_OLD" <<'PY'
import json, random, sys
random.seed(12)
p, rows = 100.0, []
for i in range(3000):
    c = round(max(1.0, p + random.uniform(-1, 1)), 2)
    rows.append([int(sys.argv[2]) + i * 60000, p, max(p, c) + 0.5, min(p, c) - 0.5, c,
                 round(random.uniform(0.1, 9), 6)])
    p = c
json.dump(rows, open(sys.argv[1], "w"))
PY
"$BIN" import "$work/OLD_A-1m.json" >/dev/null 2>"$work/import.err" || bad "import of OLD/A failed"
# same_bytes SEED: nurls random OLD/A URLs, a's body == d's body
same_bytes() {
    python3 - "$1" "$nurls" "$url_a" "$url_d" "$T_OLD" <<'PY'
import random, sys, urllib.request
seed, n, a, d, t0 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
random.seed(seed)
for i in range(n):
    q = "symbol=OLD/A&timeframe=1m&limit=%d&order=%s" % (
        random.choice([1, 500, 1024, 2500, 5000]), random.choice(["asc", "desc"]))
    if random.random() < 0.8:
        q += "&start=%d" % (t0 + random.randrange(-2000, 3200) * 60000 + random.choice([0, 17]))
    if random.random() < 0.4:
        q += "&end=%d" % (t0 + random.randrange(0, 3200) * 60000)
    bodies = []
    for base in (a, d):
        try:
            with urllib.request.urlopen(f"{base}/api/v1/data/ohlc?{q}") as r:
                bodies.append((r.status, r.read()))
        except urllib.error.HTTPError as e:
            bodies.append((e.code, e.read()))
    if bodies[0] != bodies[1]:
        print(f"# {q}: a {bodies[0][0]} {len(bodies[0][1])} bytes, d {bodies[1][0]} {len(bodies[1][1])} bytes")
        sys.exit(1)
PY
}
block_hits() { curl -s "$url_a/metrics" | awk '$1 == "autonama_http_block_hits_total" {print $2}'; }
check "cold blocks: $nurls random OLD/A URLs, the same bytes with and without the block cache" same_bytes 1
h0=$(block_hits)
check "warm blocks: $nurls more, the same bytes" same_bytes 2
h1=$(block_hits)
check "the warm round was served from blocks (block hits ${h0:-none} -> ${h1:-none})" \
    test "${h1:-0}" -gt "${h0:-0}"
# one old candle (the 101st, inside the first block: closed) rewritten by an import
OLD_TS=$((T_OLD + 100 * 60000))
old_close() {
    curl -s "$1/api/v1/data/ohlc?symbol=OLD/A&timeframe=1m&order=asc&limit=3&start=$((OLD_TS - 60000))" |
        grep -o '"close":[0-9.]*' | sed -n 2p | cut -d: -f2
}
was_a=$(old_close "$url_a") was_b=$(old_close "$url_b") # cached now, reply and block
echo "[[$OLD_TS,100,800,90,777.25,1]]" >"$work/OLD_A-1m.json"
"$BIN" import "$work/OLD_A-1m.json" >/dev/null 2>"$work/import.err" || bad "rewrite of OLD/A failed"
check "an old candle rewritten inside a cached closed block (close $was_a/$was_b -> 777.25) is served by both within 1 s" \
    within 1000 777.25 old_close "$url_a" "$url_b"
check "after the rewrite: $nurls random OLD/A URLs, the same bytes" same_bytes 3
check "the rewrite dropped blocks ($(curl -s "$url_a/metrics" | awk '$1 == "autonama_http_block_dropped_total" {print $2}'))" \
    test "$(curl -s "$url_a/metrics" | awk '$1 == "autonama_http_block_dropped_total" {print $2}')" -gt 0

for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
pids=()
if grep -qiE 'AddressSanitizer|runtime error|LeakSanitizer' "$work"/[abcd].err; then
    bad "an instance reported a sanitizer error"
    grep -h -m1 -A30 -iE 'AddressSanitizer|runtime error|LeakSanitizer' "$work"/[abcd].err | sed 's/^/    /'
else
    ok "no instance reported a sanitizer error"
fi
finish
