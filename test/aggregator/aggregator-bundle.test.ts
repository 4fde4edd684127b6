/**
 * `iot-ids aggregator` runs from a bundle of its sources (scripts/build-aggregator.mjs): rebuilt exactly when a
 * source changed, and `import.meta.url` keeps naming each source file, so paths computed from it (the dashboard's
 * folder, the SQLite writer's entry) stay right wherever the bundle lies. The aggregator command test runs the real
 * bundle end to end (its dashboard page included).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureAggregatorBundle, ensureBundle } from '../../scripts/build-aggregator.mjs';
import { tempDir } from './fixtures.ts';

describe('aggregator bundle', () => {
  it('is built once, rebuilt when a source it was built from changes, and keeps each source\'s import.meta.url', async () => {
    const tmp = tempDir();
    try {
      const root = tmp.dir;
      mkdirSync(join(root, 'src', 'lib'), { recursive: true });
      writeFileSync(join(root, 'src', 'main.ts'), "import { b } from './lib/b.ts';\nexport default { own: import.meta.url, b, bOwn: b.own };\n");
      const writeB = (v: number) => writeFileSync(join(root, 'src', 'lib', 'b.ts'), `export const b: { v: number; own: string } = { v: ${v}, own: import.meta.url };\n`);
      writeB(1);
      const spec = { root, entry: 'src/main.ts', outfile: join(root, 'out', 'x', 'main.mjs') };
      const load = async (tag: string) => (await import(`${pathToFileURL(spec.outfile).href}?${tag}`)).default as { own: string; b: { v: number; own: string } };

      assert.equal((await ensureBundle(spec)).built, true);
      const first = await load('1');
      assert.equal(first.own, pathToFileURL(join(root, 'src', 'main.ts')).href);
      assert.equal(first.b.own, pathToFileURL(join(root, 'src', 'lib', 'b.ts')).href);
      assert.equal(first.b.v, 1);
      const record = JSON.parse(readFileSync(`${spec.outfile}.json`, 'utf8')) as { inputs: string[] };
      assert.deepEqual(record.inputs, ['src/lib/b.ts', 'src/main.ts']);

      assert.equal((await ensureBundle(spec)).built, false, 'unchanged sources: the bundle is reused');
      writeB(2);
      assert.equal((await ensureBundle(spec)).built, true, 'a changed import is rebuilt');
      assert.equal((await load('2')).b.v, 2);
      rmSync(`${spec.outfile}.json`);
      assert.equal((await ensureBundle(spec)).built, true, 'a bundle without its record is rebuilt');
      rmSync(join(root, 'src', 'lib', 'b.ts'));
      await assert.rejects(ensureBundle(spec), /b\.ts/, 'a source gone fails the build and names it');
    } finally {
      tmp.cleanup();
    }
  });

  it('of the aggregator records the aggregator\'s and shared/ sources and nothing of the other stages', async () => {
    const { file } = await ensureAggregatorBundle();
    const { inputs } = JSON.parse(readFileSync(`${file}.json`, 'utf8')) as { inputs: string[] };
    assert.ok(inputs.includes('aggregator/aggregator-command.ts') && inputs.includes('shared/payloads.ts'), inputs.join(' '));
    // aggregator/ imports only shared/ (the MQTT contract): the bundle proves it for everything the command loads.
    assert.deepEqual(inputs.filter((f) => !/^(aggregator|shared)\//.test(f)), []);
  });
});
