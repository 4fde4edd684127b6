/**
 * SQLite with its writes on a worker thread. The MQTT client, validation and the writes then use two cores
 * instead of one: the writer commits batch k while the main thread reads and validates batch k+1. Reads (the API)
 * use a second connection on the main thread; WAL lets it read while the worker writes, and a batch is visible
 * to it as soon as writeBatch resolves. Same Store contract, same shared test suite as SqliteStore.
 */
import { Worker } from 'node:worker_threads';
import type { Incident } from '../../shared/payloads.ts';
import { IdsError, type ErrorCode } from '../../shared/errors.ts';
import { SqliteStore, yieldToLoop } from './sqlite.ts';
import {
  type AlertQuery, type AlertRow, type DeadLetter, type DeadLetterRow, type HourCount, type HubRow, type HubUpdate,
  type RollupResult, type Store, type Summary, StoreWriteError,
} from './store.ts';
import type { FleetBatch, FleetPrune, FleetPruneResult, FleetReader } from './fleet-data.ts';
import type { MarkStore, MarkWrite } from './marks.ts';

// The worker loads TypeScript through tsx, registered inside the worker: loader hooks of the main thread do not
// reach eval workers on Node 20.
const BOOT = `
const { workerData } = require('node:worker_threads');
import('tsx/esm/api')
  .then((m) => { m.register(); return import(workerData.entry); })
  .catch((e) => { console.error('sqlite writer failed to start:', e); process.exit(1); });
`;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class SqliteWorkerStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly maxWritesInFlight = 1;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly reader: SqliteStore;
  private closed = false;
  /** Marks: writes on the writer thread (one writing connection), reads on the reading one. */
  readonly marks: MarkStore;

  constructor(readonly file: string) {
    this.reader = new SqliteStore(file);
    const write = <K extends MarkWrite>(op: K) =>
      ((...args: unknown[]) => this.call('marks', [op, ...args])) as unknown as MarkStore[K];
    const read = <K extends keyof MarkStore>(op: K) =>
      ((...args: unknown[]) => (this.reader.marks[op] as (...a: unknown[]) => unknown).apply(this.reader.marks, args)) as unknown as MarkStore[K];
    this.marks = {
      markAlert: write('markAlert'), markIncident: write('markIncident'), undo: write('undo'), undoIncident: write('undoIncident'),
      list: read('list'), effective: read('effective'), counts: read('counts'), reportedClasses: read('reportedClasses'),
      incident: read('incident'), alertsByMark: read('alertsByMark'),
    };
  }

  async open(): Promise<void> {
    // The reader creates the schema first, so the worker and the reader never race on CREATE TABLE.
    await this.reader.open();
    this.spawn();
    // Resolve only once the writer is up (tsx compiles its modules on start), so the first batch does not wait.
    await this.call('writeBatch', [[], []]);
  }

  private spawn(): Worker {
    const w = new Worker(BOOT, {
      eval: true,
      // The writer holds one batch at a time: a small heap of its own, so that its garbage cannot pile up to V8's
      // default limits beside the main thread's (RSS is the sum of both).
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 },
      workerData: { file: this.file, entry: new URL('./sqlite-writer.ts', import.meta.url).href },
    });
    const fail = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new IdsError('STORE_FAILED', `sqlite writer: ${why}`));
      this.pending.clear();
    };
    w.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string; code?: ErrorCode; permanent?: boolean }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else if (m.permanent !== undefined) p.reject(new StoreWriteError(m.error ?? 'sqlite writer failed', m.permanent));
      else p.reject(new IdsError(m.code ?? 'STORE_FAILED', m.error ?? 'sqlite writer failed'));
    });
    w.on('error', (e) => fail(e.message));
    w.on('exit', (code) => fail(`worker exited with code ${code}`));
    this.worker = w;
    return w;
  }

  private call<T>(op: string, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new IdsError('STORE_FAILED', 'sqlite store is closed'));
    // A writer that died (it should not) is replaced; its batch was not acked and comes back from the broker.
    const w = this.worker ?? this.spawn();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ id, op, args: JSON.stringify(args) });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.worker) {
      await this.call('close', []).catch(() => {});
      const w = this.worker;
      this.closed = true;
      await w.terminate();
    }
    this.closed = true;
    await this.reader.close();
  }

  async writeBatch(alerts: readonly AlertRow[], hubs: readonly HubUpdate[], fleet?: FleetBatch): Promise<boolean[]> {
    // The worker's reply is a message task, but one already waiting when the loop polls resolves this before any
    // setImmediate callback runs: the same turn SqliteStore takes, so a drain never chains writes back to back.
    await yieldToLoop();
    return this.call('writeBatch', fleet ? [alerts, hubs, fleet] : [alerts, hubs]);
  }

  pruneFleetData(p: FleetPrune): Promise<FleetPruneResult> {
    return this.call('pruneFleetData', [p]);
  }

  /** Export reads on the reading connection. */
  get fleet(): FleetReader {
    return this.reader.fleet;
  }

  upsertIncident(i: Incident): Promise<void> {
    return this.call('upsertIncident', [i]);
  }

  /** Payloads cross as base64 (the arguments cross as one JSON string). */
  deadLetter(entries: readonly DeadLetter[]): Promise<void> {
    const wire = entries.map((d) => ({ ...d, payload: Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength).toString('base64') }));
    return this.call('deadLetter', [wire]);
  }

  deadLetters(limit?: number): Promise<DeadLetterRow[]> {
    return this.reader.deadLetters(limit);
  }

  rollup(cutoffMs: number): Promise<RollupResult> {
    return this.call('rollup', [cutoffMs]);
  }

  /** On the writer: the mark is written, and a write from this thread would wait on the worker's lock. */
  advanceAckMark(site: string, hub: string, floor?: number): Promise<number | undefined> {
    return this.call<number | null>('advanceAckMark', [site, hub, floor ?? null]).then((m) => m ?? undefined);
  }

  queryAlerts(q: AlertQuery): Promise<AlertRow[]> {
    return this.reader.queryAlerts(q);
  }

  summary(): Promise<Summary> {
    return this.reader.summary();
  }

  hubs(): Promise<HubRow[]> {
    return this.reader.hubs();
  }

  incidents(state?: 'open' | 'closed'): Promise<Incident[]> {
    return this.reader.incidents(state);
  }

  hourly(q: Pick<AlertQuery, 'site' | 'hub' | 'class' | 'since' | 'until'>): Promise<HourCount[]> {
    return this.reader.hourly(q);
  }
}
