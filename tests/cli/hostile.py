#!/usr/bin/env python3
"""Hostile requests against a running `autonama serve` (stdlib only, raw sockets).

  hostile.py BASE SERVE_PID [--key KEY] [--slow] [--deadline S] [--per-client N]
             [--flood N] [--connections N] [--no-rss]

--deadline and --per-client are the server's AUTONAMA_HTTP_REQUEST_DEADLINE
and AUTONAMA_HTTP_MAX_CONNECTIONS_PER_CLIENT (the checks of the floods use
them); --slow runs the issue's full sizes (40,000 flood requests, longer
slowloris); --flood and --connections size the floods otherwise (5000
requests, 1100 connections); --no-rss skips the RSS check (a sanitizer's
quarantine grows the heap; LeakSanitizer at the server's exit checks it).

Each case sends what an attacker or a broken client would, and checks the
answer: a status in the expected set, a body that is valid UTF-8 JSON with an
"error" member, the connection closed where RFC 9112 says it must be, and an
answer within a deadline. Then the floods: thousands of rejected requests
(RSS of the server before and after), slowloris and idle connections
(another client, from another loopback address, must still be answered).
Every loop is bounded in count and time and only targets loopback.

Prints one TAP-like line per check and a table (case, status, seconds, RSS in
KiB before and after); exits 1 when a check failed.
"""
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

failed = 0
passed = 0
table = []


def ok(cond, what):
    global failed, passed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what)
    return cond


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Reply:
    def __init__(self, status, headers, body, closed, seconds):
        self.status, self.headers, self.body = status, headers, body
        self.closed, self.seconds = closed, seconds


def read_reply(s, deadline):
    """Reads one HTTP/1.1 reply (Content-Length or close-delimited)."""
    buf = b""
    s.settimeout(max(0.05, deadline - time.monotonic()))
    while b"\r\n\r\n" not in buf:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return None, buf
        if not chunk:
            return None, buf
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for l in lines[1:]:
        if b":" in l:
            k, v = l.split(b":", 1)
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    n = int(headers.get("content-length", "-1"))
    while n >= 0 and len(rest) < n:
        try:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        rest += chunk
    body = rest[:n] if n >= 0 else rest
    return (status, headers, body), rest[n:] if n >= 0 else b""


def closed_after(s, wait=2.0):
    """1 when the server closes the connection within wait seconds without
    sending anything more (a second reply means a smuggled request ran)."""
    s.settimeout(wait)
    try:
        data = s.recv(65536)
        return data == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def send_raw(host, port, data, timeout=5.0, src=None):
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=timeout, source_address=(src, 0) if src else None)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r, extra = read_reply(s, t0 + timeout)
    secs = time.monotonic() - t0
    if r is None:
        s.close()
        return Reply(0, {}, b"", True, secs), None
    return Reply(r[0], r[1], r[2], None, secs), (s, extra)


def valid_json_error(body):
    try:
        text = body.decode("utf-8")
        j = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(j, dict) and "error" in j


def case(name, host, port, data, statuses, pid, must_close=False, deadline=3.0, json_body=True):
    rss_before = rss_kib(pid)
    r, conn = send_raw(host, port, data, timeout=deadline + 2)
    closed = None
    if conn:
        s, extra = conn
        if must_close:
            closed = extra == b"" and closed_after(s)
        s.close()
    table.append((name, r.status, r.seconds, rss_before, rss_kib(pid)))
    ok(r.status in statuses, f"{name}: status {r.status} in {sorted(statuses)}")
    ok(r.seconds <= deadline, f"{name}: answered in {r.seconds:.2f} s (<= {deadline} s)")
    if json_body and r.status:
        ok(valid_json_error(r.body), f"{name}: the body is valid UTF-8 JSON with an error member")
    if must_close:
        ok(closed is True, f"{name}: the connection is closed after the reply (nothing more runs)")
    return r


def flood_rejected(host, port, pid, n=40000, seconds=60, rss_check=True):
    """n requests with 700 query parameters each, over keep-alive connections."""
    q = "&".join(f"p{i}=1" for i in range(700))
    req = (f"GET /api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1h&{q} HTTP/1.1\r\n"
           f"Host: x\r\n\r\n").encode()
    before = rss_kib(pid)
    t0 = time.monotonic()
    sent = answered = 0
    s = None
    while sent < n and time.monotonic() - t0 < seconds:
        if s is None:
            s = socket.create_connection((host, port), timeout=5)
        try:
            s.sendall(req)
            sent += 1
            r, _ = read_reply(s, time.monotonic() + 5)
        except OSError:
            r = None
        if r is None:
            s.close()
            s = None
            continue
        answered += 1
        if r[1].get("connection", "").lower() == "close":
            s.close()
            s = None
    if s:
        s.close()
    time.sleep(0.5)
    after = rss_kib(pid)
    table.append((f"flood: {answered} of {sent} requests with 700 parameters", 0,
                  time.monotonic() - t0, before, after))
    ok(answered == sent and sent > 0, f"flood: every request answered ({answered} of {sent})")
    grew = after - before
    if rss_check:
        ok(grew < 4096, f"flood: RSS grew {grew} KiB over {sent} rejected requests (< 4 MiB)")


def other_client_ok(host, port, deadline, src="127.0.0.2"):
    t0 = time.monotonic()
    try:
        r, conn = send_raw(host, port, b"GET /api/v1/symbols HTTP/1.1\r\nHost: x\r\n\r\n",
                           timeout=deadline, src=src)
    except OSError:
        return None, time.monotonic() - t0
    if conn:
        conn[0].close()
    return r.status, time.monotonic() - t0


def slowloris(host, port, pid, n=1100, hold=12.0, idle=False, deadline=10.0, per_client=128):
    """n connections from 127.0.0.1 that send a header line every 4 s (or
    nothing at all); meanwhile another client (127.0.0.2) must be served.
    The server keeps per_client of them (the others are answered 503 or
    refused) and drops those by its request deadline."""
    rss_before = rss_kib(pid)
    socks = []
    stop = threading.Event()
    refused = 0
    extra = None
    t_extra = 0.0

    def extra_request():
        # the flooding client itself is told 503 quickly while its slots
        # are held: asked as soon as it holds twice its limit, well inside
        # the request deadline of its first connections (asked after the
        # whole flood, a loaded machine's slow connects could let that
        # deadline close them first, and the answer was then rightly 200)
        try:
            r, conn = send_raw(host, port, b"GET /api/v1/symbols HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
            if conn:
                conn[0].close()
            return r.status, r.seconds
        except OSError:
            return -1, 0.0

    t_first = time.monotonic()
    for i in range(n):
        try:
            s = socket.create_connection((host, port), timeout=2)
            if not idle:
                s.sendall(b"GET /api/v1/symbols HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            refused += 1
        if extra is None and len(socks) >= 2 * per_client:
            t_held = time.monotonic() - t_first
            extra, t_extra = extra_request()
            if t_held > deadline / 2:
                print(f"# {'idle' if idle else 'slowloris'}: {2 * per_client} connections "
                      f"took {t_held:.2f} s of the {deadline} s deadline")

    def drip():
        i = 0
        while not stop.wait(4.0):
            i += 1
            for s in list(socks):
                try:
                    s.sendall(f"X-Drip-{i}: 1\r\n".encode())
                except OSError:
                    pass

    th = None
    if not idle:
        th = threading.Thread(target=drip, daemon=True)
        th.start()
    kind = "idle" if idle else "slowloris"
    t0 = time.monotonic()
    time.sleep(1.5)  # the connections over the limit are dropped after a second
    worst = 0.0
    statuses = []
    while time.monotonic() - t0 < hold:
        st, secs = other_client_ok(host, port, 5.0)
        statuses.append(st)
        worst = max(worst, secs)
        time.sleep(1.0)
    # the server drops the slow ones by its request deadline
    alive = 0
    for s in socks:
        s.settimeout(0.01)
        try:
            alive += s.recv(1, socket.MSG_PEEK) != b""
        except socket.timeout:
            alive += 1
        except OSError:
            pass
    stop.set()
    for s in socks:
        s.close()
    if th:
        th.join()
    table.append((f"{kind}: {n} connections ({refused} refused), other client worst",
                  max([x or 0 for x in statuses] or [0]), worst, rss_before, rss_kib(pid)))
    table.append((f"{kind}: a new request from the flooding address", extra or 0, t_extra,
                  rss_before, rss_kib(pid)))
    ok(all(x == 200 for x in statuses),
       f"{kind}: another client was answered 200 every time ({statuses})")
    ok(worst <= 2.0, f"{kind}: another client's worst answer took {worst:.2f} s (<= 2 s)")
    ok(extra in (503, 429) and t_extra <= 1.0,
       f"{kind}: a request from the flooding address gets 503 at once ({extra}, {t_extra:.2f} s)")
    if hold > deadline + 1.5:
        ok(alive == 0, f"{kind}: every flooding connection closed by the request deadline "
                       f"({alive} still open after {hold:.0f} s)")
    else:
        ok(alive <= per_client,
           f"{kind}: at most {per_client} flooding connections kept ({alive} still open)")


def get_json(host, port, path, key=None):
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    r, conn = send_raw(host, port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
    if conn:
        conn[0].close()
    try:
        return json.loads(r.body.decode())
    except ValueError:
        return None


def details_hidden(host, port, key):
    """/health's store location and the runs' host:pid only with the key."""
    body = "{}"
    send_raw(host, port, (f"POST /api/v1/tasks/health_check HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    h0, h1 = get_json(host, port, "/health"), get_json(host, port, "/health", key)
    ok(h0 is not None and "where" not in h0.get("store", {}),
       f"/health without the key does not show where the store is ({(h0 or {}).get('store')})")
    ok(h1 is not None and "where" in h1.get("store", {}),
       f"/health with the key shows it ({(h1 or {}).get('store')})")
    t0, t1 = get_json(host, port, "/api/v1/tasks"), get_json(host, port, "/api/v1/tasks", key)
    runs0, runs1 = (t0 or {}).get("tasks", []), (t1 or {}).get("tasks", [])
    ok(len(runs0) > 0 and all("instance" not in r for r in runs0),
       f"the task runs without the key do not show host:pid ({len(runs0)} runs)")
    ok(len(runs1) > 0 and all("instance" in r for r in runs1),
       f"... with the key they do ({len(runs1)} runs)")


def main():
    base = sys.argv[1]
    pid = int(sys.argv[2])
    key = None
    slow = "--slow" in sys.argv
    if "--key" in sys.argv:
        key = sys.argv[sys.argv.index("--key") + 1]
    deadline = 10.0
    if "--deadline" in sys.argv:
        deadline = float(sys.argv[sys.argv.index("--deadline") + 1])
    per_client = 128
    if "--per-client" in sys.argv:
        per_client = int(sys.argv[sys.argv.index("--per-client") + 1])
    u = urllib.parse.urlparse(base)
    host, port = u.hostname, u.port
    rss0 = rss_kib(pid)
    H = "Host: x\r\n"

    # many query parameters: a JSON 400/414 at once
    q = "&".join(f"p{i}=1" for i in range(700))
    case("700 query parameters", host, port,
         f"GET /api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1h&{q} HTTP/1.1\r\n{H}\r\n".encode(),
         {400, 414}, pid)
    # invalid UTF-8 echoed in an error
    for v in ["BTC/%C3%28%FF", "%FF%FE", "BTC%E2%82", "%C0%AF"]:
        case(f"symbol={v}", host, port,
             f"GET /api/v1/data/ohlc?symbol={v}&timeframe=1h HTTP/1.1\r\n{H}\r\n".encode(),
             {400, 404}, pid)
    case("timeframe=%FF", host, port,
         f"GET /api/v1/data/ohlc?symbol=BTC/USDT&timeframe=%FF%FE HTTP/1.1\r\n{H}\r\n".encode(),
         {400, 404}, pid)
    case("unknown path with invalid UTF-8", host, port,
         f"GET /api/v1/%FF%C3 HTTP/1.1\r\n{H}\r\n".encode(), {404}, pid)
    # bad times
    for v in ["2021-05-02T-5:-5", "2021-13-01", "2021-02-30", "-1", "99999999999999999999"]:
        case(f"start={v}", host, port,
             f"GET /api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1h&start={v} HTTP/1.1\r\n{H}\r\n".encode(),
             {400}, pid)
    # request smuggling shapes (RFC 9112 6.3): 400 and the connection closed
    body = '{"symbols":["BTC/USDT"]}'
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    case("two different Content-Length", host, port,
         (f"POST /api/v1/tasks/health_check HTTP/1.1\r\n{H}{auth}Content-Type: application/json\r\n"
          f"Content-Length: {len(body)}\r\nContent-Length: 5\r\n\r\n{body}").encode(),
         {400}, pid, must_close=True)
    smuggled = "GET /api/v1/symbols HTTP/1.1\r\nHost: x\r\n\r\n"
    chunked = f"{len(body):x}\r\n{body}\r\n0\r\n\r\n"
    case("Content-Length with Transfer-Encoding: chunked", host, port,
         (f"POST /api/v1/tasks/health_check HTTP/1.1\r\n{H}{auth}Content-Type: application/json\r\n"
          f"Content-Length: {len(chunked)}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}{smuggled}").encode(),
         {400}, pid, must_close=True)
    case("unknown Transfer-Encoding", host, port,
         (f"POST /api/v1/tasks/health_check HTTP/1.1\r\n{H}{auth}Content-Type: application/json\r\n"
          f"Transfer-Encoding: gzip, chunked\r\n\r\n{chunked}").encode(),
         {400, 501}, pid, must_close=True)
    # a huge declared body is refused on its Content-Length, before any byte
    case("Content-Length 1 GiB, no body sent", host, port,
         (f"POST /api/v1/tasks/health_check HTTP/1.1\r\n{H}{auth}Content-Type: application/json\r\n"
          f"Content-Length: 1073741824\r\n\r\n").encode(),
         {413}, pid, deadline=1.0)
    # an Authorization header with a NUL byte inside the key: libmicrohttpd
    # 0.9.75 ends a header value at a NUL (it measures it with strlen), so
    # what follows the NUL is never seen; the part before must then be the
    # whole key, and a key cut by a NUL does not match
    if key:
        case("Authorization: the key cut by a NUL byte", host, port,
             (f"POST /api/v1/tasks/health_check HTTP/1.1\r\n{H}Authorization: Bearer {key[:-1]}\x00{key[-1]}\r\n"
              f"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}").encode(),
             {400, 401}, pid)
        bad = '{"symbols": 12345}'
        case("invalid task arguments", host, port,
             (f"POST /api/v1/tasks/update_market_data HTTP/1.1\r\n{H}{auth}"
              f"Content-Type: application/json\r\nContent-Length: {len(bad)}\r\n\r\n{bad}").encode(),
             {400}, pid)
    if key:
        details_hidden(host, port, key)
    # libmicrohttpd's own refusals answer JSON too
    case("URL of 100 KB", host, port,
         f"GET /api/v1/symbols?x={'a' * 100000} HTTP/1.1\r\n{H}\r\n".encode(), {414, 431, 400}, pid)
    # a URL over the limit whose query is as dense as "a&": its parameters
    # are never parsed (on_uri), so even 30,000 of them get our JSON 414
    # at once, not silence (before: no reply at 8,192)
    for n in (2048, 8192, 30000):
        case(f"URL with {n} dense parameters", host, port,
             f"GET /api/v1/data/ohlc?{'a&' * n} HTTP/1.1\r\n{H}\r\n".encode(), {414}, pid,
             deadline=2.0)
    case("header of 100 KB", host, port,
         f"GET /api/v1/symbols HTTP/1.1\r\n{H}X-Big: {'b' * 100000}\r\n\r\n".encode(), {431, 400}, pid)
    # libmicrohttpd 0.9.75 closes the connection at once without a reply
    # (status 0 here) before any callback of ours runs: fast, not silence
    case("malformed request line", host, port, b"GET\r\n\r\n", {400, 0}, pid, deadline=1.0)
    case("indicators with an empty result", host, port,
         f"GET /api/v1/data/indicators?symbol=BTC/USDT&timeframe=1h&start=1990-01-01&end=1990-01-02 "
         f"HTTP/1.1\r\n{H}\r\n".encode(), {200, 404}, pid, json_body=False)

    def opt(name, default):
        return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default

    flood_rejected(host, port, pid, n=40000 if slow else opt("--flood", 5000),
                   seconds=60 if slow else 20, rss_check="--no-rss" not in sys.argv)
    nconn = 1100 if slow else opt("--connections", 1100)
    slowloris(host, port, pid, n=nconn, hold=deadline + 4 if slow else deadline + 2,
              deadline=deadline, per_client=per_client)
    slowloris(host, port, pid, n=nconn, hold=deadline + 2, idle=True, deadline=deadline,
              per_client=per_client)

    print(f"# {'case':62} {'status':>6} {'seconds':>8} {'RSS before':>10} {'RSS after':>10}")
    for name, st, secs, rb, ra in table:
        print(f"# {name[:62]:62} {st:>6} {secs:8.3f} {rb:>10} {ra:>10}")
    print(f"# RSS at start {rss0} KiB, at end {rss_kib(pid)} KiB")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
