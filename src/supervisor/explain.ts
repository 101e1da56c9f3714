// `pawl explain`: the plan of a run without running it. Uses the same planRun() the sandbox
// uses, with placeholders for per-run paths.
import { join } from 'node:path';
import { hostConfig, type HostConfig } from '../config/host.js';
import type { Policy } from '../config/policy.js';
import { FULL_NETWORK_FILES, ROOTFS_MOUNTS } from '../rootfs/layout.js';
import { driverFor, storagePlan, type StoragePlan } from './host.js';
import { ociRunFacts, type OciSpec } from '../runtime/index.js';
import { HARNESS_COMMAND, planRun, INFO_FD, READY_FD, SECCOMP_FD, type RunPlan } from './plan.js';
import { explainSeccomp } from '../seccomp/index.js';
import { explainNetwork } from '../network/index.js';
import { EGRESS_SOCKET } from '../rootfs/layout.js';
import { apparmorProfile } from '../lsm/apparmor/index.js';
import { apparmorExplanation } from '../lsm/apply.js';
import { explainFs, type FsExplanation } from '../fs/explain.js';

export interface Explanation {
  policy: Policy;
  cgroup: { version: 'v1' | 'v2'; writes: RunPlan['cgroupWrites'] };
  rlimits: RunPlan['rlimits'];
  mounts: { dst: string; src: string; mode: string }[];
  /** The full argv spawned: shim, prlimit, setpriv, runtime. */
  spawn: string[];
  runtime: string[];
  /** The filter that applies: its name, hash and what it does, one line each. */
  seccomp: { name: string; hash: string | null; lines: string[] };
  /** runc/crun: the bundle's config.json (null for bwrap). */
  ociConfig: OciSpec | null;
  /** The effective network rules, one line each. */
  network: string[];
  /** Disk limits: the devices throttled, what needs none and why, and the gaps the policy allows. */
  storage: StoragePlan;
  /** The AppArmor profile generated for this policy, and why it is not applied. */
  apparmor: { name: string | null; applied: boolean; note: string };
  /** fs: masked /proc paths, how each blocked path is kept out, Landlock's rules. */
  filesystem: Omit<FsExplanation, 'mounts'>;
}

export async function explain(policy: Policy, opts: { host?: HostConfig; command?: string[] } = {}): Promise<Explanation> {
  const host = opts.host ?? hostConfig();
  const driver = await driverFor(host);
  const cgroupName = 'run-ID'; // each run's own id replaces ID
  const rootfs = join(host.stateDir, 'rootfs', 'HASH');
  const workspace = join(host.runDir, 'ID', 'workspace');
  const oci = await ociRunFacts(host, policy, {
    id: 'ID', bundle: join(host.runDir, 'ID'), cgroupName, cgroupVersion: driver.version, hostId: host.hostIdBase, preserveFds: opts.command ? 0 : 2,
  });
  const seccomp = await explainSeccomp(policy);
  const storage = await storagePlan(host, policy, join(host.stateDir, 'rootfs'));
  // The same placement targets a real run gets (open() only names the group's files).
  const procsFiles = driver.open(cgroupName).procsFiles;
  const plan = planRun({
    policy, cgroupName, driver, procsFiles, rootfs, workspace,
    command: opts.command ?? HARNESS_COMMAND,
    ioDevices: storage.ioDevices,
    hostId: process.geteuid?.() === 0 ? host.hostIdBase : null,
    seccompFd: policy.runtime === 'bwrap' && seccomp.hash !== null ? SECCOMP_FD : null,
    readyFd: policy.runtime === 'bwrap' ? READY_FD : null,
    infoFd: policy.runtime === 'bwrap' ? INFO_FD : null,
    oci,
    egressSocket: policy.network.mode === 'restricted' ? join(host.runDir, 'ID', 'egress.sock') : null,
  });
  const fs = explainFs(policy, rootfs, host.stateDir);
  const mounts = [
    { dst: '/', src: oci ? `${oci.bundle}/root, an empty dir, read-only after set-up` : 'tmpfs, remounted read-only after set-up', mode: 'ro' },
    ...ROOTFS_MOUNTS.map((dir) => ({ dst: dir, src: `${rootfs}${dir}`, mode: 'ro' })),
    ...(policy.network.mode === 'full' ? FULL_NETWORK_FILES.map((f) => ({ dst: f, src: `${f} (the host's)`, mode: 'ro' })) : []),
    { dst: '/proc', src: 'proc (new pid namespace)', mode: 'rw' },
    { dst: '/dev', src: 'minimal devtmpfs (null, zero, full, random, urandom, tty)', mode: 'rw' },
    { dst: '/tmp', src: `tmpfs size=${policy.resources.tmpSize} mode=1777`, mode: 'rw' },
    { dst: '/workspace', src: workspace, mode: 'rw' },
    ...(policy.network.mode === 'restricted' ? [{ dst: EGRESS_SOCKET, src: `${join(host.runDir, 'ID', 'egress.sock')} (the run's egress proxy)`, mode: 'ro' }] : []),
    ...fs.mounts,
  ];
  return {
    policy,
    cgroup: { version: driver.version, writes: plan.cgroupWrites },
    rlimits: plan.rlimits,
    mounts,
    spawn: [plan.spawn.file, ...plan.spawn.args],
    runtime: [plan.runtime.file, ...plan.runtime.args],
    seccomp,
    ociConfig: plan.config,
    network: explainNetwork(policy.network),
    storage,
    apparmor: explainAppArmor(policy),
    filesystem: { masked: fs.masked, blocked: fs.blocked, landlock: fs.landlock },
  };
}

/** The generated profile's name and why it is not applied (a run does not need it: explain never fails on it). */
function explainAppArmor(policy: Policy): Explanation['apparmor'] {
  const own = policy.security.apparmorProfile ? `; the policy's own profile "${policy.security.apparmorProfile}" is what runc/crun apply` : '';
  try {
    const { name } = apparmorProfile(policy);
    const how = apparmorExplanation(policy); // src/lsm/apply.ts
    return { name, applied: how.applied, note: `${how.note}${own}` };
  } catch (e) {
    return { name: null, applied: false, note: `no profile can be generated: ${(e as Error).message}${own}` };
  }
}
