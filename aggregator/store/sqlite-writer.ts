/**
 * Worker-thread side of SqliteWorkerStore: owns the one writing connection and runs the writes it is sent.
 * Messages: {id, op, args} → {id, ok, result} or {id, ok: false, error, code}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteStore } from './sqlite.ts';
import { isIdsError } from '../../shared/errors.ts';
import { StoreWriteError, type DeadLetter } from './store.ts';
import { MARK_WRITES, type MarkWrite } from './marks.ts';

interface Request {
  id: number;
  op: 'writeBatch' | 'deadLetter' | 'upsertIncident' | 'rollup' | 'advanceAckMark' | 'pruneFleetData' | 'marks' | 'close';
  /** JSON of the arguments (one string crosses threads faster than many small objects). */
  args: string;
}

const store = new SqliteStore((workerData as { file: string }).file);
const opened = store.open();

parentPort!.on('message', async (m: Request) => {
  try {
    await opened;
    const args = JSON.parse(m.args) as unknown[];
    let result: unknown;
    if (m.op === 'writeBatch') result = await store.writeBatch(args[0] as never, args[1] as never, args[2] as never);
    else if (m.op === 'deadLetter') {
      const wire = args[0] as (Omit<DeadLetter, 'payload'> & { payload: string })[];
      result = await store.deadLetter(wire.map((d) => ({ ...d, payload: Buffer.from(d.payload, 'base64') })));
    } else if (m.op === 'upsertIncident') result = await store.upsertIncident(args[0] as never);
    else if (m.op === 'rollup') result = await store.rollup(args[0] as number);
    else if (m.op === 'pruneFleetData') result = await store.pruneFleetData(args[0] as never);
    else if (m.op === 'advanceAckMark') {
      result = (await store.advanceAckMark(args[0] as string, args[1] as string, (args[2] as number | null) ?? undefined)) ?? null;
    } else if (m.op === 'marks') {
      const op = args[0] as MarkWrite;
      if (!MARK_WRITES.includes(op)) throw new Error(`marks: no write "${String(op)}"`);
      result = await (store.marks[op] as (...a: unknown[]) => Promise<unknown>).apply(store.marks, args.slice(1));
    } else if (m.op === 'close') result = await store.close();
    parentPort!.postMessage({ id: m.id, ok: true, result });
  } catch (e) {
    parentPort!.postMessage({
      id: m.id, ok: false, error: (e as Error).message, code: isIdsError(e) ? e.code : 'STORE_FAILED',
      permanent: e instanceof StoreWriteError ? e.permanent : undefined,
    });
  }
});
