#!/usr/bin/env bash
# Bucketed candles over a mixed-timeframe store are right (issue 11, fault 5):
# BTC/USDT 1h candles for seven months and 1m candles for one of them (from
# 2021-04-20T20:42), as in the real files. Every 4h bucket the API serves is
# compared with an independent computation from the files (Python): built
# from the finest timeframe that covers the bucket entirely, else from the
# one covering most of it and marked partial with its candle count. Before,
# the 2021-04-20T20:00 bucket came from the 1m candles of 20:42 on (open
# 56738.76, volume 7,448.9 instead of 56572.44 and 10,580.7). On DuckDB and
# PostgreSQL.
# Needs AN_BIN, AN_SRC, AN_DATA_DIR, AUTONAMA_TEST_PG.
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
DATA=${AN_DATA_DIR:?}
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through make test}"
work=$(mktemp -d /tmp/autonama-buckets.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

for mode in duckdb postgres; do
    echo "# == $mode"
    mode_env $mode
    reset_mode $mode
    if ! "$BIN" import "$DATA/BTC_USDT-1m.json" "$DATA/BTC_USDT-1h.json" >/dev/null 2>"$work/imp.err"; then
        bad "$mode: the import failed: $(tail -n 2 "$work/imp.err")"
        continue
    fi
    serve_env=(AUTONAMA_HTTP_CACHE_TTL_MS=0)
    start_serve || bad "$mode: serve did not start: $(tail -n 3 "$work/serve.err")"
    curl -s -o "$work/b.json" "$base/api/v1/data/ohlc?symbol=BTC/USDT&timeframe=4h&order=asc&limit=5000"
    python3 - "$work/b.json" "$DATA/BTC_USDT-1m.json" "$DATA/BTC_USDT-1h.json" >"$work/cmp.txt" <<'PY'
import json, sys
from collections import defaultdict
reply = json.load(open(sys.argv[1]))
B = 4 * 3600 * 1000
srcs = []  # (timeframe, ms, rows by bucket), finest first
for path, tf, ms in ((sys.argv[2], "1m", 60000), (sys.argv[3], "1h", 3600000)):
    by = defaultdict(list)
    for r in json.load(open(path)):
        by[r[0] // B * B].append([r[0]] + [float(x) for x in r[1:6]])
    srcs.append((tf, ms, by))
want = {}
for b in sorted(set().union(*(s[2].keys() for s in srcs))):
    full = [s for s in srcs if len(s[2].get(b, [])) * s[1] >= B]
    pick = full[0] if full else max(srcs, key=lambda s: len(s[2].get(b, [])) * s[1])
    rows = sorted(pick[2][b])
    want[b] = dict(open=rows[0][1], high=max(r[2] for r in rows), low=min(r[3] for r in rows),
                   close=rows[-1][4], volume=sum(r[5] for r in rows), tf=pick[0],
                   partial=len(rows) * pick[1] < B, n=len(rows))
got = {c["ts"]: c for c in reply["candles"]}
bad = []
for b, w in want.items():
    c = got.get(b)
    if c is None:
        bad.append(f"{b}: missing")
        continue
    same = all(abs(c[k] - w[k]) <= 1e-9 * max(1.0, abs(w[k])) for k in ("open", "high", "low", "close", "volume"))
    tf = c.get("source_timeframe", reply["source_timeframe"])
    if not same or tf != w["tf"] or c.get("partial", False) != w["partial"] or \
            (w["partial"] and c.get("source_candles") != w["n"]):
        bad.append(f"{b}: got {c}, want {w}")
extra = set(got) - set(want)
partial = sum(1 for w in want.values() if w["partial"])
from1m = sum(1 for w in want.values() if w["tf"] == "1m")
print(f"{len(want)} buckets ({from1m} from 1m, {partial} partial), {len(bad)} differ, {len(extra)} extra")
for x in bad[:5]:
    print("  " + x)
c = got.get(1618948800000, {})
print(f"2021-04-20T20:00: open {c.get('open')} volume {c.get('volume')}")
sys.exit(1 if bad or extra or not want else 0)
PY
    rc=$?
    echo "# $mode: $(head -n 1 "$work/cmp.txt")"
    check "$mode: every 4h bucket equals the independent computation ($(head -n 1 "$work/cmp.txt"); $(sed -n 2p "$work/cmp.txt" | head -c 300))" test $rc = 0
    check "$mode: the 2021-04-20T20:00 bucket is built from the 1h candles ($(tail -n 1 "$work/cmp.txt"))" \
        test "$(tail -n 1 "$work/cmp.txt")" = "2021-04-20T20:00: open 56572.44 volume 10580.662534000001"
    check "$mode: the reply matches openapi.json" \
        python3 "$SRC/tests/cli/api_check.py" body /api/v1/data/ohlc GET 200 "$work/b.json"
    stop_serve
done

finish
