/**
 * `iot-ids bench [NAME]`: runs one benchmark or all, printing one JSON line per figure:
 * {"bench", "metric", "value", "unit", "reference": {...}}. Figures are medians over repeated runs, each
 * with a reference measured in the same run, because these machines are shared and noisy.
 */
import { defineCommand } from 'citty';
import { BENCHES } from './registry.ts';

export default defineCommand({
  meta: { name: 'bench', description: `Run benchmarks (${Object.keys(BENCHES).join(', ')})` },
  args: {
    name: { type: 'positional', required: false, description: 'benchmark to run (default: all)' },
  },
  async run({ args }) {
    const names = args.name ? [args.name] : Object.keys(BENCHES);
    for (const n of names) {
      const load = BENCHES[n];
      if (!load) throw new Error(`unknown benchmark "${n}"; known: ${Object.keys(BENCHES).join(', ')}`);
      const bench = await load();
      await bench.run();
    }
  },
});
