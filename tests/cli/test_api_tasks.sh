#!/usr/bin/env bash
# The task routes of the HTTP API over real sockets against the real
# `autonama serve` (its workers running, its beat off), on all three store
# modes: POST /api/v1/tasks/{name} only with the API key (401 without, with a
# wrong one, 403 with none configured), the run queued and then done with
# the data it fetched really stored, GET /api/v1/tasks and /{id}, the task
# lines of /metrics, and every bad input (unknown task, bad JSON body, bad
# id, bad or unknown parameters, wrong method) a 4xx JSON error.
# Needs AN_BIN, AN_SRC, AUTONAMA_TEST_PG, AUTONAMA_TEST_TS.
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
: "${AUTONAMA_TEST_PG:?run through make test}" "${AUTONAMA_TEST_TS:?run through make test}"
work=$(mktemp -d /tmp/autonama-api-tasks.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
trap '[ -n "$server_pid" ] && kill $server_pid 2>/dev/null; [ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT

START=1704067200000 # 2024-01-01
END=$((START + 2 * 86400000))
start_fake_binance --generate TSKUSDT:1m:$START:$END --server-time-ms $((END + 30000)) --seed 9

# serve with its workers and no beat, the fallback file in $work
serve_tasks() {
    start_serve "$@" AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
        AUTONAMA_BEAT_HEALTH_INTERVAL=0 AUTONAMA_FALLBACK_PATH="$work/fallback.duckdb"
}
# req METHOD PATH [curl args...]: the status in $code, the body in $work/body;
# the exchange is noted for the openapi.json conformance check, and the body
# must match the schema openapi.json declares for that status
check_py=$SRC/tests/cli/api_check.py
observed=$work/observed.jsonl
: >"$observed"
req_check=/api/v1/tasks

for mode in duckdb postgres timescaledb; do
    echo "# mode $mode"
    mode_env "$mode"
    reset_mode "$mode"
    rm -f "$work/fallback.duckdb" "$work/fallback.duckdb.wal"
    export AUTONAMA_API_KEY=task-key
    serve_tasks || { bad "$mode: serve did not start: $(tail -3 "$work/serve.err")"; continue; }

    req POST /api/v1/tasks/update_market_data -d '{"symbols":["TSK/USDT"],"since":"2024-01-01"}'
    check "$mode: POST without the key is 401 ($code)" test "$code" = 401
    check "$mode: ... with a Bearer challenge" \
        bash -c "curl -s -D - -o /dev/null -X POST '$base/api/v1/tasks/health_check' | grep -qi '^WWW-Authenticate: Bearer'"
    req POST /api/v1/tasks/update_market_data -H "Authorization: Bearer wrong-key" -d '{}'
    check "$mode: POST with a wrong key is 401 ($code)" test "$code" = 401
    auth=(-H "Authorization: Bearer task-key")

    req POST /api/v1/tasks/update_market_data "${auth[@]}" -d '{"symbols":["TSK/USDT"],"since":"2024-01-01"}'
    id=$(body "j['id']")
    check "$mode: POST with the key queues the run: 202 PENDING ($code)" \
        test "$code:$(body "(j['state'], j['href'] == '/api/v1/tasks/' + j['id'])")" = "202:('PENDING', True)"
    state=""
    for _ in $(seq 1 150); do
        req GET "/api/v1/tasks/$id"
        state=$(body "j['state']")
        case $state in SUCCESS | FAILURE | INTERRUPTED) break ;; esac
        sleep 0.2
    done
    check "$mode: the run ends in SUCCESS ($state)" test "$state" = SUCCESS
    check "$mode: its result says what it stored" \
        test "$(body "(j['result']['categories']['crypto']['symbols']['TSK/USDT']['inserted'], j['name'])")" = "(2880, 'update_market_data')"
    req GET "/api/v1/data/ohlc?symbol=TSK/USDT&timeframe=1m&limit=5000&order=asc"
    check "$mode: the candles are really in the store (the API serves all 2880)" \
        test "$(body "(j['count'], j['candles'][0]['ts'], j['candles'][-1]['ts'])")" = "(2880, $START, $((END - 60000)))"

    req GET "/api/v1/tasks?name=update_market_data&limit=5"
    check "$mode: GET /api/v1/tasks lists the run ($code)" \
        test "$code:$(body "any(r['id'] == '$id' for r in j['tasks'])")" = "200:True"
    req GET /api/v1/tasks
    check "$mode: ... newest first" test "$(body "j['tasks'][0]['id']")" = "$id"
    req GET /metrics
    check "$mode: /metrics has the task runs by state" grep -q '^autonama_task_runs_total{state="SUCCESS"} 1' "$work/body"
    check "$mode: ... and whether the fallback is active" grep -q '^autonama_fallback_active 0' "$work/body"

    # bad input: a 4xx JSON error naming the problem, never a 5xx
    req POST /api/v1/tasks/no_such_task "${auth[@]}" -d '{}'
    check "$mode: POST to a name that is no task is 405: only a task's own path takes POST ($code)" \
        test "$code" = 405
    check "$mode: ... with Allow: GET (a run id's path)" \
        bash -c "curl -s -D - -o /dev/null -X POST '$base/api/v1/tasks/no_such_task' | grep -qi '^Allow: GET'"
    # each task's own path (openapi.json: one per task, with its body
    # schema): 202, 400 (an argument it does not take), 401, 413, 414, and
    # 405 for the methods it does not take (a task name is not a run id)
    for t in update_market_data calculate_indicators_for_symbol health_check optimize_strategy; do
        [ "$mode" = duckdb ] || break
        case $t in
        optimize_strategy) good='{"strategy":"sma_cross","grid":"fast=5,slow=20","symbols":"TSK/USDT","timeframe":"1m"}' ;;
        health_check) good='{}' ;;
        *) good='{"symbols":["TSK/USDT"]}' ;;
        esac
        req POST "/api/v1/tasks/$t" "${auth[@]}" -d "$good"
        c202=$code
        req POST "/api/v1/tasks/$t" "${auth[@]}" -d '{"no_such_argument":1}'
        c400=$code:$(body "'no_such_argument' in j['error']")
        req POST "/api/v1/tasks/$t" -d "$good"
        c401=$code
        head -c 70000 /dev/zero | tr '\0' ' ' >"$work/big.json"
        req POST "/api/v1/tasks/$t" "${auth[@]}" --data-binary @"$work/big.json"
        c413=$code
        req POST "/api/v1/tasks/$t?$(head -c 3000 /dev/zero | tr '\0' a)" "${auth[@]}" -d '{}'
        c414=$code
        c405=""
        for m in GET PUT DELETE; do
            req $m "/api/v1/tasks/$t"
            c405="$c405$code "
        done
        check "$mode: POST /api/v1/tasks/$t: 202 400 401 413 414, 405 for GET PUT DELETE ($c202 $c400 $c401 $c413 $c414, $c405)" \
            test "$c202 $c400 $c401 $c413 $c414 $c405" = "202 400:True 401 413 414 405 405 405 "
    done
    req POST /api/v1/tasks/update_market_data "${auth[@]}" -d '{"symbols":["TSK/USDT"],"force":true}'
    check "$mode: force without since is 400 ($code)" test "$code" = 400
    req POST /api/v1/tasks/update_market_data "${auth[@]}" -d '{"since":"2024-01-02","until":"2024-01-01"}'
    check "$mode: until before since is 400 ($code)" test "$code" = 400
    req POST /api/v1/tasks/health_check "${auth[@]}" -d '["BTC/USDT"]'
    check "$mode: health_check takes no arguments (400: $code)" test "$code" = 400
    req POST /api/v1/tasks/optimize_strategy "${auth[@]}" -d '{}'
    check "$mode: optimize_strategy without strategy and grid is 400 ($code)" test "$code" = 400
    req POST /api/v1/tasks/health_check "${auth[@]}" -d '{"symbols": [1,'
    check "$mode: a body that is not JSON is 400 naming the body ($code)" test "$code:$(body "j['parameter']")" = "400:body"
    req POST /api/v1/tasks/health_check "${auth[@]}" -d '"BTC/USDT"'
    check "$mode: a body that is a bare string is 400 ($code)" test "$code" = 400
    # issue 10, fault 2: a period out of int range is refused up front, named
    req POST /api/v1/tasks/calculate_indicators_for_symbol "${auth[@]}" -d '{"symbols":["TSK/USDT"],"indicators":"macd:1e10:26:9"}'
    check "$mode: an indicator period out of range is 400 naming it ($code)" \
        test "$code:$(body "(j['parameter'], '1e10' in j['error'])")" = "400:('indicators', True)"
    req POST /api/v1/tasks/update_market_data "${auth[@]}" -d '{"symbols":["not a symbol"]}'
    check "$mode: a bad symbol is refused before a run is made, named (400: $code)" \
        test "$code:$(body "'not a symbol' in j['error']")" = "400:True"
    req GET /api/v1/tasks/does-not-exist
    check "$mode: an unknown run id is 404 ($code)" test "$code" = 404
    req GET "/api/v1/tasks/bad%21id"
    check "$mode: a malformed run id is 400 ($code)" test "$code:$(body "j['parameter']")" = "400:id"
    req GET "/api/v1/tasks?limit=0"
    check "$mode: limit=0 is 400 naming limit ($code)" test "$code:$(body "j['parameter']")" = "400:limit"
    req GET "/api/v1/tasks?name=bogus"
    check "$mode: an unknown task name is 400 ($code)" test "$code:$(body "j['parameter']")" = "400:name"
    req GET "/api/v1/tasks?state=x"
    check "$mode: an unknown parameter is 400 ($code)" test "$code" = 400
    for m in DELETE PUT PATCH; do
        req $m /api/v1/tasks
        check "$mode: $m /api/v1/tasks is 405 ($code)" test "$code" = 405
        req $m "/api/v1/tasks/$id"
        check "$mode: $m /api/v1/tasks/{key} is 405 ($code)" test "$code" = 405
    done
    req POST /api/v1/tasks "${auth[@]}" -d '{}'
    check "$mode: POST /api/v1/tasks (no task name) is 405 ($code)" test "$code" = 405
    if [ "$mode" = duckdb ]; then # the front door's answers, once (issue 11)
        long=$(head -c 3000 /dev/zero | tr '\0' a)
        req GET "/api/v1/tasks?name=$long"
        check "$mode: a URL over AUTONAMA_HTTP_MAX_URL is 414 on GET /api/v1/tasks ($code)" test "$code" = 414
        req GET "/api/v1/tasks/$long"
        check "$mode: ... and on GET /api/v1/tasks/{key} ($code)" test "$code" = 414
        head -c 70000 /dev/zero | tr '\0' ' ' >"$work/big.json"
        req POST /api/v1/tasks/health_check "${auth[@]}" --data-binary @"$work/big.json"
        check "$mode: a body over AUTONAMA_HTTP_MAX_BODY is 413 ($code)" test "$code" = 413
        req POST /api/v1/tasks/update_market_data "${auth[@]}" -d '{"symbols":12345}'
        check "$mode: arguments of the wrong type are 400 before a run is made ($code: $(body "j['error']"))" \
            test "$code" = 400
        req POST /api/v1/tasks/update_market_data "${auth[@]}" -d '{"since":"2021-05-02T-5:-5"}'
        check "$mode: a bad since is 400 naming it ($code)" \
            bash -c "[ $code = 400 ] && grep -q 'T-5:-5' '$work/body'"
    fi
    stop_serve

    # history survives the restart, and the API still shows it; restarted
    # with one connection per client on DuckDB: a held connection makes the
    # task routes answer 503 (the front door's per-client limit)
    if [ "$mode" = duckdb ]; then
        serve_tasks AUTONAMA_HTTP_MAX_CONNECTIONS_PER_CLIENT=1 || { bad "$mode: serve did not restart"; continue; }
        rm -f "$work/held"
        python3 -c 'import socket,sys,time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
time.sleep(20)' "${base##*:}" "$work/held" &
        holder=$!
        for _ in $(seq 1 100); do
            [ -e "$work/held" ] && break
            sleep 0.1
        done
        for _ in $(seq 1 20); do # until the server has accepted the held one
            req GET /api/v1/tasks
            c1=$code
            [ "$c1" = 503 ] && break
            sleep 0.2
        done
        req GET "/api/v1/tasks/$id"
        c2=$code
        c3=""
        for t in update_market_data calculate_indicators_for_symbol health_check optimize_strategy; do
            req POST "/api/v1/tasks/$t" "${auth[@]}" -d '{}'
            c3="$c3$code"
        done
        check "$mode: over the per-client limit the task routes answer 503 ($c1 $c2 $c3, $(body "j['error']"))" \
            test "$c1:$c2:$c3" = "503:503:503503503503"
        kill "$holder" 2>/dev/null
        wait "$holder" 2>/dev/null
        for _ in $(seq 1 20); do # until the server has seen it close
            req GET "/api/v1/tasks/$id"
            [ "$code" = 200 ] && break
            sleep 0.2
        done
    else
        serve_tasks || { bad "$mode: serve did not restart"; continue; }
    fi
    req GET "/api/v1/tasks/$id"
    check "$mode: the run is still there after a restart" test "$code:$(body "j['state']")" = "200:SUCCESS"
    unset AUTONAMA_API_KEY
    stop_serve
    serve_tasks || { bad "$mode: serve did not restart"; continue; }
    c403=""
    for t in update_market_data calculate_indicators_for_symbol health_check optimize_strategy; do
        req POST "/api/v1/tasks/$t" -H "Authorization: Bearer task-key" -d '{}'
        c403="$c403$code "
    done
    check "$mode: with no key configured, POST is refused (403: $c403)" test "$c403" = "403 403 403 403 "
    stop_serve
done

echo "# openapi.json conformance of the task routes"
if python3 "$check_py" conformance "$SRC/src/api/openapi.json" "$observed" /api/v1/tasks >"$work/conf.out"; then
    ok "the task routes produce exactly the statuses openapi.json declares"
else
    bad "task routes vs openapi.json:"
    grep "not ok" "$work/conf.out" | sed 's/^/    /'
fi
finish
