/** IoTID20's class vocabulary. A dataset's own labels map onto a model's labels through a LabelMap. */

export const IOTID20_CATEGORIES = ['Normal', 'Mirai', 'DoS', 'Scan', 'MITM ARP Spoofing'] as const;

export const IOTID20_SUBCATEGORIES = [
  'Normal', 'Mirai-UDP Flooding', 'Mirai-Hostbruteforceg', 'Mirai-HTTP Flooding', 'Mirai-Ackflooding',
  'DoS-Synflooding', 'Scan Port OS', 'Scan Hostport', 'MITM ARP Spoofing',
] as const;

/** The category each IoTID20 sub-category belongs to (an operator may correct a verdict to either). */
export const IOTID20_CATEGORY_OF: Readonly<Record<(typeof IOTID20_SUBCATEGORIES)[number], (typeof IOTID20_CATEGORIES)[number]>> = {
  'Normal': 'Normal',
  'Mirai-UDP Flooding': 'Mirai',
  'Mirai-Hostbruteforceg': 'Mirai',
  'Mirai-HTTP Flooding': 'Mirai',
  'Mirai-Ackflooding': 'Mirai',
  'DoS-Synflooding': 'DoS',
  'Scan Port OS': 'Scan',
  'Scan Hostport': 'Scan',
  'MITM ARP Spoofing': 'MITM ARP Spoofing',
};

/** An IoTID20 sub-category's category (any case); any other class as it is. */
export function categoryOf(cls: string): string {
  const k = cls.trim().toLowerCase();
  for (const [sub, cat] of Object.entries(IOTID20_CATEGORY_OF)) if (sub.toLowerCase() === k) return cat;
  return cls;
}

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
