// The feedback view (#feedback): per hub alert rates and the share of alerts operators marked, the alert list with
// the buttons that mark them (false positive, confirm, correct the class, undo), incident marks, the history of marks
// (who, when). Plain JS beside app.js, whose helpers ($, esc, fmt, ago, api, colorOf) it uses. Requests carry the
// page's cookie; the server records the token's name as the mark's author. Rollouts: rollouts.js, on both views.
'use strict';

// In its own scope: app.js's top-level names (renderIncidents, state, ...) are globals of the page.
(() => {
const fb = {
  me: null, // {name, permission}
  labels: [],
  hub: null, // "site/hub" the alert list is narrowed to, or null
  timer: null,
  busy: false,
  again: false,
};

const pct = (x) => (x === null || x === undefined ? '–' : `${(x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0)} %`);
const rate = (x) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));
const canWrite = () => fb.me?.permission === 'write';
const time = (ms) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
// Today's times without the date: the list is mostly the last hours.
const when = (ms) => (time(ms).slice(0, 10) === time(Date.now()).slice(0, 10) ? time(ms).slice(11) : time(ms).slice(0, 16));

async function send(method, path, body) {
  const r = await fetch(path, {
    method, credentials: 'same-origin',
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.message ?? `${method} ${path}: HTTP ${r.status}`);
  return data;
}

function say(text, bad = false) {
  const el = $('fb-msg');
  el.textContent = text;
  el.className = `msg${bad ? ' bad' : ''}`;
  el.hidden = !text;
}

// ---- views ----
function showView() {
  const view = location.hash === '#feedback' ? 'feedback' : 'overview';
  $('view-overview').hidden = view !== 'overview';
  $('view-feedback').hidden = view !== 'feedback';
  for (const a of document.querySelectorAll('#views a')) a.classList.toggle('on', a.dataset.view === view);
  clearInterval(fb.timer);
  if (view === 'feedback') {
    refresh();
    // Not while a class is being chosen: the list is redrawn on refresh.
    fb.timer = setInterval(() => document.activeElement?.tagName === 'SELECT' || refresh(), 5000);
  }
}
window.addEventListener('hashchange', showView);

// ---- per hub ----
function shareBar(h) {
  if (!h.stored) return '<span class="dim">no stored alerts</span>';
  const w = (n) => `${((n / h.stored) * 100).toFixed(2)}%`;
  return `<div class="share" title="${h.falsePositive} false positive, ${h.confirmed} confirmed, ${h.unmarked} unmarked of ${h.stored}">` +
    `<span class="fp" style="width:${w(h.falsePositive)}"></span><span class="cf" style="width:${w(h.confirmed)}"></span>` +
    `<span class="um" style="width:${w(h.unmarked)}"></span></div>` +
    `<div class="share-legend">${fmt(h.falsePositive)} FP · ${fmt(h.confirmed)} confirmed · ${fmt(h.unmarked)} unmarked</div>`;
}

function renderFeedback(f) {
  fb.labels = f.labels;
  const t = f.fleet;
  $('fb-rate').textContent = rate(t.alertsPerHour);
  $('fb-rate-hint').textContent = `${fmt(t.alertsLastHour)} in the last hour · ${fmt(t.alerts)} in ${f.hours} h`;
  $('fb-fp').textContent = pct(t.falsePositiveShare);
  $('fb-fp-hint').textContent = `${fmt(t.falsePositive)} of ${fmt(t.stored)} stored alerts`;
  $('fb-confirmed').textContent = pct(t.confirmedShare);
  $('fb-confirmed-hint').textContent = `${fmt(t.confirmed)} alerts`;
  $('fb-unmarked').textContent = pct(t.unmarkedShare);
  $('fb-unmarked-hint').textContent = `${fmt(t.unmarked)} alerts`;
  $('fb-marked').textContent = fmt(t.falsePositive + t.confirmed);
  $('fb-marked-hint').textContent = `of ${fmt(t.stored)} stored alerts`;
  $('fb-window').textContent = `last ${f.hours} h · shares of the stored alerts · click a hub to list its alerts`;
  $('fb-hubs-empty').hidden = f.hubs.length > 0;
  $('fb-hubs').querySelector('tbody').innerHTML = f.hubs.map((h) => {
    const k = `${h.site}/${h.hub}`;
    return `<tr data-key="${esc(k)}" class="${fb.hub === k ? 'sel' : ''}">
      <td class="site">${esc(h.site)}</td><td><b>${esc(h.hub)}</b></td>
      <td><span class="pill ${esc(h.state)}">${esc(h.state)}</span></td><td class="mono">${esc(h.bundle ?? '–')}</td>
      <td class="num">${fmt(h.alertsLastHour)}</td><td class="num">${rate(h.alertsPerHour)}</td>
      <td class="share-col">${shareBar(h)}</td>
      <td class="num ${h.falsePositiveShare > 0.5 ? 'bad' : ''}"><b>${pct(h.falsePositiveShare)}</b></td></tr>`;
  }).join('');
}

$('fb-hubs').addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-key]');
  if (!tr) return;
  fb.hub = fb.hub === tr.dataset.key ? null : tr.dataset.key;
  refresh();
});
$('fb-unmarked-only').addEventListener('change', () => refresh());
$('fb-all').addEventListener('click', () => {
  fb.hub = null;
  refresh();
});

// ---- alerts ----
function markCell(m) {
  if (!m) return '<span class="dim">unmarked</span>';
  const label = m.verdict === 'false-positive' ? 'false positive' : `confirmed · ${esc(m.class)}`;
  return `<span class="mark ${esc(m.verdict)}">${label}</span>
    <div class="by">by <b>${esc(m.by)}</b> ${esc(ago(m.at))}${m.incident ? ' · incident' : ''}</div>`;
}

function classSelect(a) {
  const opts = fb.labels.filter((l) => l !== 'Normal' && l !== a.class);
  return `<select data-action="correct" title="confirm as another class">
    <option value="">correct class…</option>${opts.map((l) => `<option>${esc(l)}</option>`).join('')}</select>`;
}

function alertActions(a) {
  const dis = canWrite() ? '' : ' disabled title="your token is read-only"';
  const m = a.mark;
  return `<span class="actions">
    <button data-action="fp" class="b-fp"${dis}${m?.verdict === 'false-positive' ? ' hidden' : ''}>false positive</button>
    <button data-action="confirm" class="b-cf"${dis}${m?.verdict === 'confirmed' && m.class === a.class ? ' hidden' : ''}>confirm</button>
    ${canWrite() ? classSelect(a) : ''}
    ${m ? `<button data-action="undo" data-mark="${m.id}" class="b-undo"${dis}>undo</button>` : ''}</span>`;
}

function renderAlerts(alerts) {
  const which = $('fb-unmarked-only').checked ? 'unmarked alerts' : 'alerts';
  $('fb-alerts-scope').textContent = `${fb.hub ? `hub ${fb.hub}` : 'all hubs'}, ${which} newest first`;
  $('fb-all').hidden = !fb.hub;
  $('fb-alerts-empty').hidden = alerts.length > 0;
  $('fb-alerts').querySelector('tbody').innerHTML = alerts.map((a) => `<tr data-alert="${esc(`${a.site}/${a.hub}/${a.seq}`)}"
      data-path="${esc(`${encodeURIComponent(a.site)}/${encodeURIComponent(a.hub)}/${a.seq}`)}" class="${a.mark ? esc(a.mark.verdict) : ''}">
    <td title="${esc(time(a.ts))} UTC">${esc(when(a.ts))}</td><td class="mono">${esc(a.site)}/${esc(a.hub)}<div class="seq">#${a.seq}</div></td>
    <td><span class="swatch" style="background:${colorOf(a.class)}"></span>${esc(a.class)}${a.source === 'rule' ? ' <span class="dim">(rule)</span>' : ''}</td>
    <td class="num">${(a.confidence * 100).toFixed(0)}%</td><td class="num">${a.count > 1 ? `<b title="a burst: one alert for ${a.count} verdicts">${fmt(a.count)}</b>` : 1}</td>
    <td class="mono" title="${esc(a.src)}:${a.sport} → ${esc(a.dst)}:${a.dport}, protocol ${a.proto}">${esc(a.src)} → ${esc(a.dst)}:${a.dport}/${a.proto}</td>
    <td class="markcell">${markCell(a.mark)}</td><td>${alertActions(a)}</td></tr>`).join('');
}

async function act(promise, done) {
  try {
    const r = await promise;
    say(done(r));
  } catch (e) {
    say(e.message, true);
  }
  await refresh();
}

$('fb-alerts').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  const tr = e.target.closest('tr[data-path]');
  if (!b || !tr) return;
  const url = `/api/alerts/${tr.dataset.path}/mark`;
  if (b.dataset.action === 'fp') act(send('POST', url, { verdict: 'false-positive' }), (m) => `alert ${tr.dataset.alert} marked false positive by ${m.by}`);
  else if (b.dataset.action === 'confirm') act(send('POST', url, { verdict: 'confirmed' }), (m) => `alert ${tr.dataset.alert} confirmed as ${m.class} by ${m.by}`);
  else if (b.dataset.action === 'undo') act(send('DELETE', `/api/marks/${b.dataset.mark}`), (m) => `mark ${m.id} undone by ${m.undoneBy}`);
});
$('fb-alerts').addEventListener('change', (e) => {
  const s = e.target.closest('select[data-action="correct"]');
  const tr = e.target.closest('tr[data-path]');
  if (!s || !tr || !s.value) return;
  act(send('POST', `/api/alerts/${tr.dataset.path}/mark`, { verdict: 'confirmed', class: s.value }),
    (m) => `alert ${tr.dataset.alert} confirmed as ${m.class} by ${m.by}`);
});

// ---- incidents ----
function renderIncidents(incidents) {
  const list = incidents.filter((i) => i.kind === 'burst' || i.kind === 'outbreak').slice(0, 12);
  $('fb-incidents-empty').hidden = list.length > 0;
  const dis = canWrite() ? '' : ' disabled';
  $('fb-incidents').innerHTML = list.map((i) => `<li class="${esc(i.kind)}" data-id="${esc(i.id)}">
    <span class="when">${esc(ago(i.openedAt))}${i.state === 'closed' ? ' · closed' : ''}</span>
    <div class="kind">${esc(i.kind)}${i.class ? ' · ' + esc(i.class) : ''}</div><div>${esc(i.summary)}</div>
    <div class="actions"><button data-action="fp" class="b-fp"${dis}>all false positive</button>
      <button data-action="confirm" class="b-cf"${dis}>confirm all</button>
      <button data-action="undo" class="b-undo"${dis}>undo incident marks</button></div></li>`).join('');
}

$('fb-incidents').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-action]');
  const li = e.target.closest('li[data-id]');
  if (!b || !li) return;
  const url = `/api/incidents/${encodeURIComponent(li.dataset.id)}/mark`;
  if (b.dataset.action === 'undo') act(send('DELETE', url), (r) => `${r.undone} marks of the incident undone`);
  else {
    const verdict = b.dataset.action === 'fp' ? 'false-positive' : 'confirmed';
    act(send('POST', url, { verdict }), (r) => `${r.marked} alerts of the incident marked ${verdict} by ${r.by}`);
  }
});

// ---- history ----
function renderMarks(marks) {
  $('fb-marks-empty').hidden = marks.length > 0;
  const dis = canWrite() ? '' : ' disabled';
  $('fb-marks').querySelector('tbody').innerHTML = marks.slice(0, 15).map((m) => `<tr class="${m.undoneAt ? 'undone' : ''}">
    <td>${esc(ago(m.at))}</td><td><b>${esc(m.by)}</b></td><td class="mono">${esc(m.site)}/${esc(m.hub)}/${m.seq}</td>
    <td><span class="mark ${esc(m.verdict)}">${m.verdict === 'false-positive' ? 'false positive' : 'confirmed'} · ${esc(m.class)}</span>
      ${m.undoneAt ? `<div class="by">undone by <b>${esc(m.undoneBy)}</b> ${esc(ago(m.undoneAt))}</div>` : ''}</td>
    <td>${m.undoneAt ? '' : `<button data-mark="${m.id}" class="b-undo"${dis}>undo</button>`}</td></tr>`).join('');
}

$('fb-marks').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-mark]');
  if (b) act(send('DELETE', `/api/marks/${b.dataset.mark}`), (m) => `mark ${m.id} undone by ${m.undoneBy}`);
});

async function refresh() {
  if ($('view-feedback').hidden) return;
  // One refresh at a time; one asked for meanwhile (after a mark) runs right after, so the page shows it.
  if (fb.busy) return void (fb.again = true);
  fb.busy = true;
  fb.again = false;
  try {
    if (!fb.me) {
      fb.me = await api('/api/whoami');
      $('whoami').textContent = `${fb.me.name}${fb.me.permission === 'read' ? ' · read-only' : ''}`;
    }
    const q = new URLSearchParams({ limit: '25' });
    if ($('fb-unmarked-only').checked) q.set('marked', 'unmarked');
    if (fb.hub) {
      const [site, hub] = fb.hub.split('/');
      q.set('site', site);
      q.set('hub', hub);
    }
    const [f, a, m, i] = await Promise.all([api('/api/feedback'), api(`/api/alerts?${q}`), api('/api/marks?limit=100'), api('/api/incidents')]);
    renderFeedback(f);
    renderAlerts(a.alerts);
    renderIncidents(i.incidents);
    renderMarks(m.marks);
  } catch (e) {
    say(e.message, true);
  } finally {
    fb.busy = false;
    if (fb.again) refresh();
  }
}

api('/api/whoami').then((me) => {
  fb.me = me;
  $('whoami').textContent = `${me.name}${me.permission === 'read' ? ' · read-only' : ''}`;
}).catch(() => {});
showView();
})();
