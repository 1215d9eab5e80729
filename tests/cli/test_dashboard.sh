#!/usr/bin/env bash
# The dashboard in a real browser (tests/cli/dashboard.js: Debian's chromium
# driven by playwright-core), on DuckDB, PostgreSQL 15 and TimescaleDB: `autonama serve`
# holding the real candle files (BTC/USDT and ETH/USDT 1h) and their indicator
# rows; the page must show the expected number of candles (counted here from
# the files, independently of the API), the indicator series, symbol and
# timeframe switches, older history on scroll-left, live updates, the
# optimization view (heatmap, a combination's equity curve and trades, a run
# started from the page with the API key), and, on PostgreSQL, the database
# going away (a TCP forwarder in front of it is stopped) and coming back; any
# console error or failed request fails it.
# Live updates: on $DASHBOARD_LIVE_MODES (default duckdb and postgres; all
# three with AN_CHECK_ALL=1) serve runs with AUTONAMA_REALTIME=true against
# the fake exchange's BTC/USDT 1m kline stream (tests/fake_binance/server.py
# --ws-port) on a clock the test moves: the open candle moves, a new one
# appears, the exchange's stream is cut, serve is stopped ("reconnecting") and
# restarted ("live"). Series not streamed are polled: on PostgreSQL a 1h
# candle imported meanwhile appears. Screenshots and figures (page weight,
# render time of 5,000 candles) go to $AN_DASHBOARD_OUT (default: the test's
# temp dir, printed); DASHBOARD_SHOTS=1 also writes docs/dashboard-*.png.
# Needs AN_BIN, AN_SRC, AN_DATA_DIR, AUTONAMA_TEST_PG.
set -uo pipefail

BIN=${AN_BIN:?AN_BIN not set}
SRC=${AN_SRC:?AN_SRC not set}
DATA=${AN_DATA_DIR:?AN_DATA_DIR not set}
: "${AUTONAMA_TEST_PG:?AUTONAMA_TEST_PG not set: run through make test}"
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/autonama-dashboard.XXXXXX)
out=${AN_DASHBOARD_OUT:-$work/out}
mkdir -p "$out"
proxy_pid=
fake_pid=
cleanup() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    [ -f "$work/serve.pid" ] && kill "$(cat "$work/serve.pid")" 2>/dev/null
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    [ -f "$work/proxy.pid" ] && kill "$(cat "$work/proxy.pid")" 2>/dev/null
    # the store, logs and scripts go; the screenshots and figures stay
    # (printed above) unless they were written to AN_DASHBOARD_OUT
    if [ -n "${AN_DASHBOARD_OUT:-}" ]; then
        rm -rf "$work"
    else
        find "$work" -mindepth 1 -maxdepth 1 ! -name out -exec rm -rf {} +
    fi
}
trap cleanup EXIT
. "$here/lib.sh"

PY=$SRC/.deps/venv/bin/python
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export NODE_PATH=$SRC/.deps/web/node_modules
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ] || [ ! -d "$NODE_PATH/playwright-core" ]; then
    echo "not ok - chromium ($chromium) or playwright-core ($NODE_PATH) missing: run scripts/bootstrap"
    exit 1
fi
echo "# screenshots and figures in $out"

# The expected counts, from the files: the newest 1,000 hours (the page's
# first request) and every 4h / 1d bucket of ETH/USDT's hours.
EXPECT=$(python3 - "$DATA" <<'PY'
import json, sys
d = sys.argv[1]
btc = json.load(open(d + "/BTC_USDT-1h.json"))
eth = json.load(open(d + "/ETH_USDT-1h.json"))
print(json.dumps({"btc_1h": min(1000, len(btc)), "eth_1h": min(1000, len(eth)),
                  "eth_4h": min(1000, len({r[0] // 14400000 for r in eth})),
                  "eth_1d": min(1000, len({r[0] // 86400000 for r in eth})),
                  "opt_run": True}))
PY
)
export EXPECT CHROMIUM=$chromium OUT=$out DOCS=$SRC/docs
# one candle after BTC/USDT's newest hour, for the live-update check
last=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[-1][0])" "$DATA/BTC_USDT-1h.json")
printf 'timestamp,open,high,low,close,volume\n%s,31723.09,31800,31700,31790.5,12.5\n' \
    "$((last + 3600000))" >"$work/next.csv"

# the fake exchange, REST and kline stream of BTC/USDT 1m (ETH/USDT is not
# streamed: its 1h candles must stay the source of its 4h and 1d), its clock
# fixed 5 s into the current minute; ADVANCE MS moves it (the open candle
# grows, a new minute opens a new candle), STREAM_DROP cuts its streams
start_fake() {
    local ws now t rest
    ws=$(free_port)
    now=$(date +%s%3N)
    server_pid=
    AN_FAKE_PY=$PY start_fake_binance --ws-port "$ws" \
        --generate "BTCUSDT:1m:$((now - 86400000)):$((now + 86400000))" || { bad "the fake exchange did not start"; return 1; }
    fake_pid=$server_pid
    rest=${BINANCE_BASE_URL#http://127.0.0.1:}
    t=$((now / 60000 * 60000 + 5000))
    curl -s -X POST "http://127.0.0.1:$rest/_control/clock" -d "{\"server_time_ms\": $t}" >/dev/null
    printf '#!/bin/sh\ncurl -s -X POST http://127.0.0.1:%s/_control/clock -d "{\\"advance_ms\\": $1}" >/dev/null\n' \
        "$rest" >"$work/advance.sh"
    printf '#!/bin/sh\ncurl -s -X POST http://127.0.0.1:%s/_control/stream -d %s >/dev/null\n' "$rest" \
        "'{\"drop\": true}'" >"$work/drop.sh"
    live_env="AUTONAMA_REALTIME=true AUTONAMA_REALTIME_SYMBOLS=BTC/USDT BINANCE_BASE_URL=http://127.0.0.1:$rest BINANCE_WS_URL=ws://127.0.0.1:$ws"
    live_env="$live_env AUTONAMA_REALTIME_BACKOFF_MS=200 AUTONAMA_INGEST_LOOKBACK=300"
    export LIVE=1 ADVANCE="sh $work/advance.sh" STREAM_DROP="sh $work/drop.sh"
}
stop_fake() {
    [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null && wait "$fake_pid" 2>/dev/null
    fake_pid=
    live_env=
    unset LIVE ADVANCE STREAM_DROP BINANCE_BASE_URL
}
live_env=
live_modes="duckdb postgres"
[ "${AN_CHECK_ALL:-0}" = 1 ] && live_modes="duckdb postgres timescaledb"
live_modes=${DASHBOARD_LIVE_MODES-$live_modes}
API_KEY=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
export API_KEY

# serve runs from $work/serve.sh (the browser test stops and restarts it on
# the same port to see the API go away); its pid is in $work/serve.pid
start_serve() {
    local port
    port=$(free_port)
    export BASE=http://127.0.0.1:$port
    cat >"$work/serve.sh" <<SH
#!/bin/sh
AUTONAMA_HTTP_ADDR=127.0.0.1:$port AUTONAMA_SYMBOLS=BTC/USDT,ETH/USDT AUTONAMA_BEAT_UPDATE_INTERVAL=0 \\
    AUTONAMA_BEAT_INDICATORS_INTERVAL=0 AUTONAMA_API_KEY=$API_KEY $live_env exec "$BIN" serve >>"$work/serve.out" 2>>"$work/serve.err"
SH
    printf '#!/bin/sh\nsh %s/serve.sh </dev/null >/dev/null 2>&1 &\necho $! >%s/serve.pid\n' "$work" "$work" \
        >"$work/api-up.sh"
    printf '#!/bin/sh\np=$(cat %s/serve.pid); kill $p\nwhile kill -0 $p 2>/dev/null; do sleep 0.1; done\n' \
        "$work" >"$work/api-down.sh"
    : >"$work/serve.err"
    sh "$work/api-up.sh"
    for _ in $(seq 1 100); do
        curl -fs "$BASE/openapi.json" -o /dev/null && return 0
        sleep 0.1
    done
    bad "serve did not start: $(tail -3 "$work/serve.err")"
    return 1
}
stop_serve() {
    local p
    p=$(cat "$work/serve.pid" 2>/dev/null)
    [ -n "$p" ] && kill "$p" 2>/dev/null
    while [ -n "$p" ] && kill -0 "$p" 2>/dev/null; do sleep 0.1; done
    rm -f "$work/serve.pid"
    cp "$work/serve.err" "$out/$mode-serve.err"
}

# The serving itself, with curl: types, CSP, ETag/304, cache lifetimes, gzip
# weight of the first load, and what is not there.
hdr() { sed -n "s/^$2: //Ip" "$1" | tr -d '\r'; }
check_serving() {
    curl -s -D "$work/h" -o "$work/index.html" "$BASE/"
    check "GET / is the page (200, text/html)" grep -q '^HTTP/1.1 200' "$work/h"
    check "GET /: Content-Type text/html; charset=utf-8" test "$(hdr "$work/h" Content-Type)" = "text/html; charset=utf-8"
    check "GET /: Content-Security-Policy allows our own origin only" \
        test "$(hdr "$work/h" Content-Security-Policy | grep -o "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'")" != ""
    check "GET /: Cache-Control no-cache (a new build is seen at once)" test "$(hdr "$work/h" Cache-Control)" = no-cache
    local etag total=0 n=0 a type
    etag=$(hdr "$work/h" ETag)
    check "GET / with If-None-Match: 304" test "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$BASE/")" = 304
    for a in $(grep -o '/assets/[^"]*' "$work/index.html"); do
        n=$((n + 1))
        curl -s -D "$work/ha" -o "$work/asset.gz" -H 'Accept-Encoding: gzip' "$BASE$a"
        total=$((total + $(stat -c %s "$work/asset.gz")))
        case $a in *.js) type="text/javascript; charset=utf-8" ;; *.css) type="text/css; charset=utf-8" ;;
        *.svg) type="image/svg+xml; charset=utf-8" ;; esac
        check "$a: $type, immutable for a year, with CSP" test "$(hdr "$work/ha" Content-Type)|$(hdr "$work/ha" Cache-Control)|$(hdr "$work/ha" Content-Security-Policy | cut -c1-19)" = \
            "$type|public, max-age=31536000, immutable|default-src 'self';"
        etag=$(hdr "$work/ha" ETag)
        check "$a: If-None-Match gives 304" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' -H "If-None-Match: $etag" "$BASE$a")" = 304
    done
    check "index.html names 4 hashed assets (lightweight-charts, app.js, app.css, favicon)" test "$n" = 4
    total=$((total + $(curl -s -H 'Accept-Encoding: gzip' "$BASE/" | wc -c)))
    echo "# page weight: index.html and its $n assets, gzip: $total bytes"
    check "page weight under 300 KB compressed ($total bytes)" test "$total" -lt 307200
    check "an unknown asset is a 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/assets/app.000000000000.js")" = 404
    check "POST / is a 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/")" = 405
    check "GET /?x=1 is a 400 (the page takes its state from the fragment)" \
        test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/?x=1")" = 400
}

for mode in ${DASHBOARD_MODES:-duckdb postgres timescaledb}; do
    echo "# == $mode"
    mode_env "$mode"
    reset_mode "$mode"
    if ! "$BIN" import "$DATA/BTC_USDT-1h.json" "$DATA/ETH_USDT-1h.json" >/dev/null 2>"$work/err" ||
        ! "$BIN" indicators --symbols BTC/USDT,ETH/USDT --timeframe 1h >/dev/null 2>>"$work/err" ||
        ! "$BIN" optimize --strategy sma_cross --grid fast=5:30:5,slow=20:60:10 --symbols BTC/USDT \
            --timeframe 1h >/dev/null 2>>"$work/err"; then
        bad "$mode: import, indicators and an optimizer run: $(tail -3 "$work/err")"
        continue
    fi
    unset DB_DOWN DB_UP ADD_CANDLE
    if [ "$mode" = postgres ]; then
        # the server reaches the database through a forwarder the browser test stops and starts
        pport=$(free_port)
        target=$POSTGRES_PORT
        export POSTGRES_PORT=$pport AUTONAMA_CONNECT_TIMEOUT=2
        python3 "$here/api_check.py" proxy "$pport" "$POSTGRES_SERVER" "$target" &
        proxy_pid=$!
        printf '#!/bin/sh\nkill $(cat %s/proxy.pid); sleep 0.2\n' "$work" >"$work/db-down.sh"
        printf '#!/bin/sh\npython3 %s proxy %s %s %s >/dev/null 2>&1 &\necho $! >%s/proxy.pid\nsleep 0.3\n' \
            "$here/api_check.py" "$pport" "$POSTGRES_SERVER" "$target" "$work" >"$work/db-up.sh"
        echo "$proxy_pid" >"$work/proxy.pid"
        export DB_DOWN="sh $work/db-down.sh" DB_UP="sh $work/db-up.sh"
        # a candle imported while the page is open (a 1h one: polled, not streamed)
        export ADD_CANDLE="$BIN import $work/next.csv --symbol BTC/USDT --timeframe 1h >/dev/null 2>&1"
        sleep 0.3
    fi
    case " $live_modes " in
    *" $mode "*) start_fake || continue ;;
    esac
    start_serve || continue
    [ "$mode" = duckdb ] && check_serving
    shots=0
    [ "$mode" = duckdb ] && shots=${DASHBOARD_SHOTS:-0}
    export API_DOWN="sh $work/api-down.sh" API_UP="sh $work/api-up.sh"
    # a run started from the page: on DuckDB (the page's part is the same on
    # every store), on all three with AN_CHECK_ALL=1
    key=
    [ "$mode" = duckdb ] || [ "${AN_CHECK_ALL:-0}" = 1 ] && key=$API_KEY
    API_KEY=$key MODE=$mode SHOTS=$shots node "$here/dashboard.js" | tee "$work/browser.out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || failed=$((failed + 1))
    kill -0 "$(cat "$work/serve.pid")" 2>/dev/null || bad "$mode: serve died: $(grep -m3 -i 'error\|sanitizer' "$work/serve.err")"
    passed=$((passed + $(grep -c '^ok - ' "$work/browser.out")))
    stop_serve
    stop_fake
    if [ "$mode" = postgres ]; then
        kill "$(cat "$work/proxy.pid")" 2>/dev/null
        wait "$proxy_pid" 2>/dev/null
        proxy_pid=
        export POSTGRES_PORT=$target
        unset AUTONAMA_CONNECT_TIMEOUT
    fi
    reset_mode "$mode"
done
finish
