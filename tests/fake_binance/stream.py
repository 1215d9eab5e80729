"""The fake exchange's WebSocket side: Binance's kline streams (server.py --ws-port).

Imported by server.py only when --ws-port is given (it needs the `websockets`
package, pinned in scripts/bootstrap and installed into .deps/venv). It runs an
asyncio loop on its own thread, bound to 127.0.0.1, and serves:

  /stream?streams=btcusdt@kline_1m/ethusdt@kline_1m   combined streams, each
      message wrapped as {"stream": NAME, "data": EVENT}
  /ws/btcusdt@kline_1m                                 one raw stream

EVENT is Binance's kline event, exactly: {"e":"kline","E":ms,"s":"BTCUSDT",
"k":{"t","T","s","i","f","L","o","c","h","l","v","n","x","q","V","Q","B"}}.
Values come from the same series as the REST side. The candle containing the
clock evolves: after k seconds of its interval (k = elapsed whole seconds + 1)
it is the final candle scaled by f = k s / interval (close moves from open
towards the final close, high/low widen towards the final ones, volumes grow);
REST serves the same partial values for the open candle (server.py --ws-port
turns this on), so both sides agree at equal times. At f = 1 the values are
the final ones. Every --ws-interval seconds each stream sends its current
candle (x false); when a candle's interval is over, the stream first sends it
once more, final, with x true.

Rules enforced like Binance's: symbols lowercase in stream names, at most
1,024 streams per connection, unknown streams refused (HTTP 400 at the
handshake). The server pings every 20 s (websockets' keepalive).

With FAKE_BINANCE_WSS_PORT, FAKE_BINANCE_TLS_CERT and FAKE_BINANCE_TLS_KEY in
the environment, the same streams are served over TLS (wss://) on that port
as well (bench/realtime's peer, cryptofeed, refuses plain ws://).

Faults, POST /_control/stream (JSON body; see README.md):
  {"drop": true}            every connection cut at once (no close frame)
  {"close24h": true}        every connection closed by the server with 1001,
                            as Binance does at 24 h
  {"silence_s": S}          no frames and no pongs (reads paused) for S seconds
  {"bad": [KIND,...] | "all", "count": N}   N rounds of bad frames, sent in
                            addition to the good ones (kinds: BAD_FRAME_KINDS)
  {"out_of_order": N}       N stale events (the previous candle, not closed)
  {"pause": true|false}     stop / resume sending (the state is kept)
  {"interval_s": S}         seconds between a stream's events from now on
  {"refuse": true|false}    refuse new connections (HTTP 503 at the handshake)
GET /_control/stream: connections, totals, bad frames sent by kind, and the
last event sent per series ("BTCUSDT@1m": {"t","o","h","l","c","v","x"}).
"""
import asyncio
import json
import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

MAX_STREAMS = 1024
BAD_FRAME_KINDS = ("not_json", "missing_field", "price_number", "high_below_low",
                   "negative_volume", "misaligned", "close_time", "wrong_symbol",
                   "wrong_interval", "not_kline", "empty_price")


def partial(row, now, iv):
    """The 12-field REST row (list) of a candle as it stands at time now."""
    t = row[0]
    k = (now - t) // 1000 + 1
    secs = iv // 1000
    if secs <= 0 or k >= secs:
        return row
    f = k / secs
    o, h, l, c, v = (float(x) for x in row[1:6])
    cp = o + (c - o) * f
    hp = max(o, cp) + (h - max(o, c)) * f
    lp = min(o, cp) - (min(o, c) - l) * f
    fl = lambda x: "%.8f" % x
    out = list(row)
    out[2], out[3], out[4], out[5] = fl(hp), fl(lp), fl(cp), fl(v * f)
    out[7] = fl(float(row[7]) * f)
    out[8] = int(row[8] * f)
    out[9], out[10] = fl(float(row[9]) * f), fl(float(row[10]) * f)
    return out


def live_rest_page(ser, rows, i, now):
    """server.py's klines rows i..: the one containing now made partial."""
    j = ser.lower(now + 1) - 1  # the candle containing now (if any)
    k = j - i
    if 0 <= k < len(rows) and ser.open_time(j) <= now <= ser.close_time(ser.open_time(j)):
        r = partial(json.loads(rows[k]), now, ser.iv)
        rows = list(rows)
        rows[k] = json.dumps(r, separators=(",", ":"))
    return rows


class StreamState:
    def __init__(self, st, interval_s):
        self.st = st
        self.interval = interval_s
        self.lock = threading.Lock()
        self.conns = set()
        self.loop = None
        self.paused = False
        self.refuse = False
        self.silent_until = 0.0
        self.bad_kinds, self.bad_rounds = [], 0
        self.stale = 0
        self.last = {}
        self.stats = {"connects": 0, "refused": 0, "frames": 0, "closed_events": 0,
                      "bad_sent": {}, "stale_sent": 0, "drops": 0, "closes24h": 0}

    def report(self):
        with self.lock:
            out = json.loads(json.dumps(self.stats))
            out["connections"] = len(self.conns)
            out["last"] = {key: dict(zip(("t", "o", "h", "l", "c", "v", "x"), k))
                           for key, k in self.last.items()}
            out["paused"] = self.paused
            return out

    def control(self, b):
        with self.lock:
            if "pause" in b:
                self.paused = bool(b["pause"])
            if "interval_s" in b:
                self.interval = max(0.01, float(b["interval_s"]))
            if "refuse" in b:
                self.refuse = bool(b["refuse"])
            if "silence_s" in b:
                self.silent_until = time.time() + float(b["silence_s"])
            if "bad" in b:
                kinds = list(BAD_FRAME_KINDS) if b["bad"] == "all" else list(b["bad"])
                for k in kinds:
                    if k not in BAD_FRAME_KINDS:
                        raise ValueError("unknown bad frame kind %r (known: %s)"
                                         % (k, ",".join(BAD_FRAME_KINDS)))
                self.bad_kinds, self.bad_rounds = kinds, int(b.get("count", 1))
            if "out_of_order" in b:
                self.stale = int(b["out_of_order"])
            conns = list(self.conns)
        if b.get("drop"):
            self.stats["drops"] += 1
            for c in conns:
                self.loop.call_soon_threadsafe(c.transport.abort)
        if b.get("close24h"):
            self.stats["closes24h"] += 1
            for c in conns:
                asyncio.run_coroutine_threadsafe(c.close(1001, "24h connection lifetime"),
                                                 self.loop)
        return self.report()


def event(ser, i, now, closed):
    """The kline event of candle i of ser at time now (a dict)."""
    row = json.loads(ser.page(i, i + 1)[0])
    if not closed:
        row = partial(row, now, ser.iv)
    return {"e": "kline", "E": now, "s": ser.symbol,
            "k": {"t": row[0], "T": row[6], "s": ser.symbol, "i": ser.interval,
                  "f": 100 + i * 7, "L": 100 + i * 7 + row[8], "o": row[1], "c": row[4],
                  "h": row[2], "l": row[3], "v": row[5], "n": row[8], "x": bool(closed),
                  "q": row[7], "V": row[9], "Q": row[10], "B": "0"}}


# The hot path (1,000 streams at 1 event per second each): event() above
# re-reads and re-parses the candle's row and json.dumps a dict per message.
# event_text() gives the same bytes from the row parsed once per candle
# (memoised per series, the last two candles) and one %-format; the stream
# handler sends only these. A series with amendments (REST faults) bypasses
# the memo. tests: cli.test_realtime compares the stored series with these.
EVENT_FMT = ('{"e":"kline","E":%d,"s":"%s","k":{"t":%d,"T":%d,"s":"%s","i":"%s","f":%d,'
             '"L":%d,"o":"%s","c":"%s","h":"%s","l":"%s","v":"%s","n":%d,"x":%s,"q":"%s",'
             '"V":"%s","Q":"%s","B":"0"}}')


WRAP_FMT = '{"stream":"%s","data":%s}'


def memo_row(ser, i):
    """(row, floats of o h l c v q V Q) of candle i of ser, parsed once."""
    memo = ser.__dict__.setdefault("ws_rows", {})
    got = memo.get(i)
    if got is None or ser.amends:
        row = json.loads(ser.page(i, i + 1)[0])
        got = (row, [float(row[x]) for x in (1, 2, 3, 4, 5, 7, 9, 10)])
        if not ser.amends:
            for old in [k for k in memo if k < i - 1]:
                del memo[old]
            memo[i] = got
    return got


def event_text(ser, i, now, closed, e_ms=None):
    """(the JSON text of event(ser, i, now, closed), its k's t o h l c v x);
    e_ms, when given, is the event time E instead of now."""
    row, fl = memo_row(ser, i)
    t, n = row[0], row[8]
    o, h, l, c, v, q, vb, qb = row[1], row[2], row[3], row[4], row[5], row[7], row[9], row[10]
    secs = ser.iv // 1000
    k = (now - t) // 1000 + 1
    if not closed and secs > 0 and k < secs:  # partial(), on the parsed floats
        f = k / secs
        fo, fh, fL, fc = fl[0], fl[1], fl[2], fl[3]
        cp = fo + (fc - fo) * f
        h = "%.8f" % (max(fo, cp) + (fh - max(fo, fc)) * f)
        l = "%.8f" % (min(fo, cp) - (min(fo, fc) - fL) * f)
        c = "%.8f" % cp
        v = "%.8f" % (fl[4] * f)
        q, vb, qb = "%.8f" % (fl[5] * f), "%.8f" % (fl[6] * f), "%.8f" % (fl[7] * f)
        n = int(n * f)
    x = "true" if closed else "false"
    text = EVENT_FMT % (now if e_ms is None else e_ms, ser.symbol, t, row[6], ser.symbol, ser.interval, 100 + i * 7,
                        100 + i * 7 + n, o, c, h, l, v, n, x, q, vb, qb)
    return text, (t, o, h, l, c, v, bool(closed))


def spoil_event(ev, kind):
    """A bad frame's text from a good event (a deep copy is spoiled)."""
    ev = json.loads(json.dumps(ev))
    k = ev["data"]["k"]
    if kind == "not_json":
        return json.dumps(ev)[:40]
    if kind == "missing_field":
        del k["c"]
    elif kind == "price_number":
        k["o"] = float(k["o"])
    elif kind == "high_below_low":
        k["h"] = "%.8f" % (float(k["l"]) * 0.5)
    elif kind == "negative_volume":
        k["v"] = "-1.00000000"
    elif kind == "misaligned":
        k["t"] += 1
        k["T"] += 1
    elif kind == "close_time":
        k["T"] += 1000
    elif kind == "wrong_symbol":
        ev["data"]["s"] = k["s"] = "ZZZUSDT"
    elif kind == "wrong_interval":
        k["i"] = "5m" if k["i"] != "5m" else "1m"
    elif kind == "not_kline":
        ev["data"]["e"] = "trade"
    elif kind == "empty_price":
        k["c"] = ""
    return json.dumps(ev, separators=(",", ":"))


def parse_streams(path, st):
    """[(name, Series)] for a /stream?streams=... or /ws/NAME path; ValueError why not."""
    u = urlsplit(path)
    if u.path == "/stream":
        q = parse_qs(u.query)
        names = q.get("streams", [""])[0].split("/")
    elif u.path.startswith("/ws/"):
        names = [u.path[4:]]
    else:
        raise ValueError("no such stream endpoint: %s" % u.path)
    names = [n for n in names if n]
    if not names:
        raise ValueError("no streams given")
    if len(names) > MAX_STREAMS:
        raise ValueError("%d streams: at most %d per connection" % (len(names), MAX_STREAMS))
    out = []
    for n in names:
        sym, _, kind = n.partition("@")
        if not kind.startswith("kline_") or sym != sym.lower():
            raise ValueError("invalid stream name %r" % n)
        ser = st.series.get((sym.upper(), kind[6:]))
        if ser is None:
            raise ValueError("unknown stream %r" % n)
        out.append((n, ser))
    return out


def tls_context():
    """With FAKE_BINANCE_WSS_PORT, FAKE_BINANCE_TLS_CERT and _KEY set (PEM
    files), a TLS context for a second, wss:// listener on that port; else None."""
    if not os.environ.get("FAKE_BINANCE_WSS_PORT"):
        return None
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["FAKE_BINANCE_TLS_CERT"], os.environ["FAKE_BINANCE_TLS_KEY"])
    return ctx


def start(st, port, interval_s):
    """Starts the stream server on a thread; returns (StreamState, bound port)."""
    # a combined-stream URL of 1,024 streams is ~20 KB: websockets' request
    # line limit (8 KiB by default) is raised before it is imported
    os.environ.setdefault("WEBSOCKETS_MAX_LINE_LENGTH", "65536")
    from websockets.asyncio.server import serve  # pinned in scripts/bootstrap

    ss = StreamState(st, interval_s)
    ready = threading.Event()
    bound = []

    def refuse(conn, request):
        with ss.lock:
            if ss.refuse:
                ss.stats["refused"] += 1
                return conn.respond(503, "refusing connections\n")
        try:
            parse_streams(request.path, st)
        except ValueError as e:
            return conn.respond(400, str(e) + "\n")
        return None

    async def handler(conn):
        streams = parse_streams(conn.request.path, st)
        with ss.lock:
            ss.conns.add(conn)
            ss.stats["connects"] += 1
        sent = {}  # stream -> index of the candle last sent
        combined = conn.request.path.startswith("/stream")
        reading_paused = False
        try:
            while True:
                now_s = time.time()
                await asyncio.sleep(ss.interval - (now_s % ss.interval) + 0.001)
                now = st.now()
                with ss.lock:
                    silent = time.time() < ss.silent_until
                    paused = ss.paused
                    bad = ss.bad_kinds if ss.bad_rounds > 0 else []
                    if bad:
                        ss.bad_rounds -= 1
                    stale = ss.stale > 0
                    if stale:
                        ss.stale -= 1
                if silent != reading_paused:
                    (conn.transport.pause_reading if silent else conn.transport.resume_reading)()
                    reading_paused = silent
                if silent or paused:
                    continue
                out, last, closed_n, stale_n = [], [], 0, 0
                for name, ser in streams:
                    j = ser.upper(now) - 1
                    if j < 0:
                        continue
                    prev = sent.get(name)
                    evs = []
                    if prev is not None and prev < j:
                        evs.append((prev, True))
                    evs.append((j, now > ser.close_time(ser.open_time(j))))
                    sent[name] = j
                    for i, closed in evs:
                        # E is stamped as the frame is sent, as Binance does (a
                        # round of 100 streams takes milliseconds in Python)
                        text, k = event_text(ser, i, now, closed, st.now())
                        await conn.send(WRAP_FMT % (name, text) if combined else text)
                        last.append((ser, k))
                        closed_n += closed
                    if stale and j > 0:
                        text = event_text(ser, j - 1, ser.open_time(j - 1) + 500, False)[0]
                        out.append(WRAP_FMT % (name, text) if combined else text)
                        stale_n += 1
                for kind in bad if last else ():
                    name, ser = streams[0]
                    j = sent.get(name, ser.upper(now) - 1)
                    ev = event(ser, j, now, now > ser.close_time(ser.open_time(j)))
                    out.append(spoil_event({"stream": name, "data": ev}, kind))
                with ss.lock:
                    for ser, k in last:
                        ss.last["%s@%s" % (ser.symbol, ser.interval)] = k
                    ss.stats["closed_events"] += closed_n
                    ss.stats["stale_sent"] += stale_n
                    for kind in bad if last else ():
                        ss.stats["bad_sent"][kind] = ss.stats["bad_sent"].get(kind, 0) + 1
                for text in out:
                    await conn.send(text)
                with ss.lock:
                    ss.stats["frames"] += len(out) + len(last)
        except Exception:
            pass
        finally:
            with ss.lock:
                ss.conns.discard(conn)

    async def main():
        ss.loop = asyncio.get_running_loop()
        opts = dict(process_request=refuse, ping_interval=20, ping_timeout=60, max_size=2 ** 16)
        async with serve(handler, "127.0.0.1", port, **opts) as server:
            bound.append(server.sockets[0].getsockname()[1])
            tls = tls_context()
            if tls:  # the same streams over TLS too (wss://), for clients that insist
                async with serve(handler, "127.0.0.1", int(os.environ["FAKE_BINANCE_WSS_PORT"]),
                                 ssl=tls, **opts):
                    ready.set()
                    await asyncio.Future()
            ready.set()
            await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    if not ready.wait(10):
        raise SystemExit("server.py: the stream server did not start")
    return ss, bound[0]
