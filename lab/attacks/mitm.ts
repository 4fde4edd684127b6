/**
 * MITM by ARP spoofing (arpspoof/ettercap style): the attacker tells the victim that the gateway's IP is at its
 * MAC and the gateway that the victim's IP is, with unsolicited ARP replies every second or two, and forwards
 * what it receives (lab/relay.ts). Every packet between victim and gateway then crosses the air twice: a flow
 * meter sees the same 5-tuple twice with shifted timing. Here the victim's ordinary sessions (lab/devices.ts) are
 * relayed; the corpus also relays replayed real captures (lab/corpus.ts).
 */
import { deviceSession } from '../devices.ts';
import { GATEWAY, VICTIMS } from '../network.ts';
import { RelaySink, poison } from '../relay.ts';
import { after, type GenContext } from './types.ts';

export function mitmArpSpoofing(ctx: GenContext, startUs: number, units: number): number {
  const { rng, sink } = ctx;
  const victim = rng.pick(VICTIMS);
  const relay = new RelaySink(sink, rng, victim.mac, GATEWAY.mac);
  let t = startUs + 2_000_000;
  let end = t;
  for (let i = 0; i < units; i++) {
    t = after(rng, t, 250_000);
    end = Math.max(end, deviceSession(ctx, relay, victim, t));
  }
  poison(sink, rng, victim, GATEWAY, startUs, end);
  return end;
}
