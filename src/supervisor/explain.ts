// `pawl explain`: the plan of a run without running it. The same planRun() and the same backend
// prepare() a run uses, with placeholders for per-run paths ("ID", "HASH"); what it prints is the
// plan object the backend renders, and that rendering.
import { join } from 'node:path';
import type { CgroupVersion } from '../cgroup/types.js';
import { hostConfig, type HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { factsCache } from '../hostfacts/cache.js';
import { explainNetwork } from '../network/index.js';
import { DEV_NODES, type Layout, type Mount } from '../plan/layout.js';
import { planRun, type SandboxPlan } from '../plan/plan.js';
import { runtimeFor } from '../runtime/index.js';
import { explainSeccomp, seccompPlan } from '../seccomp/index.js';
import { apparmorProfile } from '../lsm/apparmor/index.js';
import { apparmorExplanation, lsmPlan } from '../lsm/apply.js';
import { describeVolume, explainFs, type FsExplanation } from '../fs/explain.js';
import { policyMounts } from '../fs/mounts.js';
import { driverFor, storagePlan, type StoragePlan } from './host.js';

export interface Explanation {
  policy: Policy;
  cgroup: { version: CgroupVersion; writes: SandboxPlan['cgroupWrites'] };
  rlimits: SandboxPlan['rlimits'];
  /** The plan's layout, exactly as every backend renders it. */
  layout: Layout;
  /** The layout's mounts, one line each, after the backend's `/`. */
  mounts: { dst: string; src: string; mode: string }[];
  /** The full argv spawned (bwrap: the shim, then the runtime; the shim gets its rlimits by prlimit(2)). */
  spawn: string[];
  runtime: string[];
  /** The filter that applies: its name, hash and what it does, one line each. */
  seccomp: { name: string; hash: string | null; lines: string[] };
  /** The backend's config file (runc/crun: config.json; null for bwrap). */
  ociConfig: object | null;
  /** The effective network rules, one line each. */
  network: string[];
  /** Disk limits: the devices throttled, what needs none and why, and the gaps the policy allows. */
  storage: StoragePlan;
  /** The AppArmor profile generated for this policy, and why it is not applied. */
  apparmor: { name: string | null; applied: boolean; note: string };
  /** How each blocked path is kept out, and Landlock's rules (fs/). */
  filesystem: FsExplanation;
}

/** One mount as explain prints it. */
export function describeMount(m: Mount, policy: Policy, stateDir: string): { dst: string; src: string; mode: string } {
  switch (m.type) {
    case 'bind':
      return { dst: m.dst, src: `${m.src}${m.ifExists ? ' (if the host has it)' : ''}`, mode: m.readOnly ? 'ro' : 'rw' };
    case 'proc':
      return { dst: m.dst, src: 'proc (new pid namespace)', mode: 'rw' };
    case 'dev':
      return { dst: m.dst, src: `tmpfs with ${DEV_NODES.join(', ')} and the fd links`, mode: 'rw' };
    case 'tmpfs':
      return { dst: m.dst, src: `tmpfs size=${m.size} mode=${m.mode.toString(8).padStart(4, '0')}${m.readOnly ? ' (a blocked path\'s empty cover)' : ''}`, mode: m.readOnly ? 'ro' : 'rw' };
    case 'source': {
      const own = policyMounts(policy).find((p) => p.kind !== 'tmpfs' && p.slot === m.slot);
      const src = own?.kind === 'volume' ? describeVolume(stateDir, own.volume, own.size) : `${m.what} (opened without following symlinks, bound by fd)`;
      return { dst: m.dst, src, mode: m.readOnly ? 'ro' : 'rw' };
    }
  }
}

export async function explain(policy: Policy, opts: { host?: HostConfig; command?: string[] } = {}): Promise<Explanation> {
  const host = opts.host ?? hostConfig();
  const driver = await driverFor(host);
  const cgroupName = 'run-ID'; // each run's own id replaces ID
  const dir = join(host.runDir, 'ID');
  const [seccomp, storage, filter] = await Promise.all([
    explainSeccomp(policy), storagePlan(host, policy, join(host.stateDir, 'rootfs')), seccompPlan(policy, factsCache(host.stateDir)),
  ]);
  const plan = planRun(
    policy,
    { cgroup: driver, ioDevices: storage.ioDevices, swapLimit: storage.swapLimit, seccomp: filter, lsm: lsmPlan(policy) },
    { rootfs: join(host.stateDir, 'rootfs', 'HASH'), workspace: join(dir, 'workspace'), egressSocket: policy.network.mode === 'restricted' ? join(dir, 'egress.sock') : null, cgroupName },
    opts.command ? { mode: 'program', command: opts.command } : { mode: 'task' },
  );
  // The same placement targets a real run gets (open() only names the group's files).
  const prepared = await runtimeFor(policy.runtime).prepare(plan, {
    id: 'ID', host, dir, cgroupName, procsFiles: driver.open(cgroupName).procsFiles, hostId: process.geteuid?.() === 0 ? host.hostIdBase : null, secret: 'SECRET',
  });
  return {
    policy,
    cgroup: { version: plan.cgroupVersion, writes: plan.cgroupWrites },
    rlimits: plan.rlimits,
    layout: plan.layout,
    mounts: [{ dst: '/', src: prepared.root, mode: 'ro' }, ...plan.layout.mounts.map((m) => describeMount(m, policy, host.stateDir))],
    spawn: [prepared.spawn.file, ...prepared.spawn.args],
    runtime: [prepared.runtime.file, ...prepared.runtime.args],
    seccomp,
    ociConfig: prepared.config,
    network: explainNetwork(policy.network),
    storage,
    apparmor: explainAppArmor(policy),
    filesystem: explainFs(policy, join(host.stateDir, 'rootfs', 'HASH')),
  };
}

/** The generated profile's name, and whether a run here applies it (and why not). */
function explainAppArmor(policy: Policy): Explanation['apparmor'] {
  const own = policy.security.apparmorProfile ? `; the policy's own profile "${policy.security.apparmorProfile}" is what runc/crun apply` : '';
  try {
    const { name } = apparmorProfile(policy);
    const { applied, note } = apparmorExplanation(policy);
    return { name, applied, note: `${note}${own}` };
  } catch (e) {
    return { name: null, applied: false, note: `no profile can be generated: ${(e as Error).message}${own}` };
  }
}
