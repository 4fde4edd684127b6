/** IoTID20's class vocabulary. A dataset's own labels map onto a model's labels through a LabelMap. */

export const IOTID20_CATEGORIES = ['Normal', 'Mirai', 'DoS', 'Scan', 'MITM ARP Spoofing'] as const;

export const IOTID20_SUBCATEGORIES = [
  'Normal', 'Mirai-UDP Flooding', 'Mirai-Hostbruteforceg', 'Mirai-HTTP Flooding', 'Mirai-Ackflooding',
  'DoS-Synflooding', 'Scan Port OS', 'Scan Hostport', 'MITM ARP Spoofing',
] as const;

/** The class every model treats as "no alert". */
export const NORMAL_LABEL = 'Normal';
/** The class the hub's ARP watcher also reports, by rule. */
export const MITM_LABEL = 'MITM ARP Spoofing';

/**
 * Raw label value → model class. A raw value the map does not name is dropped (and counted) by readers,
 * which is how a user leaves classes out of a training run.
 */
export type LabelMap = Readonly<Record<string, string>>;

/** CIC-IDS2017 labels grouped into 6 classes; Infiltration and Heartbleed (47 rows in the sample) left out. */
export const CICIDS2017_GROUPS: LabelMap = {
  BENIGN: 'Normal',
  DDoS: 'DoS',
  'DoS Hulk': 'DoS',
  'DoS GoldenEye': 'DoS',
  'DoS Slowloris': 'DoS',
  'DoS Slowhttptest': 'DoS',
  Portscan: 'Scan',
  PortScan: 'Scan',
  'Infiltration - Portscan': 'Scan',
  'FTP-Patator': 'BruteForce',
  'SSH-Patator': 'BruteForce',
  Botnet: 'Botnet',
  Bot: 'Botnet',
  'Web Attack - Brute Force': 'WebAttack',
  'Web Attack - XSS': 'WebAttack',
  'Web Attack - SQL Injection': 'WebAttack',
};

/** The real 1% IoTID20 sample's binary label. */
export const BINARY_ANOMALY: LabelMap = { '0': 'Normal', '1': 'Anomaly' };
