/**
 * Hand-written SVG plots for the report: training curves (loss and accuracy, train vs validation) and a
 * confusion-matrix heat map (colour = share of the true class, cell text = count and share). No library: each
 * plot is a few dozen elements, and the output must open in any browser or Markdown viewer without scripts.
 */
import type { EpochLog } from '../train-loop.ts';

const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';
const TRAIN_COLOUR = '#1f6fb4';
const VAL_COLOUR = '#e8702a';
const F1_COLOUR = '#2a9d5c';

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

const fmt = (v: number): string => (Number.isInteger(v) ? String(v) : String(+v.toPrecision(3)));

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toFixed(12));
  return ticks;
}

interface Series {
  name: string;
  colour: string;
  dashed?: boolean;
  points: [number, number][];
}

interface Panel {
  title: string;
  yLabel: string;
  series: Series[];
  /** Fixed y range (e.g. [0,1] for accuracy), else fitted to the data. */
  yRange?: [number, number];
  marker?: { x: number; label: string };
}

function panelSvg(p: Panel, x0: number, y0: number, w: number, h: number, xMax: number): string {
  const m = { l: 52, r: 12, t: 28, b: 40 };
  const pw = w - m.l - m.r;
  const ph = h - m.t - m.b;
  const ys = p.series.flatMap((s) => s.points.map(([, y]) => y)).filter(Number.isFinite);
  let [lo, hi] = p.yRange ?? [Math.min(0, ...ys), Math.max(...ys, 1e-9)];
  if (!p.yRange) {
    const t = niceTicks(lo, hi);
    lo = Math.min(lo, t[0]);
    hi = Math.max(hi, t[t.length - 1]);
  }
  const sx = (x: number) => x0 + m.l + (xMax <= 1 ? pw / 2 : ((x - 1) / (xMax - 1)) * pw);
  const sy = (y: number) => y0 + m.t + ph - ((y - lo) / (hi - lo || 1)) * ph;
  const out: string[] = [];
  out.push(`<text x="${x0 + m.l}" y="${y0 + 18}" font-size="14" font-weight="600" fill="#222">${escapeXml(p.title)}</text>`);
  for (const t of niceTicks(lo, hi)) {
    if (t < lo - 1e-12 || t > hi + 1e-12) continue;
    const y = sy(t).toFixed(1);
    out.push(`<line x1="${x0 + m.l}" x2="${x0 + m.l + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${x0 + m.l - 6}" y="${y}" font-size="11" fill="#555" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(1, Math.max(xMax, 2), Math.min(8, Math.max(1, xMax - 1)))) {
    if (t < 1 || t > xMax || !Number.isInteger(t)) continue;
    const x = sx(t).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${y0 + m.t + ph}" y2="${y0 + m.t + ph + 4}" stroke="#888"/>`);
    out.push(`<text x="${x}" y="${y0 + m.t + ph + 16}" font-size="11" fill="#555" text-anchor="middle">${t}</text>`);
  }
  out.push(`<rect x="${x0 + m.l}" y="${y0 + m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${x0 + m.l + pw / 2}" y="${y0 + h - 6}" font-size="12" fill="#333" text-anchor="middle">epoch</text>`);
  out.push(
    `<text transform="translate(${x0 + 14},${y0 + m.t + ph / 2}) rotate(-90)" font-size="12" fill="#333" text-anchor="middle">${escapeXml(p.yLabel)}</text>`,
  );
  if (p.marker) {
    const x = sx(p.marker.x).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${y0 + m.t}" y2="${y0 + m.t + ph}" stroke="#777" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${+x + 4}" y="${y0 + m.t + 12}" font-size="10" fill="#555">${escapeXml(p.marker.label)}</text>`);
  }
  for (const s of p.series) {
    const pts = s.points.filter(([, y]) => Number.isFinite(y));
    if (pts.length === 0) continue;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(Math.min(hi, Math.max(lo, y))).toFixed(1)}`).join('');
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    out.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${dash}/>`);
    if (pts.length <= 40) {
      for (const [x, y] of pts) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(Math.min(hi, Math.max(lo, y))).toFixed(1)}" r="2.5" fill="${s.colour}"/>`);
    }
  }
  return out.join('\n');
}

/** Loss and accuracy per epoch, train vs validation (validation macro-F1 dashed on the accuracy panel). */
export function trainingCurvesSvg(history: readonly EpochLog[], opts: { title?: string; bestEpoch?: number } = {}): string {
  const W = 860;
  const H = 320;
  const top = (opts.title ? 26 : 0) + 22;
  const xMax = Math.max(1, history.length ? history[history.length - 1].epoch : 1);
  const pts = (f: (e: EpochLog) => number | undefined): [number, number][] =>
    history.filter((e) => f(e) !== undefined).map((e) => [e.epoch, f(e)!]);
  const marker = opts.bestEpoch && history.length > 1 ? { x: opts.bestEpoch, label: `best ${opts.bestEpoch}` } : undefined;
  const loss: Panel = {
    title: 'Loss (cross-entropy)',
    yLabel: 'loss',
    series: [
      { name: 'train', colour: TRAIN_COLOUR, points: pts((e) => e.loss) },
      { name: 'validation', colour: VAL_COLOUR, points: pts((e) => e.valLoss) },
    ],
    marker,
  };
  const acc: Panel = {
    title: 'Accuracy',
    yLabel: 'accuracy',
    yRange: accuracyRange(history),
    series: [
      { name: 'train', colour: TRAIN_COLOUR, points: pts((e) => e.accuracy) },
      { name: 'validation', colour: VAL_COLOUR, points: pts((e) => e.valAccuracy) },
      { name: 'val macro-F1', colour: F1_COLOUR, dashed: true, points: pts((e) => e.valMacroF1) },
    ],
    marker,
  };
  const body = [
    opts.title ? `<text x="12" y="20" font-size="15" font-weight="600" fill="#111">${escapeXml(opts.title)}</text>` : '',
    legendSvg([...acc.series, ...(marker ? [{ name: 'restored weights (best epoch)', colour: '#777', dashed: true, points: [[0, 0]] as [number, number][] }] : [])], 52, top - 6),
    panelSvg(loss, 0, top, W / 2, H, xMax),
    panelSvg(acc, W / 2, top, W / 2, H, xMax),
  ];
  return svgDoc(W, H + top, body.join('\n'));
}

/** One legend row for the whole figure, so no key sits on top of a curve. */
function legendSvg(series: readonly Series[], x: number, y: number): string {
  const out: string[] = [];
  for (const s of series.filter((v) => v.points.length > 0)) {
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    out.push(`<line x1="${x}" x2="${x + 22}" y1="${y - 4}" y2="${y - 4}" stroke="${s.colour}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${x + 28}" y="${y}" font-size="12" fill="#333">${escapeXml(s.name)}</text>`);
    x += 44 + s.name.length * 6.6;
  }
  return out.join('\n');
}

/** Zoom the accuracy axis to where the curves are (they usually live above 0.9), in steps of 0.05. */
function accuracyRange(history: readonly EpochLog[]): [number, number] {
  const vs = history.flatMap((e) => [e.accuracy, e.valAccuracy, e.valMacroF1]).filter((v): v is number => Number.isFinite(v));
  const lo = vs.length ? Math.min(...vs) : 0;
  return [Math.max(0, Math.floor((lo - 0.02) * 20) / 20), 1];
}

/** White → blue by row share; counts and row percentages in the cells; rows = true class, columns = predicted. */
export function confusionSvg(labels: readonly string[], confusion: readonly (readonly number[])[], opts: { title?: string } = {}): string {
  const k = labels.length;
  const cell = k <= 6 ? 78 : k <= 10 ? 60 : 44;
  const maxLabel = Math.max(...labels.map((l) => l.length), 4);
  const left = Math.min(200, 24 + maxLabel * 7.2);
  const top = (opts.title ? 30 : 8) + Math.min(150, 20 + maxLabel * 5.2);
  const note = 'colour: share of the true class (row); numbers: count and row %';
  const W = Math.max(left + k * cell + 90, (opts.title?.length ?? 0) * 8.6 + 24, left + note.length * 5.9);
  const H = top + k * cell + 44;
  const out: string[] = [];
  if (opts.title) out.push(`<text x="12" y="20" font-size="15" font-weight="600" fill="#111">${escapeXml(opts.title)}</text>`);
  out.push(`<text x="${left + (k * cell) / 2}" y="${top - Math.min(150, 20 + maxLabel * 5.2) + 14}" font-size="12" fill="#333" text-anchor="middle">predicted</text>`);
  out.push(`<text transform="translate(14,${top + (k * cell) / 2}) rotate(-90)" font-size="12" fill="#333" text-anchor="middle">true class</text>`);
  for (let i = 0; i < k; i++) {
    const rowSum = confusion[i].reduce((a, b) => a + b, 0);
    out.push(`<text x="${left - 8}" y="${top + i * cell + cell / 2}" font-size="12" fill="#222" text-anchor="end" dominant-baseline="middle">${escapeXml(labels[i])}</text>`);
    for (let j = 0; j < k; j++) {
      const v = confusion[i][j];
      const share = rowSum > 0 ? v / rowSum : 0;
      const x = left + j * cell;
      const y = top + i * cell;
      out.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${blue(share)}" stroke="#fff"/>`);
      const ink = share > 0.55 ? '#fff' : '#222';
      out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 - 3}" font-size="${cell >= 60 ? 13 : 11}" font-weight="600" fill="${ink}" text-anchor="middle">${v}</text>`);
      out.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 12}" font-size="10" fill="${ink}" text-anchor="middle">${(share * 100).toFixed(share > 0 && share < 0.001 ? 2 : 1)}%</text>`);
    }
  }
  for (let j = 0; j < k; j++) {
    const x = left + j * cell + cell / 2;
    out.push(`<text transform="translate(${x},${top - 8}) rotate(-40)" font-size="12" fill="#222">${escapeXml(labels[j])}</text>`);
  }
  // Colour key.
  const kx = left + k * cell + 24;
  for (let s = 0; s <= 10; s++) {
    out.push(`<rect x="${kx}" y="${top + ((10 - s) * k * cell) / 11}" width="14" height="${(k * cell) / 11 + 0.5}" fill="${blue(s / 10)}"/>`);
  }
  out.push(`<text x="${kx + 18}" y="${top + 9}" font-size="10" fill="#555">100%</text>`);
  out.push(`<text x="${kx + 18}" y="${top + k * cell - 2}" font-size="10" fill="#555">0%</text>`);
  out.push(`<text x="${left}" y="${H - 12}" font-size="11" fill="#555">${note}</text>`);
  return svgDoc(W, H, out.join('\n'));
}

/** A light-to-dark blue ramp (share in [0,1]). */
function blue(share: number): string {
  const t = Math.max(0, Math.min(1, share));
  const lerp = (a: number, b: number) => Math.round(a + (b - a) * Math.sqrt(t));
  return `rgb(${lerp(247, 8)},${lerp(251, 48)},${lerp(255, 107)})`;
}

function svgDoc(w: number, h: number, body: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.round(w)}" height="${Math.round(h)}" viewBox="0 0 ${Math.round(w)} ${Math.round(h)}" ${FONT}>\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n${body}\n</svg>\n`
  );
}
