// v2 pids controller.
import { join } from 'node:path';
import { readNumber, readOptional, readText, type PlannedWrite } from '../files.js';
import { keyedValue } from '../parse.js';
import type { CgroupLimits, CgroupStats } from '../types.js';

export function pidsWrites(dir: string, limits: CgroupLimits): PlannedWrite[] {
  return [{ path: join(dir, 'pids.max'), value: String(limits.pidsMax) }];
}

export async function pidsStats(dir: string): Promise<Pick<CgroupStats, 'pidsCurrent' | 'pidsPeak' | 'pidsLimitHits'>> {
  const [current, peak, events] = await Promise.all([
    readNumber(join(dir, 'pids.current')),
    // pids.peak arrived in Linux 6.1; before it the monitor's polled maximum is all there is.
    readOptional(join(dir, 'pids.peak')),
    readText(join(dir, 'pids.events')),
  ]);
  return { pidsCurrent: current, pidsPeak: peak === null ? null : Number(peak.trim()), pidsLimitHits: keyedValue(events, 'max') };
}
