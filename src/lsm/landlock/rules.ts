// Landlock's rules as a pure function of the policy, and the launcher argv that applies them
// inside the sandbox just before the task (rootfs/landlock/landlock-exec.c): after the runtime's
// mounts (a Landlock domain forbids mount), for every backend alike.
import type { Policy } from '../../config/policy.js';
import { EGRESS_SOCKET, ROOTFS_MOUNTS } from '../../rootfs/layout.js';
import { policyMounts } from '../../fs/mounts.js';
import { LANDLOCK_HELPER } from '../../rootfs/landlock.js';

export interface LandlockRules {
  /** Dirs whose names (not contents) may be listed, beneath too. */
  list: string[];
  read: string[];
  write: string[];
  execute: string[];
}

/** What node and the harness need whatever the policy says: the rootfs, /proc and /dev. */
const RUNTIME_READ = [...ROOTFS_MOUNTS, '/proc', '/dev'];
// The device nodes, not /dev: bwrap's /dev is a tmpfs the task's user owns, without noexec (a .so
// written to /dev/shm could be mapped executable), and nothing there is the task's to write.
const RUNTIME_WRITE = ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'];
const RUNTIME_EXECUTE = ['/usr', '/opt/pawl'];

/**
 * The allow lists. The policy's own (filesystem.filePermissions) replace the defaults for the
 * task's data: reads of /tmp, /workspace and every mount, writes to the writable ones, execute
 * of the rootfs's programs and read-only binds.
 */
export function landlockRules(policy: Policy): LandlockRules {
  const fp = policy.filesystem.filePermissions;
  const mounts = policyMounts(policy);
  const writable = mounts.filter((m) => m.kind === 'tmpfs' || !m.readonly).map((m) => m.target);
  const egress = policy.network.mode === 'restricted' ? [EGRESS_SOCKET.slice(0, EGRESS_SOCKET.lastIndexOf('/'))] : [];
  const uniq = (xs: string[]) => [...new Set(xs)];
  return {
    // Programs list / (node's probe of its own tree, `ls /`): names only, no file's contents.
    list: ['/'],
    read: uniq([...RUNTIME_READ, ...egress, ...(fp.allowRead ?? ['/tmp', '/workspace', ...mounts.map((m) => m.target)])]),
    write: uniq([...RUNTIME_WRITE, ...(fp.allowWrite ?? ['/tmp', '/workspace', ...writable])]),
    // Programs the operator bound in read-only run; no tree the task can write is executable.
    execute: uniq([...RUNTIME_EXECUTE, ...(fp.allowExecute ?? mounts.filter((m) => m.kind === 'bind' && m.readonly).map((m) => m.target))]),
  };
}

/**
 * Whether a tree the task can write is mounted noexec: when Landlock is on and its execute rules
 * reach nothing at or under it. Landlock refuses execve there, but not an executable mapping of
 * a file written there (a .so given to process.dlopen ran its code from /tmp); noexec refuses that.
 * A policy that lets the task execute from it (filePermissions.allowExecute) keeps it executable.
 */
export function mountedNoexec(policy: Policy, target: string): boolean {
  if (policy.filesystem.landlock === 'off') return false;
  const inside = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);
  // (No mount of the policy's can sit below another, or below /tmp or /workspace: config/filesystem.ts.)
  return !landlockRules(policy).execute.some((p) => inside(p, target) || inside(target, p));
}

/** The task's argv behind the launcher (filesystem.landlock "off": as is). */
export function landlockCommand(policy: Policy, command: string[]): string[] {
  if (policy.filesystem.landlock === 'off') return command;
  const r = landlockRules(policy);
  const rules = [...r.list.flatMap((p) => ['-l', p]), ...r.read.flatMap((p) => ['-r', p]), ...r.write.flatMap((p) => ['-w', p]), ...r.execute.flatMap((p) => ['-x', p])];
  return [LANDLOCK_HELPER, policy.filesystem.landlock, ...rules, '--', ...command];
}

/** One line per rule (explain). */
export function explainLandlock(policy: Policy, abi: number): string[] {
  if (policy.filesystem.landlock === 'off') return ['off (filesystem.landlock): no Landlock domain; mounts alone decide what the task reaches'];
  const r = landlockRules(policy);
  const head = abi > 0 ? `Landlock ABI ${abi}, ${policy.filesystem.landlock}` : `this kernel has no Landlock: ${policy.filesystem.landlock === 'required' ? 'runs are refused' : 'runs go without it (degraded: landlock)'}`;
  return [
    `${head}; applied by ${LANDLOCK_HELPER} after the runtime's mounts, before the task`,
    ...r.list.map((p) => `list    ${p} (dir names beneath, not file contents)`),
    ...r.read.map((p) => `read    ${p}`),
    ...r.write.map((p) => `write   ${p}`),
    ...r.execute.map((p) => `execute ${p}`),
  ];
}
