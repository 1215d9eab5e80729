/*
 * app.js - the autonama dashboard: a chart view (candles, volume, SMA/EMA/BB
 * overlays, RSI and MACD panes, older history on scroll-left, live updates),
 * a status strip (health, store mode, freshness, tasks), a symbols view and
 * an optimization view. Plain DOM and lightweight-charts; no framework.
 *
 * Routes it uses are discovered from /openapi.json, so a server without the
 * stream (issue 14), optimization (issue 13) or equity routes is never asked for them:
 * the page says so instead. Everything the page shows is also written to
 * data- attributes for tests (documented in README.md, "Dashboard"):
 *   #chart   data-state (empty|loading|ready|error), data-symbol,
 *            data-timeframe, data-candles, data-oldest, data-newest,
 *            data-series (indicator series holding points), data-render-ms
 *            (data in hand to drawn: two animation frames), data-paint-ms (the
 *            JavaScript part of it: setData of every series),
 *            data-older-loads, data-live-updates, data-last-close and
 *            data-last-volume (the newest candle's: they move with the open candle)
 *   #live    data-live (off|connecting|live|reconnecting|polling|unavailable)
 *   #status  data-state (loading|ok|degraded|db-down|api-down)
 *   #heatmap data-cells
 *   #opt-chart data-state (empty|loading|ready|error|unavailable), data-points
 *            (equity points), data-trades, data-markers, data-final (last value)
 *   #opt-started data-state (started|refused), its text the task and run
 */
'use strict';

(function () {
  const LWC = window.LightweightCharts;
  const $ = (id) => document.getElementById(id);
  const TIMEFRAMES = ['1m', '5m', '15m', '1h', '4h', '1d'];
  const PAGE = 1000; /* candles per request (the API serves up to 5000) */
  const INDICATORS = {
    sma: { names: ['sma_20'], pane: 0 },
    ema: { names: ['ema_12'], pane: 0 },
    bb: { names: ['bb_upper_20', 'bb_middle_20', 'bb_lower_20'], pane: 0 },
    rsi: { names: ['rsi_14'], pane: 'rsi' },
    macd: { names: ['macd', 'macd_signal', 'macd_hist'], pane: 'macd' },
  };
  const COLORS = {
    sma_20: '--sma', ema_12: '--ema', bb_upper_20: '--bb', bb_middle_20: '--bb',
    bb_lower_20: '--bb', rsi_14: '--rsi', macd: '--macd', macd_signal: '--signal',
    macd_hist: '--muted',
  };

  const app = {
    routes: new Set(), /* paths declared by /openapi.json */
    symbols: [], /* /api/v1/symbols */
    chart: null,
    view: 'chart',
    healthy: null,
    limit: PAGE, /* candles of the first request (the fragment's limit=) */
    started: false, /* set once the first view is shown */
    pollMs: 5000, /* newest-candle polling when the server has no stream */
  };
  window.autonama = app; /* the test hook: read-only use please */

  /* ---- small helpers ---------------------------------------------------- */

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined)
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    return el;
  }
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v) ? '–'
    : Math.abs(v) >= 1000 ? v.toFixed(2) : v.toPrecision(d || 6));
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  function ago(ms) {
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 120) return Math.round(s) + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' d';
  }

  /* fetch JSON; resolves {ok, status, body} and never rejects (network
   * errors are status 0), so callers show the problem instead of throwing */
  async function api(path, opts) {
    try {
      const r = await fetch(path, Object.assign({ headers: { Accept: 'application/json' } }, opts));
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      return { ok: r.ok, status: r.status, body };
    } catch (e) {
      return { ok: false, status: 0, body: { error: 'the API cannot be reached (' + e.message + ')' } };
    }
  }
  const why = (r) => (r.body && r.body.error) || ('HTTP ' + r.status);

  function banner(msg) {
    const b = $('banner');
    b.textContent = msg || '';
    b.hidden = !msg;
  }

  /* ---- routing between views --------------------------------------------- */

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const q = raw.indexOf('?');
    const view = (q < 0 ? raw : raw.slice(0, q)) || 'chart';
    return { view, params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
  }

  function showView() {
    const { view, params } = parseHash();
    app.view = ['chart', 'symbols', 'optimize'].includes(view) ? view : 'chart';
    for (const v of ['chart', 'symbols', 'optimize']) $('view-' + v).hidden = v !== app.view;
    for (const a of document.querySelectorAll('nav a'))
      if (a.dataset.view === app.view) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    if (app.view === 'chart') {
      const sym = params.get('symbol'), tf = params.get('timeframe');
      const limit = Math.min(5000, Math.max(10, parseInt(params.get('limit') || PAGE, 10) || PAGE));
      if (sym) $('sel-symbol').value = sym;
      fillTimeframes();
      if (tf) $('sel-tf').value = tf;
      app.limit = limit;
      loadChart();
    } else if (app.view === 'symbols') {
      renderSymbols();
    } else {
      loadOptimize();
    }
  }

  /* ---- symbols ------------------------------------------------------------ */

  async function loadSymbols() {
    const r = await api('/api/v1/symbols');
    app.symbolsError = r.ok ? null : why(r);
    if (!r.ok) return r;
    app.symbols = (r.body && r.body.symbols) || [];
    const sel = $('sel-symbol'), keep = sel.value;
    sel.replaceChildren(...app.symbols.map((s) => h('option', { value: s.symbol, text: s.symbol })));
    if (keep && app.symbols.some((s) => s.symbol === keep)) sel.value = keep;
    fillTimeframes();
    if (app.view === 'symbols') renderSymbols();
    return r;
  }

  function servedTimeframes(symbol) {
    const s = app.symbols.find((x) => x.symbol === symbol);
    if (!s) return [];
    const tfs = (s.timeframes || []).map((t) => t.timeframe);
    return TIMEFRAMES.filter((t) => tfs.includes(t));
  }

  function fillTimeframes() {
    const sel = $('sel-tf'), keep = sel.value;
    const tfs = servedTimeframes($('sel-symbol').value);
    sel.replaceChildren(...tfs.map((t) => h('option', { value: t, text: t })));
    if (tfs.includes(keep)) sel.value = keep;
    else if (tfs.length) {
      const s = app.symbols.find((x) => x.symbol === $('sel-symbol').value);
      const stored = s && s.stored && s.stored[0] && s.stored[0].timeframe;
      sel.value = tfs.includes(stored) ? stored : tfs[0];
    }
  }

  function renderSymbols() {
    const q = $('sym-search').value.trim().toLowerCase();
    const rows = [];
    for (const s of app.symbols) {
      for (const st of s.stored || []) {
        const text = (s.symbol + ' ' + st.timeframe).toLowerCase();
        if (q && !q.split(/\s+/).every((w) => text.includes(w))) continue;
        rows.push(h('tr', {},
          h('th', { scope: 'row', text: s.symbol }),
          h('td', { text: st.timeframe }),
          h('td', { text: st.first }),
          h('td', { text: st.last }),
          h('td', { class: 'num', text: Number(st.rows).toLocaleString('en') }),
          h('td', {}, servedTimeframes(s.symbol).map((tf) => [h('a', {
            href: '#/chart?symbol=' + encodeURIComponent(s.symbol) + '&timeframe=' + tf, text: tf,
          }), ' ']))));
      }
    }
    if (!rows.length)
      rows.push(h('tr', {}, h('td', { colspan: 6, class: 'note',
        text: app.symbols.length ? 'nothing matches' : 'no candles stored yet' })));
    $('sym-table').tBodies[0].replaceChildren(...rows);
  }

  /* ---- the chart ---------------------------------------------------------- */

  function chartOptions() {
    const layout = { background: { type: 'solid', color: css('--panel') }, textColor: css('--fg'),
      panes: { separatorColor: css('--line') } };
    return {
      autoSize: true,
      grid: { vertLines: { color: css('--line') }, horzLines: { color: css('--line') } },
      rightPriceScale: { borderColor: css('--line') },
      timeScale: { borderColor: css('--line'), timeVisible: true, secondsVisible: false },
      crosshair: { mode: 0 },
      /* lightweight-charts' logo injects an inline <style> the CSP refuses; the
       * attribution its licence asks for is in the page's footer instead */
      layout: Object.assign(layout, { attributionLogo: false }),
    };
  }

  function wanted() {
    const names = [];
    for (const [key, ind] of Object.entries(INDICATORS))
      if ($('ind-' + key).checked) names.push(...ind.names);
    return names;
  }

  /* one chart per (symbol, timeframe, indicators): built afresh when they change */
  function buildChart(el, names) {
    const chart = LWC.createChart(el, chartOptions());
    const candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: css('--up'), downColor: css('--down'), borderVisible: false,
      wickUpColor: css('--up'), wickDownColor: css('--down'),
    });
    const volume = chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: 'volume', priceFormat: { type: 'volume' }, lastValueVisible: false,
      priceLineVisible: false,
    });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    const lines = {};
    const panes = { 0: 0 };
    let next = 1;
    for (const name of names) {
      const key = Object.keys(INDICATORS).find((k) => INDICATORS[k].names.includes(name));
      const p = INDICATORS[key].pane;
      if (!(p in panes)) panes[p] = next++;
      const opts = { color: css(COLORS[name]), lineWidth: name.startsWith('bb_') ? 1 : 2,
        priceLineVisible: false, lastValueVisible: false };
      lines[name] = name === 'macd_hist'
        ? chart.addSeries(LWC.HistogramSeries, Object.assign(opts, { color: css('--muted') }), panes[p])
        : chart.addSeries(LWC.LineSeries, opts, panes[p]);
    }
    /* the price pane 3/5 of the height, RSI and MACD 1/5 each */
    chart.panes().forEach((pane, i) => pane.setStretchFactor(i === 0 ? 3 : 1));
    return { chart, candles, volume, lines };
  }

  function legend(c, bar) {
    if (!bar) { $('legend').textContent = ''; return; }
    const parts = [iso(bar.ts), 'O ' + fmt(bar.open), 'H ' + fmt(bar.high), 'L ' + fmt(bar.low),
      'C ' + fmt(bar.close), 'V ' + fmt(bar.volume, 4)];
    for (const n of c.names) parts.push(n + ' ' + fmt(bar.indicators ? bar.indicators[n] : null));
    $('legend').textContent = parts.join('  ');
  }

  /* colours read once per chart (getComputedStyle per bar is slow) */
  function palette() {
    return { up: css('--up'), down: css('--down') };
  }
  function volColor(c, b) { return b.close >= b.open ? c.pal.up + '66' : c.pal.down + '66'; }

  /* the series' data from c.bars (oldest first) */
  function paint(c) {
    c.ui.candles.setData(c.bars.map((b) => ({ time: b.ts / 1000, open: b.open, high: b.high,
      low: b.low, close: b.close })));
    c.ui.volume.setData(c.bars.map((b) => ({ time: b.ts / 1000, value: b.volume, color: volColor(c, b) })));
    const present = [];
    for (const n of c.names) {
      const pts = [];
      for (const b of c.bars) {
        const v = b.indicators ? b.indicators[n] : null;
        if (v !== null && v !== undefined) pts.push(n === 'macd_hist'
          ? { time: b.ts / 1000, value: v, color: v >= 0 ? c.pal.up + '99' : c.pal.down + '99' }
          : { time: b.ts / 1000, value: v });
      }
      c.ui.lines[n].setData(pts);
      if (pts.length) present.push(n);
    }
    const el = $('chart');
    el.dataset.candles = c.bars.length;
    el.dataset.series = present.join(',');
    el.dataset.oldest = c.bars.length ? iso(c.bars[0].ts) : '';
    el.dataset.newest = c.bars.length ? iso(c.bars[c.bars.length - 1].ts) : '';
    el.dataset.lastClose = c.bars.length ? c.bars[c.bars.length - 1].close : '';
    el.dataset.lastVolume = c.bars.length ? c.bars[c.bars.length - 1].volume : '';
  }

  function ohlcUrl(c, extra) {
    const p = new URLSearchParams({ symbol: c.symbol, timeframe: c.timeframe });
    for (const [k, v] of Object.entries(extra)) p.set(k, v);
    if (c.names.length) p.set('indicators', c.names.join(','));
    return '/api/v1/data/ohlc?' + p.toString().replace(/%2F/g, '/').replace(/%2C/g, ',');
  }

  async function loadChart() {
    const symbol = $('sel-symbol').value, timeframe = $('sel-tf').value;
    const el = $('chart');
    if (!symbol || !timeframe) {
      el.dataset.state = app.symbolsError ? 'error' : 'empty';
      $('legend').textContent = app.symbolsError ? 'Cannot load the symbols: ' + app.symbolsError +
        ' (retrying when the API is back)' : app.symbols.length ? ''
        : 'No candles stored yet: run `autonama ingest` or `autonama import`.';
      return;
    }
    const names = wanted(), key = [symbol, timeframe, app.limit, names.join(',')].join('|');
    if (app.chart && app.chart.key === key && el.dataset.state === 'ready') return;
    stopLive();
    if (app.chart) app.chart.ui.chart.remove();
    const c = { key, symbol, timeframe, names, bars: [], loadingOlder: false, exhausted: false,
      olderLoads: 0, liveUpdates: 0 };
    app.chart = c;
    Object.assign(el.dataset, { state: 'loading', symbol, timeframe, candles: 0, series: '',
      olderLoads: 0, liveUpdates: 0 });
    c.ui = buildChart(el, names);
    c.pal = palette();
    c.ui.chart.subscribeCrosshairMove((p) => {
      if (!p || p.time === undefined) { legend(c, c.bars[c.bars.length - 1]); return; }
      legend(c, c.byTime && c.byTime.get(p.time * 1000));
    });
    const r = await api(ohlcUrl(c, { limit: app.limit }));
    if (app.chart !== c) return;
    if (!r.ok) {
      el.dataset.state = 'error';
      c.errorStatus = r.status;
      $('legend').textContent = 'Cannot load ' + symbol + ' ' + timeframe + ': ' + why(r) +
        ' (retrying when the API is back)';
      return;
    }
    const t0 = performance.now();
    if (!r.body || !Array.isArray(r.body.candles)) {
      el.dataset.state = 'error';
      $('legend').textContent = 'Unexpected reply for ' + symbol + ' ' + timeframe;
      return;
    }
    c.bars = r.body.candles.slice().reverse();
    c.byTime = new Map(c.bars.map((b) => [b.ts, b]));
    c.exhausted = r.body.candles.length < app.limit;
    paint(c);
    /* the newest 300 bars: the history before them loads on scroll-left */
    if (c.bars.length > 300) c.ui.chart.timeScale().setVisibleLogicalRange({ from: c.bars.length - 300, to: c.bars.length + 5 });
    else c.ui.chart.timeScale().fitContent();
    el.dataset.paintMs = (performance.now() - t0).toFixed(1);
    /* rendered: two frames later the canvases have been drawn */
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const ms = performance.now() - t0;
      performance.measure('autonama-render', { start: t0, duration: ms });
      el.dataset.renderMs = ms.toFixed(1);
      el.dataset.state = 'ready';
    }));
    legend(c, c.bars[c.bars.length - 1]);
    el.onkeydown = (e) => keys(c, e);
    c.ui.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (range && range.from < 20) loadOlder(c);
    });
    startLive(c);
  }

  /* keyboard on the focused chart: arrows scroll by a quarter of the view,
   * + and - zoom, End back to the newest; scrolling left loads older pages */
  function keys(c, e) {
    const ts = c.ui.chart.timeScale(), r = ts.getVisibleLogicalRange();
    if (!r) return;
    const w = r.to - r.from, step = Math.max(1, Math.round(w / 4));
    const to = { ArrowLeft: [r.from - step, r.to - step], ArrowRight: [r.from + step, r.to + step],
      '+': [r.from + w / 4, r.to], '=': [r.from + w / 4, r.to], '-': [r.from - w / 2, r.to],
      End: [c.bars.length - w, c.bars.length + 5] }[e.key];
    if (!to) return;
    e.preventDefault();
    ts.setVisibleLogicalRange({ from: to[0], to: to[1] });
  }

  /* older history: the page before the oldest candle held (end is exclusive) */
  async function loadOlder(c) {
    if (c.loadingOlder || c.exhausted || !c.bars.length || app.chart !== c) return;
    c.loadingOlder = true;
    const r = await api(ohlcUrl(c, { limit: PAGE, end: c.bars[0].ts }));
    c.loadingOlder = false;
    if (app.chart !== c || !r.ok) return;
    const older = r.body.candles.slice().reverse().filter((b) => b.ts < c.bars[0].ts);
    if (r.body.candles.length < PAGE) c.exhausted = true;
    if (!older.length) return;
    const range = c.ui.chart.timeScale().getVisibleLogicalRange();
    c.bars = older.concat(c.bars);
    for (const b of older) c.byTime.set(b.ts, b);
    paint(c);
    if (range) c.ui.chart.timeScale().setVisibleLogicalRange({ from: range.from + older.length,
      to: range.to + older.length });
    c.olderLoads++;
    $('chart').dataset.olderLoads = c.olderLoads;
  }

  /* one live candle: moves the open candle or appends a new one */
  function applyLive(c, bar) {
    const last = c.bars[c.bars.length - 1];
    if (last && bar.ts < last.ts) return;
    if (last && bar.ts === last.ts) {
      const known = Object.entries(bar.indicators || {}).filter(([, v]) => v !== null && v !== undefined);
      bar.indicators = Object.assign({}, last.indicators, Object.fromEntries(known));
      c.bars[c.bars.length - 1] = bar;
    } else {
      c.bars.push(bar);
    }
    c.byTime.set(bar.ts, bar);
    const t = bar.ts / 1000;
    c.ui.candles.update({ time: t, open: bar.open, high: bar.high, low: bar.low, close: bar.close });
    c.ui.volume.update({ time: t, value: bar.volume, color: volColor(c, bar) });
    for (const n of c.names) {
      const v = bar.indicators ? bar.indicators[n] : null;
      if (v !== null && v !== undefined) c.ui.lines[n].update({ time: t, value: v });
    }
    c.liveUpdates++;
    const el = $('chart');
    el.dataset.liveUpdates = c.liveUpdates;
    el.dataset.candles = c.bars.length;
    el.dataset.newest = iso(c.bars[c.bars.length - 1].ts);
    el.dataset.lastClose = c.bars[c.bars.length - 1].close;
    el.dataset.lastVolume = c.bars[c.bars.length - 1].volume;
    legend(c, bar);
  }

  function setLive(state, text) {
    const el = $('live');
    el.dataset.live = state;
    el.textContent = text;
    el.className = 'pill ' + ({ live: 'ok', polling: 'ok', reconnecting: 'warn', unavailable: '' }[state] || '');
  }

  function stopLive() {
    if (app.es) { app.es.close(); app.es = null; }
    if (app.poll) { clearInterval(app.poll); app.poll = null; }
    setLive('off', 'live: off');
  }

  /* a candle event: the candle at the top level or under "candle" */
  function eventBar(data) {
    const d = data.candle || data;
    const ts = d.ts !== undefined ? d.ts : Date.parse(d.timestamp);
    return { symbol: d.symbol || data.symbol, timeframe: d.timeframe || data.timeframe, ts,
      open: +d.open, high: +d.high, low: +d.low, close: +d.close, volume: +d.volume,
      closed: !!(d.closed !== undefined ? d.closed : data.closed),
      indicators: d.indicators || data.indicators || {} };
  }

  /* whether the live path streams this series: /health's stream object names
   * its symbols and timeframes when the server says so; else the defaults
   * (AUTONAMA_REALTIME_SYMBOLS = AUTONAMA_SYMBOLS, AUTONAMA_REALTIME_TIMEFRAMES
   * = 1m). A series the server does not stream would answer 404: polled. */
  function streamed(c) {
    const st = app.stream || {};
    const tfs = Array.isArray(st.timeframes) ? st.timeframes : ['1m'];
    return app.routes.has('/api/v1/stream') && app.streamOn && tfs.includes(c.timeframe) &&
      (!Array.isArray(st.symbols) || st.symbols.includes(c.symbol));
  }

  function startLive(c) {
    if (streamed(c)) {
      const p = new URLSearchParams({ symbols: c.symbol, timeframe: c.timeframe });
      if (c.names.length) p.set('indicators', c.names.join(','));
      setLive('connecting', 'live: connecting…');
      const es = new EventSource('/api/v1/stream?' + p.toString().replace(/%2F/g, '/').replace(/%2C/g, ','));
      app.es = es;
      es.onopen = () => setLive('live', 'live');
      es.onerror = () => {
        setLive('reconnecting', 'live: reconnecting…');
        /* EventSource retries by itself after a network error, but gives up
         * on an HTTP error (the server restarting answers 503 for a moment):
         * then a new one in 5 s, while this chart is shown */
        if (es.readyState !== EventSource.CLOSED) return;
        es.close();
        if (app.es === es) app.es = null;
        setTimeout(() => { if (app.chart === c && !app.es && !app.poll) startLive(c); }, 5000);
      };
      es.addEventListener('candle', (ev) => {
        let bar;
        try { bar = eventBar(JSON.parse(ev.data)); } catch (e) { return; }
        if (bar.symbol && bar.symbol !== c.symbol) return;
        if (bar.timeframe && bar.timeframe !== c.timeframe) return;
        if (!Number.isFinite(bar.ts)) return;
        setLive('live', 'live');
        applyLive(c, bar);
      });
      return;
    }
    /* no live stream for this series: poll the newest candles */
    setLive('polling', 'polling ' + app.pollMs / 1000 + ' s');
    $('live').title = 'this server streams no live candles for ' + c.symbol + ' ' + c.timeframe +
      ' (no /api/v1/stream, its live path off, or not a streamed series): the newest candles are polled';
    app.poll = setInterval(async () => {
      if (app.chart !== c || document.hidden || app.healthy === false) return;
      const r = await api(ohlcUrl(c, { limit: 2 }));
      if (app.chart !== c || !r.ok) return;
      for (const b of r.body.candles.slice().reverse()) applyLive(c, b);
    }, app.pollMs);
  }

  /* ---- status strip -------------------------------------------------------- */

  function pill(id, text, cls, title) {
    const el = $(id);
    el.textContent = text;
    el.className = 'pill ' + (cls || '');
    el.title = title || '';
  }

  async function pollStatus() {
    const [hr, tr] = await Promise.all([api('/health'), api('/api/v1/tasks?limit=8')]);
    const st = $('status');
    let state;
    if (hr.status === 0 || !hr.body || !hr.body.checks) {
      state = 'api-down';
      pill('st-api', 'API unreachable', 'bad', why(hr));
      pill('st-store', 'store ?', '');
      pill('st-fresh', 'freshness ?', '');
      banner('The autonama API cannot be reached: ' + why(hr) + '. Retrying every 5 s.');
    } else {
      const hb = hr.body, conn = hb.checks.connection || {};
      const streamOn = !!hb.stream;
      app.stream = hb.stream || null;
      if (streamOn !== !!app.streamOn) { /* the live path came up or went away */
        app.streamOn = streamOn;
        if (app.chart) { stopLive(); startLive(app.chart); }
      }
      const mode = (hb.store && hb.store.mode) || '?';
      const tasks = (tr.ok && tr.body && tr.body.tasks) || [];
      const approach = tasks.length && tasks[0].approach;
      const fallback = tasks.some((t) => t.approach === 'duckdb_fallback' &&
        ['PENDING', 'PROGRESS'].includes(t.state)) || approach === 'duckdb_fallback';
      pill('st-api', 'API ok', 'ok');
      pill('st-store', 'store: ' + { timescaledb: 'TimescaleDB', postgres: 'PostgreSQL', duckdb: 'DuckDB' }[mode] +
        (fallback ? ' · fallback active' : '') + (approach ? ' · ' + approach : ''),
      conn.ok ? (fallback ? 'warn' : 'ok') : 'bad', hb.store && hb.store.where);
      /* the last stored candle per symbol (the freshness check's timeframe) */
      const fr = (hb.checks.freshness && hb.checks.freshness.symbols) || [];
      const tf = (hb.checks.freshness || {}).timeframe || '';
      const el = $('st-fresh');
      el.className = 'tasks';
      el.title = 'last ' + tf + ' candle per symbol (fresh: younger than ' +
        ((hb.checks.freshness || {}).max_age_s || '?') + ' s)';
      el.replaceChildren(...fr.map((x) => h('span', { class: 'pill ' + (x.fresh ? 'ok' : 'warn'),
        title: x.latest || 'nothing stored', text: x.symbol + ' ' + tf + ' ' +
          (x.latest ? ago(Date.parse(x.latest)) + (x.fresh ? '' : ' old') : 'none') })));
      if (!conn.ok) {
        state = 'db-down';
        const d = (hb.problems || [])[0] || conn.error || 'no detail';
        banner('The database is unreachable: ' + d + (/[.?!]$/.test(d) ? ' ' : '. ') +
          'The page keeps trying and recovers by itself.');
      } else {
        state = hr.ok ? 'ok' : 'degraded';
        banner('');
      }
      $('st-tasks').replaceChildren(...tasks.slice(0, 6).map((t) => h('span', {
        class: 'pill ' + ({ SUCCESS: 'ok', FAILURE: 'bad', INTERRUPTED: 'warn', PROGRESS: 'warn' }[t.state] || ''),
        title: (t.symbol || '') + ' ' + (t.created_at || '') + (t.error ? '\n' + t.error : ''),
        text: t.name.replace(/_/g, ' ') + ' ' + t.state.toLowerCase() +
          (t.meta && t.meta.total ? ' ' + t.meta.done + '/' + t.meta.total : ''),
      })));
    }
    const was = app.healthy;
    app.healthy = state === 'ok' || state === 'degraded';
    st.dataset.state = state;
    /* back after an outage, or something failed between two polls */
    if (app.started && app.healthy && (was === false || !app.symbols.length ||
        (app.view === 'chart' && app.chart && (app.chart.errorStatus === 0 || app.chart.errorStatus >= 500))))
      recover();
  }

  /* the API or the database is back: reload what failed */
  async function recover() {
    if (!app.symbols.length && !(await loadSymbols()).ok) return;
    if (app.view === 'chart' && $('chart').dataset.state !== 'ready') {
      if (app.chart) app.chart.key = '';
      loadChart();
    }
    if (app.view === 'optimize' && app.optFailed) loadOptimize();
  }

  /* ---- optimization ------------------------------------------------------- */

  const opt = { runs: [], results: [], sort: 'sharpe', desc: true, picked: null };
  app.opt = opt; /* the test hook: the runs, results and picked combination */

  const runId = (r) => r.run_id || r.id;

  async function loadOptimize() {
    const note = $('opt-note');
    $('opt-start').hidden = !app.routes.has('/api/v1/optimization/runs');
    if (!app.routes.has('/api/v1/optimization/runs')) {
      note.textContent = 'This server has no optimization routes yet (GET /api/v1/optimization/runs ' +
        'is not in its openapi.json): results appear here once it does.';
      $('opt-body').hidden = true;
      return;
    }
    const r = await api('/api/v1/optimization/runs');
    app.optFailed = !r.ok;
    if (!r.ok) { note.textContent = 'Cannot load optimization runs: ' + why(r); return; }
    opt.runs = Array.isArray(r.body) ? r.body : (r.body.runs || []);
    if (!opt.runs.length) {
      note.textContent = 'No optimization runs stored yet: start one below or with `autonama optimize`.';
      $('opt-body').hidden = true;
      return;
    }
    note.textContent = opt.runs.length + ' run(s).';
    $('opt-body').hidden = false;
    const sel = $('opt-run'), keep = sel.value;
    sel.replaceChildren(...opt.runs.map((run) => h('option', { value: runId(run),
      text: [run.strategy, [].concat(run.symbols || run.symbol || []).join(','), run.timeframe,
        run.created_at || ''].filter(Boolean).join(' · ') })));
    if (keep && opt.runs.some((x) => String(runId(x)) === keep)) sel.value = keep;
    await loadResults();
  }

  async function loadResults() {
    const id = $('opt-run').value;
    const r = await api('/api/v1/optimization/results?run_id=' + encodeURIComponent(id) +
      '&sort=sharpe&limit=5000');
    if (!r.ok) { $('opt-note').textContent = 'Cannot load results of run ' + id + ': ' + why(r); return; }
    opt.results = Array.isArray(r.body) ? r.body : (r.body.results || []);
    const params = [...new Set(opt.results.flatMap((x) => Object.keys(x.parameters || {})))];
    const metrics = [...new Set(opt.results.flatMap((x) => Object.keys(x.metrics || {})))];
    const fill = (sel, list, dflt) => {
      const keep = sel.value;
      sel.replaceChildren(...list.map((p) => h('option', { value: p, text: p })));
      sel.value = list.includes(keep) ? keep : dflt;
    };
    fill($('opt-x'), params, params[0]);
    fill($('opt-y'), params, params[1] || params[0]);
    fill($('opt-metric'), metrics, metrics.includes('sharpe') ? 'sharpe' : metrics[0]);
    if (!metrics.includes(opt.sort)) opt.sort = $('opt-metric').value;
    renderTable();
    renderHeatmap();
  }

  function renderTable() {
    const params = [...new Set(opt.results.flatMap((x) => Object.keys(x.parameters || {})))];
    const metrics = [...new Set(opt.results.flatMap((x) => Object.keys(x.metrics || {})))];
    const rows = opt.results.slice().sort((a, b) => {
      const va = (a.metrics || {})[opt.sort] ?? (a.parameters || {})[opt.sort] ?? -Infinity;
      const vb = (b.metrics || {})[opt.sort] ?? (b.parameters || {})[opt.sort] ?? -Infinity;
      return opt.desc ? vb - va : va - vb;
    });
    const th = (k) => h('th', { class: 'num', 'aria-sort': opt.sort === k ? (opt.desc ? 'descending' : 'ascending') : null },
      h('button', { type: 'button', text: k + (opt.sort === k ? (opt.desc ? ' ▼' : ' ▲') : ''),
        onclick: () => { opt.desc = opt.sort === k ? !opt.desc : true; opt.sort = k; renderTable(); } }));
    const t = $('opt-table');
    t.tHead.replaceChildren(h('tr', {}, h('th', { text: 'symbol' }), h('th', { text: 'sample' }),
      params.map(th), metrics.map(th)));
    t.tBodies[0].replaceChildren(...rows.slice(0, 500).map((x) => h('tr', {
      class: opt.picked === x ? 'picked' : null, tabindex: 0,
      onclick: () => pick(x), onkeydown: (e) => { if (e.key === 'Enter') pick(x); },
    }, h('td', { text: x.symbol }), h('td', { text: x.sample || '' }),
    params.map((p) => h('td', { class: 'num', text: (x.parameters || {})[p] ?? '' })),
    metrics.map((m) => h('td', { class: 'num', text: fmt((x.metrics || {})[m], 4) })))));
  }

  /* a colour from red (worst) through yellow to green (best) */
  function heat(v, lo, hi) {
    if (v === null || v === undefined || !Number.isFinite(v)) return css('--line');
    const f = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    return 'hsl(' + Math.round(f * 120) + ', 70%, 55%)';
  }

  function renderHeatmap() {
    const xk = $('opt-x').value, yk = $('opt-y').value, mk = $('opt-metric').value;
    const hm = $('heatmap');
    if (!xk || !yk || !mk) { hm.replaceChildren(); hm.dataset.cells = 0; return; }
    const xs = [...new Set(opt.results.map((r) => (r.parameters || {})[xk]))].sort((a, b) => a - b);
    const ys = [...new Set(opt.results.map((r) => (r.parameters || {})[yk]))].sort((a, b) => a - b);
    const best = new Map(); /* (x, y) -> the best result over the other parameters */
    for (const r of opt.results) {
      const k = (r.parameters || {})[xk] + '|' + (r.parameters || {})[yk];
      const v = (r.metrics || {})[mk];
      if (!best.has(k) || v > (best.get(k).metrics || {})[mk]) best.set(k, r);
    }
    const vals = [...best.values()].map((r) => (r.metrics || {})[mk]).filter(Number.isFinite);
    const lo = Math.min(...vals), hi = Math.max(...vals);
    hm.style.gridTemplateColumns = 'auto repeat(' + xs.length + ', minmax(2.2rem, 1fr))';
    const cells = [h('span', { class: 'axis', text: yk + ' \\ ' + xk })];
    for (const x of xs) cells.push(h('span', { class: 'axis', text: x }));
    let n = 0;
    for (const y of ys) {
      cells.push(h('span', { class: 'axis', text: y }));
      for (const x of xs) {
        const r = best.get(x + '|' + y);
        if (!r) { cells.push(h('span', {})); continue; }
        const v = (r.metrics || {})[mk];
        const b = h('button', { type: 'button', title: xk + '=' + x + ' ' + yk + '=' + y + ' ' + mk + '=' + fmt(v, 4),
          'aria-label': xk + ' ' + x + ', ' + yk + ' ' + y + ': ' + mk + ' ' + fmt(v, 4),
          text: fmt(v, 2), onclick: () => pick(r) });
        b.style.background = heat(v, lo, hi);
        cells.push(b);
        n++;
      }
    }
    hm.replaceChildren(...cells);
    hm.dataset.cells = n;
  }

  /* a combination: its equity curve and trades (GET /api/v1/optimization/equity,
   * recomputed by the server), drawn with a marker per entry and exit */
  async function pick(r) {
    opt.picked = r;
    renderTable();
    const p = Object.entries(r.parameters || {}).map(([k, v]) => k + '=' + v).join(' ');
    const el = $('opt-chart'), note = $('opt-pick');
    if (app.optChart) { app.optChart.remove(); app.optChart = null; }
    Object.assign(el.dataset, { state: 'loading', points: 0, trades: 0, markers: 0 });
    const summary = r.symbol + ' ' + p + ': ' + Object.entries(r.metrics || {})
      .map(([k, v]) => k + ' ' + fmt(v, 4)).join(', ');
    if (!app.routes.has('/api/v1/optimization/equity')) {
      note.textContent = summary + '. This server serves no equity curve for a combination ' +
        '(no /api/v1/optimization/equity in its openapi.json).';
      el.dataset.state = 'unavailable';
      return;
    }
    note.textContent = summary + ' (loading its equity curve…)';
    const q = new URLSearchParams({ run_id: String(runId(r) || $('opt-run').value), symbol: r.symbol,
      params: JSON.stringify(r.parameters || {}) });
    const e = await api('/api/v1/optimization/equity?' + q.toString());
    if (opt.picked !== r) return;
    const equity = e.ok && e.body && Array.isArray(e.body.equity) ? e.body.equity : null;
    if (!equity) {
      note.textContent = summary + '. Cannot load its equity curve: ' + why(e);
      el.dataset.state = 'error';
      return;
    }
    const trades = Array.isArray(e.body.trades) ? e.body.trades : [];
    const t = (x) => Date.parse(x) / 1000;
    /* the whole run in view: thousands of bars in a few hundred pixels */
    const chart = LWC.createChart(el, Object.assign(chartOptions(), { timeScale: Object.assign(
      chartOptions().timeScale, { minBarSpacing: 0.01 }) }));
    const s = chart.addSeries(LWC.LineSeries, { color: css('--accent'), lineWidth: 2,
      priceLineVisible: false });
    const words = trades.length <= 30; /* labels only where they stay readable */
    s.setData(equity.map((x) => ({ time: t(x.timestamp), value: x.value })));
    const markers = trades.flatMap((x) => [
      { time: t(x.entry_time), position: 'belowBar', color: css('--up'), shape: 'arrowUp',
        text: words ? 'in' : '' },
      x.exit_time ? { time: t(x.exit_time), position: 'aboveBar', color: css('--down'), shape: 'arrowDown',
        text: words && Number.isFinite(x.return) ? (x.return * 100).toFixed(1) + '%' : '' } : null,
    ].filter(Boolean)).sort((a, b) => a.time - b.time);
    LWC.createSeriesMarkers(s, markers);
    chart.timeScale().fitContent();
    app.optChart = chart;
    note.textContent = summary + '. ' + equity.length + ' bars, ' + trades.length + ' trades (' +
      (e.body.strategy || '') + ' ' + (e.body.timeframe || '') + ', fees ' + e.body.fees + ').';
    Object.assign(el.dataset, { state: 'ready', points: equity.length, trades: trades.length,
      markers: markers.length, final: equity[equity.length - 1].value });
  }

  /* the run a task started, once the task is done: the runs list reloaded and
   * that run's heatmap shown */
  async function followRun(id, out) {
    for (let i = 0; i < 600; i++) {
      await new Promise((res) => setTimeout(res, 1000));
      const r = await api('/api/v1/tasks/' + encodeURIComponent(id));
      if (!r.ok || !r.body) continue;
      if (r.body.state === 'FAILURE' || r.body.state === 'INTERRUPTED') {
        out.textContent = 'Task ' + id + ' ' + r.body.state.toLowerCase() + ': ' + (r.body.error || 'no detail');
        return;
      }
      if (r.body.state !== 'SUCCESS') continue;
      const run = r.body.result && r.body.result.run_id;
      out.textContent = 'Task ' + id + ' done: run ' + (run || '?') + '.';
      /* the runs list may lag the task's end by a moment (replies are reused for
       * AUTONAMA_HTTP_CACHE_TTL_MS): asked again until the run is in it */
      for (let k = 0; k < 10 && app.view === 'optimize'; k++) {
        await loadOptimize();
        if (!run || opt.runs.some((x) => String(runId(x)) === run)) break;
        await new Promise((res) => setTimeout(res, 1000));
      }
      if (run && opt.runs.some((x) => String(runId(x)) === run) && $('opt-run').value !== run) {
        $('opt-run').value = run;
        await loadResults();
      }
      return;
    }
  }

  async function startRun(ev) {
    ev.preventDefault();
    const f = ev.target, out = $('opt-started');
    /* the key stays in this tab (sessionStorage), never in localStorage or a cookie */
    const key = f.key.value || sessionStorage.getItem('autonama.key') || '';
    if (!key) { out.textContent = 'Enter the API key (kept in this tab only).'; return; }
    sessionStorage.setItem('autonama.key', key);
    f.key.value = '';
    f.key.placeholder = 'kept for this tab';
    const body = { strategy: f.strategy.value, grid: f.grid.value, timeframe: f.timeframe.value,
      symbols: f.symbols.value.split(',').map((s) => s.trim()).filter(Boolean).join(',') };
    const r = await api('/api/v1/tasks/optimize_strategy', { method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key }, body: JSON.stringify(body) });
    if (r.status === 401 || r.status === 403) {
      sessionStorage.removeItem('autonama.key');
      f.key.placeholder = '';
    }
    out.textContent = r.ok ? 'Started: task ' + r.body.id + ' (its progress shows in the status strip).'
      : 'Not started: ' + why(r);
    out.dataset.state = r.ok ? 'started' : 'refused';
    if (r.ok) followRun(r.body.id, out);
  }

  /* ---- start ---------------------------------------------------------------- */

  async function start() {
    const spec = await api('/openapi.json');
    if (spec.ok && spec.body && spec.body.paths) for (const p of Object.keys(spec.body.paths)) app.routes.add(p);
    if (sessionStorage.getItem('autonama.key')) $('opt-form').key.placeholder = 'kept for this tab';
    $('sel-symbol').addEventListener('change', () => {
      fillTimeframes();
      location.hash = '#/chart?symbol=' + encodeURIComponent($('sel-symbol').value) + '&timeframe=' + $('sel-tf').value;
    });
    $('sel-tf').addEventListener('change', () => {
      location.hash = '#/chart?symbol=' + encodeURIComponent($('sel-symbol').value) + '&timeframe=' + $('sel-tf').value;
    });
    for (const k of Object.keys(INDICATORS)) $('ind-' + k).addEventListener('change', loadChart);
    $('chart-controls').addEventListener('submit', (e) => e.preventDefault());
    $('sym-search').addEventListener('input', renderSymbols);
    $('opt-run').addEventListener('change', loadResults);
    for (const id of ['opt-x', 'opt-y', 'opt-metric']) $(id).addEventListener('change', renderHeatmap);
    $('opt-form').addEventListener('submit', startRun);
    window.addEventListener('hashchange', showView);
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      if (app.chart) app.chart.ui.chart.applyOptions(chartOptions());
    });
    await pollStatus();
    await loadSymbols();
    showView();
    app.started = true;
    setInterval(pollStatus, 5000);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
