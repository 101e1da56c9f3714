// The prepare phase: everything a run needs before anything of it runs: host checks, rootfs,
// scratch dir, /workspace's filesystem, cgroup with its limits, egress proxy, seccomp filter,
// the plan (plan/) and its rendering by the backend. Every failure here is a typed PawlError,
// and whatever was made is removed first (resources.ts).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { RunCgroup } from '../../cgroup/types.js';
import type { HostConfig } from '../../config/host.js';
import type { Policy } from '../../config/policy.js';
import { PawlError } from '../../errors.js';
import { factsCache } from '../../hostfacts/cache.js';
import { EgressProxy } from '../../network/index.js';
import { planRun, limitsFor, type SandboxPlan } from '../../plan/plan.js';
import { ensureRootfs } from '../../rootfs/index.js';
import { runtimeFor, type Prepared } from '../../runtime/index.js';
import { seccompPlan } from '../../seccomp/index.js';
import { collectGarbageOnce } from '../gc.js';
import { assertSupported, driverFor, storagePlan } from '../host.js';
import { assertHostIds, pickHostId } from '../../runtime/ids.js';
import { createScratch, type Scratch } from '../scratch.js';
import { teardownsPending, teardownsSettled } from '../teardowns.js';
import { mountWorkspace, workspaceFsUnavailable } from '../workspace-fs.js';
import { RunResources } from './resources.js';
import { lsmPlan, prepareLsm } from '../../lsm/apply.js';
import { landlockDegraded, landlockFilteredOut } from '../../lsm/landlock/probe.js';
import { assertTrustedStateDir } from '../../hostfacts/trusted-dir.js';
import { openSources } from '../../fs/mounts.js';
import { listenSeccompAudit } from '../../seccomp/classify.js';
import { mountedNoexec } from '../../lsm/landlock/rules.js';
import { WORKSPACE } from '../../plan/layout.js';

export interface RunRequest {
  policy: Policy;
  host: HostConfig;
  /** task: runs the harness and expects a reply on fd 4. program: runs `command` as is. */
  mode: 'task' | 'program';
  command?: string[];
}

export interface PreparedRun {
  plan: SandboxPlan;
  backend: Prepared;
  scratch: Scratch;
  cgroup: RunCgroup;
  /** Protections this host could not apply that the policy allowed to skip; limits with nothing to act on. */
  degraded: string[];
  notNeeded: string[];
}

/**
 * Start what prepare needs and a task does not decide (the cgroup driver, the host-id check,
 * gc of dead runs) while the task is still loading: a CLI run's task loading waits on the schema
 * thread, and these spawn getent and read host facts meanwhile. Each is memoised per process, so
 * prepare picks up the same promise (a failure included: prepare reports it).
 */
export function prepareAhead(host: HostConfig): void {
  try {
    assertTrustedStateDir(host.stateDir, host.runDir);
  } catch {
    return; // prepare says why, before it uses anything there
  }
  void collectGarbageOnce(host);
  driverFor(host).catch(() => {});
  assertHostIds(host).catch(() => {});
}

/**
 * A host id no live run of this process holds. A run whose result came before its teardown
 * (runTask's default) holds its id until that teardown ends: with none free (a small range), those
 * are waited for once.
 */
async function freeHostId(host: HostConfig): Promise<number | null> {
  try {
    return pickHostId(host);
  } catch (e) {
    if (!teardownsPending()) throw e;
    await teardownsSettled();
    return pickHostId(host);
  }
}

/** Prepare a run whose resources are recorded in `res`; on failure they are released before the error propagates. */
export async function prepareRun(req: RunRequest, res: RunResources): Promise<PreparedRun> {
  try {
    return await prepare(req, res);
  } catch (e) {
    await res.release();
    // One channel before a run exists: typed PawlErrors only (a plain Error is pawl's own failure to set up).
    throw e instanceof PawlError ? e : new PawlError('RuntimeError', `cannot prepare the sandbox: ${(e as Error).message}`);
  }
}

async function prepare(req: RunRequest, res: RunResources): Promise<PreparedRun> {
  const { policy, host } = req;
  assertSupported(policy);
  assertTrustedStateDir(host.stateDir, host.runDir);
  // AppArmor/SELinux: refused here, or loaded, or a gap the policy allows; Landlock likewise.
  const lsmGaps = [...(await prepareLsm(policy)), ...landlockDegraded(policy)];
  const command = req.mode === 'program' ? req.command ?? [] : null;
  if (command?.length === 0) throw new PawlError('InvalidPolicy', 'no program to run');
  void collectGarbageOnce(host);
  const driver = await driverFor(host);
  // Independent steps side by side; whatever was created is recorded before any error
  // propagates (every step started is waited for), so the release on the way out removes it.
  // The longest chain first: the scratch dir (synchronous), /workspace's filesystem, then the
  // cgroup whose io limits name its loop device; the other steps' work on the event loop runs
  // while its calls wait (it started after them, 6-7 ms into a cold run's prepare). The rootfs
  // dir's storage is its parent's (both under stateDir): no need to wait for the build. Asked
  // once: the storage plan's refusal or degradation and the mount below go by one answer.
  const noWorkspaceFs = workspaceFsUnavailable();
  await assertHostIds(host);
  const hostId = (res.hostId = await freeHostId(host));
  const scratch = (res.scratch = createScratch(host.runDir, res.id, hostId, host.cgroupParent));
  const workspaceLoop = noWorkspaceFs === null ? mountWorkspace(scratch.dir, scratch.workspace, policy, hostId, factsCache(host.stateDir), mountedNoexec(policy, WORKSPACE)) : Promise.resolve(null);
  workspaceLoop.catch(() => {}); // at once: nothing between here and the awaits below may leave a mount unawaited
  const rootfsP = ensureRootfs(host);
  const storageP = storagePlan(host, policy, join(host.stateDir, 'rootfs'), noWorkspaceFs);
  const seccompP = seccompPlan(policy, factsCache(host.stateDir));
  for (const p of [rootfsP, storageP, seccompP]) p.catch(() => {}); // awaited below, with the rest
  const cgroupName = `run-${res.id}`;
  const egressSocket = join(scratch.dir, 'egress.sock');
  // /workspace's loop device is throttled where its image's storage is: the run dir's disk (the
  // walk from the loop device to its backing file would find that disk again: ~0.8 ms a run).
  const ioDevicesP = Promise.all([storageP, workspaceLoop]).then(([storage, loop]) => [...new Set([...storage.ioDevices, ...(loop && storage.runDirDevices.length ? [loop] : [])])]);
  const cgroupP = Promise.all([storageP, ioDevicesP]).then(([storage, devices]) => driver.create(cgroupName, limitsFor(policy, devices, storage.swapLimit, req.mode)));
  const egressP = policy.network.mode === 'restricted' ? EgressProxy.start({ policy: policy.network, socketPath: egressSocket, owner: hostId }) : Promise.resolve(null);
  const [rootfsR, storageR, seccompR, cgroupR, workspaceR, egressR] = await Promise.allSettled([rootfsP, storageP, seccompP, cgroupP, workspaceLoop, egressP]);
  if (cgroupR.status === 'fulfilled') res.cgroup = cgroupR.value;
  if (egressR.status === 'fulfilled' && egressR.value) res.egress = egressR.value;
  for (const r of [rootfsR, storageR, seccompR, cgroupR, workspaceR, egressR]) if (r.status === 'rejected') throw r.reason;
  const rootfs = (rootfsR as PromiseFulfilledResult<Awaited<typeof rootfsP>>).value;
  const storage = (storageR as PromiseFulfilledResult<Awaited<typeof storageP>>).value;
  const ioDevices = await ioDevicesP; // settled: its parts are
  const cgroup = (cgroupR as PromiseFulfilledResult<RunCgroup>).value;
  const seccomp = (seccompR as PromiseFulfilledResult<Awaited<ReturnType<typeof seccompPlan>>>).value;
  lsmGaps.push(...landlockFilteredOut(policy, seccomp && seccomp.allows));
  // A seccomp kill is recorded by the kernel's audit: join its netlink log group before anything runs.
  if (seccomp) listenSeccompAudit();
  // Bind and volume sources, opened without following links, handed to the runtime by fd.
  const sources = (res.sources = await openSources(policy, host, res.id));
  const lsm = lsmPlan(policy);
  const plan = planRun(
    policy,
    { cgroup: driver, ioDevices, swapLimit: storage.swapLimit, seccomp, lsm: { apparmor: lsm.apparmor, selinux: lsm.selinux } },
    { rootfs: rootfs.path, workspace: scratch.workspace, egressSocket: res.egress ? egressSocket : null, cgroupName },
    { mode: req.mode, ...(command ? { command } : {}) },
  );
  const backend = await runtimeFor(policy.runtime).prepare(plan, { id: res.id, host, dir: scratch.dir, cgroupName, procsFiles: cgroup.procsFiles, hostId, secret: randomBytes(6).toString('hex'), sources });
  return { plan, backend, scratch, cgroup, degraded: [...storage.degraded, ...lsmGaps], notNeeded: storage.notNeeded };
}
