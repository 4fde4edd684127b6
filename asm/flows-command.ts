/**
 * `iot-ids flows CAPTURE [--out FILE] [--mode cicflowmeter-compat|corrected] [--label L --cat C --subcat S]`:
 * packets to IoTID20-format flow CSV. Streams: batches go through the wasm meter as they are read and rows are
 * written as flows finish. On a damaged capture the flows of the good packets are still written, then the error
 * is printed and the exit code is 1 (2 for bad options).
 */
import { createWriteStream, statSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { defineCommand } from 'citty';
import { IdsError, isIdsError } from '../shared/errors.ts';
import type { FlowRecord } from '../shared/packets.ts';
import { readCapture } from '../capture/reader.ts';
import { FlowMeter, type MeterMode, type MeterStats } from './flowmeter-host.ts';
import { flowCsvHeader, formatFlowCsvRow, type FlowLabels } from './flow-csv.ts';

export interface FlowsOptions {
  capture: string | NodeJS.ReadableStream;
  out: Writable;
  mode?: MeterMode;
  labels?: FlowLabels;
  maxFlows?: number;
  /** Called about once a second with progress (packets, bytes read so far). */
  onProgress?: (s: { packets: number; flows: number; sourceOffset: number }) => void;
}

export interface FlowsResult {
  flows: number;
  stats: MeterStats;
  /** The capture error after which reading stopped (flows of the good packets were written). */
  error?: IdsError;
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await new Promise<void>((res) => out.once('drain', res));
}

/** Reads a capture, writes its flows as CSV to `out`. Never throws for a damaged capture: see `error`. */
export async function writeFlowsCsv(o: FlowsOptions): Promise<FlowsResult> {
  const meter = await FlowMeter.create({ mode: o.mode, maxFlows: o.maxFlows });
  let flows = 0;
  const emit = async (recs: FlowRecord[]) => {
    if (recs.length === 0) return;
    let text = '';
    for (const r of recs) text += formatFlowCsvRow(r, o.labels) + '\n';
    flows += recs.length;
    await write(o.out, text);
  };
  await write(o.out, flowCsvHeader(o.labels !== undefined) + '\n');
  let error: IdsError | undefined;
  let lastProgress = Date.now();
  try {
    for await (const batch of readCapture(o.capture)) {
      await emit(meter.push(batch));
      if (o.onProgress && Date.now() - lastProgress >= 1000) {
        lastProgress = Date.now();
        o.onProgress({ packets: meter.stats().packets, flows, sourceOffset: batch.sourceOffset });
      }
    }
  } catch (e) {
    if (!isIdsError(e)) throw e;
    error = e;
  }
  await emit(meter.flush());
  return { flows, stats: meter.stats(), error };
}

function fail(code: number, message: string): never {
  process.stderr.write(`iot-ids flows: ${message}\n`);
  process.exit(code);
}

export default defineCommand({
  meta: { name: 'flows', description: 'Packet capture (pcap/pcapng, or - for stdin) to IoTID20-format flow CSV' },
  args: {
    // Not `required`: the argument parser drops a lone '-', which run() recovers from rawArgs.
    capture: { type: 'positional', required: false, description: "capture file, or '-' for stdin" },
    out: { type: 'string', description: 'output CSV (default: stdout)' },
    mode: { type: 'string', default: 'cicflowmeter-compat', description: 'cicflowmeter-compat | corrected' },
    label: { type: 'string', description: 'Label column value (with --cat and --subcat)' },
    cat: { type: 'string', description: 'Cat column value' },
    subcat: { type: 'string', description: 'Sub_Cat column value' },
    'max-flows': { type: 'string', description: 'cap on live flows (default 32768)' },
  },
  async run({ args, rawArgs }) {
    const mode = args.mode as MeterMode;
    if (mode !== 'cicflowmeter-compat' && mode !== 'corrected') {
      fail(2, `--mode "${args.mode}": expected cicflowmeter-compat or corrected`);
    }
    const given = [args.label, args.cat, args.subcat].filter((x) => x !== undefined).length;
    if (given !== 0 && given !== 3) fail(2, '--label, --cat and --subcat go together: give all three or none');
    const labels = given === 3 ? { label: args.label!, cat: args.cat!, subCat: args.subcat! } : undefined;
    const maxFlows = args['max-flows'] !== undefined ? Number(args['max-flows']) : undefined;
    if (maxFlows !== undefined && !(Number.isInteger(maxFlows) && maxFlows > 0)) {
      fail(2, `--max-flows "${args['max-flows']}": expected a positive integer`);
    }
    const capture: string | undefined = args.capture ?? (rawArgs.includes('-') ? '-' : undefined);
    if (capture === undefined) fail(2, "missing CAPTURE: a pcap/pcapng file, or '-' for stdin");
    let total = 0;
    if (capture !== '-') {
      try {
        total = statSync(capture).size;
      } catch (e) {
        fail(1, `cannot read capture ${capture}: ${(e as Error).message}`);
      }
    }
    const out: Writable = args.out ? createWriteStream(args.out) : process.stdout;
    out.on('error', (e: NodeJS.ErrnoException) => {
      // A reader that stopped early (`| head`) is not a failure of ours.
      if (e.code === 'EPIPE') process.exit(0);
      fail(1, `cannot write ${args.out ?? 'stdout'}: ${e.message}`);
    });
    const tty = process.stderr.isTTY;
    const started = Date.now();
    let result: FlowsResult;
    try {
      result = await writeFlowsCsv({
        capture,
        out,
        mode,
        labels,
        maxFlows,
        onProgress: ({ packets, flows, sourceOffset }) => {
          const pct = total > 0 ? ` (${((100 * sourceOffset) / total).toFixed(0)}%)` : '';
          process.stderr.write(`${tty ? '\r' : ''}flows: ${packets} packets, ${flows} flows${pct}${tty ? '' : '\n'}`);
        },
      });
    } catch (e) {
      fail(isIdsError(e, 'BAD_OPTION') ? 2 : 1, (e as Error).message);
    }
    if (out !== process.stdout) await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())));
    const s = result.stats;
    const secs = (Date.now() - started) / 1000;
    process.stderr.write(
      `${tty ? '\r' : ''}flows: ${s.packets} packets (${s.nonIp} non-IP, ${s.skipped} skipped), ${result.flows} flows ` +
        `written (${s.evicted} evicted by the live-flow cap) in ${secs.toFixed(1)} s, mode ${mode}\n`,
    );
    if (result.error) fail(1, result.error.message);
  },
});
