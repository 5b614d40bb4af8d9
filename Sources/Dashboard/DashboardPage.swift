/// The dashboard's one page: HTML, CSS and script inline, nothing loaded from elsewhere.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MarketStream</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #0a0d12;
  --panel: #10151c;
  --panel-2: #141a23;
  --border: #1e2733;
  --border-2: #2a3544;
  --text: #c9d3de;
  --text-strong: #e8eef5;
  --muted: #7a8796;
  --faint: #4b5663;
  --accent: #4ea1ff;
  --vwap: #f0b429;
  --green: #3fb950;
  --red: #f85149;
  --amber: #d29922;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif;
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html, body { margin: 0; background: var(--bg); color: var(--text); }
body { font: 12px/1.4 var(--sans); -webkit-font-smoothing: antialiased; }
.mono, .num, td.num { font-family: var(--mono); font-variant-numeric: tabular-nums; }

/* header */
header.top {
  display: flex; align-items: center; gap: 18px;
  height: 42px; padding: 0 14px;
  background: linear-gradient(#121822, #0e131a);
  border-bottom: 1px solid var(--border);
  position: sticky; top: 0; z-index: 10;
}
.brand { display: flex; align-items: center; gap: 8px; }
.brand h1 { margin: 0; font-size: 15px; font-weight: 650; letter-spacing: .02em; color: var(--text-strong); }
.logo { width: 14px; height: 14px; border-radius: 3px; background: linear-gradient(135deg, var(--accent), #7c5cff); box-shadow: 0 0 10px rgba(78,161,255,.35); }
.hdr-item { display: flex; align-items: baseline; gap: 6px; white-space: nowrap; }
.label { color: var(--muted); font-size: 10px; text-transform: uppercase; letter-spacing: .08em; }
.hdr-item .mono { color: var(--text-strong); }
.spacer { flex: 1; }
.live { display: flex; align-items: center; gap: 6px; color: var(--muted); white-space: nowrap; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--faint); }
.dot[data-mode="live"] { background: var(--green); box-shadow: 0 0 6px rgba(63,185,80,.7); }
.dot[data-mode="stale"] { background: var(--amber); }
.dot[data-mode="down"] { background: var(--red); }
.clock { font-size: 13px; color: var(--text-strong); }

/* banners */
.banner { padding: 7px 14px; font-weight: 600; border-bottom: 1px solid; }
.banner.err { background: #3a1214; color: #ffd7d5; border-color: #6e1d20; }
.banner.warn { background: #33280c; color: #ffe6a8; border-color: #5c4813; }

/* layout */
main.grid {
  display: grid; grid-template-columns: minmax(0, 1.7fr) minmax(0, 1fr);
  gap: 10px; padding: 10px; align-items: start;
}
.col { display: flex; flex-direction: column; gap: 10px; min-width: 0; }
@media (max-width: 1000px) { main.grid { grid-template-columns: minmax(0, 1fr); } }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 6px; padding: 8px 10px 10px; min-width: 0; }
.panel-h { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; min-height: 22px; }
.panel-h h2 { margin: 0; font-size: 11px; font-weight: 650; text-transform: uppercase; letter-spacing: .09em; color: var(--muted); }
.badge { font-family: var(--mono); font-size: 11px; padding: 0 6px; border-radius: 9px; background: var(--panel-2); border: 1px solid var(--border-2); color: var(--text-strong); }
.badge.hot { border-color: #6e1d20; background: #2a1113; color: #ffb4ae; }
.sub { color: var(--muted); font-size: 11px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.empty { color: var(--faint); padding: 8px 2px; font-style: italic; }
.scroll { overflow: auto; }

/* tables */
table.data { width: 100%; border-collapse: collapse; table-layout: auto; }
table.data th {
  text-align: left; font-weight: 600; font-size: 10px; color: var(--muted);
  text-transform: uppercase; letter-spacing: .06em;
  padding: 4px 6px; border-bottom: 1px solid var(--border-2);
  position: sticky; top: 0; background: var(--panel); white-space: nowrap;
}
table.data td { padding: 3px 6px; border-bottom: 1px solid var(--border); white-space: nowrap; }
table.data tbody tr:last-child td { border-bottom: none; }
table.data th.num, table.data td.num { text-align: right; }
table.data tbody tr:hover td { background: rgba(255,255,255,.025); }

#symbols tbody tr { cursor: pointer; }
#symbols tbody tr.selected td { background: rgba(78,161,255,.10); }
#symbols tbody tr.selected td:first-child { box-shadow: inset 2px 0 0 var(--accent); }
#symbols td.symbol { font-family: var(--mono); color: var(--text-strong); max-width: 240px; overflow: hidden; text-overflow: ellipsis; }
#symbols td.last { color: var(--text-strong); font-weight: 600; }
#symbols td.window { color: var(--muted); }
.pos { color: var(--green); }
.neg { color: var(--red); }
.flat { color: var(--muted); }

/* chart */
.chart-h select, .controls select, .controls input {
  background: var(--panel-2); color: var(--text-strong); border: 1px solid var(--border-2);
  border-radius: 4px; font: 12px var(--mono); padding: 2px 6px; height: 24px;
}
.chart-h select { max-width: 260px; }
.legend { display: flex; gap: 14px; align-items: center; margin-left: auto; font-size: 11px; color: var(--muted); white-space: nowrap; }
.legend b { font-family: var(--mono); font-weight: 600; color: var(--text-strong); }
.legend i { display: inline-block; width: 14px; height: 2px; vertical-align: middle; margin-right: 5px; }
.lg-price i { background: var(--accent); }
.lg-vwap i { background: var(--vwap); }
#chart { display: block; width: 100%; height: 260px; }
#chart .plot-bg { fill: #0c1117; stroke: var(--border); }
#chart .grid-line { stroke: #1a2230; stroke-width: 1; }
#chart .tick { fill: var(--muted); font: 10px var(--mono); }
#chart .line-price { fill: none; stroke: var(--accent); stroke-width: 1.6; stroke-linejoin: round; }
#chart .line-vwap { fill: none; stroke: var(--vwap); stroke-width: 1.3; stroke-dasharray: 5 3; stroke-linejoin: round; }
#chart .area { fill: url(#price-fill); }
#chart .msg { fill: var(--muted); font: 13px var(--sans); font-style: italic; }
#chart .cross { stroke: #5d6b7c; stroke-width: 1; stroke-dasharray: 2 3; }
#chart .last-dot { fill: var(--accent); stroke: #0c1117; stroke-width: 2; }

/* alerts */
#alerts-list { list-style: none; margin: 0; padding: 0; max-height: 230px; overflow: auto; }
#alerts-list li { display: grid; grid-template-columns: 58px max-content minmax(0, 1fr); gap: 1px 8px; align-items: baseline; padding: 3px 2px; border-bottom: 1px solid var(--border); }
#alerts-list li:last-child { border-bottom: none; }
#alerts-list .time { font-family: var(--mono); color: var(--muted); }
#alerts-list .sym { font-family: var(--mono); color: var(--text-strong); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 150px; }
#alerts-list .msg { grid-column: 2 / -1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; color: var(--text); }
.rule { justify-self: start; font-size: 10px; padding: 0 5px; border-radius: 3px; text-transform: uppercase; letter-spacing: .05em; background: #1b2431; color: var(--muted); border: 1px solid var(--border-2); }
.rule[data-rule="above"] { color: var(--green); border-color: #1f4d2a; }
.rule[data-rule="below"] { color: var(--red); border-color: #5a2124; }

/* dead letters */
.dlq-grid { display: flex; flex-direction: column; gap: 8px; }
#dlq-reasons td.reason { max-width: 200px; overflow: hidden; text-overflow: ellipsis; }
#dlq-reasons td.share { width: 35%; }
.bar { height: 6px; border-radius: 3px; background: #1a2230; overflow: hidden; }
.bar > span { display: block; height: 100%; background: linear-gradient(90deg, #a3413b, var(--red)); }
.dlq-latest-wrap { max-height: 190px; overflow: auto; }
#dlq-latest .dl-item { padding: 4px 2px 5px; border-top: 1px solid var(--border); }
#dlq-latest .dl-item:first-child { border-top: none; }
#dlq-latest .dl-line { display: flex; gap: 10px; align-items: baseline; min-width: 0; margin-bottom: 2px; }
#dlq-latest .reason { color: #ffb4ae; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; flex: 0 1 auto; max-width: 45%; }
#dlq-latest .source, #dlq-latest .group { font-family: var(--mono); font-size: 11px; color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; flex: 0 10 auto; }
#dlq-latest .time { font-family: var(--mono); color: var(--muted); margin-left: auto; flex: none; }
#dlq-latest .payload { font-family: var(--mono); font-size: 11px; color: #9fb0c2; white-space: pre-wrap; word-break: break-all; background: #0c1117; border: 1px solid var(--border); border-radius: 3px; padding: 2px 5px; }

/* groups */
#groups-body { display: flex; flex-direction: column; gap: 8px; }
#groups-body > .group { border: 1px solid var(--border); border-radius: 5px; background: var(--panel-2); padding: 6px 8px; }
.group-h { display: flex; align-items: baseline; gap: 14px; margin-bottom: 4px; flex-wrap: wrap; }
.group-name { font-family: var(--mono); font-weight: 600; color: var(--text-strong); overflow: hidden; text-overflow: ellipsis; max-width: 340px; white-space: nowrap; }
.pill { font-size: 10px; padding: 1px 7px; border-radius: 9px; text-transform: uppercase; letter-spacing: .06em; border: 1px solid var(--border-2); color: var(--muted); background: #0f141b; }
.group-state[data-state="Stable"] { color: var(--green); border-color: #1f4d2a; }
.group-state[data-state="PreparingRebalance"], .group-state[data-state="CompletingRebalance"] { color: var(--amber); border-color: #5c4813; }
.group-state[data-state="Dead"] { color: var(--red); border-color: #5a2124; }
.kv { color: var(--muted); white-space: nowrap; }
.kv b { font-family: var(--mono); font-weight: 600; color: var(--text-strong); margin-left: 4px; }
#groups-body > .group table.data th { background: var(--panel-2); }
td.lag.lagging, td.lag-seconds.lagging { color: var(--amber); }
td.lag.behind, td.lag-seconds.behind { color: var(--red); }
.kv b.lagging { color: var(--amber); }
.kv b.behind { color: var(--red); }

/* replay */
#replay-state { font-weight: 600; }
#replay-state[data-state="playing"] { color: var(--green); border-color: #1f4d2a; }
#replay-state[data-state="paused"] { color: var(--amber); border-color: #5c4813; }
#replay-state[data-state="finished"] { color: var(--accent); border-color: #1d3e63; }
.replay-file { display: flex; gap: 6px; align-items: baseline; margin-bottom: 6px; min-width: 0; }
#replay-file { color: var(--text-strong); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.progress-row { display: flex; align-items: center; gap: 8px; }
#replay-progress { flex: 1; height: 8px; -webkit-appearance: none; appearance: none; border: none; border-radius: 4px; background: #1a2230; overflow: hidden; }
#replay-progress::-webkit-progress-bar { background: #1a2230; border-radius: 4px; }
#replay-progress::-webkit-progress-value { background: linear-gradient(90deg, #2f6fb5, var(--accent)); border-radius: 4px; }
#replay-percent { font-family: var(--mono); width: 48px; text-align: right; color: var(--text-strong); }
.progress-ends { display: flex; justify-content: space-between; gap: 8px; font-family: var(--mono); font-size: 10px; color: var(--muted); margin: 3px 56px 6px 0; }
#replay-position { color: var(--text-strong); font-size: 11px; }
.stats { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 4px 10px; margin-bottom: 8px; }
.stat { display: flex; flex-direction: column; min-width: 0; }
.stat b { font-family: var(--mono); font-weight: 600; color: var(--text-strong); font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.notice { background: #0f1d2e; border: 1px solid #1d3e63; color: #b9d7ff; border-radius: 4px; padding: 4px 8px; margin-bottom: 8px; }
.controls { display: flex; flex-wrap: wrap; gap: 5px; align-items: center; margin-top: 5px; }
.controls .sep { width: 1px; height: 18px; background: var(--border-2); margin: 0 3px; }
button {
  font: 600 11px var(--sans); color: var(--text-strong); background: #1a2230;
  border: 1px solid var(--border-2); border-radius: 4px; padding: 0 9px; height: 24px; cursor: pointer;
}
button:hover { background: #222c3b; border-color: #3a4759; }
button:active { background: #283446; }
button.active { border-color: var(--accent); color: #cfe5ff; }
button.busy { opacity: .6; cursor: progress; }
#seek-to { flex: 1; min-width: 120px; }
.error { margin-top: 8px; background: #3a1214; border: 1px solid #6e1d20; color: #ffd7d5; border-radius: 4px; padding: 5px 8px; white-space: pre-wrap; word-break: break-word; }

@media (prefers-reduced-motion: reduce) { * { animation: none !important; transition: none !important; } }
</style>
</head>
<body>
<header class="top">
  <div class="brand"><span class="logo"></span><h1>MarketStream</h1></div>
  <div class="hdr-item"><span class="label">bootstrap</span><span id="bootstrap" class="mono">—</span></div>
  <div class="hdr-item"><span class="label">in</span><span id="hdr-rate" class="mono">—</span></div>
  <div class="hdr-item"><span class="label">lag</span><span id="hdr-lag" class="mono">—</span></div>
  <div class="spacer"></div>
  <div class="live"><span id="live-dot" class="dot"></span><span id="live-text">connecting…</span></div>
  <div id="clock" class="mono clock">—</div>
</header>
<div id="conn-banner" class="banner warn" role="status" hidden>Lost the dashboard server; reconnecting…</div>
<div id="kafka-banner" class="banner err" role="alert" hidden></div>

<main class="grid">
  <div class="col">
    <section class="panel" id="symbols-panel">
      <div class="panel-h"><h2>Symbols</h2><span id="symbols-count" class="badge">0</span><span class="sub">click a row to chart it</span></div>
      <table id="symbols" class="data">
        <thead><tr>
          <th>Symbol</th><th class="num">Last</th><th class="num">VWAP</th><th class="num">Change</th>
          <th class="num">Volume</th><th class="num">Trades/s</th><th class="num">Trades</th><th class="num">Window end</th>
        </tr></thead>
        <tbody></tbody>
      </table>
      <div id="symbols-empty" class="empty">No symbols yet…</div>
    </section>

    <section class="panel" id="chart-panel">
      <div class="panel-h chart-h">
        <h2>Chart</h2>
        <select id="chart-symbol" aria-label="Chart symbol"></select>
        <div class="legend" id="chart-legend">
          <span class="lg-price"><i></i>Price <b id="legend-price">—</b></span>
          <span class="lg-vwap"><i></i>VWAP <b id="legend-vwap">—</b></span>
          <span id="legend-time" class="mono">—</span>
        </div>
      </div>
      <svg id="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Price and VWAP chart"></svg>
    </section>

    <section class="panel" id="groups">
      <div class="panel-h"><h2>Consumer groups</h2><span id="groups-count" class="badge">0</span></div>
      <div id="groups-body"></div>
      <div id="groups-empty" class="empty">No consumer groups.</div>
    </section>
    <section class="panel" id="topics-panel">
      <div class="panel-h"><h2>Topics</h2></div>
      <table id="topics" class="data">
        <thead><tr><th>Topic</th><th class="num">Partitions</th><th class="num">End offset</th><th class="num">Rate msg/s</th></tr></thead>
        <tbody></tbody>
      </table>
      <div id="topics-empty" class="empty">No topics.</div>
    </section>
  </div>

  <div class="col">
    <section class="panel" id="replay" hidden>
      <div class="panel-h"><h2>Replay</h2><span id="replay-state" class="pill">—</span><span id="replay-url" class="sub mono"></span></div>
      <div class="replay-file"><span class="label">file</span><span id="replay-file" class="mono">—</span></div>
      <div class="progress-row"><progress id="replay-progress" max="100" value="0"></progress><span id="replay-percent">—</span></div>
      <div class="progress-ends"><span id="replay-first">—</span><span id="replay-position">—</span><span id="replay-last">—</span></div>
      <div class="stats">
        <div class="stat"><span class="label">speed</span><b id="replay-speed">—</b></div>
        <div class="stat"><span class="label">trades sent</span><b id="replay-trades">—</b></div>
        <div class="stat"><span class="label">frames sent</span><b id="replay-frames">—</b></div>
        <div class="stat"><span class="label">lag</span><b id="replay-lag">—</b></div>
        <div class="stat"><span class="label">seeks</span><b id="replay-seeks">—</b></div>
        <div class="stat"><span class="label">skipped</span><b id="replay-skipped">—</b></div>
        <div class="stat"><span class="label">repeated</span><b id="replay-repeated">—</b></div>
      </div>
      <div id="replay-notice" class="notice" hidden></div>
      <div class="controls">
        <button id="btn-pause" type="button">❚❚ Pause</button>
        <button id="btn-resume" type="button">▶ Resume</button>
        <span class="sep"></span>
        <button id="btn-slower" type="button">« Slower</button>
        <select id="replay-speed-select" aria-label="Replay speed">
          <option value="0.5x">0.5x</option><option value="1x">1x</option><option value="2x">2x</option>
          <option value="5x">5x</option><option value="10x">10x</option><option value="50x">50x</option>
          <option value="100x">100x</option><option value="max">max</option>
        </select>
        <button id="btn-faster" type="button">Faster »</button>
      </div>
      <div class="controls">
        <button id="btn-back-60" type="button">−60s</button>
        <button id="btn-back-10" type="button">−10s</button>
        <button id="btn-fwd-10" type="button">+10s</button>
        <button id="btn-fwd-60" type="button">+60s</button>
        <span class="sep"></span>
        <input id="seek-to" type="text" spellcheck="false" autocomplete="off" placeholder="2024-08-08T23:55:00Z or +30s" aria-label="Seek to">
        <button id="btn-seek" type="button">Seek</button>
      </div>
      <div id="replay-error" class="error" role="alert" hidden></div>
    </section>

    <section class="panel" id="alerts">
      <div class="panel-h"><h2>Alerts</h2><span id="alerts-total" class="badge" data-value="">0</span><span class="sub">newest first</span></div>
      <ul id="alerts-list"></ul>
      <div id="alerts-empty" class="empty">No alerts yet.</div>
    </section>

    <section class="panel" id="dlq">
      <div class="panel-h"><h2>Dead letters</h2><span id="dlq-total" class="badge" data-value="">0</span></div>
      <div class="dlq-grid">
        <table id="dlq-reasons" class="data">
          <thead><tr><th>Reason</th><th class="num">Count</th><th></th></tr></thead>
          <tbody></tbody>
        </table>
        <div id="dlq-empty" class="empty">No dead letters.</div>
        <div class="dlq-latest-wrap" id="dlq-latest-wrap">
          <div id="dlq-latest"></div>
        </div>
      </div>
    </section>

  </div>
</main>

<script>
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const SVGNS = 'http://www.w3.org/2000/svg';
  const CHART_H = 260;

  // ---------- formatting ----------
  function num(v) {
    if (v === null || v === undefined || v === '' || typeof v === 'boolean') return null;
    const n = Number(v);
    return Number.isFinite(n) ? n : null;
  }
  function trimZeros(s) {
    return s.indexOf('.') >= 0 ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
  }
  function fmtPrice(v) {
    const n = num(v);
    if (n === null) return '—';
    const a = Math.abs(n);
    let s;
    if (a === 0) s = '0';
    else if (a >= 1000) s = n.toFixed(2);
    else if (a >= 1) s = trimZeros(n.toFixed(5));
    else if (a >= 1e-8) s = trimZeros(n.toFixed(8));
    else s = n.toPrecision(3);
    return s === '-0' ? '0' : s;
  }
  function fmtChange(v) {
    const n = num(v);
    if (n === null) return '—';
    if (n === 0) return '0.000%';
    const a = Math.abs(n);
    const body = a < 0.001 ? String(Number(a.toPrecision(2))) : a.toFixed(3);
    return (n > 0 ? '+' : '-') + body + '%';
  }
  const compactFmt = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });
  const intFmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  function fmtCompact(v) {
    const n = num(v);
    if (n === null) return '—';
    const a = Math.abs(n);
    if (a >= 1000) return compactFmt.format(n);
    if (a >= 1 || a === 0) return trimZeros(n.toFixed(3));
    return String(Number(n.toPrecision(3)));
  }
  function fmtRate(v) {
    const n = num(v);
    if (n === null) return '—';
    return Math.abs(n) >= 10000 ? compactFmt.format(n) : n.toFixed(1);
  }
  function fmtInt(v) {
    const n = num(v);
    return n === null ? '—' : intFmt.format(n);
  }
  function fmtLagS(v) {
    const n = num(v);
    return n === null ? '—' : n.toFixed(1) + ' s';
  }
  function fmtMs(v) {
    const n = num(v);
    return n === null ? '—' : n.toFixed(n < 10 ? 2 : 1) + ' ms';
  }
  function isoOf(ms) {
    const n = num(ms);
    if (n === null) return null;
    const d = new Date(n);
    return isNaN(d.getTime()) ? null : d.toISOString();
  }
  function hms(ms) {
    const s = isoOf(ms);
    return s ? s.slice(11, 19) : '—';
  }
  function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
  const arr = (v) => Array.isArray(v) ? v : [];
  const str = (v) => (v === null || v === undefined) ? '' : (typeof v === 'string' ? v : (typeof v === 'object' ? JSON.stringify(v) : String(v)));

  // ---------- DOM helpers (untrusted text only via textContent / setAttribute) ----------
  function el(tag, cls, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (parent) parent.appendChild(e);
    return e;
  }
  function setText(e, t) {
    t = String(t);
    if (e.textContent !== t) e.textContent = t;
  }
  function setAttr(e, name, v) {
    v = String(v);
    if (e.getAttribute(name) !== v) e.setAttribute(name, v);
  }
  function dataValue(v) {
    return (v === null || v === undefined) ? '' : String(v);
  }
  function setNum(e, v, fmt) {
    setAttr(e, 'data-value', dataValue(v));
    setText(e, fmt(v));
  }
  function toggleCls(e, cls, on) {
    if (e.classList.contains(cls) !== !!on) e.classList.toggle(cls, !!on);
  }
  // Keep parent's children equal to items (in order), reusing elements by key.
  function syncKeyed(parent, items, keyOf, create, update) {
    const map = parent._rows || (parent._rows = new Map());
    const seen = new Set();
    let prev = null;
    items.forEach((it, i) => {
      const k = keyOf(it, i);
      if (seen.has(k)) return;
      seen.add(k);
      let e = map.get(k);
      let fresh = false;
      if (!e) { e = create(it, k); map.set(k, e); fresh = true; }
      update(e, it, k, fresh);
      const want = prev ? prev.nextSibling : parent.firstChild;
      if (e !== want) parent.insertBefore(e, want);
      prev = e;
    });
    for (const [k, e] of map) {
      if (!seen.has(k)) { e.remove(); map.delete(k); }
    }
    return seen.size;
  }
  function flash(e, color) {
    if (!e.animate) return;
    e.animate([{ backgroundColor: color }, { backgroundColor: 'rgba(0,0,0,0)' }], { duration: 900, easing: 'ease-out' });
  }

  // ---------- state ----------
  let chosen = new URLSearchParams(location.search).get('symbol') || null;
  let es = null;
  let esSymbol = null;
  let lastMsgAt = 0;
  let lastChart = null;
  let lastReplay = null;
  let actionError = null;
  let renders = 0;

  // ---------- connection ----------
  function setLive(mode, text) {
    setAttr($('live-dot'), 'data-mode', mode);
    setText($('live-text'), text);
  }
  function connect(sym) {
    if (es) { es.onmessage = null; es.onerror = null; es.close(); }
    esSymbol = sym || null;
    const src = new EventSource('/events' + (sym ? '?symbol=' + encodeURIComponent(sym) : ''));
    es = src;
    src.onmessage = (ev) => {
      if (src !== es) return;
      let s;
      try { s = JSON.parse(ev.data); } catch (e) { console.warn('dashboard: bad state JSON', e); return; }
      $('conn-banner').hidden = true;
      lastMsgAt = Date.now();
      setLive('live', 'live');
      render(s);
    };
    src.onerror = () => {
      if (src !== es) return;
      $('conn-banner').hidden = false;
      setLive('down', 'reconnecting…');
      // EventSource retries by itself unless the server answered with something unusable.
      if (src.readyState === EventSource.CLOSED) {
        setTimeout(() => { if (src === es) connect(esSymbol); }, 3000);
      }
    };
  }
  setInterval(() => {
    if (lastMsgAt && $('live-dot').getAttribute('data-mode') === 'live' && Date.now() - lastMsgAt > 5000) {
      setLive('stale', 'stale');
    }
  }, 1000);

  function setChosen(sym) {
    if (sym === null || sym === undefined || sym === '' || sym === chosen) return;
    chosen = sym;
    markSelected();
    showChartMessage('loading ' + sym + '…');
    connect(sym);
  }

  // ---------- render ----------
  function safe(fn, ...args) {
    try { fn(...args); } catch (e) { console.error('dashboard: render ' + fn.name + ' failed', e); }
  }
  function render(s) {
    if (!s || typeof s !== 'object') return;
    const syms = normSymbols(s.symbols);
    let chartStale = false;
    if (!chosen && syms.length) {
      chosen = syms[0].symbol;
      const cs = s.chart && s.chart.symbol;
      if (cs !== chosen) { connect(chosen); chartStale = true; }
    }
    safe(renderHeader, s);
    safe(renderKafka, s.kafka);
    safe(renderSymbols, syms);
    if (chartStale) safe(showChartMessage, 'loading ' + chosen + '…');
    else safe(renderChart, s.chart, false);
    safe(renderAlerts, s.alerts);
    safe(renderDlq, s.dead_letters);
    safe(renderGroups, s.groups);
    safe(renderTopics, s.topics);
    safe(renderReplay, s.replay);
    renders++;
    document.body.dataset.updated = String(s.now === null || s.now === undefined ? Date.now() : s.now);
  }

  function renderHeader(s) {
    setText($('bootstrap'), s.bootstrap == null ? '—' : str(s.bootstrap));
    const iso = isoOf(s.now);
    setText($('clock'), iso ? iso.slice(0, 10) + ' ' + iso.slice(11, 19) + ' UTC' : '—');
    let rate = null;
    for (const t of arr(s.topics)) { const r = num(t && t.rate); if (r !== null) rate = (rate || 0) + r; }
    setNum($('hdr-rate'), rate, (v) => fmtRate(v) + ' msg/s');
    let lag = null;
    for (const g of arr(s.groups)) { const l = num(g && g.lag); if (l !== null) lag = (lag || 0) + l; }
    setNum($('hdr-lag'), lag, fmtInt);
  }

  function renderKafka(k) {
    const b = $('kafka-banner');
    if (!k || k.ok !== false) { b.hidden = true; return; }
    setText(b, 'Kafka unreachable: ' + (k.error == null ? 'unknown error' : str(k.error)) + ' — retrying');
    b.hidden = false;
  }

  // symbols
  function normSymbols(list) {
    const out = [];
    for (const s of arr(list)) {
      if (!s || s.symbol === null || s.symbol === undefined) continue;
      out.push(Object.assign({}, s, { symbol: String(s.symbol) }));
    }
    out.sort((a, b) => cmp(a.symbol, b.symbol));
    return out;
  }
  const SYM_CELLS = ['symbol', 'last', 'vwap', 'change', 'volume', 'tps', 'trades', 'window'];
  function createSymbolRow(s, key) {
    const tr = document.createElement('tr');
    tr.setAttribute('data-symbol', key);
    tr.tabIndex = 0;
    tr._c = {};
    for (const c of SYM_CELLS) tr._c[c] = el('td', c === 'symbol' ? c : c + ' num', tr);
    setText(tr._c.symbol, key);
    tr._c.symbol.title = key;
    tr.addEventListener('click', () => setChosen(key));
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); setChosen(key); } });
    return tr;
  }
  function updateSymbolRow(tr, s, key, fresh) {
    const c = tr._c;
    const prev = tr._last;
    const last = num(s.last);
    setNum(c.last, s.last, fmtPrice);
    if (!fresh && prev !== undefined && prev !== null && last !== null && last !== prev) {
      flash(c.last, last > prev ? 'rgba(63,185,80,.35)' : 'rgba(248,81,73,.35)');
    }
    tr._last = last;
    setNum(c.vwap, s.vwap, fmtPrice);
    setNum(c.change, s.change_pct, fmtChange);
    const ch = num(s.change_pct);
    toggleCls(c.change, 'pos', ch !== null && ch > 0);
    toggleCls(c.change, 'neg', ch !== null && ch < 0);
    toggleCls(c.change, 'flat', ch === null || ch === 0);
    setNum(c.volume, s.volume, fmtCompact);
    setNum(c.tps, s.trades_per_s, fmtRate);
    setNum(c.trades, s.trade_count, fmtInt);
    setNum(c.window, s.window_end, hms);
    toggleCls(tr, 'selected', key === chosen);
  }
  let optionsSig = '';
  function renderSymbols(syms) {
    const tbody = $('symbols').tBodies[0];
    const n = syncKeyed(tbody, syms, (s) => s.symbol, createSymbolRow, updateSymbolRow);
    setText($('symbols-count'), n);
    $('symbols-empty').hidden = n > 0;
    // chart symbol selector
    const names = syms.map((s) => s.symbol);
    if (chosen && names.indexOf(chosen) < 0) names.unshift(chosen);
    const sig = JSON.stringify(names);
    const sel = $('chart-symbol');
    if (sig !== optionsSig) {
      optionsSig = sig;
      sel.textContent = '';
      for (const name of names) {
        const o = el('option', null, sel);
        o.value = name;
        o.textContent = name;
      }
    }
    markSelected();
  }
  function markSelected() {
    const sel = $('chart-symbol');
    if (chosen !== null && sel.value !== chosen) {
      for (const o of sel.options) if (o.value === chosen) { sel.value = chosen; break; }
    }
    const rows = $('symbols').tBodies[0]._rows;
    if (rows) for (const [k, tr] of rows) {
      toggleCls(tr, 'selected', k === chosen);
      setAttr(tr, 'aria-selected', k === chosen ? 'true' : 'false');
    }
  }
  $('chart-symbol').addEventListener('change', (e) => setChosen(e.target.value));

  // ---------- chart ----------
  let chartSig = '';
  let chartW = 0;
  let geom = null;
  function svgEl(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function chartWidth() {
    const svg = $('chart');
    return Math.max(320, Math.round(svg.clientWidth || svg.getBoundingClientRect().width || 800));
  }
  function clearChart() {
    const svg = $('chart');
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    geom = null;
    return svg;
  }
  function showChartMessage(msg, W) {
    const svg = clearChart();
    W = W || chartWidth();
    chartSig = '';
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + CHART_H);
    svgEl('rect', { x: 0.5, y: 0.5, width: W - 1, height: CHART_H - 1, rx: 4, class: 'plot-bg' }, svg);
    const t = svgEl('text', { x: W / 2, y: CHART_H / 2, 'text-anchor': 'middle', 'dominant-baseline': 'middle', class: 'msg' }, svg);
    t.textContent = msg;
    return svg;
  }
  function setLegend(p) {
    setText($('legend-price'), p ? fmtPrice(p.price) : '—');
    setText($('legend-vwap'), p ? fmtPrice(p.vwap) : '—');
    setText($('legend-time'), p ? hms(p.t) + ' UTC' : '—');
  }
  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const e = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / e;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * e;
  }
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

  function renderChart(chart, force) {
    lastChart = chart || null;
    const pts = arr(chart && chart.points)
      .filter((p) => p && num(p.t) !== null)
      .map((p) => ({ t: num(p.t), price: num(p.price), vwap: num(p.vwap) }))
      .sort((a, b) => a.t - b.t);
    const W = chartWidth();
    const sig = JSON.stringify([chart && chart.symbol, pts]);
    if (!force && sig === chartSig && W === chartW) return;
    chartW = W;
    const valid = pts.filter((p) => p.price !== null || p.vwap !== null);
    setLegend(valid.length ? valid[valid.length - 1] : null);
    if (valid.length < 2) {
      showChartMessage('waiting for windows…', W);
      chartSig = sig;
      return;
    }
    chartSig = sig;
    const svg = clearChart();
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + CHART_H);

    // y scale
    let lo = Infinity, hi = -Infinity;
    for (const p of valid) {
      for (const v of [p.price, p.vwap]) if (v !== null) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    if (hi === lo) { const d = Math.abs(hi) * 0.001 || 1; lo -= d; hi += d; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const step = niceStep((hi - lo) / 5);
    const dec = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
    const tickFmt = new Intl.NumberFormat('en-US', { minimumFractionDigits: dec, maximumFractionDigits: dec });
    const yTicks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) yTicks.push(v);
    const yLabels = yTicks.map((v) => tickFmt.format(Math.abs(v) < step * 1e-9 ? 0 : v));
    const maxLen = yLabels.reduce((m, s) => Math.max(m, s.length), 0);

    const m = { l: Math.max(44, Math.round(maxLen * 6.3 + 14)), r: 14, t: 10, b: 24 };
    const pw = W - m.l - m.r, ph = CHART_H - m.t - m.b;
    let t0 = valid[0].t, t1 = valid[valid.length - 1].t;
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    const x = (t) => m.l + (t - t0) / (t1 - t0) * pw;
    const y = (v) => m.t + ph - (v - lo) / (hi - lo) * ph;

    const defs = svgEl('defs', {}, svg);
    const grad = svgEl('linearGradient', { id: 'price-fill', x1: 0, y1: 0, x2: 0, y2: 1 }, defs);
    svgEl('stop', { offset: '0%', 'stop-color': '#4ea1ff', 'stop-opacity': 0.22 }, grad);
    svgEl('stop', { offset: '100%', 'stop-color': '#4ea1ff', 'stop-opacity': 0 }, grad);
    svgEl('rect', { x: m.l, y: m.t, width: pw, height: ph, class: 'plot-bg' }, svg);

    yTicks.forEach((v, i) => {
      const yy = Math.round(y(v)) + 0.5;
      svgEl('line', { x1: m.l, x2: m.l + pw, y1: yy, y2: yy, class: 'grid-line' }, svg);
      const t = svgEl('text', { x: m.l - 6, y: yy, 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'tick' }, svg);
      t.textContent = yLabels[i];
    });

    const maxTicks = Math.max(2, Math.floor(pw / 95));
    const span = t1 - t0;
    let tstep = TIME_STEPS[TIME_STEPS.length - 1];
    for (const s of TIME_STEPS) if (span / s <= maxTicks) { tstep = s; break; }
    for (let tt = Math.ceil(t0 / tstep) * tstep; tt <= t1; tt += tstep) {
      const xx = Math.round(x(tt)) + 0.5;
      svgEl('line', { x1: xx, x2: xx, y1: m.t, y2: m.t + ph, class: 'grid-line' }, svg);
      const t = svgEl('text', { x: xx, y: m.t + ph + 15, 'text-anchor': 'middle', class: 'tick' }, svg);
      t.textContent = hms(tt);
    }

    function pathFor(key) {
      let d = '', pen = false;
      for (const p of pts) {
        const v = p[key];
        if (v === null) { pen = false; continue; }
        d += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ',' + y(v).toFixed(1);
        pen = true;
      }
      return d;
    }
    const priced = pts.filter((p) => p.price !== null);
    if (priced.length >= 2 && priced.length === pts.length) {
      const d = pathFor('price') + 'L' + x(priced[priced.length - 1].t).toFixed(1) + ',' + (m.t + ph) + 'L' + x(priced[0].t).toFixed(1) + ',' + (m.t + ph) + 'Z';
      svgEl('path', { d: d, class: 'area' }, svg);
    }
    svgEl('path', { d: pathFor('vwap'), class: 'line-vwap' }, svg);
    svgEl('path', { d: pathFor('price'), class: 'line-price' }, svg);
    if (priced.length) {
      const lp = priced[priced.length - 1];
      svgEl('circle', { cx: x(lp.t), cy: y(lp.price), r: 3.5, class: 'last-dot' }, svg);
    }

    // hover crosshair
    const cross = svgEl('line', { x1: 0, x2: 0, y1: m.t, y2: m.t + ph, class: 'cross', visibility: 'hidden' }, svg);
    const cp = svgEl('circle', { r: 3, fill: '#4ea1ff', visibility: 'hidden' }, svg);
    const cv = svgEl('circle', { r: 3, fill: '#f0b429', visibility: 'hidden' }, svg);
    const hit = svgEl('rect', { x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent' }, svg);
    geom = { W, m, pw, x, y, t0, t1, valid };
    hit.addEventListener('mousemove', (ev) => {
      if (!geom) return;
      const r = svg.getBoundingClientRect();
      const px = (ev.clientX - r.left) * (W / r.width);
      const tt = t0 + (px - m.l) / pw * (t1 - t0);
      let best = valid[0];
      for (const p of valid) if (Math.abs(p.t - tt) < Math.abs(best.t - tt)) best = p;
      const xx = x(best.t);
      cross.setAttribute('x1', xx); cross.setAttribute('x2', xx); cross.setAttribute('visibility', 'visible');
      if (best.price !== null) { cp.setAttribute('cx', xx); cp.setAttribute('cy', y(best.price)); cp.setAttribute('visibility', 'visible'); } else cp.setAttribute('visibility', 'hidden');
      if (best.vwap !== null) { cv.setAttribute('cx', xx); cv.setAttribute('cy', y(best.vwap)); cv.setAttribute('visibility', 'visible'); } else cv.setAttribute('visibility', 'hidden');
      setLegend(best);
    });
    hit.addEventListener('mouseleave', () => {
      cross.setAttribute('visibility', 'hidden'); cp.setAttribute('visibility', 'hidden'); cv.setAttribute('visibility', 'hidden');
      setLegend(valid[valid.length - 1]);
    });
  }
  let resizeQueued = false;
  window.addEventListener('resize', () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => {
      resizeQueued = false;
      if (chartSig) safe(renderChart, lastChart, true);
    });
  });

  // ---------- alerts ----------
  function byNewest(a, b) {
    const oa = num(a.offset), ob = num(b.offset);
    if (oa !== null && ob !== null && oa !== ob) return ob - oa;
    return (num(b.timestamp) || 0) - (num(a.timestamp) || 0);
  }
  function itemKey(it, i) {
    const o = num(it.offset);
    return o !== null ? 'o' + o : 'x' + i + ':' + JSON.stringify(it);
  }
  function renderAlerts(a) {
    a = a || {};
    setNum($('alerts-total'), a.total, fmtInt);
    toggleCls($('alerts-total'), 'hot', (num(a.total) || 0) > 0);
    const list = arr(a.latest).filter((x) => x && typeof x === 'object').slice().sort(byNewest);
    const ul = $('alerts-list');
    const initial = !ul._rows;
    const n = syncKeyed(ul, list, itemKey, (it) => {
      const li = document.createElement('li');
      li._c = { time: el('span', 'time', li), sym: el('span', 'sym', li), rule: el('span', 'rule', li), msg: el('span', 'msg', li) };
      return li;
    }, (li, it, key, fresh) => {
      const c = li._c;
      setAttr(li, 'data-offset', dataValue(it.offset));
      setText(c.time, hms(it.timestamp));
      setAttr(c.time, 'data-value', dataValue(it.timestamp));
      setText(c.sym, str(it.symbol));
      c.sym.title = str(it.symbol);
      setText(c.rule, str(it.rule) || 'alert');
      setAttr(c.rule, 'data-rule', str(it.rule));
      setText(c.msg, str(it.message));
      c.msg.title = str(it.message);
      if (fresh && !initial) flash(li, 'rgba(78,161,255,.25)');
    });
    $('alerts-empty').hidden = n > 0;
  }

  // ---------- dead letters ----------
  function truncate(s, n) {
    const cps = Array.from(s);
    return cps.length > n ? cps.slice(0, n).join('') + '…' : s;
  }
  function renderDlq(d) {
    d = d || {};
    setNum($('dlq-total'), d.total, fmtInt);
    toggleCls($('dlq-total'), 'hot', (num(d.total) || 0) > 0);
    const reasons = arr(d.by_reason).filter((r) => r && r.reason !== null && r.reason !== undefined)
      .map((r) => ({ reason: str(r.reason), count: r.count }))
      .sort((a, b) => ((num(b.count) || 0) - (num(a.count) || 0)) || cmp(a.reason, b.reason));
    let maxc = 1;
    for (const r of reasons) maxc = Math.max(maxc, num(r.count) || 0);
    const nr = syncKeyed($('dlq-reasons').tBodies[0], reasons, (r) => r.reason, (r, key) => {
      const tr = document.createElement('tr');
      tr.setAttribute('data-reason', key);
      tr._c = { reason: el('td', 'reason', tr), count: el('td', 'count num', tr), share: el('td', 'share', tr) };
      const bar = el('div', 'bar', tr._c.share);
      tr._c.fill = el('span', null, bar);
      setText(tr._c.reason, key);
      tr._c.reason.title = key;
      return tr;
    }, (tr, r) => {
      setNum(tr._c.count, r.count, fmtInt);
      tr._c.fill.style.width = (Math.max(0, num(r.count) || 0) / maxc * 100).toFixed(1) + '%';
    });
    $('dlq-reasons').hidden = nr === 0;
    const latest = arr(d.latest).filter((x) => x && typeof x === 'object').slice().sort(byNewest);
    const box = $('dlq-latest');
    const n = syncKeyed(box, latest, itemKey, () => {
      const wrap = document.createElement('div');
      wrap.className = 'dl-item';
      const line = el('div', 'dl-line', wrap);
      wrap._c = { reason: el('span', 'reason', line), source: el('span', 'source', line), group: el('span', 'group', line), time: el('span', 'time', line) };
      wrap._c.payload = el('div', 'payload', wrap);
      return wrap;
    }, (wrap, it) => {
      const c = wrap._c;
      setAttr(wrap, 'data-offset', dataValue(it.offset));
      setText(c.reason, str(it.reason) || '—'); c.reason.title = str(it.reason);
      setText(c.source, str(it.source) || '—'); c.source.title = str(it.source);
      setText(c.group, str(it.group) || '—'); c.group.title = str(it.group);
      setText(c.time, hms(it.timestamp));
      setAttr(c.time, 'data-value', dataValue(it.timestamp));
      const p = str(it.payload);
      setText(c.payload, p === '' ? '(empty payload)' : truncate(p, 120));
      c.payload.title = p.length > 4000 ? p.slice(0, 4000) + '…' : p;
    });
    $('dlq-latest-wrap').hidden = n === 0;
    $('dlq-empty').hidden = nr > 0 || n > 0;
  }

  // ---------- consumer groups ----------
  function lagClass(e, lag, lagS) {
    const l = num(lag), s = num(lagS);
    toggleCls(e, 'behind', s !== null && s >= 30);
    toggleCls(e, 'lagging', !(s !== null && s >= 30) && ((l !== null && l > 0) && (s === null || s >= 2)));
  }
  function createGroup(g, key) {
    const box = document.createElement('div');
    box.className = 'group';
    box.setAttribute('data-group', key);
    const h = el('div', 'group-h', box);
    const name = el('span', 'group-name', h);
    setText(name, key);
    name.title = key;
    const state = el('span', 'pill group-state', h);
    const k1 = el('span', 'kv', h); k1.appendChild(document.createTextNode('total lag'));
    const lag = el('b', 'group-lag', k1);
    const k2 = el('span', 'kv', h); k2.appendChild(document.createTextNode('max lag'));
    const lagS = el('b', 'group-lag-seconds', k2);
    const k3 = el('span', 'kv', h); k3.appendChild(document.createTextNode('partitions'));
    const parts = el('b', 'group-partitions', k3);
    const table = el('table', 'data', box);
    const head = el('tr', null, el('thead', null, table));
    for (const [label, cls] of [['Topic', ''], ['Partition', 'num'], ['Committed', 'num'], ['End', 'num'], ['Lag', 'num'], ['Lag time', 'num']]) {
      const th = el('th', cls || null, head);
      th.textContent = label;
    }
    const tbody = el('tbody', null, table);
    box._c = { state, lag, lagS, parts, tbody, table };
    return box;
  }
  function updateGroup(box, g, key) {
    const c = box._c;
    setText(c.state, g.state == null ? 'unknown' : str(g.state));
    setAttr(c.state, 'data-state', str(g.state));
    setNum(c.lag, g.lag, fmtInt);
    setNum(c.lagS, g.lag_seconds, fmtLagS);
    lagClass(c.lagS, g.lag, g.lag_seconds);
    const parts = arr(g.partitions).filter((p) => p && typeof p === 'object')
      .slice().sort((a, b) => cmp(str(a.topic), str(b.topic)) || ((num(a.partition) || 0) - (num(b.partition) || 0)));
    const n = syncKeyed(c.tbody, parts, (p) => JSON.stringify([str(p.topic), dataValue(p.partition)]), (p) => {
      const tr = document.createElement('tr');
      tr.setAttribute('data-group', key);
      tr.setAttribute('data-topic', str(p.topic));
      tr.setAttribute('data-partition', dataValue(p.partition));
      tr._c = {};
      for (const cl of ['topic', 'partition', 'committed', 'end', 'lag', 'lag-seconds']) tr._c[cl] = el('td', cl === 'topic' ? cl : cl + ' num', tr);
      setText(tr._c.topic, str(p.topic));
      setNum(tr._c.partition, p.partition, (v) => str(v));
      return tr;
    }, (tr, p) => {
      setNum(tr._c.committed, p.committed, fmtInt);
      setNum(tr._c.end, p.end, fmtInt);
      setNum(tr._c.lag, p.lag, p.checkpoint ? (() => 'checkpoint') : fmtInt);
      setNum(tr._c['lag-seconds'], p.lag_seconds, p.lag_seconds_at_least ? ((v) => '≥ ' + fmtLagS(v)) : fmtLagS);
      if (p.checkpoint) tr._c.lag.title = 'the committed offset points at the group\'s last checkpoint record';
      lagClass(tr._c.lag, p.lag, p.lag_seconds);
      lagClass(tr._c['lag-seconds'], p.lag, p.lag_seconds);
    });
    setText(c.parts, n);
    c.table.hidden = n === 0;
  }
  function renderGroups(groups) {
    const list = arr(groups).filter((g) => g && g.group !== null && g.group !== undefined)
      .map((g) => Object.assign({}, g, { group: String(g.group) }))
      .sort((a, b) => cmp(a.group, b.group));
    const n = syncKeyed($('groups-body'), list, (g) => g.group, createGroup, updateGroup);
    setText($('groups-count'), n);
    $('groups-empty').hidden = n > 0;
  }

  // ---------- topics ----------
  function renderTopics(topics) {
    const list = arr(topics).filter((t) => t && t.topic !== null && t.topic !== undefined)
      .map((t) => Object.assign({}, t, { topic: String(t.topic) }))
      .sort((a, b) => cmp(a.topic, b.topic));
    const n = syncKeyed($('topics').tBodies[0], list, (t) => t.topic, (t, key) => {
      const tr = document.createElement('tr');
      tr.setAttribute('data-topic', key);
      tr._c = { topic: el('td', 'topic mono', tr), partitions: el('td', 'partitions num', tr), end: el('td', 'end num', tr), rate: el('td', 'rate num', tr) };
      setText(tr._c.topic, key);
      return tr;
    }, (tr, t) => {
      setNum(tr._c.partitions, t.partitions, fmtInt);
      setNum(tr._c.end, t.end, fmtInt);
      setNum(tr._c.rate, t.rate, fmtRate);
    });
    $('topics').hidden = n === 0;
    $('topics-empty').hidden = n > 0;
  }

  // ---------- replay ----------
  function renderReplay(r) {
    const sec = $('replay');
    lastReplay = r && typeof r === 'object' ? r : null;
    if (!lastReplay) { sec.hidden = true; return; }
    r = lastReplay;
    sec.hidden = false;
    setText($('replay-url'), str(r.url));
    const st = (r.status && typeof r.status === 'object') ? r.status : {};
    setText($('replay-file'), str(st.file) || '—');
    $('replay-file').title = str(st.file);
    const stEl = $('replay-state');
    setText(stEl, st.state == null ? '—' : str(st.state));
    setAttr(stEl, 'data-state', str(st.state));
    setText($('replay-speed'), st.speed == null ? '—' : str(st.speed));
    setText($('replay-position'), st.position == null ? (isoOf(st.position_ms) || '—') : str(st.position));
    setAttr($('replay-position'), 'data-value', dataValue(st.position_ms));
    setNum($('replay-trades'), st.trades_sent, fmtInt);
    setNum($('replay-frames'), st.frames_sent, fmtInt);
    setNum($('replay-lag'), st.lag_ms, fmtMs);
    setNum($('replay-seeks'), st.seeks, fmtInt);
    setNum($('replay-skipped'), st.skipped_trades, fmtInt);
    setNum($('replay-repeated'), st.repeated_trades, fmtInt);
    setText($('replay-first'), hms(st.first_ms));
    setText($('replay-last'), hms(st.last_ms));
    const pos = num(st.position_ms), first = num(st.first_ms), last = num(st.last_ms);
    let pct = null;
    if (pos !== null && first !== null && last !== null && last > first) {
      pct = Math.min(100, Math.max(0, (pos - first) / (last - first) * 100));
    } else if (st.state === 'finished') {
      pct = 100;
    }
    const prog = $('replay-progress');
    prog.value = pct === null ? 0 : pct;
    setAttr(prog, 'data-value', pct === null ? '' : pct.toFixed(2));
    setAttr(prog, 'aria-valuenow', pct === null ? '0' : pct.toFixed(1));
    setText($('replay-percent'), pct === null ? '—' : pct.toFixed(1) + '%');
    const notice = $('replay-notice');
    const nt = str(st.notice);
    setText(notice, nt);
    notice.hidden = nt === '';
    const sel = $('replay-speed-select');
    if (document.activeElement !== sel && st.speed != null) {
      const sp = str(st.speed);
      for (const o of sel.options) if (o.value === sp) { if (sel.value !== sp) sel.value = sp; break; }
    }
    toggleCls($('btn-pause'), 'active', st.state === 'paused');
    toggleCls($('btn-resume'), 'active', st.state === 'playing');
    paintReplayError();
  }
  function paintReplayError() {
    const e = $('replay-error');
    const parts = [];
    if (lastReplay && lastReplay.ok === false) parts.push(lastReplay.error == null ? 'Replay server unavailable' : str(lastReplay.error));
    if (actionError) parts.push(actionError);
    const t = parts.join('\n');
    setText(e, t);
    e.hidden = t === '';
  }
  async function replayPost(path, btn) {
    if (btn) btn.classList.add('busy');
    try {
      const resp = await fetch(path, { method: 'POST', headers: { 'Accept': 'application/json, text/plain' } });
      let body = '';
      try { body = await resp.text(); } catch (e) { body = ''; }
      if (resp.ok) actionError = null;
      else actionError = body.trim() || ('HTTP ' + resp.status + (resp.statusText ? ' ' + resp.statusText : ''));
    } catch (e) {
      actionError = 'Request failed: ' + (e && e.message ? e.message : String(e));
    } finally {
      if (btn) btn.classList.remove('busy');
    }
    paintReplayError();
  }
  function onClick(id, fn) { $(id).addEventListener('click', (e) => fn(e.currentTarget)); }
  const seek = (to, btn) => replayPost('/api/replay/seek?to=' + encodeURIComponent(to), btn);
  onClick('btn-pause', (b) => replayPost('/api/replay/pause', b));
  onClick('btn-resume', (b) => replayPost('/api/replay/resume', b));
  onClick('btn-slower', (b) => replayPost('/api/replay/speed?to=slower', b));
  onClick('btn-faster', (b) => replayPost('/api/replay/speed?to=faster', b));
  onClick('btn-back-60', (b) => seek('-60s', b));
  onClick('btn-back-10', (b) => seek('-10s', b));
  onClick('btn-fwd-10', (b) => seek('+10s', b));
  onClick('btn-fwd-60', (b) => seek('+60s', b));
  onClick('btn-seek', (b) => seek($('seek-to').value.trim(), b));
  $('seek-to').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); $('btn-seek').click(); } });
  $('replay-speed-select').addEventListener('change', (e) => {
    const v = e.target.value;
    replayPost('/api/replay/speed?to=' + encodeURIComponent(v), null);
    e.target.blur();
  });

  // ---------- start ----------
  showChartMessage('waiting for windows…');
  connect(chosen);
})();
</script>
</body>
</html>
"""#
}
