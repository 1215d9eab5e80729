"""The fake exchange's kline frames, offline: one combined-stream frame a line,
the bytes its stream handler sends (stream.event_text wrapped in WRAP_FMT),
then its bad frames (stream.spoil_event, every kind) prefixed "bad ".

For each series (generated ones over a spread of price levels and, when
AN_DATA_DIR holds it, the real BTC_USDT-1m file), N candles from its start:
the open candle at every second of its minute (x false), then closed (x true).
tests/unit/test_kline_frame.c reads this to compare the frame scan with the
jansson reading over the fake's real frames.

usage: frames.py N   (candles per series)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server  # noqa: E402
import stream  # noqa: E402

T0 = 1672531200000  # 2023-01-01, 1m-aligned


def series():
    out = []
    for sym in ("BTCUSDT", "ETHUSDT", "DOGEUSDT", "SHIBUSDT", "XRPUSDT"):
        out.append(server.GeneratedSeries(sym, "1m", T0, T0 + 86400000))
    path = os.path.join(os.environ.get("AN_DATA_DIR", ""), "BTC_USDT-1m.json")
    if os.path.exists(path):
        out.append(server.FileSeries("BTCUSDT", "1m", path))
    return out


def main():
    n = int(sys.argv[1])
    w = sys.stdout.write
    for ser in series():
        name = "%s@kline_%s" % (ser.symbol.lower(), ser.interval)
        for i in range(min(n, ser.n)):
            t = ser.open_time(i)
            for k in range(0, 60):
                text = stream.event_text(ser, i, t + k * 1000 + 17, False)[0]
                w(stream.WRAP_FMT % (name, text) + "\n")
            text = stream.event_text(ser, i, t + 60000 + 5, True)[0]
            w(stream.WRAP_FMT % (name, text) + "\n")
            for kind in stream.BAD_FRAME_KINDS:
                ev = stream.event(ser, i, t + 30000, False)
                w("bad " + stream.spoil_event({"stream": name, "data": ev}, kind) + "\n")


if __name__ == "__main__":
    main()
