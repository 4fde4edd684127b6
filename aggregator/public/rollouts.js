// The dashboard's rollouts card: GET /api/rollouts every 5 s (rollouts change on the scale of minutes; the live
// stream does not carry them). Kept apart from app.js: it needs nothing of its state.
'use strict';

(() => {
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const when = (ms) => (ms ? new Date(ms).toISOString().slice(5, 19).replace('T', ' ') : '–');
  const RUNNING = new Set(['canary', 'watching', 'promoting', 'rolling-back']);
  const pill = (s) => `<span class="pill rollout-${RUNNING.has(s) ? 'running' : s}">${esc(s)}</span>`;

  /** One line on what decided it: the first reason, or where a running rollout stands. */
  function summary(r) {
    const d = r.decision ?? {};
    if (d.error) return `stopped: ${d.error}`;
    if (r.state === 'refused') return `refused by the pre-flight check: ${(d.reasons ?? [])[0] ?? ''}`;
    const c = (d.canaries ?? []).map((x) => `${x.site}/${x.hub} ${x.perHour}/h (baseline ${x.baselinePerHour}, limit ${x.limitPerHour})`);
    if (d.action) return `${d.action}: ${(d.reasons ?? [])[0] ?? ''}${c.length && d.action === 'promote' ? ` · ${c.join(', ')}` : ''}`;
    if (r.state === 'watching') return `watching until ${when(r.watchUntil)}`;
    return r.state === 'canary' ? 'waiting for the canaries to run the bundle' : '';
  }

  async function refresh() {
    const body = document.querySelector('#rollouts tbody');
    if (!body) return;
    try {
      const r = await fetch('api/rollouts?limit=10', { credentials: 'same-origin' });
      if (!r.ok) return;
      const { rollouts } = await r.json();
      body.innerHTML = rollouts.map((x) => `<tr title="${esc(JSON.stringify(x.decision ?? {}))}">
        <td class="num">${x.id}</td><td class="mono">${esc(x.bundle.version)}<span class="site"> r${x.bundle.release}</span></td>
        <td class="mono">${esc(x.canaries.map((c) => `${c.site}/${c.hub}`).join(', '))}</td><td>${pill(x.state)}</td>
        <td>${when(x.startedAt)}</td><td class="rollout-why">${esc(summary(x).slice(0, 200))}</td></tr>`).join('');
      document.getElementById('rollouts-empty').hidden = rollouts.length > 0;
    } catch {
      // The next round tries again; the live stream's indicator already says when the server is away.
    }
  }

  refresh();
  setInterval(refresh, 5000);
})();
