#!/usr/bin/env python3
"""Checks GET /api/v1/stream (server-sent events) of a running `autonama serve`
with AUTONAMA_REALTIME=true; used by test_realtime.sh. Python stdlib only.

  sse_check.py order BASE SECONDS OBS      two clients at once get the same events,
                                           in order, at the stream's rate
  sse_check.py resume BASE OBS             a client that comes back with Last-Event-ID
                                           gets the stored candles it missed, then live ones
  sse_check.py errors BASE MAX_STREAMS OBS 400/404/405/413/414/503 answers
  sse_check.py slow BASE PID SECONDS       a client that stops reading is dropped (another
                                           of the same events unharmed) and
                                           the server's RSS stays bounded (prints figures)
OBS: observations for api_check.py's conformance (path, method, status per line).
Prints "ok - ..." / "not ok - ..." lines; exits 1 when any check failed.
"""
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse

SYMS = ["BTC/USDT", "ETH/USDT", "ADA/USDT", "BNB/USDT", "SOL/USDT"]
PATH = "/api/v1/stream"
failed = 0


def ok(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    if not cond:
        failed += 1
    return cond


def observe(obs, status, method="GET"):
    if obs:
        with open(obs, "a") as f:
            f.write(json.dumps({"path": PATH, "method": method, "status": status}) + "\n")


def hostport(base):
    u = urllib.parse.urlsplit(base)
    return u.hostname, u.port


def query(symbols=SYMS, tf="1m", indicators=None):
    q = {"symbols": ",".join(symbols), "timeframe": tf}
    if indicators:
        q["indicators"] = indicators
    return PATH + "?" + urllib.parse.urlencode(q, safe="/,")


class Stream:
    """One SSE client: events as (id, data dict) in arrival order."""

    def __init__(self, base, path, headers=None, obs=None):
        host, port = hostport(base)
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.conn.request("GET", path, headers=headers or {})
        self.resp = self.conn.getresponse()
        observe(obs, self.resp.status)
        self.status = self.resp.status
        self.ctype = self.resp.getheader("Content-Type", "")
        self.events, self.comments = [], 0

    def read_for(self, seconds, until=None):
        """Reads events for `seconds` (the socket is shut down then), or until
        until(events) is true."""
        self.conn.sock.settimeout(None)
        sock = self.conn.sock
        timer = threading.Timer(seconds, lambda: sock.shutdown(socket.SHUT_RDWR))
        timer.start()
        cur = {}
        while True:
            try:
                line = self.resp.readline()  # de-chunked
            except (OSError, ValueError, http.client.HTTPException):
                break
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments += 1
            elif line == "":
                if "data" in cur:
                    self.events.append((cur.get("id"), cur.get("event"), json.loads(cur["data"])))
                cur = {}
                if until and until(self.events):
                    break
            else:
                k, _, v = line.partition(": ")
                cur[k] = v
        timer.cancel()
        return self.events

    def close(self):
        self.conn.close()


def seq(ev_id):
    return int(ev_id.split("-")[1])


def order(base, seconds, obs):
    a = Stream(base, query(indicators="sma_20,rsi_14"), obs=obs)
    b = Stream(base, query(), obs=obs)
    part = SYMS[1:3]  # a client of two series: only theirs, every one of theirs
    c = Stream(base, query(symbols=part), obs=obs)
    ok(a.status == 200 and a.ctype.startswith("text/event-stream"),
       "stream: 200 text/event-stream (%d %s)" % (a.status, a.ctype))
    # b's choice (no indicators) twice more: d reads half the time, e never
    # reads and closes then. Each update's text is one, shared by the queues
    # of b, d and e: the two that leave mid-stream (e with events still
    # queued) must free nothing b still sends (serve runs under ASan too)
    d = Stream(base, query(), obs=obs)
    e = Stream(base, query(), obs=obs)
    ta = threading.Thread(target=a.read_for, args=(seconds,))
    tb = threading.Thread(target=b.read_for, args=(seconds,))
    tc = threading.Thread(target=c.read_for, args=(seconds,))
    td = threading.Thread(target=d.read_for, args=(seconds / 2,))
    ta.start(), tb.start(), tc.start(), td.start()
    time.sleep(seconds / 2)
    e.close()
    ta.join(), tb.join(), tc.join(), td.join()
    a.close(), b.close(), c.close(), d.close()
    ea, eb = a.events, b.events
    by_id = {ev[0]: ev for ev in eb}
    ok(bool(d.events) and all(by_id.get(ev[0]) == ev for ev in d.events),
       "stream: a client sharing b's choice got b's events, ids and data (%d events), and "
       "left mid-stream (another without reading) while b went on" % len(d.events))
    ok(len(ea) >= 0.7 * seconds * len(SYMS),
       "stream: %d events in %d s for %d symbols at 1 update/s" % (len(ea), seconds, len(SYMS)))
    ok(all(e[1] == "candle" for e in ea), "stream: every event is a candle event")
    ids = [seq(e[0]) for e in ea]
    ok(ids == sorted(ids) and len(set(ids)) == len(ids), "stream: ids strictly increasing")
    # every update is numbered, and both clients take every series: each
    # client's ids are consecutive, whatever number of events one read of
    # the stream (AUTONAMA_REALTIME_TICK_MS) or one send to it carried
    for name, ev in (("a", ea), ("b", eb)):
        got = [seq(e[0]) for e in ev]
        ok(bool(got) and got == list(range(got[0], got[0] + len(got))),
           "stream: client %s got every update, none missing or repeated (%d events, ids %s..%s)"
           % (name, len(got), got[0] if got else "-", got[-1] if got else "-"))
    good = True
    last = {}
    for _, _, d in ea:
        k = d["symbol"]
        p = last.get(k)
        if p and (d["ts"] < p["ts"] or (d["ts"] == p["ts"] and p["closed"] and not d["closed"])):
            good = False
        last[k] = d
    ok(good, "stream: per symbol, candles in order (no older candle, no reopened close)")
    ok(set(d["symbol"] for _, _, d in ea) == set(SYMS), "stream: every subscribed symbol")
    ok(all("indicators" in d and set(d["indicators"]) == {"sma_20", "rsi_14"} for _, _, d in ea)
       and all("indicators" not in d for _, _, d in eb),
       "stream: indicators only when asked, the ones asked")
    ok(any(d["indicators"]["sma_20"] is not None for _, _, d in ea),
       "stream: live indicator values present")
    ec = c.events
    ids_c = [e[0] for e in ec]
    in_a = set(e[0] for e in ea)
    # over the ids both a and c were connected for
    lo = max(seq(ea[0][0]), seq(ec[0][0])) if ea and ec else 0
    hi = min(seq(ea[-1][0]), seq(ec[-1][0])) if ea and ec else -1
    want_c = [e[0] for e in ea if e[2]["symbol"] in part and lo <= seq(e[0]) <= hi]
    ok(bool(ec) and set(d["symbol"] for _, _, d in ec) == set(part)
       and [i for i in ids_c if lo <= seq(i) <= hi] == want_c and all(i in in_a for i in want_c),
       "stream: a client of %s got exactly their updates, in order (%d events)" % (part, len(ec)))
    # two clients: the same updates, the same order (over the time both were connected)
    ib = [e[0] for e in eb]
    common = [e[0] for e in ea if e[0] in set(ib)]
    ok(len(common) >= 0.9 * min(len(ea), len(eb)) and common == [i for i in ib if i in set(common)],
       "stream: two clients got the same updates in the same order (%d common)" % len(common))


def resume(base, obs):
    a = Stream(base, query(), obs=obs)
    a.read_for(2)
    a.close()
    ok(len(a.events) > 0, "resume: events before the disconnect")
    if not a.events:
        return
    # it comes back claiming it last saw an event 3 minutes older than the
    # newest one it got: it must get every stored candle from the one open
    # then (closed ones with their stored indicator values, as live events
    # carry), then the live updates
    t = int(a.events[-1][0].split("-")[0]) - 180000
    last_id = "%d-%s" % (t, a.events[-1][0].split("-")[1])
    time.sleep(1)
    b = Stream(base, query(indicators="sma_20,rsi_14"), headers={"Last-Event-ID": last_id}, obs=obs)
    # the replay comes from the store first (on a worker: the sanitizer
    # build's DuckDB can take seconds), then 10 live events are enough
    b.read_for(20, until=lambda ev: sum(1 for e in ev if not e[0].endswith("-0")) >= 10)
    b.close()
    replayed = [d for i, _, d in b.events if i.endswith("-0")]
    live = [d for i, _, d in b.events if not i.endswith("-0")]
    floor = t - t % 60000
    good = True
    for s in SYMS:
        ts = [d["ts"] for d in replayed if d["symbol"] == s]
        if not ts or ts[0] != floor or ts != list(range(floor, ts[-1] + 1, 60000)):
            good = False
            print("# resume %s: replayed %s, expected from %d" % (s, ts[:5], floor))
    ok(good, "resume: with Last-Event-ID, the stored candles from the one open then, no gap")
    first_live = next((k for k, e in enumerate(b.events) if not e[0].endswith("-0")), None)
    ok(live and all(e[0].endswith("-0") for e in b.events[:first_live]),
       "resume: then the live updates (%d replayed, %d live)" % (len(replayed), len(live)))
    closed = [d for d in replayed if d["closed"]]
    ok(len(closed) >= 3 * len(SYMS) and all(
        d.get("indicators", {}).get("sma_20") is not None and
        d.get("indicators", {}).get("rsi_14") is not None for d in closed),
       "resume: replayed closed candles carry their indicator values (%d replayed closed, "
       "first %s)" % (len(closed), closed[0].get("indicators") if closed else None))


def raw(base, data):
    s = socket.create_connection(hostport(base), timeout=10)
    s.sendall(data)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    s.close()
    try:
        return int(buf.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def errors(base, max_streams, obs):
    host, port = hostport(base)

    def get(path, method="GET"):
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request(method, path)
        r = c.getresponse()
        body = r.read() if r.status != 200 else b""
        c.close()
        observe(obs, r.status, method)
        return r.status, body

    st, body = get(PATH + "?timeframe=1m")
    ok(st == 400 and b'"symbols"' in body, "errors: no symbols -> 400 naming it (%d)" % st)
    st, body = get(query(indicators="sma_20,nope_3"))
    ok(st == 400 and b'"indicators"' in body, "errors: unknown indicator -> 400 (%d)" % st)
    st, body = get(query(symbols=["XRP/USDT"]))
    ok(st == 404 and b'"symbols"' in body, "errors: symbol not streamed -> 404 (%d)" % st)
    st, body = get(query(tf="1x"))
    ok(st == 400, "errors: bad timeframe -> 400 (%d)" % st)
    st, _ = get(query() + "&x=1")
    ok(st == 400, "errors: unknown parameter -> 400 (%d)" % st)
    st, _ = get(PATH + "?symbols=" + "A" * 5000)
    ok(st == 414, "errors: over-long URL -> 414 (%d)" % st)
    for m in ("POST", "PUT", "DELETE"):
        st, _ = get(query(), m)
        ok(st == 405, "errors: %s -> 405 (%d)" % (m, st))
    st = raw(base, ("GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\nConnection: close"
                    "\r\n\r\n" % query()).encode() + b"x" * 200000)
    observe(obs, st)
    ok(st == 413, "errors: a 200 KB body -> 413 (%d)" % st)
    # the stream limit
    held = [Stream(base, query(symbols=["BTC/USDT"]), obs=obs) for _ in range(max_streams)]
    st, body = get(query(symbols=["BTC/USDT"]))
    ok(st == 503, "errors: stream %d of AUTONAMA_HTTP_MAX_STREAMS=%d -> 503 (%d)"
       % (max_streams + 1, max_streams, st))
    for h in held:
        h.close()


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def metric(base, name):
    host, port = hostport(base)
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split(" ")[1])
    return 0.0


def slow(base, pid, seconds, check_rss):
    dropped0 = metric(base, "autonama_sse_dropped_total")
    # a reading client of the same choice: each event's text is shared by its
    # queue and the slow one's; dropping the slow one (its queue full) must
    # free nothing this one still sends (serve runs under ASan too)
    status = 0
    for _ in range(20):  # streams closed just before may still count for a moment
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(hostport(base))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % query(indicators="sma_20,rsi_14,"
                                                                "macd,bb_upper_20")).encode())
        head = b""
        while b"\r\n" not in head:  # the status line only; then it stops reading
            chunk = s.recv(1)
            if not chunk:
                break
            head += chunk
        try:
            status = int(head.split(b" ")[1])
        except (IndexError, ValueError):
            status = 0
        if status == 200:
            break
        s.close()
        time.sleep(1)
    ok(status == 200, "slow: the stream opened (%d)" % status)
    for _ in range(20):
        mate = Stream(base, query(indicators="sma_20,rsi_14,macd,bb_upper_20"))
        if mate.status == 200:
            break
        mate.close()
        time.sleep(1)
    tm = threading.Thread(target=mate.read_for, args=(seconds,))
    tm.start()
    rss = []
    t_drop = None
    for i in range(seconds):
        rss.append(rss_kb(pid))
        if t_drop is None and metric(base, "autonama_sse_dropped_total") > dropped0:
            t_drop = i
        time.sleep(1)
    rss.append(rss_kb(pid))
    s.close()
    tm.join()
    mate.close()
    got = [seq(ev[0]) for ev in mate.events]
    ok(len(got) >= 2 * seconds and got == list(range(got[0], got[0] + len(got))),
       "slow: a reading client of the same events got every one, in order, before and after "
       "the slow one was dropped (%d events; opened with %d)" % (len(got), mate.status))
    grow = max(rss) - rss[0]
    print("# slow client: RSS %d kB at start, max %d kB, end %d kB over %d s; dropped after %s s"
          % (rss[0], max(rss), rss[-1], seconds, t_drop))
    ok(t_drop is not None, "slow: a client that stops reading is dropped (after %s s)" % t_drop)
    if check_rss:
        ok(grow < 16 * 1024, "slow: the server's RSS grew %d kB (< 16 MB) in %d s" % (grow, seconds))


def main():
    cmd = sys.argv[1]
    if cmd == "order":
        order(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "resume":
        resume(sys.argv[2], sys.argv[3])
    elif cmd == "errors":
        errors(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "slow":
        slow(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
