/**
 * The MQTT topic tree. Hubs publish under `{prefix}/{site}/{hub}/...`; the aggregator publishes fleet incidents.
 * Site and hub ids are single topic levels: no '/', '+', '#' or leading '$', so ACLs can pin a hub to its subtree.
 * `sample` carries Normal flows sampled for retraining (QoS 0).
 * `ack` flows the other way: the aggregator publishes there, retained, the hub's delivery watermark (see AckSchema).
 */

export const DEFAULT_PREFIX = 'ids/v1';

export type HubChannel = 'alert' | 'stats' | 'status' | 'bundle' | 'ack' | 'sample';

export const CHANNEL_QOS: Readonly<Record<HubChannel, 0 | 1>> = { alert: 1, stats: 0, status: 1, bundle: 1, ack: 1, sample: 0 };

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidId(id: string): boolean {
  return ID_RE.test(id);
}

export function assertValidId(kind: 'site' | 'hub', id: string): void {
  if (!isValidId(id)) {
    throw new Error(`${kind} id "${id}" must be 1-64 characters of letters, digits, '.', '_' or '-'`);
  }
}

export function hubTopic(site: string, hub: string, channel: HubChannel, prefix = DEFAULT_PREFIX): string {
  assertValidId('site', site);
  assertValidId('hub', hub);
  return `${prefix}/${site}/${hub}/${channel}`;
}

export const incidentTopic = (prefix = DEFAULT_PREFIX): string => `${prefix}/fleet/incident`;

/** Subscription filter for one channel of every hub; with `group`, an MQTT 5 / mosquitto shared subscription. */
export function fleetFilter(channel: HubChannel, prefix = DEFAULT_PREFIX, group?: string): string {
  const f = `${prefix}/+/+/${channel}`;
  return group ? `$share/${group}/${f}` : f;
}

export interface ParsedHubTopic {
  site: string;
  hub: string;
  channel: HubChannel;
}

/** Splits a received topic; undefined when it is not a hub topic under `prefix` (the aggregator never reads `ack`). */
export function parseHubTopic(topic: string, prefix = DEFAULT_PREFIX): ParsedHubTopic | undefined {
  if (!topic.startsWith(prefix + '/')) return undefined;
  const parts = topic.slice(prefix.length + 1).split('/');
  if (parts.length !== 3) return undefined;
  const [site, hub, channel] = parts;
  if (site === 'fleet' || !isValidId(site) || !isValidId(hub)) return undefined;
  if (channel !== 'alert' && channel !== 'stats' && channel !== 'status' && channel !== 'bundle' && channel !== 'sample') return undefined;
  return { site, hub, channel };
}
