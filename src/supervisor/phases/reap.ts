// The reap phase: once the program has ended (or the kill's grace ran out), everything the run
// left dies with its group, and the final facts are read: the cgroup's last figures, the
// workspace's size, the proxy's counts, the kernel's seccomp records, the runtime's set-up record.
// What the run held is released by the caller afterwards (resources.ts), on every path.
import type { CgroupStats } from '../../cgroup/types.js';
import type { EgressStats } from '../../network/index.js';
import type { RuntimeSandbox, SandboxExit } from '../../runtime/index.js';
import { awaitAuditDelivery, readSeccompRecords, recordSyscallName, runRecords, type AuditRecord } from '../../seccomp/classify.js';
import type { SeccompPlan } from '../../seccomp/index.js';
import type { HarnessReply } from '../../task/protocol.js';
import { withDeadline } from '../../util/wait.js';
import { treeUsage } from '../scratch.js';
import { workspaceFs } from '../workspace-fs.js';
import type { RunIo } from './io.js';
import type { RunResources } from './resources.js';
import type { RunWatch } from './watch.js';

/** How long a killed run's end may take before its verdict is given without it. */
const KILL_GRACE_MS = 10_000;
/** How long the final look at the workspace (walk, statfs) may take. */
const WORKSPACE_READ_MS = 2000;
/** A timer that never holds the process open. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Everything known at the end of a run, for classify and the result. */
export interface EndFacts {
  exit: SandboxExit;
  stats: CgroupStats | null;
  workspaceBytes: number;
  workspaceFull: boolean;
  stdout: string;
  stderr: string;
  reply: HarnessReply | null;
  egress: EgressStats | null;
  seccompKills: { syscall: string | null }[];
  setupFailed: boolean;
}

/**
 * Wait for the end. A process asleep in uninterruptible I/O cannot die until the I/O ends: once
 * the supervisor has killed the run, its verdict does not wait for that past a grace period (the
 * group then stays, on the leftover list, for gc).
 */
export function awaitEnd(sandbox: RuntimeSandbox, watch: RunWatch): Promise<SandboxExit> {
  return Promise.race([sandbox.exited, watch.killed.then(() => sleep(KILL_GRACE_MS)).then(() => ({ code: null, signal: null }))]);
}

export async function reap(
  exit: SandboxExit,
  run: { sandbox: RuntimeSandbox; watch: RunWatch; io: RunIo; res: RunResources; workspace: string; diskSpace: number; mode: 'task' | 'program'; seccomp: SeccompPlan | null; atReply: boolean },
): Promise<EndFacts> {
  const { sandbox, watch, io, res } = run;
  // Anything the program left behind dies with the group, which also closes its pipes. A run
  // ended at its reply does not wait for the group to empty: every process of the group has been
  // sent SIGKILL (a fork in flight dies with the namespace's init moments later) and node's own
  // death (~10 ms: its address space torn down) is left to the teardown, which waits for the
  // group. The harness closed its stdio before it replied, so the pipes end as soon as the
  // runtime's processes are gone, and the final figures are read meanwhile: the CPU time of the
  // exits themselves is not counted.
  await res.killGroupIfPopulated({ wait: !run.atReply });
  // Once the pipes have ended, the proxy's counts and denials are final.
  const ended = withDeadline(sandbox.closed, 2000).then(() => res.closeEgress());
  if (!run.atReply) await ended;
  // At the reply, without a proxy to settle, the output is complete once the pipes hold nothing
  // unread (RunIo.drained): the runtime's processes need not be dead for that (~3 ms of a pooled run).
  const output = run.atReply && !res.egress ? io.drained(sandbox).then((done) => (done ? null : ended)) : ended;
  // The kernel's seccomp records beside the rest: every process of the run is dead or killed by
  // now, and a record is queued at the call it records (waiting for its delivery is two audit
  // round trips, each through a kernel thread: ~0.8 ms here).
  const kills = seccompKillsOf(sandbox, watch, run.seccomp, exit.signal === 'SIGSYS' || exit.code === 128 + 31);
  kills.catch(() => {}); // awaited below, its failure with it: not unhandled if the reads fail first
  const [egress, fs] = await Promise.all([output, finalFigures(watch, run.workspace)]);
  // Only now is everything the program wrote in: both read here, at one moment.
  io.flush();
  const stdout = io.stdout.text();
  const stderr = io.stderr.text();
  // Its own filesystem: capped at diskSpace by the kernel (the rest is ext4's slack: watch.ts).
  const walked = fs ? Math.min(fs.usedBytes, run.diskSpace) : await withDeadline(treeUsage(run.workspace, { live: false }), WORKSPACE_READ_MS);
  const workspaceBytes = Math.max(watch.poller.peaks.workspaceBytes, walked ?? 0);
  const reply = run.mode === 'task' ? io.parsedReply() : null;
  const seccompKills = await kills;
  return {
    exit,
    stats: watch.poller.last,
    workspaceBytes,
    workspaceFull: watch.poller.peaks.workspaceFull || (fs?.full ?? false),
    stdout,
    stderr,
    reply,
    egress,
    seccompKills,
    setupFailed: sandbox.setupFailed(),
  };
}

/**
 * The cgroup's last figures, and /workspace's own filesystem (null: a plain dir, or no answer in
 * time). The workspace is read under deadlines: a directory locked by a process asleep in I/O
 * would hold the walk; then the watch's last figures stand. Its own filesystem: one statfs.
 */
async function finalFigures(watch: RunWatch, workspace: string) {
  // The statfs first: it runs on libuv's thread pool while the poll reads the cgroup's files here.
  const fs = withDeadline(workspaceFs(workspace), WORKSPACE_READ_MS);
  await watch.poller.poll(true);
  return fs;
}

/**
 * Every seccomp kill of the run's processes, from the kernel's audit records (root, with the
 * run's audit session or init pid). The kernel queues a record at the call and sends it later:
 * with the audit socket, pawl waits until the kernel's queue is empty (every process of the run is
 * gone or killed, and a record is queued at the call it records); without it (the kernel log
 * only), a death that looks like a kill waits up to 200 ms for its record and a run under a filter
 * that kills gets one short second look.
 */
async function seccompKillsOf(sandbox: RuntimeSandbox, watch: RunWatch, seccomp: SeccompPlan | null, exitLooksKilled: boolean): Promise<{ syscall: string | null }[]> {
  const session = watch.auditSession;
  if (!seccomp || (session === null && sandbox.initPid === null)) return [];
  const key = { since: watch.since, ...(session !== null ? { session } : {}), ...(sandbox.initPid !== null ? { pids: [sandbox.initPid] } : {}) };
  const named = (found: AuditRecord[]) => found.map((r) => ({ syscall: recordSyscallName(r) }));
  if ((exitLooksKilled || seccomp.killsOnViolation) && (await awaitAuditDelivery())) return named(runRecords(key, readSeccompRecords()));
  for (let i = 0; ; i++) {
    const found = runRecords(key, readSeccompRecords());
    const tries = exitLooksKilled ? 20 : seccomp.killsOnViolation ? 1 : 0;
    if (found.length || i >= tries) return named(found);
    await new Promise((r) => setTimeout(r, exitLooksKilled ? 10 : 5));
  }
}
