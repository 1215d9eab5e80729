# Shared helpers of the command-line tests (sourced, not run: ctest runs
# only test_*.sh). A test sets `work` (its temp dir) before sourcing.
#   check DESC CMD...      counts "ok"/"not ok" lines; finish prints the total
#   kv CONNINFO KEY        a key of a libpq conninfo string
#   json FILE EXPR         a python expression over the JSON file's value j
#   mode_env MODE          the environment of a store mode (duckdb, postgres,
#                          timescaledb), every other autonama setting cleared
#   reset_mode MODE        an empty store of that mode, migrated
#   start_fake_binance ARGS...  (re)starts tests/fake_binance/server.py on a
#                          free port (with $AN_FAKE_PY, default python3: the
#                          venv's for --ws-port); sets server_pid and BINANCE_BASE_URL
#   server_csv SYMBOL INTERVAL START END OUT   the fake exchange's own candles of
#                          [START, END) (ms) from its klines endpoint, as CSV
#   same_as SYMBOL TF CSV  the stored series equals the CSV
#                          (timestamp,open,high,low,close,volume), value for value
#   free_port              a free TCP port on 127.0.0.1
#   start_serve [VAR=VALUE...]  `autonama serve` on a free port with the settings
#                          of the serve_env array and the arguments added; waits
#                          until $serve_ready_path (default /openapi.json) answers
#                          within $serve_ready_s seconds (default 10; 1 if it does
#                          not); sets serve_pid and base (http://127.0.0.1:PORT)
#   stop_serve             stops it; a check that its stderr has no sanitizer report
#   req METHOD PATH [curl args...]  the status in $code, the body in $work/body
#                          (body EXPR reads it); noted in $observed for the
#                          openapi.json conformance check, and bodies of paths
#                          under $req_check must match the schema declared

passed=0
failed=0
server_pid=""
serve_pid=""
ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "not ok - $*"; }
check() {
    local d=$1
    shift
    if "$@"; then ok "$d"; else bad "$d"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }

mode_env() {
    local v
    for v in $(env | sed -n 's/^\(AUTONAMA_[A-Z0-9_]*\|POSTGRES_[A-Z_]*\|DUCKDB_PATH\)=.*/\1/p'); do
        case $v in AUTONAMA_TEST_*) ;; *) unset "$v" ;; esac
    done
    export AUTONAMA_LOG_LEVEL=warn AUTONAMA_BINANCE_TIMEOUT_MS=1500 AUTONAMA_BINANCE_BACKOFF_MS=50
    case $1 in
    duckdb) export DUCKDB_PATH=$work/store.duckdb ;;
    postgres | timescaledb)
        local ci
        [ "$1" = postgres ] && ci=$AUTONAMA_TEST_PG || ci=$AUTONAMA_TEST_TS
        export POSTGRES_SERVER=$(kv "$ci" host) POSTGRES_PORT=$(kv "$ci" port) POSTGRES_USER=$(kv "$ci" user)
        export POSTGRES_PASSWORD=$(kv "$ci" password) POSTGRES_DB=$(kv "$ci" dbname) AUTONAMA_STORE=$1
        ;;
    esac
}

reset_mode() {
    case $1 in
    duckdb) rm -f "$work/store.duckdb" "$work/store.duckdb.wal" ;;
    *)
        PGPASSWORD=$POSTGRES_PASSWORD psql -X -q -h "$POSTGRES_SERVER" -p "$POSTGRES_PORT" -U "$POSTGRES_USER" \
            -d "$POSTGRES_DB" -c "SET client_min_messages=warning; DROP SCHEMA IF EXISTS trading CASCADE;
            DROP SCHEMA IF EXISTS analytics CASCADE; DROP SCHEMA IF EXISTS optimization CASCADE;
            DROP SCHEMA IF EXISTS autonama CASCADE" >/dev/null 2>&1
        ;;
    esac
    "$BIN" migrate >/dev/null 2>&1
}

start_fake_binance() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    "${AN_FAKE_PY:-python3}" "$SRC/tests/fake_binance/server.py" --port 0 "$@" >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    local port=""
    for _ in $(seq 1 100); do
        port=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$work/server.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "# the fake exchange did not start: $(cat "$work/server.err")"; return 1; }
    export BINANCE_BASE_URL=http://127.0.0.1:$port
}

same_as() {
    "$BIN" export --symbol "$1" --timeframe "$2" >"$work/ours.csv" 2>/dev/null
    python3 - "$work/ours.csv" "$3" <<'PY'
import sys
def load(p):
    rows = [l.strip().split(",") for l in open(p) if l.strip()][1:]
    return [(int(r[0]),) + tuple(float(x) for x in r[1:6]) for r in rows]
a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b or not a:
    print(f"# stored {len(a)} rows, expected {len(b)}", file=sys.stderr)
sys.exit(0 if a == b and len(a) > 0 else 1)
PY
}

server_csv() {
    python3 - "$BINANCE_BASE_URL" "$@" <<'PY'
import json, sys, urllib.request
base, sym, iv, start, end, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
rows, t = [], start
while t < end:
    url = f"{base}/api/v3/klines?symbol={sym}&interval={iv}&startTime={t}&endTime={end - 1}&limit=1000"
    with urllib.request.urlopen(url) as r:
        page = json.load(r)
    if not page:
        break
    rows += page
    t = page[-1][0] + 1
with open(out, "w") as f:
    f.write("timestamp,open,high,low,close,volume\n")
    for k in rows:
        f.write(",".join([str(k[0])] + [repr(float(x)) for x in k[1:6]]) + "\n")
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

serve_pid=""
serve_env=()
start_serve() {
    local port
    port=$(free_port)
    base=http://127.0.0.1:$port
    env AUTONAMA_HTTP_ADDR=127.0.0.1:$port "${serve_env[@]}" "$@" "$BIN" serve >"$work/serve.out" 2>"$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 1 $((${serve_ready_s:-10} * 10))); do
        curl -s -o /dev/null "$base${serve_ready_path:-/openapi.json}" && return 0
        sleep 0.1
    done
    return 1
}

stop_serve() {
    kill "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    serve_pid=""
    if grep -qiE 'AddressSanitizer|ThreadSanitizer|runtime error|LeakSanitizer' "$work/serve.err"; then
        bad "serve reported a sanitizer error"
        grep -m1 -A40 -iE 'AddressSanitizer|ThreadSanitizer|runtime error|LeakSanitizer' "$work/serve.err" | sed 's/^/    /'
    else
        ok "serve reported no sanitizer error"
    fi
}

req_check=/none
req() {
    local m=$1 p=$2 tpl
    shift 2
    code=$(curl -s -o "$work/body" -w '%{http_code}' -X "$m" "$@" "$base$p")
    tpl=${p%%\?*}
    case $tpl in
    /api/v1/tasks/update_market_data | /api/v1/tasks/calculate_indicators_for_symbol | \
        /api/v1/tasks/health_check | /api/v1/tasks/optimize_strategy) ;; # a task's own path
    /api/v1/tasks/*) tpl=/api/v1/tasks/{key} ;;
    esac
    printf '{"path": "%s", "method": "%s", "status": %s}\n' "$tpl" "$m" "$code" >>"$observed"
    if [ "$tpl" != "${tpl#"$req_check"}" ] &&
        ! python3 "$SRC/tests/cli/api_check.py" body "$tpl" "$m" "$code" "$work/body"; then
        bad "$m $p -> $code: the body does not match openapi.json"
    fi
}
body() { json "$work/body" "$1"; }
