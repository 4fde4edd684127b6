/**
 * DoS SYN flood as hping3 sends it (`hping3 -S -p PORT --flood [--rand-source]`): SYNs without options, window 64,
 * a source port that starts random and increments per packet, to one open port of a victim at a steady high
 * rate. The victim answers SYN-ACK while its backlog holds; the attacker's kernel resets those (no socket), while
 * spoofed sources never answer, so the victim retransmits its SYN-ACK (1 s, then 2 s later).
 */
import { mssOption, tcpFrame, TCP_ACK, TCP_RST, TCP_SYN } from '../../capture/frames.ts';
import { ATTACKER, VICTIMS, hop, randomPublicIpv4, type Host } from '../network.ts';
import type { GenContext } from './types.ts';

export function dosSynFlood(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  let t = startUs;
  let end = t;
  let flows = 0;
  while (flows < units) {
    const victim = rng.pick(VICTIMS);
    const dport = rng.pick(victim.open.filter((p) => p !== 23));
    const spoofed = rng.next() < 0.5;
    const gapUs = rng.pick([100, 200, 500, 1000]); // -i u100 ... u1000, steady
    const answerRate = 0.6 + 0.35 * rng.next(); // backlog pressure: not every SYN is answered
    let sport = rng.int(1024, 65536);
    const n = Math.min(units - flows, rng.int(500, 4000));
    for (let i = 0; i < n; i++) {
      t += gapUs * (0.9 + 0.2 * rng.next());
      sport = sport >= 65535 ? 1024 : sport + 1;
      const src: Host = spoofed ? { ...ATTACKER, ip: randomPublicIpv4(rng) } : ATTACKER;
      const seq = rng.int(0, 2 ** 31) * 2;
      sink.push(t, tcpFrame({ ...hop(src, victim, rng.int(0, 65536)), df: false }, { sport, dport, seq, ack: 0, flags: TCP_SYN, window: 64 }));
      flows++;
      if (rng.next() > answerRate) continue;
      const iss = rng.int(0, 2 ** 31) * 2;
      const synAck = () => tcpFrame(hop(victim, src, rng.int(0, 65536)), { sport: dport, dport: sport, seq: iss, ack: (seq + 1) >>> 0, flags: TCP_SYN | TCP_ACK, window: 29200, options: mssOption(1460) });
      const tr = t + 800 + rng.exp(1_500);
      sink.push(tr, synAck());
      if (!spoofed) {
        sink.push(tr + 40 + rng.exp(60), tcpFrame(hop(ATTACKER, victim, 0), { sport, dport, seq: (seq + 1) >>> 0, ack: 0, flags: TCP_RST, window: 0 }));
        end = Math.max(end, tr + 200);
      } else {
        // Retransmissions until the half-open entry is dropped (1 s, 3 s: tcp_synack_retries cut short by the flood).
        const retries = rng.int(0, 3);
        let tx = tr;
        for (let k = 0; k < retries; k++) {
          tx += 1_000_000 * 2 ** k;
          sink.push(tx, synAck());
        }
        end = Math.max(end, tx);
      }
    }
    t = Math.max(t, end) + rng.exp(5_000_000);
  }
  return Math.max(t, end);
}
