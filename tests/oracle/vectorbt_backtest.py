#!/usr/bin/env python3
"""vectorbt oracle for the optimizer's tests (tests only; PyPI vectorbt in .deps/venv).

usage: vectorbt_backtest.py IN.json
IN.json: a list of jobs, each {"closes": [...], "strategy": "sma_cross",
         "params": [[5, 20], ...], "fees": 0.001, "slippage": 0.0, "freq": "1h"}
(one process for every job: vectorbt's import and Numba's compilation once).
The signals are built here from PyPI ta-lib's indicators with the crossing
rules of the issue (independently of the C code), then every parameter set is
one column of one vbt.Portfolio.from_signals with init_cash=10000 and the
library's defaults otherwise. Prints one JSON array, per job an array: per parameter set its
trades [entry_idx, exit_idx, status] (status 1 closed, 0 open) and
vectorbt's own figures (NaN/inf as null).
"""
import json
import math
import sys

import numpy as np
import pandas as pd
import talib
import vectorbt as vbt


def prev(a):
    p = np.empty_like(a)
    p[0] = np.nan
    p[1:] = a[:-1]
    return p


def cross_above(x, y):
    return (x > y) & (prev(x) <= prev(y))


def cross_below(x, y):
    return (x < y) & (prev(x) >= prev(y))


def signals(strategy, close, p):
    if strategy in ("sma_cross", "ema_cross"):
        f = talib.SMA if strategy == "sma_cross" else talib.EMA
        fast, slow = f(close, timeperiod=int(p[0])), f(close, timeperiod=int(p[1]))
        return cross_above(fast, slow), cross_below(fast, slow)
    if strategy == "rsi_revert":
        rsi = talib.RSI(close, timeperiod=int(p[0]))
        lo, up = np.full_like(close, p[1]), np.full_like(close, p[2])
        return cross_below(rsi, lo), cross_above(rsi, up)
    if strategy == "bbands_revert":
        _, mid, low = talib.BBANDS(close, timeperiod=int(p[0]), nbdevup=p[1], nbdevdn=p[1], matype=0)
        return cross_below(close, low), cross_above(close, mid)
    if strategy == "macd_cross":
        macd, sig, _ = talib.MACD(close, fastperiod=int(p[0]), slowperiod=int(p[1]), signalperiod=int(p[2]))
        return cross_above(macd, sig), cross_below(macd, sig)
    raise SystemExit(f"unknown strategy {strategy}")


def num(v):
    v = float(v)
    return v if math.isfinite(v) else None


def run(spec):
    close = np.array(spec["closes"], dtype=np.float64)
    idx = pd.date_range("2024-01-01", periods=len(close), freq=spec.get("freq", "1h"))
    ent, ext = [], []
    for p in spec["params"]:
        e, x = signals(spec["strategy"], close, p)
        ent.append(e)
        ext.append(x)
    cols = list(range(len(spec["params"])))
    entries = pd.DataFrame(np.array(ent).T, index=idx, columns=cols)
    exits = pd.DataFrame(np.array(ext).T, index=idx, columns=cols)
    pf = vbt.Portfolio.from_signals(pd.Series(close, index=idx), entries, exits,
                                    fees=spec["fees"], slippage=spec["slippage"],
                                    init_cash=10000.0, freq=spec.get("freq", "1h"))
    rec = pf.trades.values
    closed = pf.trades.closed
    fv, tr = pf.final_value(), pf.total_return()
    mdd, sh, so = pf.max_drawdown(), pf.sharpe_ratio(), pf.sortino_ratio()
    ar, wr = pf.annualized_return(), closed.win_rate()
    out = []
    for c in cols:
        r = rec[rec["col"] == c]
        out.append({
            "trades": [[int(t["entry_idx"]), int(t["exit_idx"]), int(t["status"])] for t in r],
            "final_value": num(fv[c]), "total_return": num(tr[c]),
            "max_drawdown": num(-mdd[c]), "sharpe": num(sh[c]), "sortino": num(so[c]),
            "annual_return": num(ar[c]), "win_rate": num(wr[c]),
        })
    return out


json.dump([run(spec) for spec in json.load(open(sys.argv[1]))], sys.stdout)
