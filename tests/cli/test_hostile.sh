#!/usr/bin/env bash
# Hostile requests against the real `autonama serve` (issue 11), on DuckDB
# and PostgreSQL: tests/cli/hostile.py sends each fault the outside test
# found (700 query parameters, invalid UTF-8 echoed, bad times, the request
# smuggling shapes of RFC 9112 section 6.3, a 1 GiB Content-Length, a key cut
# by a NUL, invalid task arguments, oversized URL and headers) and checks a
# JSON answer at once; then a flood of rejected requests (RSS before and
# after; LeakSanitizer at exit on the sanitizer build), and slowloris and
# idle floods from 127.0.0.1 while another client (127.0.0.2) must still be
# answered, the flooding address gets 503 and its connections are closed by
# the request deadline. Prints hostile.py's table (request, status, seconds,
# RSS before and after). Quick sizes here; AN_CHECK_ALL=1 runs the issue's
# (1,100 slowloris connections, 40,000 flood requests).
# Needs AN_BIN, AN_SRC, AUTONAMA_TEST_PG.
set -uo pipefail

BIN=${AN_BIN:?}
SRC=${AN_SRC:?}
: "${AUTONAMA_TEST_PG:?run through make test}"
work=$(mktemp -d /tmp/autonama-hostile.XXXXXX)
# shellcheck source=lib.sh
. "$SRC/tests/cli/lib.sh"
trap '[ -n "$serve_pid" ] && kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT

observed=$work/observed.jsonl
: >"$observed"
sanitize=0
{ [ "${AN_SANITIZE:-0}" = 1 ] || [ "${AN_SANITIZE:-}" = ON ]; } && sanitize=1
deadline=2
per_client=16
sizes=(--flood 2000 --connections 300)
[ "$sanitize" = 1 ] && sizes=(--flood 400 --connections 200 --no-rss)
[ "${AN_CHECK_ALL:-0}" = 1 ] && sizes=(--slow) && deadline=4
[ "${AN_CHECK_ALL:-0}" = 1 ] && [ "$sanitize" = 1 ] && sizes+=(--no-rss)

for mode in duckdb postgres; do
    echo "# mode $mode"
    mode_env "$mode"
    reset_mode "$mode"
    export AUTONAMA_API_KEY=hostile-key
    start_serve AUTONAMA_BEAT_UPDATE_INTERVAL=0 AUTONAMA_BEAT_INDICATORS_INTERVAL=0 \
        AUTONAMA_BEAT_HEALTH_INTERVAL=0 AUTONAMA_FALLBACK_PATH="$work/fallback.duckdb" \
        AUTONAMA_HTTP_MAX_CONNECTIONS_PER_CLIENT=$per_client \
        AUTONAMA_HTTP_REQUEST_DEADLINE=$deadline ||
        {
            bad "$mode: serve did not start: $(tail -3 "$work/serve.err")"
            continue
        }
    t0=$SECONDS
    python3 "$SRC/tests/cli/hostile.py" "$base" "$serve_pid" --key hostile-key \
        --deadline "$deadline" --per-client "$per_client" "${sizes[@]}" >"$work/hostile.out" 2>&1
    rc=$?
    sed "s/^\(not \)\{0,1\}ok - /&$mode: /; s/^# /# $mode: /" "$work/hostile.out" |
        grep -v '^[0-9]* passed, [0-9]* failed$'
    hp=$(grep -c '^ok - ' "$work/hostile.out")
    hf=$(grep -c '^not ok - ' "$work/hostile.out")
    passed=$((passed + hp))
    failed=$((failed + hf))
    check "$mode: hostile.py ran to its end (exit $rc, $hp checks passed, $hf failed, $((SECONDS - t0)) s)" \
        test "$rc" -eq 0 -a "$hp" -gt 40
    req GET /api/v1/symbols
    check "$mode: the server still answers after the floods ($code)" test "$code" = 200
    stop_serve
done
finish
