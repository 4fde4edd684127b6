/**
 * The flow-feature schema: IoTID20's 86 columns (CICFlowMeter "v4" short names with underscores), which columns
 * are identifiers, ports, labels, and which the flow meter computes. Every stage names features by these strings.
 */

export const IOTID20_COLUMNS = [
  'Flow_ID', 'Src_IP', 'Src_Port', 'Dst_IP', 'Dst_Port', 'Protocol', 'Timestamp', 'Flow_Duration',
  'Tot_Fwd_Pkts', 'Tot_Bwd_Pkts', 'TotLen_Fwd_Pkts', 'TotLen_Bwd_Pkts',
  'Fwd_Pkt_Len_Max', 'Fwd_Pkt_Len_Min', 'Fwd_Pkt_Len_Mean', 'Fwd_Pkt_Len_Std',
  'Bwd_Pkt_Len_Max', 'Bwd_Pkt_Len_Min', 'Bwd_Pkt_Len_Mean', 'Bwd_Pkt_Len_Std',
  'Flow_Byts/s', 'Flow_Pkts/s', 'Flow_IAT_Mean', 'Flow_IAT_Std', 'Flow_IAT_Max', 'Flow_IAT_Min',
  'Fwd_IAT_Tot', 'Fwd_IAT_Mean', 'Fwd_IAT_Std', 'Fwd_IAT_Max', 'Fwd_IAT_Min',
  'Bwd_IAT_Tot', 'Bwd_IAT_Mean', 'Bwd_IAT_Std', 'Bwd_IAT_Max', 'Bwd_IAT_Min',
  'Fwd_PSH_Flags', 'Bwd_PSH_Flags', 'Fwd_URG_Flags', 'Bwd_URG_Flags', 'Fwd_Header_Len', 'Bwd_Header_Len',
  'Fwd_Pkts/s', 'Bwd_Pkts/s', 'Pkt_Len_Min', 'Pkt_Len_Max', 'Pkt_Len_Mean', 'Pkt_Len_Std', 'Pkt_Len_Var',
  'FIN_Flag_Cnt', 'SYN_Flag_Cnt', 'RST_Flag_Cnt', 'PSH_Flag_Cnt', 'ACK_Flag_Cnt', 'URG_Flag_Cnt',
  'CWE_Flag_Count', 'ECE_Flag_Cnt', 'Down/Up_Ratio', 'Pkt_Size_Avg', 'Fwd_Seg_Size_Avg', 'Bwd_Seg_Size_Avg',
  'Fwd_Byts/b_Avg', 'Fwd_Pkts/b_Avg', 'Fwd_Blk_Rate_Avg', 'Bwd_Byts/b_Avg', 'Bwd_Pkts/b_Avg', 'Bwd_Blk_Rate_Avg',
  'Subflow_Fwd_Pkts', 'Subflow_Fwd_Byts', 'Subflow_Bwd_Pkts', 'Subflow_Bwd_Byts',
  'Init_Fwd_Win_Byts', 'Init_Bwd_Win_Byts', 'Fwd_Act_Data_Pkts', 'Fwd_Seg_Size_Min',
  'Active_Mean', 'Active_Std', 'Active_Max', 'Active_Min', 'Idle_Mean', 'Idle_Std', 'Idle_Max', 'Idle_Min',
  'Label', 'Cat', 'Sub_Cat',
] as const;

export type Column = (typeof IOTID20_COLUMNS)[number];

/** Columns that name a host, a flow or a moment: they identify the testbed, not the behaviour, and never transfer. */
export const IDENTIFIER_COLUMNS: readonly Column[] = ['Flow_ID', 'Src_IP', 'Dst_IP', 'Timestamp'];
export const PORT_COLUMNS: readonly Column[] = ['Src_Port', 'Dst_Port'];
export const LABEL_COLUMNS: readonly Column[] = ['Label', 'Cat', 'Sub_Cat'];

/** The 83 columns a flow meter writes (everything but the labels), in IoTID20 order. */
export const FLOW_COLUMNS: readonly Column[] = IOTID20_COLUMNS.filter((c) => !LABEL_COLUMNS.includes(c));

/** The 76 statistical features the flow meter computes from packets (no identifiers, ports or protocol). */
export const STAT_FEATURES: readonly Column[] = FLOW_COLUMNS.filter(
  (c) => !IDENTIFIER_COLUMNS.includes(c) && !PORT_COLUMNS.includes(c) && c !== 'Protocol',
);

/** Columns a model may use as input: the statistical features plus protocol and ports. */
export const MODEL_CANDIDATE_COLUMNS: readonly Column[] = FLOW_COLUMNS.filter((c) => !IDENTIFIER_COLUMNS.includes(c));

/**
 * The features a hub can feed a model: what its flow meter computes per flow (the 76 statistical features) plus
 * the flow's ports and protocol (edge/raw-columns.ts lays the hub's rows out in this order). A bundle reading
 * anything else is refused by `bundle build` and by the hub at load.
 */
export const HUB_FEATURES: readonly Column[] = MODEL_CANDIDATE_COLUMNS;

const HUB_FEATURE_SET: ReadonlySet<string> = new Set(HUB_FEATURES);

/** The features of `features` a hub cannot compute (names exactly as the bundle lists them), in their order. */
export function featuresHubLacks(features: readonly string[]): string[] {
  return features.filter((f) => !HUB_FEATURE_SET.has(f));
}

/**
 * Which port columns stay as model inputs. Default `dst`: the destination port names the attacked service
 * (telnet 23/2323 for Mirai's brute force, 80 for its HTTP flood) and means the same on any network; the source
 * port is picked at random by the sender's OS and in a testbed mostly tells its few hosts apart (identity leakage).
 */
export type PortPolicy = 'none' | 'dst' | 'both';

export function portColumnsFor(policy: PortPolicy): Column[] {
  if (policy === 'none') return [];
  if (policy === 'dst') return ['Dst_Port'];
  return ['Src_Port', 'Dst_Port'];
}

/**
 * Other spellings of the same columns: CIC-IDS2017's long names ("Total Length of Fwd Packets"), the
 * "improved" re-release's names and CICFlowMeter's v4 short names with spaces. Matching ignores case,
 * spaces and underscores, so only names that differ in words are listed.
 */
const ALIASES: Partial<Record<Column, string[]>> = {
  Src_IP: ['Source IP'],
  Src_Port: ['Source Port'],
  Dst_IP: ['Destination IP'],
  Dst_Port: ['Destination Port'],
  Tot_Fwd_Pkts: ['Total Fwd Packets', 'Total Fwd Packet'],
  Tot_Bwd_Pkts: ['Total Backward Packets', 'Total Bwd packets'],
  TotLen_Fwd_Pkts: ['Total Length of Fwd Packets', 'Total Length of Fwd Packet'],
  TotLen_Bwd_Pkts: ['Total Length of Bwd Packets', 'Total Length of Bwd Packet'],
  Fwd_Pkt_Len_Max: ['Fwd Packet Length Max'],
  Fwd_Pkt_Len_Min: ['Fwd Packet Length Min'],
  Fwd_Pkt_Len_Mean: ['Fwd Packet Length Mean'],
  Fwd_Pkt_Len_Std: ['Fwd Packet Length Std'],
  Bwd_Pkt_Len_Max: ['Bwd Packet Length Max'],
  Bwd_Pkt_Len_Min: ['Bwd Packet Length Min'],
  Bwd_Pkt_Len_Mean: ['Bwd Packet Length Mean'],
  Bwd_Pkt_Len_Std: ['Bwd Packet Length Std'],
  'Flow_Byts/s': ['Flow Bytes/s'],
  'Flow_Pkts/s': ['Flow Packets/s'],
  Fwd_IAT_Tot: ['Fwd IAT Total'],
  Bwd_IAT_Tot: ['Bwd IAT Total'],
  Fwd_Header_Len: ['Fwd Header Length'],
  Bwd_Header_Len: ['Bwd Header Length'],
  'Fwd_Pkts/s': ['Fwd Packets/s'],
  'Bwd_Pkts/s': ['Bwd Packets/s'],
  Pkt_Len_Min: ['Min Packet Length', 'Packet Length Min'],
  Pkt_Len_Max: ['Max Packet Length', 'Packet Length Max'],
  Pkt_Len_Mean: ['Packet Length Mean'],
  Pkt_Len_Std: ['Packet Length Std'],
  Pkt_Len_Var: ['Packet Length Variance'],
  FIN_Flag_Cnt: ['FIN Flag Count'],
  SYN_Flag_Cnt: ['SYN Flag Count'],
  RST_Flag_Cnt: ['RST Flag Count'],
  PSH_Flag_Cnt: ['PSH Flag Count'],
  ACK_Flag_Cnt: ['ACK Flag Count'],
  URG_Flag_Cnt: ['URG Flag Count'],
  CWE_Flag_Count: ['CWR Flag Count'],
  ECE_Flag_Cnt: ['ECE Flag Count'],
  Pkt_Size_Avg: ['Average Packet Size'],
  Fwd_Seg_Size_Avg: ['Avg Fwd Segment Size', 'Fwd Segment Size Avg'],
  Bwd_Seg_Size_Avg: ['Avg Bwd Segment Size', 'Bwd Segment Size Avg'],
  'Fwd_Byts/b_Avg': ['Fwd Avg Bytes/Bulk', 'Fwd Bytes/Bulk Avg'],
  'Fwd_Pkts/b_Avg': ['Fwd Avg Packets/Bulk', 'Fwd Packet/Bulk Avg'],
  Fwd_Blk_Rate_Avg: ['Fwd Avg Bulk Rate', 'Fwd Bulk Rate Avg'],
  'Bwd_Byts/b_Avg': ['Bwd Avg Bytes/Bulk', 'Bwd Bytes/Bulk Avg'],
  'Bwd_Pkts/b_Avg': ['Bwd Avg Packets/Bulk', 'Bwd Packet/Bulk Avg'],
  Bwd_Blk_Rate_Avg: ['Bwd Avg Bulk Rate', 'Bwd Bulk Rate Avg'],
  Subflow_Fwd_Pkts: ['Subflow Fwd Packets'],
  Subflow_Fwd_Byts: ['Subflow Fwd Bytes'],
  Subflow_Bwd_Pkts: ['Subflow Bwd Packets'],
  Subflow_Bwd_Byts: ['Subflow Bwd Bytes'],
  Init_Fwd_Win_Byts: ['Init_Win_bytes_forward', 'FWD Init Win Bytes'],
  Init_Bwd_Win_Byts: ['Init_Win_bytes_backward', 'Bwd Init Win Bytes'],
  Fwd_Act_Data_Pkts: ['act_data_pkt_fwd'],
  Fwd_Seg_Size_Min: ['min_seg_size_forward'],
};

const squash = (name: string): string => name.toLowerCase().replace(/[\s_]+/g, '');

const LOOKUP: ReadonlyMap<string, Column> = (() => {
  const m = new Map<string, Column>();
  for (const c of IOTID20_COLUMNS) m.set(squash(c), c);
  for (const [c, names] of Object.entries(ALIASES) as [Column, string[]][]) for (const n of names) m.set(squash(n), c);
  return m;
})();

/** The IoTID20 name of a header cell in any known CICFlowMeter dialect, or undefined for a column we do not know. */
export function canonicalColumn(headerCell: string): Column | undefined {
  return LOOKUP.get(squash(headerCell.replace(/^\uFEFF/, '')));
}
