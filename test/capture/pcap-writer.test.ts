import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { PcapWriter, encodePcap } from '../../capture/pcap-writer.ts';
import { readCaptureBuffer } from '../../capture/reader.ts';
import { Rng } from '../../shared/random.ts';

function frames(n: number) {
  const rng = new Rng(7);
  let t = 1_700_000_000_000_000;
  return Array.from({ length: n }, () => {
    t += Math.round(rng.exp(2000));
    return { frame: Uint8Array.from({ length: rng.int(60, 1515) }, () => rng.int(0, 256)), timestampUs: t };
  });
}

test('PcapWriter to a file round-trips through the reader (past the 1 MiB chunk)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcapw-'));
  try {
    const pkts = frames(3000);
    const w = new PcapWriter(join(dir, 'a.pcap'));
    for (const p of pkts) w.write(p.frame, p.timestampUs);
    await w.close();
    const buf = readFileSync(join(dir, 'a.pcap'));
    assert.ok(buf.length > 1 << 20);
    assert.deepEqual(new Uint8Array(buf), encodePcap(pkts));
    let i = 0;
    for (const b of readCaptureBuffer(buf)) {
      for (let k = 0; k < b.count; k++, i++) {
        assert.equal(b.timestampsUs[k], pkts[i].timestampUs);
        assert.deepEqual(new Uint8Array(b.data.subarray(b.offsets[k], b.offsets[k] + b.lengths[k])), pkts[i].frame);
      }
    }
    assert.equal(i, pkts.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PcapWriter to a stream writes the same bytes', async () => {
  const pkts = frames(500);
  const s = new PassThrough();
  const parts: Buffer[] = [];
  s.on('data', (c: Buffer) => parts.push(c));
  const w = new PcapWriter(s);
  for (const p of pkts) w.write(p.frame, p.timestampUs);
  await w.close();
  assert.deepEqual(new Uint8Array(Buffer.concat(parts)), encodePcap(pkts));
  assert.throws(() => w.write(pkts[0].frame, 1));
});
