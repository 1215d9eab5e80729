#!/usr/bin/env python3
"""bench/optimize's baseline: the same sma_cross sweep with vectorbt.

usage: optimize_vectorbt.py CLOSES.f64 FAST_START FAST_STOP SLOW_START SLOW_STOP FREQ [FAST_LIMIT]
CLOSES.f64 holds the closes as little-endian float64. The grid is every
(fast, slow) of the two inclusive ranges (step 1). vectorbt's fastest way:
each window's SMA once (vbt.MA.run over the list of windows, Numba), then the
crossings and one Portfolio.from_signals per fast window broadcast against
every slow window (a block of columns: all 10,000 columns of 200,000 bars at
once would need 16 GB per array), with the same metrics as ours (total and
annual return, Sharpe, Sortino, max drawdown, closed trades, win rate,
final value). A warm-up on a short slice first, so Numba's compilation is not
counted. FAST_LIMIT (default all) runs only the first fast windows: vectorbt
takes minutes per 100 combinations of 200,000 bars here, so the caller
measures a part and scales by the combinations. Prints
`vectorbt_seconds=S combinations=N`.
"""
import sys
import time

import numpy as np
import pandas as pd
import vectorbt as vbt


def sweep(close, fast_w, slow_w, freq):
    idx = pd.date_range("2024-01-01", periods=len(close), freq=freq)
    price = pd.Series(close, index=idx)
    fast = vbt.MA.run(price, window=fast_w).ma.values.reshape(len(close), -1)
    slow = vbt.MA.run(price, window=slow_w).ma.values.reshape(len(close), -1)
    prev_slow = np.vstack([np.full((1, slow.shape[1]), np.nan), slow[:-1]])
    out = []
    for j in range(fast.shape[1]):
        f = fast[:, j:j + 1]
        pf_ = np.vstack([[np.nan], f[:-1]])
        entries = (f > slow) & (pf_ <= prev_slow)
        exits = (f < slow) & (pf_ >= prev_slow)
        pf = vbt.Portfolio.from_signals(price, pd.DataFrame(entries, index=idx),
                                        pd.DataFrame(exits, index=idx), fees=0.001,
                                        init_cash=10000.0, freq=freq)
        out.append((pf.total_return().values, pf.annualized_return().values,
                    pf.sharpe_ratio().values, pf.sortino_ratio().values,
                    pf.max_drawdown().values, pf.trades.closed.count().values,
                    pf.trades.closed.win_rate().values, pf.final_value().values))
    return out


def main():
    close = np.fromfile(sys.argv[1], dtype="<f8")
    f0, f1, s0, s1 = (int(x) for x in sys.argv[2:6])
    freq = sys.argv[6]
    fast_w, slow_w = list(range(f0, f1 + 1)), list(range(s0, s1 + 1))
    if len(sys.argv) > 7:
        fast_w = fast_w[:int(sys.argv[7])]
    sweep(close[:5000], fast_w[:1], slow_w[:3], freq)  # warm-up: Numba compiles here
    t = time.perf_counter()
    out = sweep(close, fast_w, slow_w, freq)
    secs = time.perf_counter() - t
    n = sum(len(o[0]) for o in out)
    print(f"vectorbt_seconds={secs:.3f} combinations={n}")


main()
