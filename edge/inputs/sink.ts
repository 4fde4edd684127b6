/** What an input writes flows into (the Batcher implements it). */
export interface FlowSink {
  /** Raw columns per row (edge/raw-columns.ts). */
  readonly inputs: number;
  readonly full: boolean;
  readonly overflow: 'drop' | 'block';
  /** Queues a flow; false when it was shed. */
  offer(row: ArrayLike<number>, offset: number, src: string, dst: string, sport: number, dport: number, proto: number): boolean;
  /** Resolves when there is room (inputs in 'block' mode wait on it). */
  room(): Promise<void>;
}
