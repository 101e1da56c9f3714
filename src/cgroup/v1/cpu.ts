// v1 cpu (CFS bandwidth, Documentation/scheduler/sched-bwc.rst) and cpuacct controllers.
import { join } from 'node:path';
import { readNumber, type PlannedWrite } from '../files.js';
import type { CgroupLimits, CgroupStats } from '../types.js';

export function cpuWrites(dir: string, limits: CgroupLimits): PlannedWrite[] {
  // The kernel checks the quota against the current period, so the period goes first (at create:
  // a period without a quota limits nothing).
  return [
    { path: join(dir, 'cpu.cfs_period_us'), value: String(limits.cpuPeriodUs) },
    { path: join(dir, 'cpu.cfs_quota_us'), value: String(limits.cpuQuotaUs), ...(limits.cpuAtDispatch ? { atDispatch: true as const } : {}) },
  ];
}

export async function cpuacctStats(dir: string): Promise<Pick<CgroupStats, 'cpuUsageUs'>> {
  const ns = await readNumber(join(dir, 'cpuacct.usage'));
  return { cpuUsageUs: Math.floor(ns / 1000) };
}
