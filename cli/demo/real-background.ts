/**
 * Extra benign background from the real device captures (../shared/data/pcaps/benign), when they are there: each
 * hub replays one capture (seeded pick, the lab's re-addressing onto 192.168.50.x), at most EPISODE_S lab seconds
 * of it, beside the generated device life. A fresh clone without the data simply runs without it.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Rng } from '../../shared/random.ts';
import { listCaptures, replayCapture } from '../../lab/background.ts';
import { FrameList } from '../../lab/wire.ts';
import type { HubPlan } from './scenario.ts';

/** One capture's episode at most this long (lab seconds), as the lab's MITM replay cuts them. */
export const EPISODE_S = 900;

export interface RealBackground {
  capture: string;
  frames: FrameList;
}

export async function realBackground(dataDir: string, plan: HubPlan, startUs: number): Promise<RealBackground | null> {
  const dir = join(dataDir, 'pcaps', 'benign');
  if (!existsSync(dir)) return null;
  const captures = listCaptures(dir);
  if (captures.length === 0) return null;
  const path = new Rng(plan.seed ^ 0x5eed).pick(captures);
  const all = new FrameList();
  try {
    await replayCapture(path, all, startUs + 1_000_000, 0);
  } catch {
    return null; // an unreadable capture only costs the extra background
  }
  const frames = new FrameList();
  const end = startUs + EPISODE_S * 1e6;
  for (let i = 0; i < all.length; i++) if (all.times[i] < end) frames.push(all.times[i], all.frames[i]);
  return { capture: basename(path), frames };
}
