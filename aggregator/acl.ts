/**
 * Broker-side security for mosquitto: each hub authenticates as `<site>/<hub>` (ids cannot contain '/', so the
 * name is unambiguous) and may write only under its own `{prefix}/{site}/{hub}/` subtree and read only its
 * bundle downlink; the aggregator may read every hub channel and write only the fleet incident topic.
 *
 * Explicit per-hub `user` blocks, not `pattern ... %u`: mosquitto refuses pattern substitution for usernames
 * containing '/', and a one-level name (`pattern write ids/v1/+/%u/#`) would let a hub pick any site.
 * The file is generated from the fleet inventory: `mosquittoAcl(...)`, see aggregator/README.md.
 */
import { DEFAULT_PREFIX, assertValidId, incidentTopic } from '../shared/topics.ts';

export interface AclHub {
  site: string;
  hub: string;
}

export const hubUsername = (h: AclHub): string => `${h.site}/${h.hub}`;

export function mosquittoAcl(opts: { hubs: readonly AclHub[]; aggregatorUser?: string; operatorUser?: string; prefix?: string }): string {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  const agg = opts.aggregatorUser ?? 'aggregator';
  const lines = [
    '# iot-ids mosquitto ACL (generated). No anonymous access; everything not granted is denied.',
    '',
    `user ${agg}`,
    `topic read ${prefix}/+/+/alert`,
    `topic read ${prefix}/+/+/stats`,
    `topic read ${prefix}/+/+/status`,
    `topic read ${prefix}/+/+/sample`,
    `topic write ${incidentTopic(prefix)}`,
    '',
    '# Whoever ships model bundles to hubs (the bundle downlink), and reads fleet incidents.',
    `user ${opts.operatorUser ?? 'operator'}`,
    `topic write ${prefix}/+/+/bundle`,
    `topic read ${incidentTopic(prefix)}`,
    '',
  ];
  for (const h of opts.hubs) {
    assertValidId('site', h.site);
    assertValidId('hub', h.hub);
    lines.push(
      `user ${hubUsername(h)}`,
      `topic write ${prefix}/${h.site}/${h.hub}/alert`,
      `topic write ${prefix}/${h.site}/${h.hub}/stats`,
      `topic write ${prefix}/${h.site}/${h.hub}/status`,
      `topic write ${prefix}/${h.site}/${h.hub}/sample`,
      `topic read ${prefix}/${h.site}/${h.hub}/bundle`,
      '',
    );
  }
  return lines.join('\n');
}
