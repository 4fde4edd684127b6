/**
 * What the lab makes: one scenario per IoTID20 sub-category (a generator, or the benign background), and the real
 * attack captures that join the corpus labelled by capture. Shares set each scenario's part of `--flows`.
 */
import type { IOTID20_SUBCATEGORIES } from '../shared/labels.ts';
import { dosSynFlood } from './attacks/dos.ts';
import { miraiAckFlood, miraiBruteforce, miraiHttpFlood, miraiUdpFlood } from './attacks/mirai.ts';
import { mitmArpSpoofing } from './attacks/mitm.ts';
import { scanHostPort, scanPortOs } from './attacks/scan.ts';
import type { TrafficGenerator } from './attacks/types.ts';
import { benignChatter } from './devices.ts';

export type SubCategory = (typeof IOTID20_SUBCATEGORIES)[number];

export interface Scenario {
  /** File name stem and `--scenario` value. */
  name: string;
  cat: string;
  subCat: SubCategory;
  /** Relative share of the requested flows. */
  share: number;
  /** Generated part (written to pcaps/NAME.pcap). */
  generate: TrafficGenerator;
  /**
   * Part made from the real benign captures, replayed (pcaps/NAME-replay.pcap): `share` of the scenario's flows;
   * `relay` puts each capture's main device under the ARP-spoofing relay.
   */
  replay?: { share: number; relay: boolean };
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'normal', cat: 'Normal', subCat: 'Normal', share: 2, generate: benignChatter, replay: { share: 0.75, relay: false } },
  { name: 'mirai-hostbruteforce', cat: 'Mirai', subCat: 'Mirai-Hostbruteforceg', share: 1, generate: miraiBruteforce },
  { name: 'mirai-udp-flooding', cat: 'Mirai', subCat: 'Mirai-UDP Flooding', share: 1, generate: miraiUdpFlood },
  { name: 'mirai-ack-flooding', cat: 'Mirai', subCat: 'Mirai-Ackflooding', share: 1, generate: miraiAckFlood },
  { name: 'mirai-http-flooding', cat: 'Mirai', subCat: 'Mirai-HTTP Flooding', share: 1, generate: miraiHttpFlood },
  { name: 'dos-synflooding', cat: 'DoS', subCat: 'DoS-Synflooding', share: 1, generate: dosSynFlood },
  { name: 'scan-hostport', cat: 'Scan', subCat: 'Scan Hostport', share: 1, generate: scanHostPort },
  { name: 'scan-port-os', cat: 'Scan', subCat: 'Scan Port OS', share: 1, generate: scanPortOs },
  { name: 'mitm-arp-spoofing', cat: 'MITM ARP Spoofing', subCat: 'MITM ARP Spoofing', share: 1, generate: mitmArpSpoofing, replay: { share: 0.5, relay: true } },
];

/**
 * Real attack captures (../shared/data/pcaps/attack/) and the sub-category each stands for. Left out: the SYN-ACK
 * reflection and BACnet amplification floods and the SSH brute force, which match no IoTID20 sub-category.
 */
export const REAL_ATTACKS: readonly { file: string; subCat: SubCategory }[] = [
  { file: 'stopddos_pkt.TCP.synflood.spoofed.pcap', subCat: 'DoS-Synflooding' },
  { file: 'stopddos_amp.TCP.syn.optionallyACK.optionallysamePort.pcapng', subCat: 'DoS-Synflooding' },
  { file: 'pcaphunt_ps-tcp_syn.pcap', subCat: 'Scan Hostport' },
  { file: 'pcaphunt_ps-tcp_ack.pcap', subCat: 'Scan Hostport' },
  { file: 'pcaphunt_ps-udp.pcap', subCat: 'Scan Hostport' },
  { file: 'pcaphunt_hs-arpScan.pcap', subCat: 'Scan Hostport' },
  { file: 'pcaphunt_hs-icmpScan.pcap', subCat: 'Scan Hostport' },
  { file: 'pcaphunt_hs-udpScan.pcap', subCat: 'Scan Hostport' },
  { file: 'slips_arp-scan.pcap', subCat: 'Scan Hostport' },
  { file: 'slips_icmp-sweep.pcap', subCat: 'Scan Hostport' },
  { file: 'ndpi_synscan.pcap', subCat: 'Scan Hostport' },
  { file: 'pcaphunt_na-arpSpoofing.pcap', subCat: 'MITM ARP Spoofing' },
];

export function scenarioFor(subCat: SubCategory): Scenario {
  return SCENARIOS.find((s) => s.subCat === subCat)!;
}
