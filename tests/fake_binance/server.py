#!/usr/bin/env python3
"""A fake Binance spot REST server for autonama's tests (Python 3.11 stdlib only).

It binds to 127.0.0.1 only and speaks Binance's wire format for
GET /api/v3/time, /api/v3/exchangeInfo and /api/v3/klines. Rows have 12
fields, prices and volumes are 8-decimal strings, every reply carries
X-MBX-USED-WEIGHT-1M, and past the weight limit the server answers 429 with
Retry-After. Replies use HTTP/1.1 keep-alive with a Content-Length.

Data:
  * the real freqtrade files in --data-dir: BTC_USDT-1m.json is BTCUSDT 1m.
  * generated series, --generate SYMBOL:INTERVAL:START_MS:END_MS. These are
    deterministic random walks seeded by symbol and interval, with one candle
    per interval in [START, END). Rows are made on demand in blocks, so any
    page costs O(page).
  * the server clock, --server-time-ms, or the real time when it is not
    given. Candles that open after it are not served. The candle that
    contains it is served as the open candle: its close time is in the future.

Faults on klines requests: each request, with probability --fault-rate,
gets one kind drawn uniformly from --faults. The draw is deterministic for a
given --seed and request order. Kinds: 429 418 500 502 503 slow truncate
malformed wrongtype reset.

Control endpoints (not Binance) under /_control/: faults, clock, bad, amend,
weight, reset, stats. See README.md.

usage: server.py --port 0 --data-dir DIR [--generate S:I:START:END ...]
                 [--fault-rate R] [--faults K,K,...] [--seed N]
                 [--slow-seconds S] [--weight-limit N] [--server-time-ms N]
The server prints "listening 127.0.0.1:PORT" on stdout once it is ready, and
exits with status 0 on SIGTERM or SIGINT.
"""
import argparse
import bisect
import calendar
import itertools
import json
import math
import os
import random
import signal
import socket
import sys
import threading
import time
import zlib
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MINUTE = 60000
# Binance spot intervals -> length in ms (1M is calendar months: see Series).
INTERVALS = {
    "1s": 1000, "1m": MINUTE, "3m": 3 * MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE,
    "30m": 30 * MINUTE, "1h": 60 * MINUTE, "2h": 120 * MINUTE, "4h": 240 * MINUTE,
    "6h": 360 * MINUTE, "8h": 480 * MINUTE, "12h": 720 * MINUTE, "1d": 1440 * MINUTE,
    "3d": 3 * 1440 * MINUTE, "1w": 7 * 1440 * MINUTE, "1M": 31 * 1440 * MINUTE,
}
# Grid offsets: weekly candles open on Mondays (1970-01-05), the rest on epoch multiples.
OFFSETS = {"1w": 4 * 1440 * MINUTE}
FAULT_KINDS = ("429", "418", "500", "502", "503", "slow", "truncate", "malformed",
               "wrongtype", "reset")
BAD_KINDS = ("high_below_low", "open_outside", "negative_volume", "misaligned",
             "duplicate", "out_of_order", "non_numeric")
BAD_ALIASES = {"duplicated": "duplicate", "duplicate_row": "duplicate",
               "non_numeric_price": "non_numeric", "abc": "non_numeric",
               "open_outside_range": "open_outside", "misaligned_open_time": "misaligned",
               "out_of_order_rows": "out_of_order"}
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "DAI", "BTC", "ETH", "BNB", "EUR",
          "TRY", "BRL", "JPY", "GBP")
BLOCK = 1024          # generated rows are made and cached per block of this many
CACHE_BLOCKS = 96     # generated blocks kept (about 20 MB at most)
ROW_FMT = '[%d,"%.8f","%.8f","%.8f","%.8f","%.8f",%d,"%.8f",%d,"%.8f","%.8f","0"]'
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           418: "I'm a teapot", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}


def jdump(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def month_start_ms(m):
    """ms of the first instant of month number m (= year * 12 + month - 1), UTC."""
    return calendar.timegm((m // 12, m % 12 + 1, 1, 0, 0, 0)) * 1000


def month_of(t):
    tm = time.gmtime(t // 1000)
    return tm.tm_year * 12 + tm.tm_mon - 1


def split_symbol(sym):
    for q in QUOTES:
        if sym.endswith(q) and len(sym) > len(q):
            return sym[: -len(q)], q
    return sym[:-4] or sym, sym[-4:]


class ApiError(Exception):
    def __init__(self, status, code, msg):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


# ---------------------------------------------------------------------------
# Series


class Series:
    """One symbol and interval. Subclasses provide n, open_time(i), lower(t) and
    rows(i, j), which returns the formatted JSON text of rows i..j-1."""

    def __init__(self, symbol, interval):
        self.symbol, self.interval = symbol, interval
        self.iv = INTERVALS[interval]
        self.amends = {}  # open time -> {"open": str, ...}
        self.lock = threading.Lock()

    def close_time(self, t):
        if self.interval == "1M":
            return month_start_ms(month_of(t) + 1) - 1
        return t + self.iv - 1

    def upper(self, t):
        """Index of the first candle whose open time is > t."""
        return self.lower(t + 1)

    def page(self, i, j):
        """Rows i..j-1 as a list of JSON row texts, with amendments applied."""
        out = self.rows(i, j)
        if self.amends:
            for k in range(len(out)):
                ov = self.amends.get(self.open_time(i + k))
                if ov is not None:
                    out[k] = apply_amend(out[k], ov)
        return out


def apply_amend(text, ov):
    r = json.loads(text)
    for idx, name in ((1, "open"), (4, "close"), (5, "volume")):
        if name in ov:
            r[idx] = ov[name]
    vals = [float(x) for x in r[1:5]]
    r[2] = ov.get("high", "%.8f" % max(float(r[2]), *vals))
    r[3] = ov.get("low", "%.8f" % min(float(r[3]), *vals))
    return json.dumps(r, separators=(",", ":"))


class FileSeries(Series):
    """A freqtrade JSON file, loaded on first use and formatted once per row."""

    def __init__(self, symbol, interval, path):
        super().__init__(symbol, interval)
        self.path = path
        self.times = None
        self.text = None
        self.tick = 0.01

    def load(self):
        with self.lock:
            if self.times is not None:
                return
            with open(self.path) as f:
                raw = json.load(f)
            raw.sort(key=lambda r: r[0])
            ivm1 = self.iv - 1
            text = []
            for t, o, h, l, c, v in raw:
                t = int(t)
                typ = (h + l + c) / 3.0
                frac = 0.35 + 0.3 * ((t // 1000 * 2654435761) % 1000) / 1000.0
                trades = int(v * 40) + (1 if v > 0 else 0)
                text.append(ROW_FMT % (t, o, h, l, c, v, t + ivm1, v * typ, trades,
                                       v * frac, v * typ * frac))
            self.text = text
            self.times = [int(r[0]) for r in raw]

    @property
    def n(self):
        self.load()
        return len(self.times)

    def open_time(self, i):
        return self.times[i]

    def lower(self, t):
        self.load()
        return bisect.bisect_left(self.times, t)

    def rows(self, i, j):
        return self.text[i:j]

    def has_time(self, t):
        i = self.lower(t)
        return i < len(self.times) and self.times[i] == t


class GeneratedSeries(Series):
    """A deterministic random walk in log price, made on demand.

    Anchors (the log price every BLOCK candles) are drawn once at start. The
    walk inside block k is a Brownian bridge between anchors k and k+1,
    drawn from a PRNG seeded by (series seed, k). Any block can therefore be
    made on its own in O(BLOCK), and a candle's open is the previous close."""

    cache = OrderedDict()
    cache_lock = threading.Lock()
    cache_blocks = CACHE_BLOCKS

    def __init__(self, symbol, interval, start, end):
        super().__init__(symbol, interval)
        self.seed = zlib.crc32(("%s:%s" % (symbol, interval)).encode())
        if interval == "1M":
            m0 = month_of(start) + (0 if month_start_ms(month_of(start)) == start else 1)
            self.months = []
            m = m0
            while month_start_ms(m) < end:
                self.months.append(month_start_ms(m))
                m += 1
            self.start = self.months[0] if self.months else start
            self.n = len(self.months)
        else:
            off = OFFSETS.get(interval, 0)
            self.start = start + (-(start - off)) % self.iv
            self.n = max(0, -(-(end - self.start) // self.iv))
        self.aligned = self.start == start
        r = random.Random(self.seed)
        # Price level 0.05 .. 60000, six significant digits per tick.
        base = 10 ** r.uniform(-1.3, 4.8)
        self.tick = 10.0 ** max(-8, min(-2, math.floor(math.log10(base)) - 5))
        self.decimals = -int(round(math.log10(self.tick)))
        self.base_volume = (2e5 / base) * (self.iv / MINUTE) * r.uniform(0.3, 3)
        # Annual volatility about 60% whatever the interval.
        self.sigma = 0.6 * math.sqrt(self.iv / (365.0 * 1440 * MINUTE))
        blocks = self.n // BLOCK + 1
        step = self.sigma * math.sqrt(BLOCK)
        a = [math.log(base)]
        x0 = a[0]
        for _ in range(blocks):
            # a slight pull back to the start level keeps a long walk in range
            a.append(a[-1] + r.gauss(0.0, step) - 0.002 * (a[-1] - x0))
        self.anchors = a

    def open_time(self, i):
        if self.interval == "1M":
            return self.months[i]
        return self.start + i * self.iv

    def lower(self, t):
        if self.interval == "1M":
            return bisect.bisect_left(self.months, t)
        if t <= self.start:
            return 0
        return min(self.n, -(-(t - self.start) // self.iv))

    def has_time(self, t):
        i = self.lower(t)
        return i < self.n and self.open_time(i) == t

    def block(self, k):
        key = (self.symbol, self.interval, k)
        with self.cache_lock:
            b = self.cache.get(key)
            if b is not None:
                self.cache.move_to_end(key)
                return b
        b = self.make_block(k)
        with self.cache_lock:
            self.cache[key] = b
            if len(self.cache) > self.cache_blocks:
                self.cache.popitem(last=False)
        return b

    def make_block(self, k):
        lo = k * BLOCK
        cnt = min(BLOCK, self.n - lo)
        rng = random.Random((self.seed << 24) ^ (k + 1))
        rnd = rng.random
        gauss = rng.gauss
        sig = self.sigma
        steps = list(itertools.accumulate([gauss(0.0, sig) for _ in range(BLOCK)], initial=0.0))
        a0, a1 = self.anchors[k], self.anchors[k + 1]
        drift = (steps[BLOCK] - (a1 - a0)) / BLOCK
        inv_tick = 1.0 / self.tick
        exp = math.exp
        # prices in ticks (integers): candle j opens at P[j] and closes at P[j+1]
        P = [max(1, int(exp(a0 + steps[j] - j * drift) * inv_tick + 0.5)) for j in range(cnt + 1)]
        tick = self.tick
        bv = self.base_volume
        ivm1 = self.iv - 1
        out = []
        monthly = self.interval == "1M"
        for j in range(cnt):
            o = P[j]
            c = P[j + 1]
            if o >= c:
                hi, lo_ = o, c
            else:
                hi, lo_ = c, o
            spread = o * sig
            h = hi + int(spread * rnd() * rnd() * 2.0)
            l = lo_ - int(spread * rnd() * rnd() * 2.0)
            if l < 1:
                l = 1
            v = bv * (0.15 + rnd() * 1.7 + abs(c - o) / (spread + 1.0))
            v = int(v * 1e8) / 1e8
            typ = (h + l + c) * tick / 3.0
            q = v * typ
            f = 0.3 + 0.4 * rnd()
            t = self.open_time(lo + j)
            ct = self.close_time(t) if monthly else t + ivm1
            out.append(ROW_FMT % (t, o * tick, h * tick, l * tick, c * tick, v, ct, q,
                                  int(v / bv * 50) + 1, v * f, q * f))
        return out

    def rows(self, i, j):
        if i >= j:
            return []
        k0, k1 = i // BLOCK, (j - 1) // BLOCK
        if k0 == k1:
            return self.block(k0)[i - k0 * BLOCK: j - k0 * BLOCK]
        out = self.block(k0)[i - k0 * BLOCK:]
        for k in range(k0 + 1, k1):
            out.extend(self.block(k))
        out.extend(self.block(k1)[: j - k1 * BLOCK])
        return out


# ---------------------------------------------------------------------------
# State shared by the request threads


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.series = {}      # (symbol, interval) -> Series
        self.symbols = {}     # symbol -> tick
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.rate = args.fault_rate
        self.kinds = parse_kinds(args.faults)
        self.slow = args.slow_seconds
        self.clock = args.server_time_ms
        self.stream = None    # stream.StreamState with --ws-port: the open candle evolves
        self.weight_limit = args.weight_limit
        self.window = 0       # current minute window (real time)
        self.weight = 0       # weight used in it
        self.bad_kind, self.bad_count = None, 0
        self.stats = self.fresh_stats()

    @staticmethod
    def fresh_stats():
        return {"requests": 0, "by_endpoint": {}, "klines": 0, "faults": {}, "bad": {},
                "rate_limited": 0, "weight_total": 0}

    def now(self):
        return self.clock if self.clock is not None else int(time.time() * 1000)

    def used_weight(self):
        w = int(time.time() // 60)
        if w != self.window:
            self.window, self.weight = w, 0
        return self.weight

    def take_weight(self, w):
        """Charge w; return 0, or the Retry-After seconds when over the limit."""
        with self.lock:
            self.used_weight()
            if self.weight + w > self.weight_limit:
                self.stats["rate_limited"] += 1
                return max(1, math.ceil(60 - time.time() % 60))
            self.weight += w
            self.stats["weight_total"] += w
            return 0

    def draw_fault(self):
        """Three draws per klines request whatever the outcome, so the fault
        sequence depends only on the seed and the order of requests."""
        with self.lock:
            u1, u2, u3 = self.rng.random(), self.rng.random(), self.rng.random()
            if self.kinds and u1 < self.rate:
                return self.kinds[int(u2 * len(self.kinds))], u3
            return None, u3

    def count_fault(self, kind):
        with self.lock:
            self.stats["faults"][kind] = self.stats["faults"].get(kind, 0) + 1


def parse_kinds(spec):
    kinds = [k.strip() for k in (spec.split(",") if isinstance(spec, str) else spec) if k.strip()]
    for k in kinds:
        if k not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r (known: %s)" % (k, ",".join(FAULT_KINDS)))
    return kinds


def load_series(args, st):
    if args.data_dir:
        if not os.path.isdir(args.data_dir):
            raise SystemExit("server.py: --data-dir %s is not a directory" % args.data_dir)
        for name in sorted(os.listdir(args.data_dir)):
            if not name.endswith(".json") or "-" not in name:
                continue
            pair, interval = name[:-5].rsplit("-", 1)
            if interval not in INTERVALS:
                continue
            sym = pair.replace("_", "").upper()
            st.series[(sym, interval)] = FileSeries(sym, interval, os.path.join(args.data_dir, name))
            st.symbols[sym] = 0.01
    real = set(st.symbols)
    for g in args.generate:
        try:
            sym, interval, start, end = g.split(":")
            start, end = int(start), int(end)
        except ValueError:
            raise SystemExit("server.py: --generate wants SYMBOL:INTERVAL:START_MS:END_MS, got %r" % g)
        sym = sym.replace("/", "").replace("_", "").upper()
        if interval not in INTERVALS:
            raise SystemExit("server.py: --generate %s: unknown interval %s" % (g, interval))
        if sym in real:
            raise SystemExit("server.py: --generate %s: %s is served from a real file" % (g, sym))
        if (sym, interval) in st.series:
            raise SystemExit("server.py: --generate %s given twice" % g)
        s = GeneratedSeries(sym, interval, start, end)
        if not s.aligned:
            print("server.py: %s %s start aligned up to %d" % (sym, interval, s.start), file=sys.stderr)
        st.series[(sym, interval)] = s
        st.symbols[sym] = s.tick


# ---------------------------------------------------------------------------
# Bad data and wrong types (slow path: the rows are parsed, changed, re-encoded)


def spoil(rows, kind, tick):
    """rows: list of parsed 12-field rows (>= 1). Returns False if the kind
    needs more rows than there are."""
    k = len(rows) // 2
    r = rows[k]
    fl = lambda x: "%.8f" % x
    if kind == "high_below_low":
        r[2] = fl(float(r[3]) - max(tick, float(r[3]) * 0.001))
    elif kind == "open_outside":
        r[1] = fl(float(r[2]) + max(tick, float(r[2]) * 0.001))
    elif kind == "negative_volume":
        r[5] = fl(-abs(float(r[5])) - 1.0)
    elif kind == "misaligned":
        r[0] += 1
        r[6] += 1
    elif kind == "duplicate":
        if len(rows) < 2:
            return False
        k = (len(rows) - 1) // 2
        rows.insert(k + 1, list(rows[k]))
        rows.pop()  # keep the page size: the last row is lost instead
    elif kind == "out_of_order":
        if len(rows) < 2:
            return False
        j = k - 1 if k > 0 else k + 1
        rows[j], rows[k] = rows[k], rows[j]
    elif kind == "non_numeric":
        r[4] = "abc"
    return True


def wrong_type(rows, u):
    """One of: a price as a JSON number, the open time as a string, a row of 11."""
    r = rows[len(rows) // 2]
    v = int(u * 3)
    if v == 0:
        r[1] = float(r[1])
    elif v == 1:
        r[0] = str(r[0])
    else:
        r.pop()
    return ["price_number", "time_string", "eleven_fields"][v]


# ---------------------------------------------------------------------------
# HTTP


def make_handler(st, verbose):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-binance"
        sys_version = ""

        def setup(self):
            super().setup()
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

        def handle(self):
            try:
                super().handle()
            except (ConnectionError, socket.timeout, OSError):
                pass

        def log_message(self, fmt, *a):
            if verbose:
                sys.stderr.write("fake-binance: " + (fmt % a) + "\n")

        # one write per reply: status line, headers and body together
        def send(self, code, body, headers=(), length=None, close=False):
            if not isinstance(body, bytes):
                body = jdump(body)
            with st.lock:
                w = st.used_weight()
            h = ["HTTP/1.1 %d %s" % (code, REASONS.get(code, "Error")),
                 "Content-Type: application/json;charset=UTF-8",
                 "Content-Length: %d" % (len(body) if length is None else length),
                 "X-MBX-USED-WEIGHT: %d" % w,
                 "X-MBX-USED-WEIGHT-1M: %d" % w,
                 "Date: " + self.date_time_string(),
                 "Server: fake-binance"]
            h.extend("%s: %s" % kv for kv in headers)
            if close or self.close_connection:
                h.append("Connection: close")
                self.close_connection = True
            self.wfile.write(("\r\n".join(h) + "\r\n\r\n").encode("latin-1") + body)
            if verbose:
                self.log_request(code, len(body))

        def error(self, e):
            self.send(e.status, {"code": e.code, "msg": e.msg})

        def count(self, path):
            with st.lock:
                st.stats["requests"] += 1
                be = st.stats["by_endpoint"]
                be[path] = be.get(path, 0) + 1

        def too_many(self, wait):
            self.send(429, {"code": -1003, "msg": "Too much request weight used; current limit is "
                            "%d request weight per 1 MINUTE. Please use WebSocket Streams for live "
                            "updates to avoid polling the API." % st.weight_limit},
                      [("Retry-After", str(wait))])

        def do_GET(self):
            u = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
            path = u.path.rstrip("/") or "/"
            self.count(path)
            try:
                if path == "/api/v3/klines":
                    return self.klines(q)
                if path == "/api/v3/time":
                    wait = st.take_weight(1)
                    return self.too_many(wait) if wait else self.send(200, {"serverTime": st.now()})
                if path == "/api/v3/ping":
                    wait = st.take_weight(1)
                    return self.too_many(wait) if wait else self.send(200, b"{}")
                if path == "/api/v3/exchangeInfo":
                    return self.exchange_info(q)
                if path == "/_control/stream" and st.stream is not None:
                    return self.send(200, st.stream.report())
                if path == "/_control/stats":
                    with st.lock:
                        body = json.loads(json.dumps(st.stats))
                        body["weight_used_1m"] = st.used_weight()
                        body["weight_limit"] = st.weight_limit
                        body["fault_rate"], body["fault_kinds"] = st.rate, st.kinds
                        body["server_time_ms"] = st.now()
                        body["pending_bad"] = {"kind": st.bad_kind, "count": st.bad_count}
                    return self.send(200, body)
                raise ApiError(404, -1, "no such endpoint: %s" % path)
            except ApiError as e:
                self.error(e)

        def do_POST(self):
            u = urlsplit(self.path)
            path = u.path.rstrip("/")
            self.count(path)
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                if not path.startswith("/_control/"):
                    raise ApiError(405, -1, "POST only on /_control/")
                try:
                    body = json.loads(raw or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError
                except ValueError:
                    raise ApiError(400, -1, "control body must be a JSON object")
                self.send(200, self.control(path[len("/_control/"):], body))
            except ApiError as e:
                self.error(e)
            except (KeyError, TypeError, ValueError) as e:
                self.error(ApiError(400, -1, "bad control request: %r" % (e,)))

        def control(self, what, b):
            if what == "faults":
                with st.lock:
                    if "kinds" in b:
                        st.kinds = parse_kinds(b["kinds"])
                    if "rate" in b:
                        st.rate = float(b["rate"])
                    if "seed" in b:
                        st.rng = random.Random(int(b["seed"]))
                    if "slow_seconds" in b:
                        st.slow = float(b["slow_seconds"])
                    return {"rate": st.rate, "kinds": st.kinds, "slow_seconds": st.slow}
            if what == "clock":
                with st.lock:
                    if b.get("real"):
                        st.clock = None
                    if "server_time_ms" in b:
                        st.clock = None if b["server_time_ms"] is None else int(b["server_time_ms"])
                    if "advance_ms" in b:
                        st.clock = (st.clock if st.clock is not None else int(time.time() * 1000)) \
                            + int(b["advance_ms"])
                    return {"server_time_ms": st.now(), "fixed": st.clock is not None}
            if what == "bad":
                kind = b.get("kind")
                kind = BAD_ALIASES.get(kind, kind)
                count = int(b.get("count", 1))
                if kind in (None, "none") or count <= 0:
                    kind, count = None, 0
                elif kind not in BAD_KINDS:
                    raise ApiError(400, -1, "unknown bad kind %r (known: %s)" % (kind, ",".join(BAD_KINDS)))
                with st.lock:
                    st.bad_kind, st.bad_count = kind, count
                return {"kind": kind, "count": count}
            if what == "amend":
                ser = st.series.get((b["symbol"], b["interval"]))
                if ser is None:
                    raise ApiError(400, -1121, "Invalid symbol.")
                t = int(b["open_time"])
                if not ser.has_time(t):
                    raise ApiError(400, -1, "no candle opens at %d" % t)
                ov = {}
                for f in ("open", "high", "low", "close", "volume"):
                    if f in b:
                        x = float(b[f])
                        if not math.isfinite(x):
                            raise ValueError("%s is not a finite number" % f)
                        ov[f] = "%.8f" % x  # "123.45" is served as "123.45000000"
                with st.lock:
                    merged = dict(ser.amends.get(t, {}))
                    merged.update(ov)
                    ser.amends[t] = merged
                return {"symbol": ser.symbol, "interval": ser.interval, "open_time": t, "amended": merged}
            if what == "weight":
                with st.lock:
                    st.used_weight()
                    if "used" in b:
                        st.weight = int(b["used"])
                    if "limit" in b:
                        st.weight_limit = int(b["limit"])
                    return {"used": st.weight, "limit": st.weight_limit}
            if what == "stream" and st.stream is not None:
                return st.stream.control(b)
            if what == "reset":
                with st.lock:
                    st.stats = st.fresh_stats()
                    st.weight = 0
                    st.bad_kind, st.bad_count = None, 0
                return {"reset": True}
            raise ApiError(404, -1, "no such control: %s" % what)

        def exchange_info(self, q):
            wait = st.take_weight(20)
            if wait:
                return self.too_many(wait)
            syms = sorted(st.symbols)
            if "symbol" in q and "symbols" in q:
                raise ApiError(400, -1128, "Combination of optional parameters invalid.")
            if "symbol" in q:
                want = [q["symbol"]]
            elif "symbols" in q:
                try:
                    want = json.loads(q["symbols"])
                    if not isinstance(want, list) or not all(isinstance(s, str) for s in want):
                        raise ValueError
                except ValueError:
                    raise ApiError(400, -1100, "Illegal characters found in parameter 'symbols'; legal "
                                   "range is '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.")
            else:
                want = syms
            for s in want:
                if s not in st.symbols:
                    raise ApiError(400, -1121, "Invalid symbol.")
            out = []
            for s in want:
                base, quote = split_symbol(s)
                tick = st.symbols[s]
                out.append({
                    "symbol": s, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
                    "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                    "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
                    "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": "%.8f" % tick,
                         "maxPrice": "1000000.00000000", "tickSize": "%.8f" % tick},
                        {"filterType": "LOT_SIZE", "minQty": "0.00001000",
                         "maxQty": "9000.00000000", "stepSize": "0.00001000"}],
                    "permissions": [], "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                    "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]})
            self.send(200, {"timezone": "UTC", "serverTime": st.now(),
                            "rateLimits": [
                                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                 "intervalNum": 1, "limit": st.weight_limit},
                                {"rateLimitType": "ORDERS", "interval": "SECOND",
                                 "intervalNum": 10, "limit": 100},
                                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE",
                                 "intervalNum": 5, "limit": 61000}],
                            "exchangeFilters": [], "symbols": out})

        def klines(self, q):
            with st.lock:
                st.stats["klines"] += 1
            fault, u = st.draw_fault()
            wait = st.take_weight(2)
            if wait:
                return self.too_many(wait)
            if fault == "429":
                st.count_fault(fault)
                return self.send(429, {"code": -1003, "msg": "Too much request weight used; current "
                                       "limit is %d request weight per 1 MINUTE." % st.weight_limit},
                                 [("Retry-After", "1")])
            if fault == "418":
                st.count_fault(fault)
                until = int(time.time() * 1000) + 2000
                return self.send(418, {"code": -1003, "msg": "Way too much request weight used; IP "
                                       "banned until %d. Please use WebSocket Streams for live "
                                       "updates to avoid bans." % until}, [("Retry-After", "2")])
            if fault == "500":
                st.count_fault(fault)
                return self.send(500, {"code": -1000, "msg": "An unknown error occurred while "
                                       "processing the request."})
            if fault == "502":
                st.count_fault(fault)
                return self.send(502, {"code": -1001, "msg": "Internal error; unable to process "
                                       "your request. Please try again."})
            if fault == "503":
                st.count_fault(fault)
                return self.send(503, {"code": -1008, "msg": "Server is currently overloaded with "
                                       "other requests. Please try again in a few minutes."})
            if fault == "reset":
                st.count_fault(fault)
                return self.reset()
            if fault == "slow":
                st.count_fault(fault)
                time.sleep(st.slow)

            rows = self.select(q)  # raises ApiError on a bad request
            spoilt = None
            with st.lock:
                if st.bad_count > 0 and rows:
                    spoilt = st.bad_kind
            if spoilt or (fault == "wrongtype" and rows):
                parsed = [json.loads(r) for r in rows]
                if spoilt:
                    ser = st.series[(q["symbol"], q["interval"])]
                    if spoil(parsed, spoilt, ser.tick):
                        with st.lock:
                            if st.bad_count > 0:
                                st.bad_count -= 1
                                st.stats["bad"][spoilt] = st.stats["bad"].get(spoilt, 0) + 1
                                if st.bad_count == 0:
                                    st.bad_kind = None
                if fault == "wrongtype":
                    st.count_fault(fault)
                    wrong_type(parsed, u)
                body = jdump(parsed)
            else:
                body = ("[" + ",".join(rows) + "]").encode()
            if fault == "malformed":
                st.count_fault(fault)
                if u < 0.5 and b"],[" in body:
                    body = body.replace(b"],[", b"][", 1)  # a missing comma between rows
                elif u < 0.75:
                    body = body[: max(1, len(body) // 2)]  # cut, with a matching length
                else:
                    body = b"<html><body><h1>200 OK</h1>not json</body></html>"
                return self.send(200, body)
            if fault == "truncate":
                st.count_fault(fault)
                cut = max(1, len(body) // 2) if len(body) > 1 else 0
                self.send(200, body[:cut], length=len(body), close=True)
                return
            self.send(200, body)

        def reset(self):
            """Close the connection without a reply (an RST where the OS allows)."""
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder))
                self.rfile.close()
                self.connection.close()
            except OSError:
                pass

        def select(self, q):
            sym, interval = q.get("symbol"), q.get("interval")
            if not sym:
                raise ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                               "or malformed.")
            if not interval:
                raise ApiError(400, -1102, "Mandatory parameter 'interval' was not sent, was "
                               "empty/null, or malformed.")
            if sym not in st.symbols:
                raise ApiError(400, -1121, "Invalid symbol.")
            if interval not in INTERVALS:
                raise ApiError(400, -1120, "Invalid interval.")

            def num(name, default, lo=0, hi=None):
                v = q.get(name)
                if v is None:
                    return default
                if not v.isdigit() or len(v) > 20:
                    raise ApiError(400, -1100, "Illegal characters found in parameter '%s'; legal "
                                   "range is '^[0-9]{1,20}$'." % name)
                v = int(v)
                if hi is not None and not lo <= v <= hi:
                    raise ApiError(400, -1100, "Illegal characters found in parameter '%s'; legal "
                                   "range is '%d' to '%d'." % (name, lo, hi))
                return v

            limit = num("limit", 500, 1, 1000)
            start = num("startTime", None)
            end = num("endTime", None)
            if start is not None and end is not None and start > end:
                raise ApiError(400, -1023, "Start time is greater than end time.")
            ser = st.series.get((sym, interval))
            if ser is None:
                return []  # a served symbol without candles of this interval
            cap = st.now()  # candles opening after the server time do not exist yet
            last = ser.upper(cap if end is None else min(end, cap))  # exclusive
            if start is not None:
                i = ser.lower(start)
                j = min(last, i + limit)
            else:
                j = last
                i = max(0, j - limit)
            if i >= j:
                return []
            rows = ser.page(i, j)
            if st.stream is not None:
                rows = stream_live_rest_page(ser, rows, i, cap)
            return rows

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


stream_live_rest_page = None  # stream.live_rest_page once --ws-port is given


def main(argv=None):
    p = argparse.ArgumentParser(description="fake Binance spot REST server (127.0.0.1 only)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--generate", action="append", default=[], metavar="SYMBOL:INTERVAL:START_MS:END_MS")
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--faults", default=",".join(FAULT_KINDS))
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument("--weight-limit", type=int, default=6000)
    p.add_argument("--server-time-ms", type=int)
    p.add_argument("--verbose", action="store_true", help="log every request on stderr")
    p.add_argument("--ws-port", type=int, help="also serve Binance's kline WebSocket streams "
                   "on this port (0: any; see stream.py)")
    p.add_argument("--ws-interval", type=float, default=1.0,
                   help="seconds between a stream's kline events")
    p.add_argument("--cache-blocks", type=int, default=CACHE_BLOCKS,
                   help="generated blocks of %d rows kept in memory (benchmarks keep a whole "
                   "series: a year of 1m candles is 514 blocks, about 110 MB)" % BLOCK)
    args = p.parse_args(argv)
    try:
        st = State(args)
    except ValueError as e:
        p.error(str(e))
    GeneratedSeries.cache_blocks = max(1, args.cache_blocks)
    load_series(args, st)
    if args.ws_port is not None:
        import stream  # the WebSocket side: needs the pinned websockets package
        global stream_live_rest_page
        stream_live_rest_page = stream.live_rest_page
        st.stream, ws_port = stream.start(st, args.ws_port, args.ws_interval)
        print("ws-listening 127.0.0.1:%d" % ws_port, flush=True)

    srv = Server(("127.0.0.1", args.port), make_handler(st, args.verbose))

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("listening 127.0.0.1:%d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
