#!/usr/bin/env python3
"""Standalone check of the fake Binance server (stdlib only).

    python3 tests/fake_binance/selftest.py [--data-dir DIR]
    python3 tests/fake_binance/selftest.py --bench [--seconds 5]

The first form starts server.py on port 0 with a generated year and the real
candle files, checks the wire format and every behaviour the C client's
tests rely on, prints "N passed, N failed" and exits non-zero on failure.
--bench measures how many klines pages of 1000 rows per second the server
delivers to one keep-alive client.
"""
import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "server.py")
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "candles"))
Y0 = 1672531200000            # 2023-01-01T00:00:00Z
Y1 = 1704067200000            # 2024-01-01T00:00:00Z
M = 60000
H = 3600000
NOW = Y1 + 30 * M + 123       # the fake clock: 2024-01-01T00:30:00.123Z
DEC8 = re.compile(r"^-?[0-9]+\.[0-9]{8}$")

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok - " + name)
    else:
        failed += 1
        print("not ok - " + name + (" (%s)" % detail if detail else ""))
    return cond


def start(*args):
    p = subprocess.Popen([sys.executable, SERVER, "--port", "0"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"^listening 127\.0\.0\.1:(\d+)$", line.strip())
    if not m:
        p.kill()
        raise SystemExit("server did not start: %r %s" % (line, p.stderr.read()))
    return p, int(m.group(1))


class Conn:
    """One keep-alive connection."""

    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)

    def get(self, path):
        self.c.request("GET", path)
        r = self.c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def post(self, path, obj):
        self.c.request("POST", path, body=json.dumps(obj), headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        return r.status, json.loads(r.read())

    def json(self, path):
        s, h, b = self.get(path)
        return s, h, json.loads(b)


def raw(port, path, timeout=10):
    """One request on a fresh socket, read to EOF. Returns (status or None,
    headers, body bytes, error text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
    data, err = b"", ""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        err = type(e).__name__
    finally:
        s.close()
    if b"\r\n\r\n" not in data:
        return None, {}, data, err or "eof"
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body, err


def row_problems(rows, interval_ms=None):
    """Types and validity of a klines reply; returns a list of problems."""
    out = []
    if not isinstance(rows, list):
        return ["not a list"]
    for r in rows:
        if not isinstance(r, list) or len(r) != 12:
            out.append("row of %s" % (len(r) if isinstance(r, list) else type(r).__name__))
            continue
        types = [type(x) for x in r]
        if types != [int, str, str, str, str, str, int, str, int, str, str, str] or r[11] != "0":
            out.append("types %s" % [t.__name__ for t in types])
            continue
        if not all(DEC8.match(x) for x in r[1:6] + r[7:8] + r[9:11]):
            out.append("not 8 decimals: %s" % r)
            continue
        o, h, lo, c, v = (float(x) for x in r[1:6])
        if not (0 < lo <= min(o, c) and max(o, c) <= h and v >= 0):
            out.append("invalid candle %s" % r)
        if interval_ms and (r[0] % interval_ms or r[6] != r[0] + interval_ms - 1):
            out.append("times %s %s" % (r[0], r[6]))
    for a, b in zip(rows, rows[1:]):
        if isinstance(a, list) and isinstance(b, list) and a and b and \
                isinstance(a[0], int) and isinstance(b[0], int) and b[0] <= a[0]:
            out.append("not increasing %s %s" % (a[0], b[0]))
    return out


def klines(sym, interval, **kw):
    q = "/api/v3/klines?symbol=%s&interval=%s" % (sym, interval)
    for k, v in kw.items():
        q += "&%s=%s" % (k, v)
    return q


def main_tests(data_dir):
    t_start = time.time()
    srv, port = start("--data-dir", data_dir,
                      "--generate", "AAAUSDT:1m:%d:%d" % (Y0, Y1),
                      "--generate", "OPNUSDT:1h:%d:%d" % (Y1 - 2 * 86400000, Y1 + 2 * 86400000),
                      "--generate", "MONUSDT:1M:%d:%d" % (Y0, Y1),
                      "--server-time-ms", str(NOW), "--seed", "3", "--slow-seconds", "0.3")
    lim, lport = start("--generate", "AAAUSDT:1m:%d:%d" % (Y0, Y1), "--weight-limit", "10")
    try:
        run(port, lport, data_dir)
    finally:
        for p, sig in ((srv, signal.SIGTERM), (lim, signal.SIGINT)):
            p.send_signal(sig)
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = "timeout"
            check("exits with status 0 on %s" % signal.Signals(sig).name, rc == 0, rc)
    print("# %.1f s" % (time.time() - t_start))


def run(port, lport, data_dir):
    c = Conn(port)

    # --- time, bind address
    s, h, j = c.json("/api/v3/time")
    check("time: {\"serverTime\": the fake clock}", s == 200 and j == {"serverTime": NOW}, j)
    check("replies are application/json", h.get("content-type", "").startswith("application/json"), h)
    check("replies carry X-MBX-USED-WEIGHT-1M", h.get("x-mbx-used-weight-1m", "").isdigit(), h)
    try:
        other = socket.gethostbyname(socket.gethostname())
    except OSError:
        other = None
    if other and not other.startswith("127."):
        try:
            socket.create_connection((other, port), timeout=2).close()
            reached = True
        except OSError:
            reached = False
        check("not reachable on %s (bound to 127.0.0.1 only)" % other, not reached)

    # --- exchangeInfo
    s, h, j = c.json("/api/v3/exchangeInfo")
    names = sorted(x["symbol"] for x in j.get("symbols", []))
    check("exchangeInfo lists every served symbol",
          s == 200 and names == ["AAAUSDT", "BTCUSDT", "ETHUSDT", "MONUSDT", "OPNUSDT"], names)
    check("exchangeInfo shape", j.get("timezone") == "UTC" and j.get("serverTime") == NOW
          and j.get("exchangeFilters") == [] and j["rateLimits"][0] == {
              "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}
          and all(x["status"] == "TRADING" for x in j["symbols"])
          and {(x["baseAsset"], x["quoteAsset"]) for x in j["symbols"] if x["symbol"] == "BTCUSDT"}
          == {("BTC", "USDT")}, j.get("rateLimits"))
    s, h, j = c.json("/api/v3/exchangeInfo?symbol=BTCUSDT")
    check("exchangeInfo?symbol=BTCUSDT", s == 200 and [x["symbol"] for x in j["symbols"]] == ["BTCUSDT"])
    s, h, j = c.json('/api/v3/exchangeInfo?symbols=%5B%22ETHUSDT%22,%22AAAUSDT%22%5D')
    check('exchangeInfo?symbols=["ETHUSDT","AAAUSDT"]',
          s == 200 and [x["symbol"] for x in j["symbols"]] == ["ETHUSDT", "AAAUSDT"], j)
    for q in ("symbol=NOPEUSDT", 'symbols=%5B%22BTCUSDT%22,%22NOPEUSDT%22%5D'):
        s, h, j = c.json("/api/v3/exchangeInfo?" + q)
        check("exchangeInfo?%s -> 400 -1121" % q, s == 400 and j == {"code": -1121, "msg": "Invalid symbol."}, (s, j))

    # --- request errors
    for q, code in ((klines("AAAUSDT", "1m", limit=1001), -1100), (klines("AAAUSDT", "7m"), -1120),
                    (klines("NOPEUSDT", "1m"), -1121), ("/api/v3/klines?interval=1m", -1102),
                    ("/api/v3/klines?symbol=AAAUSDT", -1102), (klines("AAAUSDT", "1m", startTime="x1"), -1100),
                    (klines("AAAUSDT", "1m", startTime=Y0 + M, endTime=Y0), -1023)):
        s, h, j = c.json(q)
        check("%s -> 400 %d" % (q, code), s == 400 and j.get("code") == code and isinstance(j.get("msg"), str), (s, j))
    s, h, j = c.json(klines("BTCUSDT", "3m"))
    check("a real symbol without that interval -> []", s == 200 and j == [], (s, j))

    # --- a generated year, paged with startTime and limit=1000
    t, n, pages, probs, gaps, sock = Y0, 0, 0, [], 0, c.c.sock
    t0 = time.perf_counter()
    prev = None
    while True:
        s, h, body = c.get(klines("AAAUSDT", "1m", startTime=t, limit=1000))
        rows = json.loads(body)
        pages += 1
        if s != 200 or not rows:
            break
        if len(probs) < 5:
            probs += row_problems(rows, M)
        for r in rows:
            if prev is not None and (r[0] != prev + M or r[1] != prev_close):
                gaps += 1
            prev, prev_close = r[0], r[4]
        n += len(rows)
        t = rows[-1][0] + M
    dt = time.perf_counter() - t0
    check("generated year: 525,600 contiguous 1m candles in 526 pages",
          n == 525600 and gaps == 0 and pages == 527, (n, gaps, pages))
    check("generated year: exact 12-field types, 8 decimals, valid candles", not probs, probs[:3])
    check("one keep-alive connection served every page", c.c.sock is sock and sock is not None)
    print("# paged the generated year at %.0f pages/s (client parsing and checking included)" % (pages / dt))
    s, h, j = c.json(klines("AAAUSDT", "1m"))
    check("no start/end: the most recent 500 rows",
          len(j) == 500 and j[-1][0] == Y1 - M and j[0][0] == Y1 - 500 * M, (len(j), j[-1][0]))
    s, h, j = c.json(klines("AAAUSDT", "1m", endTime=Y0 + 10 * M + 5, limit=3))
    check("endTime only: the last rows opening at or before it", [r[0] for r in j] == [Y0 + 8 * M, Y0 + 9 * M, Y0 + 10 * M])
    s, h, j = c.json(klines("AAAUSDT", "1m", startTime=Y0 + 1, endTime=Y0 + 3 * M))
    check("startTime+endTime: open time >= start and <= end", [r[0] for r in j] == [Y0 + M, Y0 + 2 * M, Y0 + 3 * M])
    lim = Conn(lport)
    a = c.get(klines("AAAUSDT", "1m", startTime=Y0 + 12345 * M, limit=1000))[2]
    b = lim.get(klines("AAAUSDT", "1m", startTime=Y0 + 12345 * M, limit=1000))[2]
    check("a generated series is the same in another server (deterministic)", a == b and len(a) > 1000)
    s, h, j = c.json(klines("MONUSDT", "1M", limit=20))
    check("generated 1M: 12 calendar months, each closing the ms before the next",
          len(j) == 12 and j[0][0] == Y0 and j[1][6] == 1677628799999 and not row_problems(j), row_problems(j)[:2])

    # --- the real BTCUSDT 1m file, served exactly
    with open(os.path.join(data_dir, "BTC_USDT-1m.json")) as f:
        ref = json.load(f)
    got, t = [], 0
    while True:
        s, h, j = c.json(klines("BTCUSDT", "1m", startTime=t, limit=1000))
        if not j:
            break
        got += j
        t = j[-1][0] + 1
    first = got[0] if got else []
    check("real BTCUSDT 1m: first row equals the file's",
          first[:1] == [ref[0][0]] and [float(x) for x in first[1:6]] == ref[0][1:]
          and first[1] == "56738.76000000" and first[6] == ref[0][0] + M - 1, first)
    check("real BTCUSDT 1m: 42,915 rows over the whole range", len(got) == 42915 == len(ref), len(got))
    same = len(got) == len(ref) and all(g[0] == r[0] and [float(x) for x in g[1:6]] == r[1:] for g, r in zip(got, ref))
    check("real BTCUSDT 1m: every row equals the file's", same)
    check("real BTCUSDT 1m: exact types and valid candles", not row_problems(got, M), row_problems(got, M)[:2])

    # --- the still-open candle and the clock
    s, h, j = c.json(klines("OPNUSDT", "1h", limit=5))
    last = j[-1] if j else [0] * 12
    check("open candle: the candle containing the server time is the last one served",
          last[0] == Y1 and last[6] == Y1 + H - 1 and last[6] > NOW and j[-2][6] < NOW, last[:1] + last[6:7])
    s, h, j = c.json(klines("OPNUSDT", "1h", startTime=Y1 + 1))
    check("open candle: nothing after it", j == [], j)
    s, r = c.post("/_control/clock", {"advance_ms": H})
    s, h, j = c.json(klines("OPNUSDT", "1h", limit=2))
    s2, h2, tj = c.json("/api/v3/time")
    check("clock: advancing an hour closes it and opens the next",
          [x[0] for x in j] == [Y1, Y1 + H] and tj["serverTime"] == NOW + H, ([x[0] for x in j], tj))
    c.post("/_control/clock", {"server_time_ms": NOW})

    # --- amend (a corrected candle)
    s, r = c.post("/_control/amend", {"symbol": "OPNUSDT", "interval": "1h", "open_time": Y1, "close": "123.45"})
    s, h, j = c.json(klines("OPNUSDT", "1h", startTime=Y1))
    check("amend: the candle is served with the new close, high/low kept valid",
          j and j[0][4] == "123.45000000" and not row_problems(j), j[:1])
    s, r = c.post("/_control/amend", {"symbol": "OPNUSDT", "interval": "1h", "open_time": Y1 + 1, "close": "1"})
    check("amend: a time with no candle is refused", s == 400)

    # --- weight
    def weights(n):
        out = []
        for _ in range(n):
            out.append(int(c.get(klines("AAAUSDT", "1m", limit=1))[1]["x-mbx-used-weight-1m"]))
        return out
    for _ in range(3):  # retry if the minute window rolled in between
        w = weights(4)
        if w == sorted(w):
            break
    check("weight: +2 per klines call", [b - a for a, b in zip(w, w[1:])] == [2, 2, 2], w)
    for _ in range(3):
        w0 = int(c.get("/api/v3/time")[1]["x-mbx-used-weight-1m"])
        w1 = int(c.get("/api/v3/exchangeInfo")[1]["x-mbx-used-weight-1m"])
        if w1 >= w0:
            break
    check("weight: +20 per exchangeInfo", w1 - w0 == 20, (w0, w1))
    for _ in range(3):
        lim.post("/_control/weight", {"used": 0})
        seen = [lim.get(klines("AAAUSDT", "1m", limit=1)) for _ in range(6)]
        ws = [int(x[1]["x-mbx-used-weight-1m"]) for x in seen]
        if ws == sorted(ws):
            break
    s6, h6, b6 = seen[5]
    check("weight limit 10: five klines calls pass (2,4,6,8,10)",
          [x[0] for x in seen[:5]] == [200] * 5 and ws[:5] == [2, 4, 6, 8, 10], ws)
    check("weight limit 10: the sixth is 429 -1003 with Retry-After",
          s6 == 429 and json.loads(b6).get("code") == -1003 and 1 <= int(h6.get("retry-after", "0")) <= 60
          and h6.get("x-mbx-used-weight-1m") == "10", (s6, h6, b6[:80]))

    # --- faults, each forced alone at rate 1.0
    page = klines("AAAUSDT", "1m", startTime=Y0, limit=100)

    def stats():
        return c.json("/_control/stats")[2]

    def forced(kind, n, verify):
        before = stats()["faults"]
        c.post("/_control/faults", {"rate": 1.0, "kinds": [kind]})
        results = [raw(port, page) for _ in range(n)]
        c.post("/_control/faults", {"rate": 0.0})
        after = stats()["faults"]
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        delta = {k: v for k, v in delta.items() if v}
        ok = all(verify(*r) for r in results)
        check("fault %s: forced alone, seen %d times and nothing else" % (kind, n),
              ok and delta == {kind: n}, (delta, [(r[0], r[3], r[2][:60]) for r in results][:3]))

    def is_json_error(status, code=None):
        def f(s, h, b, e):
            try:
                j = json.loads(b)
            except ValueError:
                return False
            return s == status and len(b) < 300 and (code is None or j.get("code") == code)
        return f

    forced("429", 2, lambda s, h, b, e: s == 429 and h.get("retry-after") == "1" and json.loads(b)["code"] == -1003)
    forced("418", 2, lambda s, h, b, e: s == 418 and h.get("retry-after") == "2" and json.loads(b)["code"] == -1003)
    for k in ("500", "502", "503"):
        forced(k, 2, is_json_error(int(k)))
    t0 = time.perf_counter()
    forced("slow", 2, lambda s, h, b, e: s == 200 and len(json.loads(b)) == 100)
    check("fault slow: answers after --slow-seconds", time.perf_counter() - t0 >= 0.6)
    forced("truncate", 2, lambda s, h, b, e: s == 200 and int(h["content-length"]) > len(b) > 0)

    def malformed(s, h, b, e):
        try:
            json.loads(b)
            return False
        except ValueError:
            return s == 200 and int(h["content-length"]) == len(b)
    forced("malformed", 6, malformed)

    def wrongtype(s, h, b, e):
        try:
            rows = json.loads(b)
        except ValueError:
            return False
        return s == 200 and len(rows) == 100 and len(row_problems(rows)) == 1
    forced("wrongtype", 8, wrongtype)
    forced("reset", 2, lambda s, h, b, e: s is None and b == b"")
    s, h, j = c.json(page)
    check("faults off again: a clean page", s == 200 and len(j) == 100 and not row_problems(j, M))

    # the fault sequence depends only on the seed and the order of requests
    seqs = []
    for _ in range(2):
        c.post("/_control/faults", {"rate": 0.5, "kinds": ["429", "500", "503", "malformed"], "seed": 42})
        seqs.append([c.get(page)[0] for _ in range(30)])
    c.post("/_control/faults", {"rate": 0.0})
    check("faults: the same seed gives the same sequence", seqs[0] == seqs[1] and len(set(seqs[0])) > 2, seqs)

    # --- bad data, one reply each
    symptoms = {
        "high_below_low": lambda rows: any(float(r[2]) < float(r[3]) for r in rows),
        "open_outside": lambda rows: any(not float(r[3]) <= float(r[1]) <= float(r[2]) for r in rows),
        "negative_volume": lambda rows: any(float(r[5]) < 0 for r in rows),
        "misaligned": lambda rows: any(r[0] % M for r in rows),
        "duplicate": lambda rows: any(a[0] == b[0] for a, b in zip(rows, rows[1:])) and len(rows) == 100,
        "out_of_order": lambda rows: any(a[0] > b[0] for a, b in zip(rows, rows[1:])),
        "non_numeric": lambda rows: any(x == "abc" for r in rows for x in r[1:5]),
    }
    for kind, seen in symptoms.items():
        c.post("/_control/bad", {"kind": kind, "count": 1})
        s1, h1, j1 = c.json(page)
        s2, h2, j2 = c.json(page)
        check("bad %s: the next reply carries it, the one after is clean" % kind,
              s1 == 200 and seen(j1) and s2 == 200 and not row_problems(j2, M), (j1[49:51]))
    st = stats()
    check("stats: requests by endpoint, faults, bad data and weight",
          st["by_endpoint"].get("/api/v3/klines", 0) > 600 and st["faults"].get("reset") == 2
          and st["bad"].get("duplicate") == 1 and st["weight_total"] > 1200, st)


def bench(data_dir, seconds):
    """pages of 1000 rows per second to one keep-alive client (bodies read, not parsed)."""
    syms = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
    args = ["--weight-limit", "100000000"]
    for s in syms:
        args += ["--generate", "%s:1m:%d:%d" % (s, Y0, Y1)]
    if data_dir:
        args += ["--data-dir", data_dir]
    srv, port = start(*args)
    try:
        c = Conn(port)
        for label, sym, parse in (("generated, first fetch", None, False),
                                  ("generated, first fetch, client json.loads", None, True),
                                  ("real BTCUSDT 1m file", "BTCUSDT", False)):
            n, nbytes, t0 = 0, 0, time.perf_counter()
            cycle = 0
            while time.perf_counter() - t0 < seconds:
                if sym:
                    t = 1618951320000 + (n % 42) * 1000 * M
                    q = klines(sym, "1m", startTime=t, limit=1000)
                else:
                    s = syms[cycle % 3]
                    t = Y0 + (n // 3) * 1000 * M
                    cycle += 1
                    if t >= Y1:
                        break
                    q = klines(s, "1m", startTime=t, limit=1000)
                st, h, b = c.get(q)
                if parse:
                    json.loads(b)
                n += 1
                nbytes += len(b)
            dt = time.perf_counter() - t0
            print("%-44s %7.0f pages/s  %6.1f MB/s  (%d pages)" % (label, n / dt, nbytes / dt / 1e6, n))
            if not sym:
                # start the next run on fresh rows: restart the server
                srv.send_signal(signal.SIGTERM)
                srv.wait(10)
                srv, port = start(*args)
                c = Conn(port)
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DEFAULT_DATA)
    p.add_argument("--bench", action="store_true")
    p.add_argument("--seconds", type=float, default=5.0)
    a = p.parse_args()
    if not os.path.isfile(os.path.join(a.data_dir, "BTC_USDT-1m.json")):
        raise SystemExit("no BTC_USDT-1m.json in %s (give --data-dir)" % a.data_dir)
    if a.bench:
        bench(a.data_dir, a.seconds)
        return 0
    main_tests(a.data_dir)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
