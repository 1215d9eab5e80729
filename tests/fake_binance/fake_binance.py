#!/usr/bin/env python3
"""A fake Binance spot REST server for the tests (stdlib only, 127.0.0.1 only).

Speaks the exact wire format of GET /api/v3/time, /api/v3/exchangeInfo and
/api/v3/klines (12-field rows, prices and volumes as 8-decimal strings,
X-MBX-USED-WEIGHT-1M, 429/418 with Retry-After), serves the real freqtrade
candle files of --data-dir and generated series (--generate
SYMBOL:INTERVAL:START_MS:END_MS, deterministic, produced per page on demand),
and injects faults on demand.

usage: fake_binance.py --port 0 --data-dir DIR [--generate S:I:START:END ...]
       [--server-time-ms N] [--fault-rate R] [--faults 429,418,500,...]
       [--slow-seconds S] [--seed N] [--weight-limit N]
Prints "listening 127.0.0.1:PORT" once ready.

Faults (each klines request, with probability --fault-rate, one kind drawn
from --faults): 429, 418, 500, 502, 503, slow, truncate, malformed,
wrongtype, reset.
Control (not Binance): POST /_control/faults {"rate":R,"kinds":[...]},
POST /_control/bad {"kind":K,"count":N} (the next N klines replies carry bad
data of kind high_below_low, open_outside, negative_volume, misaligned,
duplicate, out_of_order or non_numeric), POST /_control/amend
{"symbol":S,"interval":I,"open_time":T,"close":"x"}, POST /_control/clock
{"server_time_ms":N}, GET /_control/stats.
"""
import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

INTERVALS = {"1s": 1000, "1m": 60000, "3m": 180000, "5m": 300000, "15m": 900000,
             "30m": 1800000, "1h": 3600000, "2h": 7200000, "4h": 14400000, "6h": 21600000,
             "8h": 28800000, "12h": 43200000, "1d": 86400000, "3d": 259200000,
             "1w": 604800000}


class Series:
    """One symbol+interval: either rows of a real file or a generated walk."""

    def __init__(self, interval, rows=None, start=0, end=0, seed=0):
        self.iv = INTERVALS[interval]
        self.rows = rows  # list of [t, o, h, l, c, v] floats, or None when generated
        self.start, self.end, self.seed = start, end, seed
        self.amend = {}  # open time -> close override (string)

    def first(self):
        return self.rows[0][0] if self.rows is not None else self.start

    def count(self):
        return len(self.rows) if self.rows is not None else (self.end - self.start) // self.iv

    def index_at(self, t):
        """Index of the first candle with open time >= t."""
        if self.rows is not None:
            lo, hi = 0, len(self.rows)
            while lo < hi:
                mid = (lo + hi) // 2
                if self.rows[mid][0] < t:
                    lo = mid + 1
                else:
                    hi = mid
            return lo
        if t <= self.start:
            return 0
        return min(self.count(), (t - self.start + self.iv - 1) // self.iv)

    def candle(self, i):
        if self.rows is not None:
            t, o, h, l, c, v = self.rows[i]
            vals = [t, "%.8f" % o, "%.8f" % h, "%.8f" % l, "%.8f" % c, "%.8f" % v]
        else:
            t = self.start + i * self.iv
            r = random.Random(self.seed * 1000003 + i)
            base = 100.0 + 50.0 * ((i * 7919) % 1000) / 1000.0
            o = round(base + r.uniform(-1, 1), 2)
            c = round(base + r.uniform(-1, 1), 2)
            h = round(max(o, c) + r.uniform(0, 0.5), 2)
            l = round(min(o, c) - r.uniform(0, 0.5), 2)
            vals = [t, "%.8f" % o, "%.8f" % h, "%.8f" % l, "%.8f" % c,
                    "%.8f" % round(r.uniform(0, 1000), 4)]
        if vals[0] in self.amend:
            close = float(self.amend[vals[0]])
            vals[4] = "%.8f" % close
            vals[2] = "%.8f" % max(float(vals[2]), close)
            vals[3] = "%.8f" % min(float(vals[3]), close)
        t = vals[0]
        return [t, vals[1], vals[2], vals[3], vals[4], vals[5], t + self.iv - 1,
                "%.8f" % (float(vals[5]) * float(vals[4])), 100, "%.8f" % (float(vals[5]) / 2),
                "%.8f" % (float(vals[5]) * float(vals[4]) / 2), "0"]


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.series = {}
        self.rng = random.Random(args.seed)
        self.rate = args.fault_rate
        self.kinds = [k for k in args.faults.split(",") if k]
        self.slow = args.slow_seconds
        self.clock = args.server_time_ms
        self.weight_limit = args.weight_limit
        self.minute, self.weight = 0, 0
        self.bad_kind, self.bad_count = None, 0
        self.stats = {"requests": 0, "klines": 0, "faults": {}, "bad": 0}

    def now(self):
        return self.clock if self.clock is not None else int(time.time() * 1000)


def load(args, st):
    if args.data_dir and os.path.isdir(args.data_dir):
        for name in sorted(os.listdir(args.data_dir)):
            if not name.endswith(".json") or "-" not in name:
                continue
            pair, interval = name[:-5].split("-", 1)
            if interval not in INTERVALS:
                continue
            with open(os.path.join(args.data_dir, name)) as f:
                rows = json.load(f)
            st.series[(pair.replace("_", ""), interval)] = Series(interval, rows=rows)
    for g in args.generate:
        sym, interval, start, end = g.split(":")
        st.series[(sym, interval)] = Series(interval, start=int(start), end=int(end),
                                            seed=zlib.crc32((sym + interval).encode()) % 100000)


def make_handler(st):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body, headers=None, weight=0):
            data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            with st.lock:
                self.send_header("X-MBX-USED-WEIGHT-1M", str(st.weight))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def take_weight(self, w):
            with st.lock:
                m = int(time.time() // 60)
                if m != st.minute:
                    st.minute, st.weight = m, 0
                if st.weight + w > st.weight_limit:
                    return int(60 - time.time() % 60) + 1
                st.weight += w
                return 0

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            path = urlparse(self.path).path
            with st.lock:
                if path == "/_control/faults":
                    st.rate = float(body.get("rate", st.rate))
                    st.kinds = body.get("kinds", st.kinds)
                elif path == "/_control/bad":
                    st.bad_kind, st.bad_count = body["kind"], int(body.get("count", 1))
                elif path == "/_control/clock":
                    st.clock = int(body["server_time_ms"])
                elif path == "/_control/amend":
                    st.series[(body["symbol"], body["interval"])].amend[int(body["open_time"])] = body["close"]
                else:
                    return self.reply(404, {"code": -1, "msg": "no such control"})
            self.reply(200, {"ok": True})

        def do_GET(self):
            u = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            with st.lock:
                st.stats["requests"] += 1
            if u.path == "/_control/stats":
                with st.lock:
                    return self.reply(200, st.stats)
            if u.path == "/api/v3/time":
                return self.reply(200, {"serverTime": st.now()}, weight=1)
            if u.path == "/api/v3/exchangeInfo":
                wait = self.take_weight(20)
                if wait:
                    return self.reply(429, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": str(wait)})
                syms = sorted({s for s, _ in st.series})
                want = q.get("symbol")
                if want is not None and want not in syms:
                    return self.reply(400, {"code": -1121, "msg": "Invalid symbol."})
                listed = [want] if want else syms
                return self.reply(200, {"timezone": "UTC", "serverTime": st.now(),
                                        "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                                        "intervalNum": 1, "limit": st.weight_limit}],
                                        "exchangeFilters": [],
                                        "symbols": [{"symbol": s, "status": "TRADING"} for s in listed]})
            if u.path == "/api/v3/klines":
                return self.klines(q)
            self.reply(404, {"code": -1, "msg": "no such endpoint"})

        def klines(self, q):
            with st.lock:
                st.stats["klines"] += 1
                fault = st.rng.choice(st.kinds) if st.kinds and st.rng.random() < st.rate else None
                if fault:
                    st.stats["faults"][fault] = st.stats["faults"].get(fault, 0) + 1
            wait = self.take_weight(2)
            if wait:
                return self.reply(429, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": str(wait)})
            if fault in ("429", "418"):
                return self.reply(int(fault), {"code": -1003, "msg": "Way too many requests"},
                                  {"Retry-After": "1" if fault == "429" else "2"})
            if fault in ("500", "502", "503"):
                return self.reply(int(fault), b"<html>upstream error</html>")
            if fault == "reset":
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                except OSError:
                    pass
                return
            if fault == "slow":
                time.sleep(st.slow)
            sym, interval = q.get("symbol"), q.get("interval")
            if not sym or not interval:
                return self.reply(400, {"code": -1102, "msg": "Mandatory parameter was not sent."})
            if interval not in INTERVALS:
                return self.reply(400, {"code": -1120, "msg": "Invalid interval."})
            ser = st.series.get((sym, interval))
            if ser is None:
                return self.reply(400, {"code": -1121, "msg": "Invalid symbol."})
            limit = int(q.get("limit", 500))
            if limit < 1 or limit > 1000:
                return self.reply(400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."})
            now = st.now()
            end = min(int(q["endTime"]) if "endTime" in q else now, now)
            if "startTime" in q:
                i = ser.index_at(int(q["startTime"]))
            else:
                i = max(0, ser.index_at(end + 1) - limit)
            rows = []
            n = ser.count()
            while len(rows) < limit and i < n:
                k = ser.candle(i)
                if k[0] > end:
                    break
                rows.append(k)
                i += 1
            with st.lock:
                bad = st.bad_kind if st.bad_count > 0 and rows else None
                if bad:
                    st.bad_count -= 1
                    st.stats["bad"] += 1
            if bad:
                rows = [list(r) for r in rows]
                r0 = rows[0]
                if bad == "high_below_low":
                    r0[2] = "%.8f" % (float(r0[3]) - 1)
                elif bad == "open_outside":
                    r0[1] = "%.8f" % (float(r0[2]) + 1)
                elif bad == "negative_volume":
                    r0[5] = "-1.00000000"
                elif bad == "misaligned":
                    r0[0] += 1
                    r0[6] += 1
                elif bad == "duplicate" and len(rows) > 1:
                    rows[1] = list(r0)
                elif bad == "out_of_order" and len(rows) > 1:
                    rows[0], rows[1] = rows[1], rows[0]
                elif bad == "non_numeric":
                    r0[4] = "abc"
            if fault == "malformed":
                return self.reply(200, b'[[1,"2",')
            if fault == "wrongtype" and rows:
                rows = [list(r) for r in rows]
                rows[0][1] = float(rows[0][1])
            body = json.dumps(rows, separators=(",", ":")).encode()
            if fault == "truncate":
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.reply(200, body)

    return H


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--generate", action="append", default=[])
    p.add_argument("--server-time-ms", type=int)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--faults", default="429,418,500,502,503,slow,truncate,malformed,wrongtype,reset")
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--weight-limit", type=int, default=6000)
    args = p.parse_args()
    st = State(args)
    load(args, st)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(st))
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("listening 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
