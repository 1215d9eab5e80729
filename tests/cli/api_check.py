#!/usr/bin/env python3
"""Checks a running `autonama serve` over real sockets (stdlib only).

  (hung BASE OBSERVED: the database accepts and never answers: quick 503s)

  api_check.py check BASE MODE DATA_DIR OBSERVED   full checks against a loaded store
  api_check.py down BASE OBSERVED                  the store is unreachable: 503s, /health says why
  api_check.py recovered BASE OBSERVED             waits until data routes answer again
  api_check.py conformance SPEC OBSERVED           every status openapi.json declares was seen, and
                                                   nothing else was
  api_check.py proxy PORT HOST TARGET_PORT         a TCP forwarder (the "database" the server sees)

Every request's (path, method, status) is appended to OBSERVED (one JSON line
each) for the conformance check; every JSON body is checked against the
schema openapi.json declares for its status. Prints TAP-like lines; exits 1
when a check failed.
"""
import gzip
import json
import re
import math
import os
import socket
import sys
import threading
import time
import urllib.parse
import http.client

SPEC = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src",
                                   "api", "openapi.json")))
failed = 0
passed = 0
observed = []


def ok(cond, what):
    global failed, passed
    if cond:
        passed += 1
        print("ok - " + what)
    else:
        failed += 1
        print("not ok - " + what)
    return cond


# ---- a minimal JSON-schema check for the subset openapi.json uses ---------

def resolve(s):
    while "$ref" in s:
        node = SPEC
        for part in s["$ref"].lstrip("#/").split("/"):
            node = node[part]
        s = node
    return s


def conforms(v, s, where="$"):
    s = resolve(s)
    t = s.get("type")
    if v is None:
        return None if s.get("nullable") else where + ": null"
    if t == "object":
        if not isinstance(v, dict):
            return where + ": not an object"
        for k in s.get("required", []):
            if k not in v:
                return where + ": missing " + k
        props = s.get("properties", {})
        for k, x in v.items():
            sub = props.get(k, s.get("additionalProperties"))
            if isinstance(sub, dict):
                e = conforms(x, sub, where + "." + k)
                if e:
                    return e
    elif t == "array":
        if not isinstance(v, list):
            return where + ": not an array"
        for i, x in enumerate(v):
            e = conforms(x, s.get("items", {}), "%s[%d]" % (where, i))
            if e:
                return e
    elif t == "string":
        if not isinstance(v, str):
            return where + ": not a string"
    elif t == "integer":
        if not isinstance(v, int) or isinstance(v, bool):
            return where + ": not an integer"
    elif t == "number":
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return where + ": not a number"
    elif t == "boolean":
        if not isinstance(v, bool):
            return where + ": not a boolean"
    if "enum" in s and v not in s["enum"]:
        return where + ": %r not in %r" % (v, s["enum"])
    return None


def response_schema(path, method, status):
    op = SPEC["paths"].get(path, {}).get(method.lower())
    if not op:
        return None
    r = op["responses"].get(str(status))
    if r is None:
        return None
    r = resolve(r)
    c = r.get("content", {}).get("application/json")
    return c["schema"] if c else None


# ---- HTTP ----------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.raw = raw
        self.body = raw
        if self.headers.get("content-encoding") == "gzip":
            self.body = gzip.decompress(raw)
        self.json = None
        if self.headers.get("content-type", "").startswith("application/json") and self.body:
            try:
                self.json = json.loads(self.body)
            except ValueError:
                self.json = None


BASE = None


def req(path, method="GET", headers=None, body=None, query=None, raw_path=None):
    u = urllib.parse.urlparse(BASE)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    target = raw_path or path
    if query is not None:
        target += "?" + (query if isinstance(query, str) else urllib.parse.urlencode(query))
    c.request(method, target, body=body, headers=headers or {})
    r = c.getresponse()
    rep = Reply(r.status, r.getheaders(), r.read())
    c.close()
    route = path.split("?")[0]
    observed.append({"path": route, "method": "GET" if method == "HEAD" else method,
                     "status": rep.status})
    if method != "HEAD" and rep.body and rep.headers.get("content-type", "").startswith(
            "application/json"):
        if rep.json is None:
            ok(False, "%s %s -> %d: body is not JSON" % (method, target[:80], rep.status))
        else:
            schema = response_schema(route, method, rep.status)
            if schema is None and rep.status >= 400:
                schema = {"$ref": "#/components/schemas/Error"}
            if schema is not None:
                e = conforms(rep.json, schema)
                if e:
                    ok(False, "%s %s -> %d: body does not match openapi.json: %s" %
                       (method, target[:80], rep.status, e))
    return rep


def raw_request(data):
    """Sends bytes over a fresh socket; returns (status, body bytes)."""
    u = urllib.parse.urlparse(BASE)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    s.sendall(data)
    buf = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
            if b"\r\n\r\n" in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    except socket.timeout:
        pass
    s.close()
    head, _, rest = buf.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ")[1])
    except (IndexError, ValueError):
        status = 0
    return status, rest


# ---- the candle files, read independently of autonama -------------------

def load_file(data_dir, name):
    rows = json.load(open(os.path.join(data_dir, name)))
    return [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]))
            for r in rows]


def bucket(rows, ms):
    """GROUP BY open time // ms: first open, max high, min low, last close, sum volume."""
    out = {}
    for r in rows:
        b = r[0] - r[0] % ms
        if b not in out:
            out[b] = [b, r[1], r[2], r[3], r[4], r[5]]
        else:
            o = out[b]
            o[2] = max(o[2], r[2])
            o[3] = min(o[3], r[3])
            o[4] = r[4]
            o[5] += r[5]
    return [tuple(v) for _, v in sorted(out.items())]


def same_candles(got, want, exact_volume=True):
    if len(got) != len(want):
        return "count %d != %d" % (len(got), len(want))
    for g, w in zip(got, want):
        vals = (g["ts"], g["open"], g["high"], g["low"], g["close"])
        if vals != tuple(w[:5]):
            return "candle %s: %r != %r" % (g["timestamp"], vals, w[:5])
        if exact_volume and g["volume"] != w[5]:
            return "volume at %s: %r != %r" % (g["timestamp"], g["volume"], w[5])
        if not exact_volume and not math.isclose(g["volume"], w[5], rel_tol=1e-9, abs_tol=1e-9):
            return "volume at %s: %r != %r" % (g["timestamp"], g["volume"], w[5])
    return None


def ms(s):
    from datetime import datetime, timezone
    return int(datetime.strptime(s, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000)


# ---- the checks -----------------------------------------------------------

def expect_error(query, status, param, what, path="/api/v1/data/ohlc", method="GET", **kw):
    r = req(path, method=method, query=query, **kw)
    good = r.status == status and r.json is not None and isinstance(r.json.get("error"), str)
    if param is not None:
        good = good and r.json.get("parameter") == param
    ok(good, "%s -> %d naming %s (got %d %s)" % (what, status, param, r.status,
                                                 r.body[:160].decode("utf-8", "replace")))
    return r


def check(mode, data_dir):
    btc1m = load_file(data_dir, "BTC_USDT-1m.json")
    eth1h = load_file(data_dir, "ETH_USDT-1h.json")
    t = mode + ": "

    # --- 1m stored, newest first, equal to the file
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 500})
    ok(r.status == 200 and r.json["count"] == 500 and r.json["source"] == "stored",
       t + "1m: 500 stored candles")
    got = r.json["candles"]
    ok(got[0]["ts"] == btc1m[-1][0], t + "1m: newest first, the file's last candle first")
    e = same_candles(list(reversed(got)), btc1m[-500:])
    ok(e is None, t + "1m: the 500 newest candles equal the file's, value for value (%s)" % e)
    ok(got[0]["timestamp"].endswith("Z") and "T" in got[0]["timestamp"],
       t + "timestamps are ISO-8601 UTC")
    ok(r.headers.get("cache-control") == "no-cache" and r.headers.get("etag"),
       t + "open range: Cache-Control no-cache and an ETag")

    # --- ascending from start
    start = ms("2021-05-01")
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 10,
                                        "start": "2021-05-01", "order": "asc"})
    want = [x for x in btc1m if x[0] >= start][:10]
    ok(r.status == 200 and same_candles(r.json["candles"], want) is None,
       t + "order=asc with start: the first 10 candles from start")

    # --- ms timestamps and ISO both parse, end exclusive
    end = ms("2021-05-02")
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 5000,
                                        "start": str(start), "end": "2021-05-02T00:00:00Z"})
    want = [x for x in btc1m if start <= x[0] < end]
    ok(r.status == 200 and same_candles(list(reversed(r.json["candles"])), want) is None,
       t + "start (ms) inclusive, end (ISO) exclusive: one day of 1m candles")
    ok(r.headers.get("cache-control", "").startswith("public, max-age="),
       t + "closed history: Cache-Control public, max-age")
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m",
                                        "start": "2021-05-20T20:00:00Z", "end": "2021-05-22"})
    ok(r.status == 200 and r.headers.get("cache-control") == "no-cache",
       t + "a closed range past the newest stored candle is not declared final")

    # --- newest first across the real gap (2021-04-25 04:00 to 08:44): the
    # window read from the newest candle comes up short and is read again
    gap_end = ms("2021-04-25") + 9 * 3600000
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 500,
                                        "end": str(gap_end)})
    want = [x for x in btc1m if x[0] < gap_end][-500:]
    ok(r.status == 200 and same_candles(list(reversed(r.json["candles"])), want) is None,
       t + "1m newest 500 before a gap's end: the 500 the file has, across the gap")
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "15m", "limit": 40,
                                        "end": str(gap_end)})
    want = list(reversed([b for b in bucket(btc1m, 900000) if b[0] < gap_end][-40:]))
    ok(r.status == 200 and same_candles(r.json["candles"], want, exact_volume=False) is None,
       t + "15m newest 40 before a gap's end: across the gap")

    # --- 4h and 15m bucketed from 1m = an independent GROUP BY
    for tf, bms in (("4h", 4 * 3600000), ("15m", 900000)):
        r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": tf,
                                            "start": "2021-05-01", "end": "2021-05-08",
                                            "order": "asc", "limit": 5000})
        want = [b for b in bucket(btc1m, bms) if ms("2021-05-01") <= b[0] < ms("2021-05-08")]
        e = same_candles(r.json["candles"], want, exact_volume=False) if r.status == 200 else r.status
        ok(r.status == 200 and r.json["source"] == "bucketed" and
           r.json["source_timeframe"] == "1m" and e is None,
           t + "%s bucketed from 1m equals a GROUP BY of the file (%s)" % (tf, e))
    # an unaligned start: the buckets opening at or after it
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "4h",
                                        "start": "2021-05-01T01:00:00Z", "limit": 2,
                                        "order": "asc"})
    ok(r.status == 200 and r.json["candles"][0]["timestamp"] == "2021-05-01T04:00:00Z",
       t + "4h with an unaligned start: the first bucket opens after it")
    # newest 4h bucket, descending, limit
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "4h", "limit": 3})
    want = list(reversed(bucket(btc1m, 4 * 3600000)[-3:]))
    ok(r.status == 200 and same_candles(r.json["candles"], want, exact_volume=False) is None,
       t + "4h newest 3 buckets")

    # --- 1h: the rollup of 1m (BTC has no stored 1h)
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1h", "limit": 48})
    want = list(reversed(bucket(btc1m, 3600000)[-48:]))
    e = same_candles(r.json["candles"], want, exact_volume=False) if r.status == 200 else r.status
    ok(r.status == 200 and r.json["source"] == "rollup" and e is None,
       t + "1h from the rollup equals a GROUP BY of the 1m file (%s)" % e)
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1d", "limit": 40})
    want = list(reversed(bucket(btc1m, 86400000)))
    e = same_candles(r.json["candles"], want, exact_volume=False) if r.status == 200 else r.status
    ok(r.status == 200 and r.json["source"] == "rollup" and e is None,
       t + "1d from the rollup equals a GROUP BY of the 1m file (%s)" % e)

    # --- ETH: 1h stored; 4h and 1d bucketed from 1h; no 1m
    r = req("/api/v1/data/ohlc", query={"symbol": "ETH/USDT", "timeframe": "1h", "limit": 100})
    ok(r.status == 200 and r.json["source"] == "stored" and
       same_candles(list(reversed(r.json["candles"])), eth1h[-100:]) is None,
       t + "ETH 1h stored equals the file")
    r = req("/api/v1/data/ohlc", query={"symbol": "ETH/USDT", "timeframe": "4h", "limit": 50})
    want = list(reversed(bucket(eth1h, 4 * 3600000)[-50:]))
    ok(r.status == 200 and r.json["source_timeframe"] == "1h" and
       same_candles(r.json["candles"], want, exact_volume=False) is None,
       t + "ETH 4h bucketed from stored 1h equals a GROUP BY of the file")
    expect_error({"symbol": "ETH/USDT", "timeframe": "1m"}, 404, "timeframe",
                 t + "ETH 1m (nothing finer stored)")

    # --- indicators and the combined form
    closes = [x[4] for x in btc1m]
    r = req("/api/v1/data/indicators", query={"symbol": "BTC/USDT", "timeframe": "1m",
                                              "names": "sma_20,rsi_14", "limit": 5})
    good = r.status == 200 and r.json["count"] == 5 and r.json["names"] == ["sma_20", "rsi_14"]
    if good:
        for i, row in enumerate(r.json["rows"]):
            k = len(closes) - 1 - i
            sma = sum(closes[k - 19:k + 1]) / 20
            good = good and row["ts"] == btc1m[k][0] and math.isclose(
                row["values"]["sma_20"], sma, rel_tol=1e-9) and 0 <= row["values"]["rsi_14"] <= 100
    ok(good, t + "indicators: sma_20 of the 5 newest 1m candles equals the file's mean of 20 closes")
    ind = {row["ts"]: row["values"] for row in r.json["rows"]} if r.status == 200 else {}
    r = req("/api/v1/data/indicators", query={"symbol": "BTC/USDT", "timeframe": "1m",
                                              "names": "sma_20", "limit": 3, "order": "asc"})
    ok(r.status == 200 and [x["ts"] for x in r.json["rows"]] == [b[0] for b in btc1m[19:22]],
       t + "indicators order=asc: the first sma_20 values start at the 20th candle")
    r = req("/api/v1/data/indicators", query={"symbol": "BTC/USDT", "timeframe": "1h", "limit": 2})
    ok(r.status == 200 and len(r.json["names"]) == 12 and r.json["count"] == 2 and
       all(v is not None for v in r.json["rows"][0]["values"].values()),
       t + "indicators without names: the default set on 1h")
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 5,
                                        "indicators": "sma_20,rsi_14,ema_200"})
    good = r.status == 200 and len(r.json["candles"]) == 5
    for c in r.json["candles"] if good else []:
        good = good and c["indicators"]["sma_20"] == ind[c["ts"]]["sma_20"] and \
            c["indicators"]["rsi_14"] == ind[c["ts"]]["rsi_14"] and c["indicators"]["ema_200"] is None
    ok(good, t + "combined form: each candle carries the same indicator values (null where none)")

    # --- symbols
    r = req("/api/v1/symbols")
    syms = {s["symbol"]: s for s in r.json["symbols"]} if r.status == 200 else {}
    b = syms.get("BTC/USDT", {})
    s1m = [s for s in b.get("stored", []) if s["timeframe"] == "1m"]
    ok(s1m and s1m[0]["rows"] == len(btc1m) and s1m[0]["first_ts"] == btc1m[0][0] and
       s1m[0]["last_ts"] == btc1m[-1][0],
       t + "symbols: BTC/USDT 1m with the file's row count, first and last time")
    served = {x["timeframe"]: x["source"] for x in b.get("timeframes", [])}
    ok(served.get("1h") == "rollup" and served.get("4h") == "bucketed" and served.get("1m") == "stored",
       t + "symbols: served timeframes and how (%s)" % served)
    ok("ETH/USDT" in syms, t + "symbols: ETH/USDT listed")

    # --- ETag / 304, gzip, HEAD
    q = {"symbol": "BTC/USDT", "timeframe": "1m", "limit": 500}
    r1 = req("/api/v1/data/ohlc", query=q)
    r2 = req("/api/v1/data/ohlc", query=q, headers={"If-None-Match": r1.headers["etag"]})
    ok(r2.status == 304 and r2.raw == b"" and r2.headers.get("etag") == r1.headers["etag"],
       t + "If-None-Match with the ETag -> 304, empty body")
    r3 = req("/api/v1/data/ohlc", query=q, headers={"If-None-Match": '"0000"'})
    ok(r3.status == 200, t + "If-None-Match with another ETag -> 200")
    rz = req("/api/v1/data/ohlc", query=q, headers={"Accept-Encoding": "gzip, deflate"})
    ok(rz.headers.get("content-encoding") == "gzip" and rz.body == r1.body and
       len(rz.raw) < len(r1.raw) / 2 and rz.headers.get("etag") != r1.headers["etag"],
       t + "gzip: decodes to the same body, smaller, its own ETag")
    rq0 = req("/api/v1/data/ohlc", query=q, headers={"Accept-Encoding": "gzip;q=0"})
    ok(rq0.headers.get("content-encoding") is None, t + "Accept-Encoding gzip;q=0: identity")
    rz2 = req("/api/v1/data/ohlc", query=q, headers={"Accept-Encoding": "gzip",
                                                     "If-None-Match": rz.headers["etag"]})
    ok(rz2.status == 304, t + "gzip variant revalidates -> 304")
    rh = req("/api/v1/data/ohlc", method="HEAD", query=q)
    ok(rh.status == 200 and rh.raw == b"", t + "HEAD -> 200 without a body")
    ro = req("/openapi.json")
    ok(ro.status == 200 and ro.json == SPEC, t + "GET /openapi.json serves the repository's file")
    ro2 = req("/openapi.json", headers={"If-None-Match": ro.headers.get("etag", "x")})
    ok(ro2.status == 304, t + "/openapi.json revalidates -> 304")
    qi = {"symbol": "BTC/USDT", "timeframe": "1m", "names": "sma_20", "limit": 10}
    ri = req("/api/v1/data/indicators", query=qi)
    ri2 = req("/api/v1/data/indicators", query=qi, headers={"If-None-Match": ri.headers.get("etag", "x")})
    ok(ri2.status == 304, t + "indicators revalidate -> 304")
    rs = req("/api/v1/symbols")
    rs2 = req("/api/v1/symbols", headers={"If-None-Match": rs.headers.get("etag", "x")})
    ok(rs2.status == 304, t + "/api/v1/symbols revalidates -> 304")

    # --- every bad input: a 4xx with a JSON body naming the problem
    B = {"symbol": "BTC/USDT", "timeframe": "1m"}
    for path in ("/api/v1/data/ohlc", "/api/v1/data/indicators"):
        p = path.rsplit("/", 1)[1] + ": "
        expect_error({"timeframe": "1m"}, 400, "symbol", t + p + "missing symbol", path)
        expect_error(dict(B, symbol="BTCUSDT"), 400, "symbol", t + p + "malformed symbol", path)
        expect_error(dict(B, symbol="BTC/USDT' OR '1'='1"), 400, "symbol", t + p + "SQL in symbol", path)
        expect_error(dict(B, symbol="XRP/USDT"), 404, "symbol", t + p + "unknown symbol", path)
        expect_error({"symbol": "BTC/USDT"}, 400, "timeframe", t + p + "missing timeframe", path)
        expect_error(dict(B, timeframe="2h"), 400, "timeframe", t + p + "unknown timeframe", path)
        for bad in ("0", "-1", "abc", "1e3", "5001", "99999999999999999999", ""):
            expect_error(dict(B, limit=bad), 400, "limit", t + p + "limit=%r" % bad, path)
        for bad in ("yesterday", "2021-13-01", "2021-02-30T00:00:00Z", "-5", ""):
            expect_error(dict(B, start=bad), 400, "start", t + p + "start=%r" % bad, path)
        expect_error(dict(B, end="2021-05-01T25:00:00Z"), 400, "end", t + p + "bad end", path)
        expect_error(dict(B, start="2021-05-02", end="2021-05-01"), 400, "end",
                     t + p + "end before start", path)
        expect_error(dict(B, order="sideways"), 400, "order", t + p + "bad order", path)
        expect_error("symbol=BTC/USDT&timeframe=1m&symbol=ETH/USDT", 400, "symbol",
                     t + p + "duplicate symbol", path)
        expect_error("symbol=BTC/USDT&timeframe=1m&limit=5&limit=6", 400, "limit",
                     t + p + "duplicate limit", path)
        expect_error(dict(B, foo="1"), 400, "foo", t + p + "unknown parameter", path)
        expect_error("&".join("p%d=1" % i for i in range(20)), 400, None,
                     t + p + "too many parameters", path)
    expect_error(dict(B, names="bogus_1"), 400, "names", t + "indicators: unknown name",
                 "/api/v1/data/indicators")
    expect_error(dict(B, names="sma_20,sma_20"), 400, "names", t + "indicators: name twice",
                 "/api/v1/data/indicators")
    expect_error(dict(B, names=""), 400, "names", t + "indicators: empty names",
                 "/api/v1/data/indicators")
    expect_error(dict(B, indicators="sma_20,DROP TABLE"), 400, "indicators",
                 t + "ohlc: unknown indicator in the combined form")
    expect_error(dict(B, names="sma_20"), 400, "names", t + "ohlc: names is not its parameter")

    # generic cases on every route openapi.json lists
    for path, ops in SPEC["paths"].items():
        # a task's own path takes POST only (GET is 405 there)
        own = "GET" if "get" in ops else next(iter(ops)).upper()
        expect_error(None, 400, "x", t + path + ": unknown parameter",
                     path, raw_path=path + "?x=1", method=own)
        r = expect_error(None, 414, None, t + path + ": over-long URL", path,
                         raw_path=path + "?symbol=" + "A" * 5000, method=own)
        for m in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            if m.lower() in ops:
                continue
            r = expect_error(None, 405, None, t + path + ": " + m, path, method=m)
            ok(own in r.headers.get("allow", ""), t + path + ": 405 carries Allow")
        st, body = raw_request(("GET %s HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n"
                                "Connection: close\r\n\r\n" % path).encode() + b"x" * 200000)
        observed.append({"path": path, "method": "GET", "status": st})
        ok(st == 413 and b'"error"' in body, t + path + ": a 200 KB body -> 413 JSON (%d)" % st)
    expect_error(None, 404, None, t + "unknown route", "/api/v1/nope")
    st, body = raw_request(b"GET /api/v1/symbols?%zz=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    ok(400 <= st < 500 or st == 200, t + "a broken percent-escape does not crash the server (%d)" % st)

    # --- auth (the server runs with AUTONAMA_API_KEY=test-key)
    r = expect_error(None, 401, None, t + "auth: no Authorization", "/api/v1/auth")
    ok(r.headers.get("www-authenticate", "").startswith("Bearer"), t + "401 carries WWW-Authenticate")
    expect_error(None, 401, None, t + "auth: wrong key", "/api/v1/auth",
                 headers={"Authorization": "Bearer wrong"})
    expect_error(None, 401, None, t + "auth: key as Basic", "/api/v1/auth",
                 headers={"Authorization": "Basic test-key"})
    r = req("/api/v1/auth", headers={"Authorization": "Bearer test-key"})
    ok(r.status == 200 and r.json == {"authenticated": True}, t + "auth: right key -> 200")

    # --- CORS (the server runs with AUTONAMA_HTTP_CORS_ORIGIN=https://example.org)
    r = req("/api/v1/symbols")
    ok(r.headers.get("access-control-allow-origin") == "https://example.org", t + "CORS header")
    r = req("/api/v1/data/ohlc", method="OPTIONS", headers={"Origin": "https://example.org",
                                                            "Access-Control-Request-Method": "GET"})
    ok(r.status == 204 and "GET" in r.headers.get("access-control-allow-methods", ""),
       t + "CORS preflight -> 204 with the methods")
    observed.pop()  # OPTIONS is not an operation of the contract

    # --- health (AUTONAMA_SYMBOLS=BTC/USDT, freshness limit far away: healthy)
    r = req("/health")
    ok(r.status == 200 and r.json["status"] == "healthy", t + "/health: 200 healthy")
    # the latency as written, in microsecond steps (jansson's default printed
    # 17 digits: 1.1289400000000001)
    m = re.search(rb'"latency_ms":([0-9.eE+-]+)', r.body)
    ok(m is not None and len(m.group(1).split(b".")[-1]) <= 3 and float(m.group(1)) >= 0,
       t + "/health: latency_ms in microsecond steps (%s)" % (m.group(1) if m else None))

    # --- metrics
    r = req("/metrics")
    text = r.body.decode()
    ok(r.status == 200 and r.headers.get("content-type", "").startswith("text/plain"),
       t + "/metrics: 200 text/plain")

    def metric(line_start):
        for line in text.splitlines():
            if line.startswith(line_start + " "):
                return float(line.split()[-1])
        return None
    ok((metric('autonama_http_requests_total{route="/api/v1/data/ohlc",code="2xx"}') or 0) > 5,
       t + "/metrics: requests by route and status class")
    ok((metric('autonama_http_requests_total{route="/api/v1/data/ohlc",code="4xx"}') or 0) > 5,
       t + "/metrics: 4xx counted")
    ok((metric('autonama_http_request_duration_seconds_count{route="/api/v1/data/ohlc"}') or 0) > 5,
       t + "/metrics: latency histogram by route")
    ok((metric('autonama_http_rows_served_total{route="/api/v1/data/ohlc"}') or 0) >= 500,
       t + "/metrics: rows served")
    ok(metric("autonama_store_up") == 1, t + "/metrics: store up")


def down(base):
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m"})
    ok(r.status == 503 and "unavailable" in (r.json or {}).get("error", ""),
       "store down: data route -> 503 saying the store is unavailable (%s)" % r.body[:200])
    r = req("/api/v1/data/indicators", query={"symbol": "BTC/USDT", "timeframe": "1m"})
    ok(r.status == 503, "store down: indicators -> 503")
    r = req("/api/v1/symbols")
    ok(r.status == 503, "store down: symbols -> 503")
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "7m"})
    ok(r.status == 400, "store down: bad input is still a 400, not a 5xx")
    r = req("/health")
    ok(r.status == 503 and r.json["status"] == "unhealthy" and r.json["problems"] and
       r.json["checks"]["connection"]["ok"] is False and
       "connect" in json.dumps(r.json["problems"]).lower(),
       "store down: /health 503 and says why (%s)" % (r.json or {}).get("problems"))
    r = req("/metrics")
    ok(r.status == 200 and "autonama_store_up 0" in r.body.decode(), "store down: /metrics store_up 0")
    r = req("/api/v1/auth", headers={"Authorization": "Bearer x"})
    ok(r.status == 403, "no AUTONAMA_API_KEY: key routes -> 403")


def hung(base):
    """The database accepts connections and never answers (a blackhole)."""
    req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 3})
    time.sleep(1.2)  # past the hold: the next request tries to reconnect
    t0 = time.time()
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 3})
    first = time.time() - t0
    ok(r.status == 503 and first < 6,
       "database hangs: data route -> 503 within the connect timeout (%d after %.1f s)" %
       (r.status, first))
    t0 = time.time()
    r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1h", "limit": 3})
    second = time.time() - t0
    ok(r.status == 503 and second < 0.5,
       "database hangs: the next data request gets its 503 at once (%.2f s)" % second)
    r = req("/openapi.json")
    ok(r.status == 200, "database hangs: routes without the store still answer")


def recovered(base):
    deadline = time.time() + 60
    st = 0
    while time.time() < deadline:
        r = req("/api/v1/data/ohlc", query={"symbol": "BTC/USDT", "timeframe": "1m", "limit": 3})
        st = r.status
        if st == 200:
            break
        time.sleep(0.5)
    ok(st == 200, "store back: the data route answers 200 again by itself (%d)" % st)
    r = req("/health")
    ok(r.json and r.json["checks"]["connection"]["ok"] is True, "store back: /health connection ok")
    r = req("/metrics")
    ok("autonama_store_up 1" in r.body.decode(), "store back: /metrics store_up 1")


def conformance(spec_path, obs_path, only=None):
    """only: "PREFIX[,PREFIX]" checks just the paths under them, "!PREFIX[,...]" all
    but those (the task routes are exercised by test_api_tasks.sh, the
    optimizer's by test_optimize.sh, the event stream by test_realtime.sh)."""
    spec = json.load(open(spec_path))
    if only:
        # "!A,B": every path but those under A or B
        prefixes = tuple((only[1:] if only[0] == "!" else only).split(","))
        keep = (lambda p: not p.startswith(prefixes)) if only[0] == "!" else \
            (lambda p: p.startswith(prefixes))
        spec["paths"] = {p: v for p, v in spec["paths"].items() if keep(p)}
    seen = {}
    for line in open(obs_path):
        o = json.loads(line)
        if only and not keep(o["path"]):
            continue
        seen.setdefault((o["path"], o["method"]), set()).add(o["status"])
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            declared = {int(s) for s in op["responses"]}
            got = seen.get((path, method.upper()), set())
            ok(declared <= got, "conformance: %s %s: every declared status was produced "
               "(missing %s)" % (method.upper(), path, sorted(declared - got)))
            ok(got <= declared, "conformance: %s %s: every status produced is declared "
               "(undeclared %s)" % (method.upper(), path, sorted(got - declared)))
            params = [resolve(p)["name"] for p in op.get("parameters", [])]
            ok(len(params) == len(set(params)), "conformance: %s %s parameters unique" %
               (method.upper(), path))
    for path, ops in spec["paths"].items():
        others = [m for (p, m) in seen if p == path and m.lower() not in ops]
        ok(len(others) >= 3, "conformance: %s: methods it does not list were tried (%s)" %
           (path, others))
    for (path, method), got in seen.items():
        if path not in spec["paths"]:
            ok(got <= {404}, "conformance: %s %s is not in openapi.json and answers 404 only (%s)"
               % (method, path, sorted(got)))
        elif method.lower() not in spec["paths"][path]:
            ok(got <= {405}, "conformance: %s %s is not in openapi.json and answers 405 only (%s)"
               % (method, path, sorted(got)))


def proxy(port, host, target):
    """Forwards to host:target; with target 0, accepts and never answers."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)

    def pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    held = []
    while True:
        c, _ = ls.accept()
        if target == 0:
            held.append(c)
            continue
        try:
            u = socket.create_connection((host, target))
        except OSError:
            c.close()
            continue
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()


def main():
    global BASE
    cmd = sys.argv[1]
    if cmd == "proxy":
        proxy(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        return 0
    if cmd == "body":  # body PATH METHOD STATUS FILE: the reply conforms to its schema
        schema = response_schema(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        body = json.load(open(sys.argv[5]))
        # no schema: a status or method openapi.json does not declare (the
        # conformance check judges those)
        e = conforms(body, schema) if schema is not None else None
        if e:
            print("# %s %s %s: %s" % (sys.argv[3], sys.argv[2], sys.argv[4], e))
        return 1 if e else 0
    if cmd == "conformance":
        conformance(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    else:
        BASE = sys.argv[2]
        if cmd == "check":
            check(sys.argv[3], sys.argv[4])
            obs = sys.argv[5]
        elif cmd == "down":
            down(BASE)
            obs = sys.argv[3]
        elif cmd == "hung":
            hung(BASE)
            obs = sys.argv[3]
        elif cmd == "recovered":
            recovered(BASE)
            obs = sys.argv[3]
        with open(obs, "a") as f:
            for o in observed:
                f.write(json.dumps(o) + "\n")
    print("# %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
