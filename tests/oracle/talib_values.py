#!/usr/bin/env python3
"""TA-Lib oracle for the C tests (tests only; uses PyPI ta-lib from .deps/venv).

usage: talib_values.py FILE
FILE holds one close price per line (repr of a double). Prints, per line,
the name of an output and its values for every index (nan in the warm-up),
as repr() so the C side reads exactly the doubles TA-Lib produced.
"""
import sys

import numpy as np
import talib

closes = np.array([float(x) for x in open(sys.argv[1]) if x.strip()], dtype=np.float64)
out = {}
for p in (20, 50, 200):
    out[f"sma_{p}"] = talib.SMA(closes, timeperiod=p)
for p in (12, 26):
    out[f"ema_{p}"] = talib.EMA(closes, timeperiod=p)
out["rsi_14"] = talib.RSI(closes, timeperiod=14)
u, m, l = talib.BBANDS(closes, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)
out["bb_upper_20"], out["bb_middle_20"], out["bb_lower_20"] = u, m, l
u, m, l = talib.BBANDS(closes, timeperiod=10, nbdevup=1.5, nbdevdn=2.5, matype=0)
out["bb_upper_10_asym"], out["bb_middle_10_asym"], out["bb_lower_10_asym"] = u, m, l
macd, sig, hist = talib.MACD(closes, fastperiod=12, slowperiod=26, signalperiod=9)
out["macd"], out["macd_signal"], out["macd_hist"] = macd, sig, hist
macd, sig, hist = talib.MACD(closes, fastperiod=5, slowperiod=35, signalperiod=5)
out["macd_5_35_5"], out["macd_signal_5_35_5"], out["macd_hist_5_35_5"] = macd, sig, hist
for name, values in out.items():
    print(name, " ".join(repr(float(v)) for v in values))
