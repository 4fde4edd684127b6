import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sharedData } from '../helpers/shared-data.ts';
import { STAT_FEATURES } from '../../shared/features.ts';
import { agrees, compareFlows, conformanceReport, formatReport, meterCapture, readReferenceCsv } from '../../asm/conformance.ts';

for (const csv of ['out_test.csv', 'test.pcap_CIC.csv']) {
  test(`compat mode reproduces CICFlowMeter's ${csv} on test.pcap: same flows, every feature on ≥ 95% of them`, async (t) => {
    const pcap = sharedData(t, 'cicflowmeter-reference', 'test.pcap');
    const ref = sharedData(t, 'cicflowmeter-reference', csv);
    if (!pcap || !ref) return;
    const r = await conformanceReport(pcap, ref, 'cicflowmeter-compat');
    t.diagnostic(formatReport(r));
    assert.equal(r.referenceFlows, 96);
    assert.equal(r.missing.length, 0, `reference flows we did not produce: ${r.missing.map((m) => m.row).join(', ')}`);
    assert.equal(r.extra.length, 0, 'flows the reference does not have');
    assert.equal(r.perFeature.length, STAT_FEATURES.length);
    for (const f of r.perFeature) {
      assert.ok(f.agree >= 0.95 * r.matched, `${f.feature}: ${f.agree}/${f.total} agree (${JSON.stringify(f.example)})`);
    }
  });
}

test('corrected mode differs from the reference where documented (flags, one-packet flows) — the report sees it', async (t) => {
  const pcap = sharedData(t, 'cicflowmeter-reference', 'test.pcap');
  const ref = sharedData(t, 'cicflowmeter-reference', 'out_test.csv');
  if (!pcap || !ref) return;
  const { flows } = await meterCapture(pcap, 'corrected');
  const r = compareFlows(flows, readReferenceCsv(ref));
  const syn = r.perFeature.find((f) => f.feature === 'SYN_Flag_Cnt')!;
  assert.ok(syn.agree < syn.total, 'corrected counts flags on every packet, the reference on the first only');
  assert.ok(r.matched < r.referenceFlows, 'corrected keeps a FIN-closed connection in one flow');
});

test('agreement rule: relative tolerance, NaN only equals NaN, infinities by sign', () => {
  assert.ok(agrees(1e6, 1e6 * (1 + 5e-7), 1e-6));
  assert.ok(!agrees(1e6, 1e6 * (1 + 5e-6), 1e-6));
  assert.ok(agrees(NaN, NaN, 1e-6));
  assert.ok(!agrees(NaN, 0, 1e-6));
  assert.ok(agrees(Infinity, Infinity, 1e-6));
  assert.ok(!agrees(Infinity, 1e300, 1e-6));
  assert.ok(agrees(0, 0, 1e-6));
});
