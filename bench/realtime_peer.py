#!/usr/bin/env python3
"""bench/realtime's peer: cryptofeed (PyPI, pinned by bench/realtime.sh into
.deps/venv-bench) consuming the fake exchange's kline streams into the same
PostgreSQL, side by side with `autonama serve`.

cryptofeed's own Binance feed and its own Postgres backend (CandlesPostgres,
table `candles`), unedited: a subclass only points the feed's REST and
WebSocket endpoints at the fake (the way cryptofeed's endpoints are meant to
be overridden); every update is kept (candle_closed_only=False), as ours.

  realtime_peer.py REST_URL WS_URL CONNINFO SYMBOLS_FILE LOG
SYMBOLS_FILE: one exchange symbol a line (BAAAUSDT). Runs until killed. The
table gets one extra column, committed (set by the server as each row is
inserted), from which the bench reads the lag event -> row committed.
"""
import asyncio
import sys

import asyncpg
from cryptofeed import FeedHandler
from cryptofeed.backends.postgres import CandlesPostgres
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
from cryptofeed.defines import CANDLES
from cryptofeed.exchanges import Binance

TABLE = """
DROP TABLE IF EXISTS candles;
CREATE TABLE candles (
    id serial PRIMARY KEY, timestamp timestamp, receipt_timestamp timestamp,
    exchange varchar(32), symbol varchar(32), start timestamp, stop timestamp,
    interval varchar(4), trades integer, open numeric(64, 32), close numeric(64, 32),
    high numeric(64, 32), low numeric(64, 32), volume numeric(64, 32), closed boolean,
    committed timestamp DEFAULT (clock_timestamp() AT TIME ZONE 'UTC'))
"""


def conninfo(s):
    kv = dict(p.split("=", 1) for p in s.split())
    return dict(host=kv.get("host"), port=int(kv.get("port", 5432)), user=kv.get("user"),
                pw=kv.get("password"), db=kv.get("dbname"))


def main():
    rest, ws, ci, sym_file, log = sys.argv[1:6]
    db = conninfo(ci)

    async def make_table():
        c = await asyncpg.connect(user=db["user"], password=db["pw"], database=db["db"],
                                  host=db["host"], port=db["port"])
        await c.execute(TABLE)
        await c.close()

    loop = asyncio.new_event_loop()  # FeedHandler runs on the current loop
    asyncio.set_event_loop(loop)
    loop.run_until_complete(make_table())
    syms = [s.strip() for s in open(sym_file) if s.strip()]
    std = [s[:-4] + "-USDT" for s in syms]

    class FakeBinance(Binance):
        websocket_endpoints = [WebsocketEndpoint(ws)]
        rest_endpoints = [RestEndpoint(rest, routes=Routes(
            "/api/v3/exchangeInfo", l2book="/api/v3/depth?symbol={}&limit={}",
            authentication="/api/v3/userDataStream"))]

    fh = FeedHandler(config={"uvloop": False, "log": {"filename": log, "level": "WARNING"}})
    fh.add_feed(FakeBinance(symbols=std, channels=[CANDLES], candle_interval="1m",
                            candle_closed_only=False,
                            callbacks={CANDLES: CandlesPostgres(**db, table="candles")}))
    fh.run()


if __name__ == "__main__":
    main()
