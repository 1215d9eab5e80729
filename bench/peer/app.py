"""The seed's API stack, written the way its README describes it (FastAPI +
psycopg2 querying TimescaleDB directly), serving the same route and rows as
autonama's GET /api/v1/data/ohlc for stored timeframes, so bench/api_scale.sh
can measure both on the same database in the same run.

Run: uvicorn app:app --workers 2 (POSTGRES_* in the environment).
"""
import os
from datetime import datetime, timezone

import psycopg2.pool
from fastapi import FastAPI, HTTPException, Query

app = FastAPI()
_pool = None


def pool():
    global _pool
    if _pool is None:
        _pool = psycopg2.pool.ThreadedConnectionPool(
            1, 8,
            host=os.environ["POSTGRES_SERVER"], port=os.environ.get("POSTGRES_PORT", "5432"),
            user=os.environ["POSTGRES_USER"], password=os.environ["POSTGRES_PASSWORD"],
            dbname=os.environ["POSTGRES_DB"])
    return _pool


def parse_time(v):
    if v is None:
        return None
    if v.isdigit():
        return datetime.fromtimestamp(int(v) / 1000, tz=timezone.utc)
    return datetime.fromisoformat(v.replace("Z", "+00:00")).replace(tzinfo=timezone.utc)


@app.get("/api/v1/data/ohlc")
def ohlc(symbol: str, timeframe: str, limit: int = Query(500, ge=1, le=5000),
         start: str | None = None, end: str | None = None, order: str = "desc"):
    if order not in ("asc", "desc"):
        raise HTTPException(400, "order: asc or desc")
    sql = ("SELECT timestamp, open, high, low, close, volume FROM trading.ohlc_data"
           " WHERE symbol = %s AND timeframe = %s")
    args = [symbol, timeframe]
    if start:
        sql += " AND timestamp >= %s"
        args.append(parse_time(start))
    if end:
        sql += " AND timestamp < %s"
        args.append(parse_time(end))
    sql += f" ORDER BY timestamp {'ASC' if order == 'asc' else 'DESC'} LIMIT %s"
    args.append(limit)
    p = pool()
    conn = p.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        conn.rollback()
    finally:
        p.putconn(conn)
    candles = [{
        "timestamp": ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ts": int(ts.timestamp() * 1000),
        "open": o, "high": h, "low": l, "close": c, "volume": v,
    } for ts, o, h, l, c, v in rows]
    return {"symbol": symbol, "timeframe": timeframe, "order": order,
            "count": len(candles), "candles": candles}
