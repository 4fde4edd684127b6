/** Hub stats payloads: whatever error a hub last saw, its stats stay publishable (the schema refuses NUL). */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HubStats } from '../../edge/stats.ts';
import { encodeStats } from '../../shared/payloads.ts';

it('an error message quoting NUL bytes from hostile input still gives a valid stats payload', () => {
  const s = new HubStats();
  s.lastError = 'input: bad cell "\u0000\u0000x"';
  const json = JSON.parse(encodeStats(s.snapshot({ hub: 'h1', site: 's1' }, { queueDepth: 0, dropped: 0, offlineQueued: 0 })));
  assert.equal(json.lastError, 'input: bad cell "\uFFFD\uFFFDx"');
});
