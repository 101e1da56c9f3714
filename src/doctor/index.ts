// pawl doctor: what pawl can and cannot enforce on this host, line by line, with the fix for
// each gap. Every check reads the same facts the runs use (cgroup/probe.ts, lsm/host.ts,
// supervisor/host.ts storagePlan, rootfs/index.ts) rather than probing differently.
import type { HostConfig } from '../config/host.js';
import { resolvePolicy } from '../config/resolve.js';
import { readLsmHost } from '../lsm/host.js';
import { cgroupChecks } from './cgroup.js';
import { landlockCheck, seccompChecks, usernsChecks } from './kernel.js';
import { lsmChecks } from './lsm.js';
import { rootfsCheck, runtimeChecks, stateDirCheck, storageChecks } from './host.js';
import type { DoctorReport } from './report.js';

export { DoctorReport, Check } from './report.js';

export async function runDoctor(host: HostConfig): Promise<DoctorReport> {
  const policy = resolvePolicy({});
  const lsm = readLsmHost();
  const groups = await Promise.all([
    cgroupChecks(host), usernsChecks(lsm), seccompChecks(), Promise.resolve([landlockCheck()]), lsmChecks(lsm, policy),
    runtimeChecks(policy), rootfsCheck(host).then((c) => [c]), storageChecks(host, policy), stateDirCheck(host).then((c) => [c]),
  ]);
  const checks = groups.flat();
  return { checks, enforceable: checks.every((c) => !c.neededByDefault || c.status === 'ok') };
}

/** The report as lines for a terminal: status, name, detail, and the fix under it. */
export function formatDoctor(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.name.length));
  const lines = r.checks.flatMap((c) => [
    `${c.status.padEnd(8)} ${c.name.padEnd(width)}  ${c.detail}${c.neededByDefault || c.status === 'ok' ? '' : ' (not used by the default policy)'}`,
    ...(c.fix ? [`${' '.repeat(9 + width + 2)}fix: ${c.fix}`] : []),
  ]);
  const gaps = r.checks.filter((c) => c.neededByDefault && c.status !== 'ok').map((c) => c.name);
  lines.push('', r.enforceable ? 'the default policy is fully enforceable on this host' : `the default policy is NOT fully enforceable on this host: ${gaps.join(', ')}`);
  return lines.join('\n');
}
