/** A human-readable summary of a bundle manifest (`iot-ids bundle inspect`). */
import { bundleRelease, type BundleManifest } from '../../shared/manifest.ts';

const pct = (x: unknown) => (typeof x === 'number' ? `${(x * 100).toFixed(2)}%` : '?');

export function summarizeManifest(m: BundleManifest, status: string): string {
  const L: string[] = [];
  const model = m.model ?? ({} as BundleManifest['model']);
  L.push(`bundle schema v${m.schemaVersion} (${status})`);
  if (m.notForHubs) L.push(`NOT FOR HUBS  cloud evaluation only: the hub's flow meter cannot compute ${m.notForHubs.missingFeatures.join(', ')}`);
  L.push(`model     ${model.name} ${model.version} · ${model.precision} · opset ${model.opset} · created ${model.createdAt}` +
    ` · release ${bundleRelease({ model })}${model.release === undefined ? ' (from createdAt)' : ''}`);
  L.push(`io        ${model.inputName} [${(model.inputShape ?? []).join(', ')}] → ${model.outputName}`);
  const p = m.preprocessing;
  if (p?.features) {
    const logs = (p.transforms ?? []).filter((t) => t === 'log1p').length;
    const lookups = (p.transforms ?? []).filter((t) => t === 'lookup').length;
    L.push(`features  ${p.features.length} (${logs} log1p${lookups ? `, ${lookups} lookup` : ''}, ports: ${p.portPolicy}): ${p.features.slice(0, 6).join(', ')}${p.features.length > 6 ? ', …' : ''}`);
  }
  L.push(`labels    ${(m.labels ?? []).map((l) => `${l} (≥ ${m.thresholds?.[l] ?? '?'})`).join(', ')}`);
  if (m.metrics) {
    L.push(`metrics   accuracy ${pct(m.metrics.accuracy)} · macro-F1 ${pct(m.metrics.macroF1)} (int8, test split)`);
    for (const [l, c] of Object.entries(m.metrics.perClass ?? {})) {
      L.push(`          ${l.padEnd(14)} precision ${pct(c.precision)} recall ${pct(c.recall)} f1 ${pct(c.f1)} n=${c.support}`);
    }
  }
  if (m.training) {
    L.push(`training  ${(m.training.data ?? []).join(', ')} · ${m.training.rows?.train} train / ${m.training.rows?.test} test rows · ${m.training.recipe} · seed ${m.training.seed}`);
    const i = m.training.initFrom;
    if (i) L.push(`          fine-tuned from ${i.version ?? '?'} (release ${i.release ?? '?'}, ${i.source}); fleet ${(m.training.fleetData ?? []).join(', ')}, replay ${(m.training.replayData ?? []).join(', ') || 'none'}`);
    const cc = Object.entries(m.training.classCounts ?? {});
    if (cc.length) L.push(`          classes ${cc.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  for (const [f, v] of Object.entries(m.files ?? {})) L.push(`file      ${f.padEnd(18)} ${String(v.bytes).padStart(9)} B  sha256 ${v.sha256}`);
  return L.join('\n');
}
