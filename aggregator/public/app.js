// The fleet dashboard: plain JS, no build step. Data: the JSON API for the first picture, then the SSE stream
// (/api/events) for everything that changes. Access: the server set an HttpOnly cookie when this page was opened
// with ?token=, so fetch and EventSource carry it; the token is then removed from the address bar.
'use strict';

const WINDOW_S = 120;
const PALETTE = ['#f85149', '#58a6ff', '#d29922', '#3fb950', '#a371f7', '#ff7b72', '#39c5cf', '#e3b341', '#db61a2', '#8b949e'];
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const fmt = (n) => (n ?? 0).toLocaleString('en-US');

if (location.search.includes('token=')) history.replaceState(null, '', location.pathname + location.hash);

const state = {
  hubs: new Map(), // "site/hub" → hub row
  incidents: new Map(), // id → incident
  rates: new Map(), // second (s) → {class: n}
  classes: [],
  selected: null,
};

async function api(path) {
  const r = await fetch(path, { credentials: 'same-origin' });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function ago(ms) {
  if (!ms) return '–';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

function colorOf(cls) {
  const i = state.classes.indexOf(cls);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

// ---- KPIs ----
function setTotals(t) {
  if (!t) return;
  $('alert-count').textContent = fmt(t.alerts);
  $('hubs-online').textContent = fmt(t.hubsOnline ?? t.hubs?.online);
  $('hubs-offline').textContent = fmt(t.hubsOffline ?? t.hubs?.offline);
  $('open-incidents').textContent = fmt(t.openIncidents ?? t.incidents?.open);
  $('invalid-count').textContent = fmt(typeof t.invalid === 'number' ? t.invalid : t.invalid?.total);
  $('hubs-total').textContent = `of ${fmt(state.hubs.size)} hubs`;
  const cls = Object.entries(t.classes ?? {}).sort((a, b) => b[1] - a[1]);
  for (const [c] of cls) if (!state.classes.includes(c)) state.classes.push(c);
  $('classes').innerHTML = cls
    .map(([c, n]) => `<span><span class="swatch" style="background:${colorOf(c)}"></span>${esc(c)} <b>${fmt(n)}</b></span>`)
    .join('');
}

// ---- chart (uPlot) ----
let plot = null;
let plotClasses = '';

function chartData() {
  const now = Math.floor(Date.now() / 1000) - 1;
  const xs = [];
  for (let t = now - WINDOW_S + 1; t <= now; t++) xs.push(t);
  return [xs, ...state.classes.map((c) => xs.map((t) => state.rates.get(t)?.[c] ?? 0))];
}

function drawChart() {
  const el = $('chart');
  const width = el.clientWidth || 800;
  const key = state.classes.join('|');
  if (!plot || key !== plotClasses) {
    plot?.destroy();
    plotClasses = key;
    const axis = { stroke: '#8a96a3', grid: { stroke: '#222b34', width: 1 }, ticks: { stroke: '#27313c' } };
    plot = new uPlot({
      width, height: 240,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(5, max * 1.15)] } },
      axes: [axis, { ...axis, size: 50 }],
      series: [{}, ...state.classes.map((c) => ({
        label: c, stroke: colorOf(c), width: 2, fill: colorOf(c) + '22', points: { show: false },
      }))],
    }, chartData(), el);
  } else {
    plot.setData(chartData());
  }
}

window.addEventListener('resize', () => plot?.setSize({ width: $('chart').clientWidth, height: 240 }));

function addRate(p) {
  const t = Math.floor(p.t / 1000);
  state.rates.set(t, p.classes);
  for (const c of Object.keys(p.classes)) if (!state.classes.includes(c)) state.classes.push(c);
  for (const k of state.rates.keys()) if (k < t - WINDOW_S - 5) state.rates.delete(k);
  let sum = 0;
  for (let k = t - 9; k <= t; k++) for (const n of Object.values(state.rates.get(k) ?? {})) sum += n;
  $('alert-rate').textContent = `${(sum / 10).toFixed(1)} /s over the last 10 s`;
}

// ---- fleet table ----
function renderFleet() {
  const rows = [...state.hubs.values()].sort((a, b) => (a.site + '/' + a.hub).localeCompare(b.site + '/' + b.hub));
  $('fleet-empty').hidden = rows.length > 0;
  $('fleet').querySelector('tbody').innerHTML = rows.map((h) => {
    const k = `${h.site}/${h.hub}`;
    return `<tr data-key="${esc(k)}" class="${state.selected === k ? 'sel' : ''}">
      <td class="site">${esc(h.site)}</td><td><b>${esc(h.hub)}</b></td>
      <td><span class="pill ${esc(h.state)}">${esc(h.state)}</span></td>
      <td class="mono">${esc(h.bundle ?? '–')}</td><td>${esc(ago(h.lastSeen))}</td>
      <td class="num">${fmt(h.alerts)}</td></tr>`;
  }).join('');
}

$('fleet').addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-key]');
  if (tr) showHub(tr.dataset.key);
});
$('detail-close').addEventListener('click', () => {
  state.selected = null;
  $('detail').hidden = true;
  renderFleet();
});

async function showHub(key) {
  state.selected = key;
  renderFleet();
  const h = state.hubs.get(key);
  if (!h) return;
  $('detail').hidden = false;
  $('detail-name').textContent = key;
  const s = h.stats;
  const meta = [
    ['status', h.state], ['bundle', h.bundle ?? '–'], ['last seen', ago(h.lastSeen)], ['alerts', fmt(h.alerts)],
    ...(s ? [['flows/s', (s.flowsPerSec ?? 0).toFixed(1)], ['latency p95', `${s.latencyMs?.p95 ?? '–'} ms`],
      ['queue', fmt(s.queueDepth)], ['dropped', fmt(s.dropped)], ['offline queued', fmt(s.offlineQueued)],
      ...(s.inputErrors ? [['input errors', fmt(s.inputErrors)]] : []),
      ...(s.bundlesRejected ? [['bundles rejected', fmt(s.bundlesRejected)]] : []),
      ...(s.lastError ? [['last error', s.lastError]] : [])] : []),
  ];
  $('detail-meta').innerHTML = meta.map(([k, v]) => `<span>${esc(k)} <b>${esc(v)}</b></span>`).join('');
  try {
    const q = new URLSearchParams({ site: h.site, hub: h.hub, limit: '15' });
    const { alerts } = await api(`/api/alerts?${q}`);
    $('detail-alerts').querySelector('tbody').innerHTML = alerts.map((a) => `<tr>
      <td>${esc(new Date(a.ts).toISOString().replace('T', ' ').slice(0, 19))}</td><td>${a.seq}</td>
      <td><span class="swatch" style="background:${colorOf(a.class)}"></span>${esc(a.class)}</td>
      <td class="num">${(a.confidence * 100).toFixed(1)}%</td>
      <td class="mono">${esc(a.src)}:${a.sport} → ${esc(a.dst)}:${a.dport}/${a.proto}</td><td class="num">${a.count}</td></tr>`).join('');
  } catch (e) {
    $('detail-meta').insertAdjacentHTML('beforeend', `<span class="bad">${esc(e.message)}</span>`);
  }
}

// ---- incidents ----
function renderIncidents() {
  const open = [...state.incidents.values()].filter((i) => i.state !== 'closed').sort((a, b) => b.updatedAt - a.updatedAt);
  $('incidents-empty').hidden = open.length > 0;
  $('incidents').innerHTML = open.map((i) => `<li class="${esc(i.kind)}">
    <span class="when">${esc(ago(i.openedAt))}</span><div class="kind">${esc(i.kind)}${i.class ? ' · ' + esc(i.class) : ''}</div>
    <div>${esc(i.summary)}</div></li>`).join('');
  $('open-incidents').textContent = fmt(open.length);
}

// ---- live stream ----
function connect() {
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => {
    $('conn').textContent = 'live';
    $('conn').className = 'conn on';
  });
  es.addEventListener('error', () => {
    $('conn').textContent = 'reconnecting…';
    $('conn').className = 'conn off';
  });
  es.addEventListener('hello', (e) => {
    const d = JSON.parse(e.data);
    for (const p of d.rates) addRate(p);
    state.hubs = new Map(d.hubs.map((h) => [`${h.site}/${h.hub}`, h]));
    state.incidents = new Map(d.incidents.map((i) => [i.id, i]));
    setTotals(d.totals);
    renderFleet();
    renderIncidents();
    drawChart();
  });
  es.addEventListener('rate', (e) => {
    addRate(JSON.parse(e.data));
    drawChart();
  });
  es.addEventListener('totals', (e) => setTotals(JSON.parse(e.data)));
  es.addEventListener('incident', (e) => {
    const i = JSON.parse(e.data);
    state.incidents.set(i.id, i);
    renderIncidents();
  });
  es.addEventListener('hub', (e) => {
    const h = JSON.parse(e.data);
    const k = `${h.site}/${h.hub}`;
    state.hubs.set(k, { ...(state.hubs.get(k) ?? { alerts: 0 }), ...h });
    renderFleet();
  });
}

// Hubs' alert counts and last-seen move with every alert; refresh the table now and then rather than per event.
async function refreshHubs() {
  try {
    const { hubs } = await api('/api/hubs');
    state.hubs = new Map(hubs.map((h) => [`${h.site}/${h.hub}`, h]));
    renderFleet();
  } catch { /* the stream's status shows connectivity */ }
}

(async () => {
  try {
    setTotals(await api('/api/summary'));
  } catch (e) {
    $('conn').textContent = e.message;
  }
  drawChart();
  connect();
  setInterval(refreshHubs, 3000);
})();
