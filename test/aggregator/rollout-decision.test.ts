/** The rollout's decision rule (aggregator/rollout/decision.ts) and its duration parser, on hand-made counts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, median, perHour, DEFAULT_LIMITS, type CanaryInput } from '../../aggregator/rollout/decision.ts';
import { formatDuration, parseDuration } from '../../aggregator/rollout/duration.ts';
import { isIdsError } from '../../shared/errors.ts';

const H = 3_600_000;
const counts = (verdicts: number, alerts = verdicts, falsePositives = 0) => ({ verdicts, alerts, falsePositives });
const canary = (w: number, b: number, over: Partial<CanaryInput> = {}): CanaryInput =>
  ({ site: 's', hub: 'c', window: counts(w), baseline: counts(b), ...over });
const fleet = (...v: number[]) => v.map((verdicts, i) => ({ site: 's', hub: `h${i}`, verdicts }));

test('durations: 30m, 90s, 1h, 500ms, plain ms; anything else names the option', () => {
  assert.equal(parseDuration('30m', '--watch'), 1_800_000);
  assert.equal(parseDuration('90s', '--watch'), 90_000);
  assert.equal(parseDuration('1h', '--watch'), H);
  assert.equal(parseDuration('500ms', '--watch'), 500);
  assert.equal(parseDuration('1.5s', '--watch'), 1500);
  assert.equal(parseDuration('250', '--watch'), 250);
  for (const bad of ['', '0s', '-1m', '1w', 'm', '31d', '1 h 2 m']) {
    assert.throws(() => parseDuration(bad, '--watch'), (e) => isIdsError(e, 'BAD_OPTION') && /--watch/.test(e.message), bad);
  }
  assert.equal(formatDuration(5_400_000), '1h30m');
  assert.equal(formatDuration(1500), '1.5s');
});

test('rates are per hour whatever the window; the median of an even list is the mean of the middle two', () => {
  assert.equal(perHour(10, 30 * 60_000), 20);
  assert.equal(perHour(1, 10_000), 360);
  assert.equal(median([]), null);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 10]), 3.5);
});

test('promote: a canary at its own rate and the fleet\'s', () => {
  const d = decide({ windowMs: H, baselineMs: H, canaries: [canary(40, 35)], fleet: fleet(30, 50, 45), limits: DEFAULT_LIMITS });
  assert.equal(d.action, 'promote');
  assert.equal(d.fleetMedianPerHour, 45);
  assert.equal(d.canaries[0].limitPerHour, 90); // max(2 × 35, 2 × 45, 5)
  assert.ok(d.canaries[0].ok);
});

test('roll back: above both its own baseline and the fleet median, by the ratio', () => {
  const d = decide({ windowMs: H, baselineMs: H, canaries: [canary(91, 35)], fleet: fleet(30, 50, 45), limits: DEFAULT_LIMITS });
  assert.equal(d.action, 'rollback');
  assert.equal(d.canaries[0].perHour, 91);
  assert.match(d.reasons[0], /s\/c: 91 alerts\/h > limit 90/);
});

test('the limit is the max: a hub that always alerts a lot is compared with itself, a fleet-wide rise with the fleet', () => {
  // Busy canary: 500/h before and now, quiet fleet: within 2 × its own baseline.
  assert.equal(decide({ windowMs: H, baselineMs: H, canaries: [canary(500, 480)], fleet: fleet(10, 12), limits: DEFAULT_LIMITS }).action, 'promote');
  // Everyone alerts 10× more (an attack on the whole fleet): the canary is no worse than its peers.
  assert.equal(decide({ windowMs: H, baselineMs: H, canaries: [canary(400, 40)], fleet: fleet(380, 420, 410), limits: DEFAULT_LIMITS }).action, 'promote');
  // Without other hubs, its baseline alone counts.
  assert.equal(decide({ windowMs: H, baselineMs: H, canaries: [canary(81, 40)], fleet: [], limits: DEFAULT_LIMITS }).action, 'rollback');
  assert.equal(decide({ windowMs: H, baselineMs: H, canaries: [canary(81, 40)], fleet: [], limits: DEFAULT_LIMITS }).fleetMedianPerHour, null);
});

test('the floor: a quiet hub going from 0 to a few alerts is not a regression', () => {
  const quiet = decide({ windowMs: 10 * 60_000, baselineMs: H, canaries: [canary(5, 0)], fleet: fleet(0, 0), limits: DEFAULT_LIMITS });
  assert.equal(quiet.action, 'promote');
  assert.equal(quiet.floorPerHour, 30); // 5 verdicts in 10 minutes
  assert.equal(decide({ windowMs: 10 * 60_000, baselineMs: H, canaries: [canary(6, 0)], fleet: fleet(0, 0), limits: DEFAULT_LIMITS }).action, 'rollback');
});

test('baseline and window of different lengths compare as rates', () => {
  // 10 alerts in 10 s of baseline = 3600/h; 15 in 5 s of window = 10800/h: 3× its own rate.
  const d = decide({ windowMs: 5000, baselineMs: 10_000, canaries: [canary(15, 10)], fleet: [], limits: DEFAULT_LIMITS });
  assert.equal(d.canaries[0].baselinePerHour, 3600);
  assert.equal(d.canaries[0].perHour, 10800);
  assert.equal(d.action, 'rollback');
  assert.equal(decide({ windowMs: 5000, baselineMs: 10_000, canaries: [canary(15, 10)], fleet: [], limits: { ...DEFAULT_LIMITS, maxRateRatio: 3 } }).action, 'promote');
});

test('false-positive share: a rise above --max-fp-share rolls back, the same share as before does not', () => {
  const up = decide({
    windowMs: H, baselineMs: H, fleet: [], limits: DEFAULT_LIMITS,
    canaries: [canary(0, 0, { window: counts(40, 40, 12), baseline: counts(40, 40, 4) })],
  });
  assert.equal(up.action, 'rollback');
  assert.equal(up.canaries[0].fpShare, 0.3);
  assert.equal(up.canaries[0].baselineFpShare, 0.1);
  assert.match(up.reasons[0], /false-positive share 0.3 is 0.2 above/);
  const same = decide({
    windowMs: H, baselineMs: H, fleet: [], limits: DEFAULT_LIMITS,
    canaries: [canary(0, 0, { window: counts(40, 40, 8), baseline: counts(40, 40, 4) })],
  });
  assert.equal(same.action, 'promote', 'a rise of exactly 0.1 is allowed');
  // No marks anywhere: share 0, never a reason.
  assert.equal(decide({ windowMs: H, baselineMs: H, canaries: [canary(3, 3)], fleet: [], limits: DEFAULT_LIMITS }).canaries[0].fpShare, 0);
});

test('several canaries: one over its limit is enough, and the reasons name it', () => {
  const d = decide({
    windowMs: H, baselineMs: H, fleet: fleet(10), limits: DEFAULT_LIMITS,
    canaries: [canary(10, 10, { hub: 'ok' }), canary(300, 10, { hub: 'bad' })],
  });
  assert.equal(d.action, 'rollback');
  assert.deepEqual(d.canaries.map((c) => c.ok), [true, false]);
  assert.equal(d.reasons.length, 1);
  assert.match(d.reasons[0], /^s\/bad:/);
});
