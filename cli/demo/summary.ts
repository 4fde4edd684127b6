/** The fleet line the demo prints, from GET /api/summary (aggregator/README.md lists the fields). */

export interface Summary {
  alerts: number;
  verdicts?: number;
  classes: Record<string, number>;
  hubs: { total: number; online: number; offline: number; unknown: number };
  incidents: { open: number };
  uptimeSec?: number;
}

const SHORT: Record<string, string> = { 'MITM ARP Spoofing': 'MITM' };

/** "alerts 120 (Mirai 70 · Scan 40 · MITM 10) | hubs 6/6 online | incidents 2 open" */
export function formatSummary(s: Summary): string {
  const classes = Object.entries(s.classes ?? {})
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([c, n]) => `${SHORT[c] ?? c} ${n}`)
    .join(' · ');
  return `alerts ${s.alerts}${classes ? ` (${classes})` : ''} | hubs ${s.hubs?.online ?? 0}/${s.hubs?.total ?? 0} online | incidents ${s.incidents?.open ?? 0} open`;
}
