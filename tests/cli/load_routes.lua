-- wrk script of tests/cli/test_load_ingest.sh: each connection cycles the
-- data routes (candles stored and bucketed, indicators being written, the
-- symbol list); done() prints one line the test reads:
--   totals requests=N non2xx=N connect=N read=N write=N timeout=N p50_ms=X p99_ms=X
local paths = {
    "/api/v1/data/ohlc?symbol=BTC/USDT&timeframe=1h&limit=200",
    "/api/v1/data/indicators?symbol=BTC/USDT&timeframe=1h&limit=200",
    "/api/v1/symbols",
    "/api/v1/data/ohlc?symbol=ETH/USDT&timeframe=4h&limit=100",
    "/api/v1/data/indicators?symbol=BTC/USDT&timeframe=1h&names=sma_20,rsi_14&limit=50",
}
local i = 0

request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "totals requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_ms=%.2f p99_ms=%.2f\n",
        summary.requests, e.status, e.connect, e.read, e.write, e.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
