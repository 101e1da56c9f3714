// A hostile task (or a careless caller) against the supervisor, on real sandboxes (issue 10.3,
// 10.4, 10.7, 10.10, 10.11; issue 9.4). Each test is the attack; each failed on the code before
// the defence.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execProgram, runTask, teardownsSettled } from '../../src/index.js';
import { resolvePolicy } from '../../src/config/resolve.js';
import { Sandbox } from '../../src/supervisor/sandbox.js';
import { collectGarbage } from '../../src/supervisor/gc.js';
import { forgetLeftover, listLeftovers, recordLeftover } from '../../src/supervisor/leftovers.js';
import { driverFor } from '../../src/supervisor/host.js';
import { limitsFor } from '../../src/plan/plan.js';
import { selfRecord } from '../../src/hostfacts/liveness.js';
import { probeCgroups } from '../../src/cgroup/probe.js';
import { closeSources, openSources } from '../../src/fs/mounts.js';
import { fixture, leftovers, testHost } from '../helpers/host.js';

const host = testHost('hardening');
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const HEAP = 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory';
const node = (code: string) => ['/usr/bin/node', '-e', code];

afterAll(async () => {
  await collectGarbage(host);
  // (Processes are checked per run below: other checkouts' sandboxes share the host id range.)
  const left = await leftovers(host);
  expect({ cgroups: left.cgroups, scratch: left.scratch, mounts: left.mounts }).toEqual({ cgroups: [], scratch: [], mounts: [] });
});

describe('the verdict comes from facts, not from what the task writes (10.3)', () => {
  it('heap-limit text on stderr and a sleep past --timeout 1s is Timeout', async () => {
    const r = await execProgram(node(`process.stderr.write(${JSON.stringify(HEAP + '\n')}); setTimeout(() => {}, 10000)`), { policy: { resources: { wallTime: '1s' } }, host });
    expect(r.error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
  });

  it.each([152, 153, 159])('exit status %i is TaskError (not CPU, disk or seccomp)', async (code) => {
    const r = await execProgram(node(`process.exit(${code})`), { host });
    expect(r.error?.kind).toBe('TaskError');
  });

  it('a "bwrap: ..." line with exit 1 is TaskError', async () => {
    // (A real set-up failure is bwrap's unconsumed --block-fd byte: classify.test.ts.)
    const forged = await execProgram(node(`process.stderr.write("bwrap: Can't mount proc on /newroot/proc\\n"); process.exit(1)`), { host });
    expect(forged.error?.kind).toBe('TaskError');
  });

  it('a reply with a forged EPERM code and violations is not a SecurityViolation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-forge-'));
    writeFileSync(join(dir, 'main.js'), `function main() {
      const e = new Error('operation not permitted'); e.code = 'EPERM'; e.syscall = 'getpid';
      throw e;
    }`);
    const r = await runTask(dir, { host });
    expect(r.error?.kind).toBe('TaskError');
    rmSync(dir, { recursive: true });
  });
});

describe("the caller's fds never reach the sandbox (10.4)", () => {
  it('a directory open as fd 42 in the process that starts `pawl exec` cannot be listed inside', async () => {
    const secret = mkdtempSync(join(tmpdir(), 'pawl-fd42-'));
    chmodSync(secret, 0o755); // readable by anyone, like /var/log: only the fd's absence protects it
    writeFileSync(join(secret, 'canary-file'), 'x');
    const dirFd = openSync(secret, 'r');
    const out = join(secret, 'result.json');
    const stdio: ('pipe' | 'ignore' | number)[] = ['ignore', 'pipe', 'pipe', ...Array(39).fill('ignore'), dirFd];
    const list = `try { console.log(require('fs').readdirSync('/proc/self/fd/42').join(',')) } catch (e) { console.log('no fd 42: ' + e.code) }`;
    const child = spawn('node', [CLI, 'exec', '--result', out, '--', ...node(list)], {
      stdio, env: { ...process.env, PAWL_CGROUP_PARENT: host.cgroupParent, PAWL_STATE_DIR: '/var/lib/pawl' },
    });
    closeSync(dirFd);
    let stdout = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    const code = await new Promise((r) => child.on('close', r));
    expect(code, stdout).toBe(0);
    expect(stdout).not.toContain('canary-file');
    expect(stdout).toContain('no fd 42: ENOENT');
    rmSync(secret, { recursive: true });
  });
});

describe('every child is reaped before the result (9.4)', () => {
  const PR_SET_CHILD_SUBREAPER = 36;
  const libc = koffi.load('libc.so.6');
  const prctl = libc.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)');
  const waitpid = libc.func('int waitpid(int, _Out_ int *, int)');

  /** Processes whose parent is this process (pawl's orphans come here: we are their subreaper). */
  function children(): string[] {
    const out: string[] = [];
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      } catch {
        continue;
      }
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === process.pid) out.push(`${p} ${stat.slice(stat.indexOf('('), stat.lastIndexOf(')') + 1)} ${f[0]}`);
    }
    return out;
  }

  it('50 `pawl run`s, timeouts among them: no process of theirs is left, zombies included', async () => {
    expect(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)).toBe(0);
    try {
      const env = { ...process.env, PAWL_CGROUP_PARENT: host.cgroupParent, PAWL_STATE_DIR: '/var/lib/pawl' };
      const found: string[] = [];
      for (let i = 0; i < 50; i++) {
        const args = i % 5 === 2 ? ['run', fixture('spin'), '--timeout', '300ms'] : ['run', join(ROOT, 'examples', 'add'), '--input', '{"num1":1,"num2":2}'];
        let out = '';
        try {
          out = execFileSync('node', [CLI, ...args], { env, encoding: 'utf8' });
        } catch (e) {
          out = (e as { stdout: string }).stdout;
        }
        expect(JSON.parse(out).status).toBe(i % 5 === 2 ? 'failed' : 'succeeded');
        const left = children();
        found.push(...left.map((l) => `run ${i}: ${l}`));
        // Reap what was found, so each run is judged on its own.
        for (const l of left) if (l.endsWith(' Z')) waitpid(Number(l.split(' ')[0]), [0], 0);
      }
      expect(found).toEqual([]);
    } finally {
      prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    }
  }, 600_000); // 50 CLI runs on a loaded 2-core machine: each can take seconds
});

describe('a cleanup failure never replaces the verdict (10.7)', () => {
  it('a run whose cgroup cannot be removed returns its result and goes on the leftover list, which gc clears', async () => {
    const sb = await Sandbox.start({ policy: resolvePolicy(), host, mode: 'program', command: node('console.log("done")') });
    // A child group inside the run's group makes its rmdir fail (EBUSY), as a D-state process would.
    const { mounts } = await probeCgroups();
    const blocker = join(mounts.pids!, host.cgroupParent, `run-${sb.id}`, 'blocker');
    mkdirSync(blocker);
    const r = await sb.result();
    expect(r).toMatchObject({ status: 'succeeded', stdout: 'done\n', cleanup_error: expect.stringContaining('cannot remove cgroup') });
    expect((await listLeftovers(host)).map((l) => l.id)).toContain(sb.id);
    rmdirSync(blocker);
    const report = await collectGarbage(host);
    expect(report.cgroups).toContain(`run-${sb.id}`);
    expect(report.scratch).toContain(sb.id);
    expect((await listLeftovers(host)).map((l) => l.id)).not.toContain(sb.id);
  });

  it('a task run whose result came before its teardown: the failed teardown goes on the leftover list, which gc clears', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-slow-'));
    writeFileSync(join(dir, 'main.js'), 'async function main(input) { await new Promise((r) => setTimeout(r, 1500)); return { ok: true }; }\n');
    const { mounts } = await probeCgroups();
    const parent = join(mounts.pids!, host.cgroupParent);
    const before = new Set(readdirSync(parent));
    const failures: { id: string; error: string }[] = [];
    const running = runTask(dir, { host, teardownFailed: (f) => failures.push(f) });
    // The run's group, once it exists: a child group inside makes its rmdir fail (EBUSY), as a D-state process would.
    let group: string | undefined;
    for (let i = 0; i < 500 && !group; i++) {
      group = readdirSync(parent).find((n) => n.startsWith('run-') && !before.has(n));
      if (!group) await new Promise((r) => setTimeout(r, 10));
    }
    expect(group).toBeDefined();
    const blocker = join(parent, group!, 'blocker');
    mkdirSync(blocker);
    const r = await running;
    // The verdict does not wait for the teardown, so it cannot carry its failure: the leftover list does.
    expect(r).toMatchObject({ status: 'succeeded', output: { ok: true } });
    expect(r.cleanup_error).toBeUndefined();
    await teardownsSettled();
    expect((await listLeftovers(host)).find((l) => l.id === r.id)?.error).toMatch(/cannot remove cgroup/);
    expect(failures).toEqual([{ id: r.id, error: expect.stringContaining('cannot remove cgroup') }]);
    rmdirSync(blocker);
    const report = await collectGarbage(host);
    expect(report.cgroups).toContain(`run-${r.id}`);
    expect((await listLeftovers(host)).map((l) => l.id)).not.toContain(r.id);
    rmSync(dir, { recursive: true });
  });
});

describe('a result that comes before its teardown leaves nothing when its process ends', () => {
  it('a process that ends by itself as soon as runTask resolves: the teardown holds it open until the run is gone', async () => {
    // Ends on its own (no process.exit): a handle of the teardown keeps node alive until it has ended.
    const script = `const { hostConfig, runTask } = await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
const host = hostConfig({ cgroupParent: ${JSON.stringify(host.cgroupParent)}, runDir: ${JSON.stringify(host.runDir)} });
const r = await runTask(${JSON.stringify(join(ROOT, 'examples', 'add'))}, { input: { num1: 2, num2: 40 }, host });
console.log(JSON.stringify({ id: r.id, status: r.status, output: r.output }));`;
    const out = execFileSync('/usr/bin/node', ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    const r = JSON.parse(out) as { id: string; status: string; output: unknown };
    expect(r).toMatchObject({ status: 'succeeded', output: { sum: 42 } });
    const { mounts } = await probeCgroups();
    for (const dir of Object.values(mounts)) if (dir) expect(existsSync(join(dir, host.cgroupParent, `run-${r.id}`))).toBe(false);
    expect(existsSync(join(host.runDir, r.id))).toBe(false);
    expect((await listLeftovers(host)).map((l) => l.id)).not.toContain(r.id);
  });
});

describe('gc judges a supervisor by pid, start time, boot and pid namespace (10.10)', () => {
  /** A run dir's owner record, once written whole (null before). */
  const ownerOf = (id: string): { pid: number } | null => {
    try {
      return JSON.parse(readFileSync(join(host.runDir, id, 'owner'), 'utf8')) as { pid: number };
    } catch {
      return null;
    }
  };

  it('removes what a SIGKILLed bwrap supervisor left', async () => {
    const script = `
      import { runTask } from ${JSON.stringify(join(ROOT, 'dist', 'index.js'))};
      const host = ${JSON.stringify(host)};
      process.stdout.write('started\\n');
      await runTask(${JSON.stringify(fixture('spin'))}, { host, policy: { resources: { wallTime: '60s' } } });
    `;
    const before = new Set(readdirSync(host.runDir));
    const child = spawn('node', ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    // Wait for its run to exist: a new scratch dir of this host whose owner is that child (the
    // owner record is written after the dir is made: wait for it too).
    let id: string | undefined;
    for (let i = 0; i < 300 && !id; i++) {
      await new Promise((r) => setTimeout(r, 100));
      id = readdirSync(host.runDir).find((n) => !before.has(n) && !n.startsWith('.') && ownerOf(n) !== null);
    }
    expect(id).toBeDefined();
    const owner = ownerOf(id!)!;
    await new Promise((r) => setTimeout(r, 1000)); // its sandbox runs
    process.kill(owner.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    const report = await collectGarbage(host);
    expect(report.cgroups).toContain(`run-${id}`);
    expect(report.scratch).toContain(id);
    child.kill('SIGKILL');
  }, 60_000);

  it('detaches and removes the staged bind sources of a runc/crun run whose supervisor died before create', async () => {
    const src = mkdtempSync(join(tmpdir(), 'pawl-stage-src-'));
    writeFileSync(join(src, 'data'), 'x');
    const policy = resolvePolicy({ trustLevel: 'limited', overrides: { runtime: 'runc', filesystem: { binds: [{ src, dst: '/data' }] } } });
    // A supervisor that has exited: its pid names no process now.
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    const runId = (pid: number) => `${Date.now().toString(36)}-${pid}-${Math.random().toString(16).slice(2, 10).padEnd(8, '0')}`;
    const deadRun = runId(dead.pid!);
    const liveRun = runId(process.pid);
    const orphan = await openSources(policy, host, deadRun);
    const live = await openSources(policy, host, liveRun);
    const mounted = (p: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === p);
    try {
      const [point] = orphan.staged!;
      expect(mounted(point!)).toBe(true);
      for (const fd of orphan.fds) closeSync(fd); // the dead supervisor's fds went with it; its stage did not
      const report = await collectGarbage(host);
      expect(report.scratch).toContain(`.stage/${deadRun}-0`);
      expect(mounted(point!)).toBe(false);
      expect(existsSync(point!)).toBe(false);
      expect(readFileSync(join(src, 'data'), 'utf8')).toBe('x'); // the source itself untouched
      // A live run's stage is its own.
      expect(report.scratch).not.toContain(`.stage/${liveRun}-0`);
      expect(mounted(live.staged![0]!)).toBe(true);
    } finally {
      await closeSources(live);
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('a record with a live pid but another start time is dead; another pid namespace is left alone unless forced', async () => {
    mkdirSync(host.runDir, { recursive: true });
    const me = selfRecord();
    const make = (rec: object) => {
      const id = `${Date.now().toString(36)}-1-${Math.random().toString(16).slice(2, 10).padEnd(8, '0')}`;
      mkdirSync(join(host.runDir, id, 'workspace'), { recursive: true });
      writeFileSync(join(host.runDir, id, 'owner'), JSON.stringify({ ...me, pid: 1, cgroupParent: host.cgroupParent, ...rec }));
      return id;
    };
    const recycled = make({ startTime: 12345678 }); // pid 1 lives, but did not start then
    const foreign = make({ pidNs: '1' });
    const report = await collectGarbage(host);
    expect(report.scratch).toContain(recycled);
    expect(report.scratch).not.toContain(foreign);
    expect(report.skipped).toContain(foreign);
    expect(report.skippedWhy[foreign]).toMatch(/another pid namespace/);
    expect(existsSync(join(host.runDir, foreign))).toBe(true);
    expect((await collectGarbage(host, { force: true })).scratch).toContain(foreign);
  });
});

describe('gc takes only what is its own host config\'s (a review\'s findings)', () => {
  const deadPid = async () => {
    const dead = spawn('true');
    await new Promise((r) => dead.on('exit', r));
    return dead.pid!;
  };
  const runId = (pid: number) => `${Date.now().toString(36)}-${pid}-${Math.random().toString(16).slice(2, 10).padEnd(8, '0')}`;

  it('leaves alone a run group under its cgroup parent that has no record in its run dir (another supervisor\'s, whose pid may be of another namespace)', async () => {
    // A supervisor with another state dir and the same cgroup parent: its run's pid means
    // nothing here. Judged by that pid, it looked dead and was killed mid-run.
    const id = runId(await deadPid());
    const driver = await driverFor(host);
    const group = await driver.create(`run-${id}`, limitsFor(resolvePolicy(), [], true, 'program'));
    try {
      const report = await collectGarbage(host);
      expect(report.cgroups).not.toContain(`run-${id}`);
      expect(report.skipped).toContain(id);
      expect(report.skippedWhy[id]).toMatch(/no record in this run dir/);
      expect((await driver.list()).includes(`run-${id}`)).toBe(true);
      expect((await collectGarbage(host, { force: true })).cgroups).toContain(`run-${id}`);
    } finally {
      await group.remove().catch(() => {});
    }
  });

  it('a leftover record takes only its own run\'s group and scratch dir, under its own cgroup parent', async () => {
    const other = join(host.runDir, runId(process.pid)); // a live run's
    mkdirSync(join(other, 'workspace'), { recursive: true });
    writeFileSync(join(other, 'keep'), 'x');
    const id = runId(await deadPid());
    const foreign = runId(await deadPid());
    // One names another run's scratch dir; one is another cgroup parent's.
    await recordLeftover(host, { id, runtime: 'bwrap', cgroup: null, scratch: other, error: 'crafted' });
    await recordLeftover(host, { id: foreign, runtime: 'bwrap', cgroup: `run-${foreign}`, scratch: null, cgroupParent: 'someone-else', error: 'not ours' });
    try {
      const report = await collectGarbage(host);
      expect(report.errors).toEqual([expect.stringContaining(`leftover ${id}: its record names the scratch dir ${other}`)]);
      expect(existsSync(join(other, 'keep'))).toBe(true);
      expect(report.skipped).toContain(foreign);
      expect(report.skippedWhy[foreign]).toMatch(/cgroup parent someone-else's/);
      expect((await listLeftovers(host)).map((l) => l.id).sort()).toEqual([id, foreign].sort());
    } finally {
      await forgetLeftover(host, id);
      await forgetLeftover(host, foreign);
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('takes a run dir its supervisor died in before writing its record, by the pid in its name; keeps a live one\'s', async () => {
    const dead = join(host.runDir, runId(await deadPid()));
    const live = join(host.runDir, runId(process.pid));
    for (const d of [dead, live]) mkdirSync(join(d, 'workspace'), { recursive: true });
    try {
      const report = await collectGarbage(host);
      expect(existsSync(dead)).toBe(false);
      expect(report.scratch).toContain(dead.split('/').at(-1));
      expect(existsSync(live)).toBe(true);
    } finally {
      rmSync(live, { recursive: true, force: true });
      rmSync(dead, { recursive: true, force: true });
    }
  });

  it('a scratch dir with a filesystem still mounted inside is not emptied through it', async () => {
    // In a mount namespace of its own (the host's table never has the mount): a dead run's dir
    // with a tmpfs mounted at workspace.template.mnt, where a cold template build left one.
    const id = runId(await deadPid());
    const dir = join(host.runDir, id);
    mkdirSync(join(dir, 'inner', 'deep'), { recursive: true });
    writeFileSync(join(dir, 'owner'), JSON.stringify({ ...selfRecord(), pid: 1, startTime: 1, cgroupParent: host.cgroupParent }));
    const script = `
      const { removeTree } = await import(${JSON.stringify(join(ROOT, 'dist', 'supervisor', 'scratch.js'))});
      const { writeFileSync, existsSync } = await import('node:fs');
      writeFileSync(${JSON.stringify(join(dir, 'inner', 'deep', 'data'))}, 'on the mount');
      const error = await removeTree(${JSON.stringify(dir)}, ${JSON.stringify(host.runDir)}).then(() => null, (e) => e.message);
      console.log(JSON.stringify({ error, kept: existsSync(${JSON.stringify(join(dir, 'inner', 'deep', 'data'))}) }));
    `;
    try {
      const out = execFileSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$0" && mkdir -p "$0/deep" && exec node --input-type=module -e "$1"', join(dir, 'inner'), script], { encoding: 'utf8' });
      const r = JSON.parse(out) as { error: string | null; kept: boolean };
      expect(r.error).toMatch(/cannot remove/);
      expect(r.kept).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a seccomp kill of any process of the run (10.11)', () => {
  let dir: string;
  const hasGcc = (() => {
    try {
      execFileSync('gcc', ['--version'], { stdio: 'ignore' });
      return existsSync('/usr/lib/x86_64-linux-gnu/libc.a');
    } catch {
      return false;
    }
  })();
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pawl-childkill-'));
    chmodSync(dir, 0o755); // bwrap runs as the run's unprivileged host id
    mkdirSync(join(dir, 'probe'));
    if (hasGcc) execFileSync('gcc', ['-static', '-O2', '-o', join(dir, 'probe', 'prober'), join(ROOT, 'test', 'security', 'prober.c')]);
    mkdirSync(join(dir, 'task'));
    writeFileSync(join(dir, 'task', 'main.js'), `function main() {
      const r = require('child_process').spawnSync('/probe/prober', ['--direct', 'ptrace']);
      return { status: r.status, signal: r.signal };
    }`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.runIf(hasGcc && process.geteuid?.() === 0)('at untrusted, a child killed for a blocked call fails the run even though the parent returns', async () => {
    const run = () => runTask(join(dir, 'task'), { trustLevel: 'untrusted', policy: { filesystem: { binds: [{ src: join(dir, 'probe'), dst: '/probe' }] } }, host });
    let r = await run();
    if (r.status === 'succeeded' && (r.output as { signal: string }).signal === 'SIGSYS') {
      // The kernel prints at most 10 audit lines per 5 s (all of this host's): wait out the window once.
      await new Promise((res) => setTimeout(res, 5500));
      r = await run();
    }
    expect(r.error, JSON.stringify(r.error)).toMatchObject({ kind: 'SecurityViolation', syscall: 'ptrace' });
    expect(r.violations).toContainEqual({ kind: 'syscall', detail: 'ptrace', source: 'supervisor' });
  });
});
