import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, TOO_LONG } from '../../edge/inputs/lines.ts';
import { Rng } from '../../shared/random.ts';

function split(chunks: string[], max: number): Array<string | 'TOO_LONG'> {
  const s = new LineSplitter(max);
  const out: Array<string | 'TOO_LONG'> = [];
  for (const c of chunks) for (let l = s.push(c); l !== null; l = s.next()) out.push(l === TOO_LONG ? 'TOO_LONG' : l);
  const last = s.end();
  if (last !== null) out.push(last === TOO_LONG ? 'TOO_LONG' : last);
  return out;
}

test('lines come out whole however the text is cut into chunks; a last line without newline too', () => {
  const text = 'a,b\nccc\n\nd\neeeee';
  const want = ['a,b', 'ccc', '', 'd', 'eeeee'];
  const rng = new Rng(5);
  for (let k = 0; k < 200; k++) {
    const chunks: string[] = [];
    for (let p = 0; p < text.length;) {
      const n = rng.int(1, 6);
      chunks.push(text.slice(p, p + n));
      p += n;
    }
    assert.deepEqual(split(chunks, 100), want, JSON.stringify(chunks));
  }
  assert.deepEqual(split(['x\n'], 100), ['x']);
});

test('a line past the cap is reported once as TOO_LONG, whether it is cut across chunks or not; the next lines follow', () => {
  assert.deepEqual(split(['ab\n0123456789\ncd\n'], 5), ['ab', 'TOO_LONG', 'cd']);
  assert.deepEqual(split(['ab\n012', '345', '678', '9\ncd'], 5), ['ab', 'TOO_LONG', 'cd']);
  assert.deepEqual(split(['ab\n012', '345', '678', '9'], 5), ['ab', 'TOO_LONG']);
  assert.deepEqual(split(['12345\n', '123', '45\n'], 5), ['12345', '12345'], 'exactly the cap is fine');
});
