// The shipped seccomp profiles, compiled by pawl, loaded by the kernel through a real
// `bwrap --seccomp FD`, against a static C prober (prober.c) and node itself. Every payload runs
// inside the sandbox only: no mount/unshare/ptrace attempt ever runs on the host.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { execProgram } from '../../src/index.js';
import { auditSession, seccompPlan, type SeccompPlan } from '../../src/seccomp/index.js';
import { readSeccompRecords, recordSyscallName, runRecords } from '../../src/seccomp/classify.js';

/** The blocked call the run's last seccomp kill record names (the supervisor's own lookup), or null. */
function killedCall(session: number | undefined): { syscall: string | null } {
  const last = session === undefined ? undefined : runRecords({ session }, readSeccompRecords()).at(-1);
  return { syscall: last ? recordSyscallName(last) : null };
}
import { leftovers, testHost } from '../helpers/host.js';

const BWRAP = '/usr/bin/bwrap';
const PODMAN = '/usr/share/containers/seccomp.json';
const LEVELS = ['untrusted', 'limited', 'trusted', 'system'] as const;
type Level = (typeof LEVELS)[number];

// The static prober needs gcc and libc.a (scripts/setup installs gcc and libc6-dev). Missing
// them fails the suite; PAWL_SKIP_SECCOMP_KERNEL=1 is the only way to skip it, on purpose.
const OPT_OUT = process.env.PAWL_SKIP_SECCOMP_KERNEL === '1';
function missingTools(): string | null {
  if (!existsSync(BWRAP)) return `${BWRAP} is missing (bubblewrap)`;
  let libc: string;
  try {
    // gcc answers the bare name when it has no such file; the arch's path is gcc's to know.
    libc = execFileSync('gcc', ['-print-file-name=libc.a'], { encoding: 'utf8' }).trim();
  } catch {
    return 'gcc is not installed';
  }
  return existsSync(libc) ? null : 'libc.a is missing (libc6-dev)';
}
const missing = OPT_OUT ? null : missingTools();
if (OPT_OUT) console.warn('skipping the real-kernel seccomp suite: PAWL_SKIP_SECCOMP_KERNEL=1');

it('the real-kernel seccomp suite has what it needs (gcc, libc.a, bwrap), or was skipped on purpose', () => {
  expect(missing, `${missing}: run scripts/setup, or set PAWL_SKIP_SECCOMP_KERNEL=1 to skip this suite on purpose`).toBeNull();
});
const isRoot = process.geteuid?.() === 0;

/** Denied by every shipped profile: EPERM, or death by SIGSYS at the untrusted level. */
const DENIED = [
  'mount', 'umount2', 'pivot_root', 'chroot', 'unshare_user', 'setns', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'bpf',
  'perf_event_open', 'keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module',
  'delete_module', 'open_by_handle_at', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register', 'fsopen', 'syslog',
  'personality_unsafe', 'clone_newuser', 'clone_newns', 'socket_packet', 'socket_netlink', 'socket_netlink_high', 'socket_vsock',
  'socket_alg', 'tiocsti', 'tiocsti_high', 'tioclinux', 'io_setup',
];
/** Calls the filters must leave to the kernel: the answer is the same as without a filter. */
const ALLOWED = ['getpid', 'clone_plain', 'personality_query', 'socket_unix', 'socket_inet6', 'ioctl_tcgets', 'socketpair_unix'];
/** Where the kernel itself would answer EPERM to an unprivileged caller, so EPERM proves nothing. */
const KERNEL_EPERM = new Set(['pivot_root', 'fsopen', 'syslog', 'clone_newns']);

const TASK = `
const fs = require('fs'), crypto = require('crypto'), dns = require('dns');
(async () => {
  fs.writeFileSync('/tmp/a', 'hello');
  await fs.promises.writeFile('/tmp/b', crypto.randomBytes(4096));
  const digest = crypto.createHash('sha256').update(await fs.promises.readFile('/tmp/b')).digest('hex');
  const key = crypto.scryptSync('secret', 'salt', 32).toString('hex');
  await new Promise((r) => setTimeout(r, 20));
  const entries = fs.readdirSync('/tmp').sort();
  const { Worker } = require('worker_threads');
  const fromWorker = await new Promise((res, rej) => {
    const w = new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true });
    w.on('message', res); w.on('error', rej);
  });
  const localhost = (await dns.promises.lookup('localhost')).address;
  console.log(JSON.stringify({ text: fs.readFileSync('/tmp/a', 'utf8'), digest: digest.length, key: key.length, entries, fromWorker, localhost }));
})();
`;

let dir = '';
let probeDir = '';
const plans = new Map<Level | 'podman', SeccompPlan>();
const bpfFiles = new Map<Level | 'podman', string>();

interface Outcome {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs argv in the minimal sandbox of the brief, with the filter on fd 9 when given. */
function sandbox(argv: string[], filter: Level | 'podman' | null, wrap: string[] = []): Promise<Outcome> {
  const args = [
    '--unshare-all', '--die-with-parent', '--new-session', '--uid', '1000', '--gid', '1000', '--cap-drop', 'ALL',
    '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin',
    '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--ro-bind', '/etc/hosts', '/etc/hosts', '--ro-bind', probeDir, '/probe',
    ...(filter ? ['--seccomp', '9'] : []), '--', ...argv,
  ];
  const fd = filter ? openSync(bpfFiles.get(filter)!, 'r') : null;
  const [file, ...pre] = wrap.length ? wrap : [BWRAP];
  const child = spawn(file!, [...pre, ...(wrap.length ? [BWRAP] : []), ...args], {
    env: {},
    stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', fd ?? 'ignore'],
  });
  if (fd !== null) closeSync(fd);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b) => (stdout += b));
  child.stderr!.on('data', (b) => (stderr += b));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** prober output -> { probe: "ok" | "errno=E..." | "signal=SIG..." } */
async function probe(filter: Level | 'podman' | null): Promise<Record<string, string>> {
  const out = await sandbox(['/probe/prober'], filter);
  expect(out.code, out.stderr).toBe(0);
  return Object.fromEntries(out.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
}

describe.skipIf(OPT_OUT || missing !== null)('seccomp under bwrap, real kernel', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pawl-seccomp-sec-'));
    probeDir = join(dir, 'probe');
    mkdirSync(probeDir, { mode: 0o755 });
    execFileSync('gcc', ['-static', '-O2', '-Wall', '-o', join(probeDir, 'prober'), join(import.meta.dirname, 'prober.c')]);
    writeFileSync(join(probeDir, 'task.js'), TASK);
    for (const level of LEVELS) plans.set(level, (await seccompPlan(resolvePolicy({ trustLevel: level })))!);
    // scripts/setup installs it (golang-github-containers-common); without it these tests fail.
    expect(existsSync(PODMAN), `${PODMAN} is missing (golang-github-containers-common)`).toBe(true);
    plans.set('podman', (await seccompPlan(resolvePolicy({ trustLevel: 'trusted', overrides: { security: { seccomp: { profile: PODMAN } } } })))!);
    for (const [name, plan] of plans) {
      const file = join(dir, `${name}.bpf`);
      writeFileSync(file, plan.bpf);
      bpfFiles.set(name, file);
    }
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // First in the file: the kernel rate-limits the audit lines it prints (10 per 5 s), and the
  // prober runs below produce dozens.
  it('untrusted: a killed process is a SecurityViolation naming the call', async () => {
    // A fresh audit session (root only) marks every process of this sandbox in the audit records.
    const wrap = isRoot ? ['/bin/sh', '-c', 'echo 0 > /proc/self/loginuid && cat /proc/self/sessionid >&2 && exec "$@"', 'pawl-test'] : [];
    const run = async () => {
      const out = await sandbox(['/probe/prober', '--direct', 'ptrace'], 'untrusted', wrap);
      const session = isRoot ? Number(out.stderr.trim()) : undefined;
      for (let i = 0; i < 20; i++) {
        const v = killedCall(session);
        if (v?.syscall || !isRoot) return { out, v };
        await new Promise((r) => setTimeout(r, 50)); // kauditd prints asynchronously
      }
      return { out, v: killedCall(session) };
    };
    let { out, v } = await run();
    if (isRoot && v?.syscall === null) {
      await new Promise((r) => setTimeout(r, 5500)); // the rate limit's window
      ({ out, v } = await run());
    }
    expect(out.stdout).toBe(''); // killed before it could print
    expect([out.code, out.signal]).toEqual([159, null]); // bwrap's pid 1 reports 128 + SIGSYS
    // The suite runs as root (scripts/setup, cgroups, host ids), so the audit session that names
    // the call is always there: the name is asserted, not hoped for.
    expect(isRoot, 'the seccomp suite runs as root').toBe(true);
    expect(v).toEqual({ syscall: 'ptrace' });
  });

  it('limited: the same call fails with EPERM and the program goes on', async () => {
    const out = await sandbox(['/probe/prober', '--direct', 'ptrace'], 'limited');
    expect([out.code, out.stdout.trim()]).toEqual([0, 'ptrace errno=EPERM']);
  });

  it('auditSession reads a live process\'s session', () => {
    expect(auditSession(process.pid)).toSatisfy((s: number | null) => s === null || Number.isInteger(s));
    expect(auditSession(2 ** 30)).toBeNull();
  });

  describe('without a filter (the control)', () => {
    let control: Record<string, string>;
    beforeAll(async () => {
      control = await probe(null);
    });

    it.each(DENIED.filter((p) => !KERNEL_EPERM.has(p)))('%s: the kernel alone does not answer EPERM', (p) => {
      expect(control[p]).toBeDefined();
      expect(control[p]).not.toBe('errno=EPERM');
      expect(control[p]).not.toMatch(/^signal=/);
    });

    it('clone3 and x32 calls reach the kernel', () => {
      expect(control.clone3).toBe('errno=EINVAL');
      expect(control.x32_getpid).toBe('errno=ENOSYS'); // this kernel has no x32 ABI
      expect(control.socketpair_netlink).toBe('errno=EOPNOTSUPP'); // after the family's own socket creation
    });

    describe.each(LEVELS)('pawl-%s', (level) => {
      let seen: Record<string, string>;
      beforeAll(async () => {
        seen = await probe(level);
      });
      const denied = level === 'untrusted' ? 'signal=SIGSYS' : 'errno=EPERM';

      it.each(DENIED)(`%s -> ${denied}`, (p) => {
        expect(seen[p]).toBe(denied);
      });
      it('clone3 -> ENOSYS (glibc falls back to clone)', () => {
        expect(seen.clone3).toBe('errno=ENOSYS');
      });
      it('socketpair of a family other than AF_UNIX -> ENOSYS, before the kernel creates anything', () => {
        expect(seen.socketpair_netlink).toBe('errno=ENOSYS');
      });
      it('an x32 system call kills the process', () => {
        expect(seen.x32_getpid).toBe('signal=SIGSYS');
      });
      it.each(ALLOWED)('%s is left to the kernel', (p) => {
        expect(seen[p]).toBe(control[p]);
      });
    });
  });

  // The OCI JSON (linux.seccomp) is a second rendering of the same profiles: runc and crun load it
  // through libseccomp themselves. Every denied call is checked there too, not only one.
  describe.each(['runc', 'crun'] as const)('the OCI JSON, loaded by %s', (runtime) => {
    const host = testHost(`seccomp-${runtime}`);
    afterAll(async () => {
      expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    });

    it.each(['limited', 'untrusted'] as const)('%s: refuses every denied call as the BPF path does', async (level) => {
      const r = await execProgram(['/probe/prober'], { trustLevel: level, host, policy: { runtime, filesystem: { binds: [{ src: probeDir, dst: '/probe' }] } } });
      expect(r.exit_code, r.stderr).toBe(0);
      const seen = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
      const denied = level === 'untrusted' ? 'signal=SIGSYS' : 'errno=EPERM';
      expect(Object.fromEntries(DENIED.map((p) => [p, seen[p]]))).toEqual(Object.fromEntries(DENIED.map((p) => [p, denied])));
      expect(seen.clone3).toBe('errno=ENOSYS');
      expect(seen.x32_getpid).toBe('signal=SIGSYS');
      expect(seen.getpid).toBe('ok');
    });
  });

  describe.each([...LEVELS, 'podman'] as const)('node under %s', (filter) => {
    it('starts and runs fs, crypto, timers, a worker and dns', async () => {
      const out = await sandbox(['/usr/bin/node', '/probe/task.js'], filter);
      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout)).toEqual({ text: 'hello', digest: 64, key: 64, entries: ['a', 'b'], fromWorker: 42, localhost: '127.0.0.1' });
    });
  });

  it("podman's own profile keeps its own semantics (x32 killed, mount left to the kernel)", async () => {
    const seen = await probe('podman');
    expect(seen.x32_getpid).toBe('signal=SIGSYS');
    expect(seen.mount).toBe('errno=EFAULT');
    expect(seen.io_uring_setup).toBe('errno=ENOSYS');
    expect(seen.chroot).toBe('errno=EPERM');
  });
});
