/**
 * One aggregator instance in its own process, for the two-instance case of bench/aggregator.bench.ts (two
 * instances in one process would share one event loop and one core). Driven by the parent over IPC:
 *   {cmd:'register'}  connect, subscribe (shared group), disconnect: the broker queues our share from now on
 *   {cmd:'drain'}     connect and ingest into PostgreSQL; reports {stored, cpu} (since this drain began) every 50 ms
 *   {cmd:'pause'}     graceful disconnect (the broker queues again); the process stays, warm
 *   {cmd:'stop'}      graceful stop, then exit
 * Configuration from the environment: AGG_I_BROKER, AGG_I_PG, AGG_I_SCHEMA, AGG_I_GROUP, AGG_I_ID, AGG_I_WRITERS,
 * AGG_I_APP (the PostgreSQL application_name, so that the bench can find this instance's backends).
 */
import { Consumer } from '../aggregator/consumer.ts';
import { Ingest } from '../aggregator/ingest.ts';
import { PostgresStore } from '../aggregator/store/postgres.ts';

const env = (k: string): string => {
  const v = process.env[k];
  if (!v) throw new Error(`aggregator-instance: ${k} is not set`);
  return v;
};
const quiet = () => {};
const send = (m: unknown) => process.send!(m);

const store = new PostgresStore({
  connectionString: env('AGG_I_PG'), schema: env('AGG_I_SCHEMA'), writers: Number(env('AGG_I_WRITERS')), applicationName: env('AGG_I_APP'),
});
let consumer: Consumer | undefined;
let ingest: Ingest | undefined;
let report: ReturnType<typeof setInterval> | undefined;

// A consumer per drain in one warm process: the start's gentler read-ahead (rampMs, for a cold process) would
// slow each measured drain's first 2 s for nothing, so it is off; the warm-up burst plays its part.
const consumerOf = (i: Ingest) =>
  new Consumer({ broker: env('AGG_I_BROKER'), clientId: env('AGG_I_ID'), group: env('AGG_I_GROUP'), ingest: i, log: quiet, rampMs: 0 });

process.on('message', async (m: { cmd: string }) => {
  try {
    if (m.cmd === 'register') {
      await store.open();
      const c = consumerOf(new Ingest({ store, log: quiet }));
      await c.start();
      await c.stop();
      send({ ok: 'register' });
    } else if (m.cmd === 'drain') {
      if (report) clearInterval(report);
      ingest = new Ingest({ store, log: quiet });
      consumer = consumerOf(ingest);
      const cpu0 = process.cpuUsage();
      const i = ingest;
      report = setInterval(() => {
        const c = process.cpuUsage(cpu0);
        send({ stored: i.counters.stored, batches: i.counters.batches, cpu: (c.user + c.system) / 1e6 });
      }, 50);
      await consumer.start();
      send({ ok: 'drain' });
    } else if (m.cmd === 'pause') {
      if (report) clearInterval(report);
      await consumer?.stop();
      consumer = undefined;
      send({ ok: 'pause' });
    } else if (m.cmd === 'stop') {
      if (report) clearInterval(report);
      await consumer?.stop();
      await store.close();
      send({ ok: 'stop' });
      process.exit(0);
    }
  } catch (e) {
    send({ error: (e as Error).message });
  }
});
