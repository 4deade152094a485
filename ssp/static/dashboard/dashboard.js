// The Gavel dashboard: live charts of the running exchange, fed by Server-Sent Events.
//
// /dashboard/events sends `hello` (settings, the history of points, the last auctions) on connect
// and `tick` once a second (one point, the new auctions, totals, the event log's counts); ssp/live.py
// documents the fields. Charts are uPlot (vendored in vendor/uplot). The page keeps working through
// reconnects (EventSource retries; a new `hello` rebuilds everything). Test hooks: data-ticks,
// data-rows, data-connected on <body>, and window.gavel.
"use strict";

(() => {
  const PALETTE = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#ca8a04",
    "#db2777", "#4b5563", "#65a30d", "#0f766e"];
  const HEIGHT = 190;
  const MAX_ROWS = 50;

  const state = {
    tmax: 100,
    maxPoints: 300,
    bidders: [],
    points: [],
    charts: [],
    ticks: 0,
    rows: 0,
    paused: false,
    held: [],
  };
  window.gavel = state;

  // -- formatting ------------------------------------------------------------------------------

  const num = (v, d = 1) => (v == null ? "–" : v.toFixed(d));
  const pct = (v) => (v == null ? "–" : (v * 100).toFixed(1) + "%");
  const money = (v) => (v == null ? "–" : v >= 100 ? v.toFixed(2) : v.toFixed(4));
  const ms = (v) => (v == null ? "–" : v.toFixed(v < 10 ? 2 : 1) + " ms");
  const times100 = (v) => (v == null ? null : v * 100);
  const color = (i) => PALETTE[i % PALETTE.length];

  function node(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    if (text != null) e.textContent = text;
    return e;
  }

  // -- charts ----------------------------------------------------------------------------------

  function perBidder(field, fmt, transform) {
    return {
      series: () => state.bidders.map((name, i) => ({
        label: name, stroke: color(i), width: 2, value: (u, v) => fmt(v),
      })),
      data: (p) => state.bidders.map((name) => {
        const b = p.bidders[name];
        const v = b ? b[field] : null;
        return transform ? transform(v) : v;
      }),
      axes: [{ values: (u, vals) => vals.map((v) => fmt(v)) }],
    };
  }

  const pctFmt = (v) => (v == null ? "–" : v.toFixed(0) + "%");
  const CHARTS = {
    "c-rate": {
      series: () => [
        { label: "auctions/s", stroke: "#2563eb", width: 2, scale: "n", value: (u, v) => num(v) },
        { label: "fill rate", stroke: "#16a34a", width: 2, scale: "%", value: (u, v) => pctFmt(v) },
      ],
      data: (p) => [p.auctions, times100(p.fill)],
      axes: [{ scale: "n" }, { scale: "%", side: 1, grid: { show: false },
        values: (u, vals) => vals.map(pctFmt) }],
      scales: { "%": { range: [0, 100] } },
    },
    "c-latency": {
      series: () => [
        { label: "p50", stroke: "#16a34a", width: 2, value: (u, v) => ms(v) },
        { label: "p95", stroke: "#d97706", width: 2, value: (u, v) => ms(v) },
        { label: "p99", stroke: "#dc2626", width: 2, value: (u, v) => ms(v) },
        { label: "deadline", stroke: "#111827", width: 1, dash: [6, 4], value: (u, v) => ms(v) },
      ],
      data: (p) => [p.p50, p.p95, p.p99, state.tmax],
      axes: [{ values: (u, vals) => vals.map((v) => v + " ms") }],
      scales: { y: { range: (u, lo, hi) => [0, Math.max(hi, state.tmax) * 1.08] } },
    },
    "c-bidrate": { ...perBidder("bid_rate", pctFmt, times100), scales: { y: { range: [0, 100] } } },
    "c-winrate": { ...perBidder("win_rate", pctFmt, times100), scales: { y: { range: [0, 100] } } },
    "c-timeouts": { ...perBidder("timeout_share", pctFmt, times100), scales: { y: { range: [0, 100] } } },
    "c-price": perBidder("price", (v) => (v == null ? "–" : v.toFixed(2))),
    "c-spend": perBidder("spend", money),
    "c-revenue": {
      series: () => [
        { label: "revenue/s", stroke: "#0891b2", width: 2, scale: "r", value: (u, v) => money(v) },
        { label: "total", stroke: "#9333ea", width: 2, scale: "t", value: (u, v) => money(v) },
      ],
      data: (p) => [p.revenue, p.revenue_total],
      axes: [{ scale: "r", values: (u, vals) => vals.map(money) },
        { scale: "t", side: 1, grid: { show: false }, values: (u, vals) => vals.map(money) }],
    },
  };

  function chartData(spec) {
    const xs = state.points.map((p) => p.t);
    const columns = [];
    state.points.forEach((p, j) => {
      spec.data(p).forEach((v, i) => {
        if (!columns[i]) columns[i] = new Array(state.points.length);
        columns[i][j] = v == null || Number.isNaN(v) ? null : v;
      });
    });
    const n = spec.series().length;
    for (let i = 0; i < n; i++) if (!columns[i]) columns[i] = [];
    return [xs, ...columns];
  }

  function width(box) {
    return Math.max(280, box.clientWidth - 20);
  }

  function buildCharts() {
    for (const c of state.charts) c.plot.destroy();
    state.charts = [];
    for (const [id, spec] of Object.entries(CHARTS)) {
      const box = document.getElementById(id);
      const axes = [{}, ...(spec.axes || [{}]).map((a) => ({ size: 64, ...a }))];
      const plot = new uPlot({
        width: width(box),
        height: HEIGHT,
        series: [{}, ...spec.series()],
        axes,
        scales: { x: { time: true }, ...(spec.scales || {}) },
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
      }, chartData(spec), box);
      state.charts.push({ id, spec, plot, box });
    }
  }

  function updateCharts() {
    for (const c of state.charts) c.plot.setData(chartData(c.spec));
  }

  window.addEventListener("resize", () => {
    for (const c of state.charts) c.plot.setSize({ width: width(c.box), height: HEIGHT });
  });

  // -- tables and figures ----------------------------------------------------------------------

  function renderBidders(point, totals) {
    const body = document.querySelector("#dsps tbody");
    body.replaceChildren();
    state.bidders.forEach((name, i) => {
      const b = (point && point.bidders[name]) || {};
      const t = (totals && totals.bidders[name]) || {};
      const status = b.status || "idle";
      const tr = node("tr", { class: "dsp dsp-" + status, "data-dsp": name, "data-status": status });
      const first = node("td");
      first.append(node("span", { class: "swatch", style: "background:" + color(i) }), name);
      tr.append(
        first,
        (() => { const td = node("td"); td.append(node("span", { class: "status " + status }, status)); return td; })(),
        node("td", { class: "num" }, num(b.requests)),
        node("td", { class: "num" }, pct(b.bid_rate)),
        node("td", { class: "num" }, pct(b.win_rate)),
        node("td", { class: "num" }, pct(b.timeout_share)),
        node("td", { class: "num" }, pct(b.error_share)),
        node("td", { class: "num" }, b.price == null ? "–" : b.price.toFixed(2)),
        node("td", { class: "num" }, ms(b.p95)),
        node("td", { class: "num" }, money(t.spend)),
      );
      body.append(tr);
    });
  }

  function renderFigures(message) {
    const point = state.points[state.points.length - 1];
    const totals = message.totals || {};
    const set = (id, text) => { document.getElementById(id).textContent = text; };
    set("k-rate", point ? num(point.auctions) : "–");
    set("k-fill", point ? pct(point.fill) : "–");
    set("k-p99", point ? ms(point.p99) : "–");
    set("k-auctions", totals.auctions ?? "–");
    set("k-impr", totals.impressions ?? "–");
    set("k-spend", money(totals.spend));
    set("k-revenue", money(totals.revenue));
    const log = message.event_log;
    const box = document.getElementById("k-events-box");
    set("k-events", log ? `${log.written} / ${log.dropped}` : "off");
    box.classList.toggle("bad", !!(log && (log.dropped > 0 || log.failed > 0)));
    renderBidders(point, totals);
  }

  function auctionRow(a, fresh) {
    const tr = node("tr", { class: fresh ? "new" : "", "data-winner": a.winner || "" });
    const bidders = node("td");
    for (const [name, result, latency] of a.bidders) {
      bidders.append(node("span", { class: "chip " + result, title: `${result}, ${ms(latency)}` },
        `${name} ${result}`));
    }
    tr.append(
      node("td", {}, new Date(a.t * 1000).toLocaleTimeString()),
      node("td", { class: "id", title: a.id }, a.id),
      node("td", {}, a.site ?? "–"),
      node("td", {}, a.slot),
      bidders,
      node("td", {}, a.winner ?? "no fill"),
      node("td", { class: "num" }, a.price == null ? "–" : a.price.toFixed(2)),
      node("td", { class: "num" }, num(a.ms, 2)),
    );
    return tr;
  }

  function addAuctions(rows, fresh) {
    if (!rows.length) return;
    if (state.paused) {
      state.held.push(...rows);
      state.held = state.held.slice(-MAX_ROWS);
      document.getElementById("held").textContent = `${state.held.length} new while paused`;
      return;
    }
    const body = document.querySelector("#auctions tbody");
    for (const a of rows) body.prepend(auctionRow(a, fresh));
    while (body.children.length > MAX_ROWS) body.lastElementChild.remove();
    state.rows += rows.length;
    document.body.dataset.rows = String(state.rows);
  }

  document.getElementById("pause").addEventListener("click", (ev) => {
    state.paused = !state.paused;
    ev.target.textContent = state.paused ? "Resume" : "Pause";
    ev.target.setAttribute("aria-pressed", String(state.paused));
    document.body.dataset.paused = state.paused ? "1" : "0";
    if (!state.paused) {
      const held = state.held;
      state.held = [];
      document.getElementById("held").textContent = "";
      addAuctions(held, true);
    }
  });

  // -- the feed --------------------------------------------------------------------------------

  function connected(ok) {
    const conn = document.getElementById("conn");
    conn.textContent = ok ? "live" : "reconnecting…";
    conn.className = "conn " + (ok ? "live" : "down");
    document.body.dataset.connected = ok ? "1" : "0";
  }

  const source = new EventSource("/dashboard/events");
  source.addEventListener("open", () => connected(true));
  source.addEventListener("error", () => connected(false));
  source.addEventListener("hello", (ev) => {
    const m = JSON.parse(ev.data);
    state.tmax = m.tmax_ms;
    state.bidders = m.bidders;
    state.points = m.history;
    buildCharts();
    document.querySelector("#auctions tbody").replaceChildren();
    addAuctions(m.auctions, false);
    renderFigures(m);
    connected(true);
  });
  source.addEventListener("tick", (ev) => {
    const m = JSON.parse(ev.data);
    state.points.push(m.point);
    if (state.points.length > state.maxPoints) state.points.splice(0, state.points.length - state.maxPoints);
    updateCharts();
    renderFigures(m);
    addAuctions(m.auctions, true);
    state.ticks += 1;
    document.body.dataset.ticks = String(state.ticks);
  });
})();
