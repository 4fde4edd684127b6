/**
 * Puts the aggregator together: store → ingest (batches, dedup, acks) → MQTT consumer; each commit feeds the
 * correlator and the live bus; incidents are stored and published on the fleet incident topic; the HTTP server
 * serves the API, the SSE stream and the dashboard. `close()` undoes it in reverse order.
 */
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_PREFIX, incidentTopic } from '../shared/topics.ts';
import { encodeIncident, type Incident } from '../shared/payloads.ts';
import { AckPublisher } from './acks.ts';
import { Consumer } from './consumer.ts';
import { Correlator, type CorrelatorOptions } from './correlator.ts';
import { Ingest } from './ingest.ts';
import { LiveBus, type TotalsEvent } from './live.ts';
import { buildHttp } from './http.ts';
import type { TokenIdentity } from './auth.ts';
import { INCIDENT_LOOKBACK_MS } from './store/marks.ts';
import { openStore } from './store/open.ts';
import { RolloutStore } from './rollout/store.ts';
import { HOUR_MS, type Store } from './store/store.ts';
import {
  DAY_MS, DEFAULT_FEATURE_RETENTION_DAYS, DEFAULT_SAMPLE_RETENTION_DAYS, DEFAULT_SAMPLES_PER_HUB, type FleetPruneResult,
} from './store/fleet-data.ts';

export interface AggregatorOptions {
  broker: string;
  /** A SQLite file, a postgres:// URL, or an opened Store. */
  db: string | Store;
  /** HTTP port (0 = any free one); undefined = no HTTP server. */
  http?: number;
  host?: string;
  token?: string;
  /** Named tokens (auth.ts): who marks alerts, and who may only read. */
  tokens?: readonly TokenIdentity[];
  group?: string;
  prefix?: string;
  clientId?: string;
  username?: string;
  password?: string;
  protocolVersion?: 4 | 5;
  /**
   * MQTT 5 session expiry, seconds: how long the broker keeps queueing for this instance while it is away.
   * Default 7 days alone, GROUP_SESSION_EXPIRY_SEC in a group (see defaultSessionExpiry).
   */
  sessionExpirySec?: number;
  /** Messages read and not yet committed before the consumer stops reading (default 1000). */
  maxPending?: number;
  /** Payload bytes read and not yet committed before the consumer stops reading (default 4 MiB). */
  maxPendingBytes?: number;
  /** Publish the per-hub ack watermark after each commit (default true). */
  acks?: boolean;
  retentionHours?: number;
  /** The rollouts table for GET /api/rollouts; default: opened on `db` when it is a file or URL. */
  rollouts?: RolloutStore;
  /** Raw features of alerts older than this are deleted, except marked alerts' (default 30). */
  featureRetentionDays?: number;
  /** Sampled Normal flows received longer ago than this are deleted (default 30). */
  sampleRetentionDays?: number;
  /** At most this many samples per hub, the newest (default DEFAULT_SAMPLES_PER_HUB). */
  samplesPerHub?: number;
  /** SQLite only: run the writes on a worker thread (see store/sqlite-worker.ts). */
  sqliteThread?: boolean;
  maxBatch?: number;
  flushDelayMs?: number;
  correlation?: Partial<Omit<CorrelatorOptions, 'now' | 'onIncident'>>;
  now?: () => number;
  log?: (line: string) => void;
}

export interface Aggregator {
  store: Store;
  ingest: Ingest;
  consumer: Consumer;
  acks?: AckPublisher;
  correlator: Correlator;
  live: LiveBus;
  http?: FastifyInstance;
  /** Base URL of the HTTP server, when there is one. */
  url?: string;
  /** Graceful by default (commit and ack what was read); `abrupt` drops everything as a crash would. */
  close(abrupt?: boolean): Promise<void>;
}

/**
 * The MQTT client id when none is given. Alone: `iot-ids-aggregator` (its session must outlive restarts). In a
 * group every instance needs its own id, or two instances would take the id from each other every second; and
 * the same id again after a restart, so it picks up its own session: host name plus HTTP port (two instances
 * on one host cannot share a port), or the process id when the port is not fixed.
 */
export function defaultClientId(group?: string, httpPort?: number): string {
  if (!group) return 'iot-ids-aggregator';
  const instance = httpPort ? `${httpPort}` : `pid${process.pid}`;
  return `iot-ids-aggregator-${group}-${hostname()}-${instance}`.slice(0, 128);
}

/**
 * A group member's session lives this long after it is lost (MQTT 5). mosquitto keeps giving a dead member's
 * session its share of new messages until the session expires, and nobody else can drain it; so it expires soon
 * and hubs send again what no instance committed (the ack watermark stalls: edge/publisher.ts). A member that
 * comes back within this time finds its session.
 */
export const GROUP_SESSION_EXPIRY_SEC = 15;

export const defaultSessionExpiry = (group?: string): number => (group ? GROUP_SESSION_EXPIRY_SEC : 7 * 24 * 3600);

export async function startAggregator(o: AggregatorOptions): Promise<Aggregator> {
  const now = o.now ?? Date.now;
  const log = o.log ?? ((l: string) => console.warn(l));
  const prefix = o.prefix ?? DEFAULT_PREFIX;
  const started = now();
  const store = typeof o.db === 'string' ? await openStore(o.db, { sqliteWriterThread: o.sqliteThread }) : o.db;
  const live = new LiveBus(now);
  let consumer: Consumer | undefined;

  // Incidents are written and published in the order the correlator made them.
  let incidentChain: Promise<void> = Promise.resolve();
  // Once closing, incidents are still stored but no longer published: a QoS 1 publish waits for a PUBACK that a
  // stopping consumer (its socket paused or gone) would never read, and close() would wait for it forever.
  let closing = false;
  const onIncident = (i: Incident) => {
    live.emit('incident', i);
    incidentChain = incidentChain.then(async () => {
      try {
        await store.upsertIncident(i);
        if (closing) return;
        await consumer?.publish(incidentTopic(prefix), encodeIncident(i));
      } catch (e) {
        log(`aggregator: incident ${i.id}: ${(e as Error).message}`);
      }
    });
  };
  const correlator = new Correlator({ ...o.correlation, now, onIncident });
  correlator.restore(await store.incidents('open'));

  const acks = o.acks === false ? undefined : new AckPublisher({
    store, prefix, log, publish: (topic, payload) => consumer?.publishNow(topic, payload, true) ?? false,
  });
  const ingest = new Ingest({
    store, prefix, now, log, maxBatch: o.maxBatch, flushDelayMs: o.flushDelayMs,
    onAlerts: acks && ((alerts) => acks.onCommitted(alerts)),
    onCommit: (c) => {
      if (c.alerts.length) {
        live.count(c.alerts.map((a) => a.class));
        correlator.onAlerts(c.alerts);
      }
      for (const s of c.stats) correlator.onStats(s);
      for (const s of c.statuses) {
        correlator.onStatus(s);
        live.emit('hub', { site: s.site, hub: s.hub, state: s.state, bundle: s.bundle, lastSeen: c.at });
      }
    },
  });
  consumer = new Consumer({
    broker: o.broker, clientId: o.clientId ?? defaultClientId(o.group, o.http), ingest, prefix, group: o.group,
    username: o.username, password: o.password, protocolVersion: o.protocolVersion, log,
    sessionExpirySec: o.sessionExpirySec ?? defaultSessionExpiry(o.group), maxPending: o.maxPending,
    maxPendingBytes: o.maxPendingBytes,
  });
  const pruned: FleetPruneResult = { features: 0, samples: 0, samplesOverCap: 0 };
  let totals: TotalsEvent | undefined;
  const extras = () => ({
    incidents: { open: correlator.openIncidents().length },
    invalid: { total: ingest.counters.invalid, byReason: { ...ingest.counters.invalidByReason } },
    ingest: {
      received: ingest.counters.received, stored: ingest.counters.stored, duplicates: ingest.counters.duplicates,
      batches: ingest.counters.batches, storeErrors: ingest.counters.storeErrors, deadLettered: ingest.counters.deadLettered,
    },
    fleetData: {
      samplesStored: ingest.counters.samplesStored, samplesDuplicate: ingest.counters.samplesDuplicate,
      featuresRefused: ingest.counters.featuresRefused, pruned: { ...pruned },
    },
    uptimeSec: (now() - started) / 1000,
  });

  let http: FastifyInstance | undefined;
  let url: string | undefined;
  let rollouts: RolloutStore | undefined;
  try {
    if (o.http !== undefined) {
      // The rollout process writes this table in the same database (aggregator/rollout/); the API reads it.
      rollouts = o.rollouts ?? (typeof o.db === 'string'
        ? await RolloutStore.open(o.db).catch((e: Error) => void log(`aggregator: GET /api/rollouts unavailable: ${e.message}`))
        : undefined) ?? undefined;
      http = await buildHttp({
        store, live, token: o.token, tokens: o.tokens, now, summaryExtras: extras, rollouts,
        incidentLookbackMs: {
          burst: o.correlation?.burstWindowMs ?? INCIDENT_LOOKBACK_MS.burst, outbreak: o.correlation?.outbreakWindowMs ?? INCIDENT_LOOKBACK_MS.outbreak,
        },
        openIncidents: () => correlator.openIncidents(), lastTotals: () => totals,
      });
      const host = o.host ?? '127.0.0.1';
      // Routes' validators and serializers are compiled by ready() (~115 ms of ajv here): done before the port
      // opens, not while the first requests wait behind it.
      await http.ready();
      await http.listen({ port: o.http, host });
      const addr = http.server.address() as { port: number };
      url = `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`;
      // The API is up before the first message is read, its read path warmed (the store's read connection and
      // statements): a backlog then drains around an API that already answers, instead of the first requests
      // paying for start-up while the drain takes the CPU (the first /api/summary took 90–360 ms that way).
      await store.summary();
    }
    await consumer.start();
  } catch (e) {
    await http?.close();
    if (rollouts !== o.rollouts) await rollouts?.close();
    await store.close();
    throw e;
  }

  // Once a second: close finished rate seconds, let the correlator age its windows, push fleet totals to live views.
  let totalsBusy = false;
  const second = setInterval(() => {
    live.tick();
    correlator.tick();
    if (live.listenerCount('totals') === 0 || totalsBusy) return;
    totalsBusy = true;
    store.summary()
      .then((s) => {
        totals = {
          alerts: s.alerts, classes: s.classes, hubsOnline: s.hubs.online, hubsOffline: s.hubs.offline,
          openIncidents: correlator.openIncidents().length, invalid: ingest.counters.invalid,
        };
        live.emit('totals', totals);
      })
      .catch((e) => log(`aggregator: totals: ${(e as Error).message}`))
      .finally(() => (totalsBusy = false));
  }, 1000);

  // Retention, every 10 minutes: raw alerts into hourly counts (when asked), and the fleet's training data
  // (features and samples by age, samples per hub by count; store/fleet-data.ts).
  const roll = () =>
    o.retentionHours === undefined ? Promise.resolve() : store.rollup(now() - o.retentionHours * HOUR_MS)
      .then((r) => r.rolled && log(`aggregator: rolled ${r.rolled} alerts older than ${o.retentionHours} h into hourly counts`))
      .catch((e) => log(`aggregator: retention rollup failed: ${(e as Error).message}`));
  const featureDays = o.featureRetentionDays ?? DEFAULT_FEATURE_RETENTION_DAYS;
  const sampleDays = o.sampleRetentionDays ?? DEFAULT_SAMPLE_RETENTION_DAYS;
  const samplesCap = o.samplesPerHub ?? DEFAULT_SAMPLES_PER_HUB;
  const prune = () =>
    store.pruneFleetData({
      featuresBefore: now() - featureDays * DAY_MS, samplesBefore: now() - sampleDays * DAY_MS,
      samplesPerHub: samplesCap,
    }).then((r) => {
      pruned.features += r.features;
      pruned.samples += r.samples;
      pruned.samplesOverCap += r.samplesOverCap;
      if (r.features || r.samples || r.samplesOverCap) {
        log(`aggregator: retention deleted ${r.features} feature vectors older than ${featureDays} d, ${r.samples} samples older than ${sampleDays} d, ${r.samplesOverCap} samples over the per-hub cap`);
      }
    }).catch((e) => log(`aggregator: fleet data retention failed: ${(e as Error).message}`));
  // One run at a time. A hub flooding samples must not wait 10 minutes for its cap: once as many samples as one
  // hub may keep were stored since the last run, the fleet data part runs again (checked every second).
  let retentionRun: Promise<unknown> = Promise.resolve();
  let retaining = false;
  let samplesAtRun = 0;
  const retain = (rollup: boolean) => {
    if (retaining) return;
    retaining = true;
    samplesAtRun = ingest.counters.samplesStored;
    retentionRun = (rollup ? roll() : Promise.resolve()).then(prune).finally(() => (retaining = false));
  };
  retain(true);
  const retention = setInterval(() => retain(true), 10 * 60_000);
  const capCheck = setInterval(() => ingest.counters.samplesStored - samplesAtRun >= samplesCap && retain(false), 1000);

  return {
    store, ingest, consumer, acks, correlator, live, http, url,
    async close(abrupt = false) {
      clearInterval(second);
      clearInterval(retention);
      clearInterval(capCheck);
      await http?.close();
      closing = true;
      // Publishes already under way finish while the socket still reads PUBACKs (bounded: a broker that went away
      // answers nothing, and the stored incidents are what counts).
      await Promise.race([incidentChain, new Promise<void>((r) => setTimeout(r, abrupt ? 0 : 5_000).unref())]);
      // A store that is down must not hold shutdown: what cannot be written now stays unacked for redelivery.
      ingest.giveUpRetries();
      await consumer!.stop(abrupt);
      // The round under way still reads the store (closed next); its publish goes nowhere once disconnected.
      await acks?.close();
      await Promise.race([incidentChain, new Promise<void>((r) => setTimeout(r, 5_000).unref())]);
      await retentionRun;
      await store.close();
      if (rollouts !== o.rollouts) await rollouts?.close();
    },
  };
}
