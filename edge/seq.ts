/**
 * The per-hub alert sequence number: strictly increasing across restarts, so consumers can drop QoS 1
 * duplicates by (hub, seq). Numbers are reserved in blocks (the file holds the end of the reserved block), so a
 * restart never repeats one, and the disk sees one small write per block, not per alert.
 *
 * No gaps either, as the ack watermark wants (aggregator/acks.ts): a restarted hub resumes right after the last
 * alert in its offline queue (`resumeAfter`), reusing reserved numbers that no alert ever carried out (an alert is
 * queued before it is sent). Only a lost queue folder makes a gap; the `floor` on every alert lets the watermark
 * pass it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { IdsError } from '../shared/errors.ts';

export class SeqCounter {
  private nextSeq: number;
  private reservedEnd: number;

  constructor(private readonly file: string | undefined, private readonly block = 4096) {
    let start = 0;
    if (file) {
      try {
        const v = Number(readFileSync(file, 'utf8').trim());
        if (Number.isSafeInteger(v) && v >= 0) start = v;
      } catch {
        start = 0;
      }
    }
    this.nextSeq = start;
    this.reservedEnd = start;
  }

  /** Continues right after `lastSeq`, the newest seq that reached the offline queue. */
  resumeAfter(lastSeq: number): void {
    if (Number.isSafeInteger(lastSeq) && lastSeq >= 0) this.nextSeq = lastSeq + 1;
  }

  next(): number {
    if (this.nextSeq >= this.reservedEnd) this.reserve();
    return this.nextSeq++;
  }

  peek(): number {
    return this.nextSeq;
  }

  private reserve(): void {
    this.reservedEnd = this.nextSeq + this.block;
    this.persist();
  }

  /** Writes the end of the reserved block (again, e.g. after the state folder was removed under the hub). */
  persist(): void {
    if (!this.file) return;
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      writeFileSync(this.file + '.tmp', String(this.reservedEnd));
      renameSync(this.file + '.tmp', this.file);
    } catch (e) {
      throw new IdsError('STORE_FAILED', `sequence file ${this.file}: ${(e as Error).message}`, { cause: e });
    }
  }
}
