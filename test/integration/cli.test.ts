// The CLI: result JSON on stdout and exit 0/1 for runs; exit 2 with one line on stderr (never a
// stack trace) for anything pawl cannot run.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { join } from 'node:path';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { hostConfig } from '../../src/config/host.js';
import { fixture, leftovers } from '../helpers/host.js';
import { startSupervisor } from '../helpers/supervisor.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const ADD = join(import.meta.dirname, '..', '..', 'examples', 'add');
const env = { PAWL_CGROUP_PARENT: 'pawl-cli', PAWL_STATE_DIR: '/var/lib/pawl' };
const pawl = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, env });

describe('pawl run', () => {
  it('prints the result JSON and exits 0 when the task succeeds', async () => {
    const r = await pawl('run', ADD, '--input', '{"num1": 2, "num2": 3}');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'succeeded', output: { sum: 5 }, runtime: 'bwrap' });
  });

  it('exits 1 when the run fails, with the verdict in the JSON', async () => {
    const r = await pawl('run', fixture('spin'), '--timeout', '300ms');
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout).error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
  });

  it('reads --input-file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cli-'));
    writeFileSync(join(dir, 'in.json'), '{"num1": 40, "num2": 2}');
    const r = await pawl('run', ADD, '--input-file', join(dir, 'in.json'));
    expect(JSON.parse(r.stdout).output).toEqual({ sum: 42 });
  });

  it.each([
    [['run', ADD, '--bogus'], /Unknown option '--bogus'/],
    [['run', ADD, '--input', '{bad'], /--input is not valid JSON/],
    [['run', '/nonexistent/task'], /task not found: \/nonexistent\/task/],
    [['run', ADD, '--memory', '12XB'], /invalid size "12XB"/],
    [['run', ADD, '--timeout=-5s'], /must not be negative/],
    [['run', ADD, '--timeout', '-5s'], /--timeout/],
    [['run', ADD, '--trust', 'root'], /unknown trust level "root"/],
    [['run', ADD, '--pids', 'many'], /--pids expects a whole number/],
    [['run'], /takes one TASK/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['exec', '--memory', '64MB'], /needs the program after "--"/],
    [['exec', '--ro-bind', '/x', '--', 'true'], /--ro-bind expects two paths/],
    [['run', ADD, '--network', 'full', '--trust', 'untrusted'], /"full"\) is refused at trust level untrusted unless the operator forces it/],
    [['run', ADD, '--network', 'restricted', '--allow-host', 'a*b.com'], /network\.allowedHosts\.0: "a\*b\.com" is not a host name/],
  ])('refuses %j with exit 2 and a one-line reason', async (args, message) => {
    const r = await pawl(...(args as string[]));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^pawl: /);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe('');
  });
});

describe('pawl exec', () => {
  it('passes stdio through and writes the result JSON to --result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cli-'));
    const result = join(dir, 'result.json');
    const r = await pawl('exec', '--ro-bind', '/usr/bin/busybox', '/bin/busybox', '--result', result, '--', '/bin/busybox', 'sh', '-c', 'echo out; echo err >&2; id -u');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('out\n1000');
    expect(r.stderr).toBe('err');
    expect(JSON.parse(readFileSync(result, 'utf8'))).toMatchObject({ status: 'succeeded', exit_code: 0 });
  });

  // The result file is opened before the program runs: a link or FIFO the program leaves at the
  // path (in a writable bind) is not what root writes to afterwards.
  it.each([
    ['a link to a host file', 'rm -f /out/r.json; ln -s VICTIM /out/r.json'],
    ['a FIFO', 'rm -f /out/r.json; mkfifo /out/r.json'],
    ['a link to itself', 'rm -f /out/r.json; ln -s r.json /out/r.json'],
  ])('--result inside a writable bind: %s left at the path is not written through', async (_what, script) => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cli-'));
    const out = join(dir, 'out');
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'ORIGINAL');
    chmodSync(dir, 0o755); // the sandbox's user passes through to its bind
    execFileSync('mkdir', ['-m', '777', out]);
    const r = await execa('node', [CLI, 'exec', '--bind', out, '/out', '--ro-bind', '/usr/bin/busybox', '/bin/busybox', '--result', join(out, 'r.json'), '--', '/bin/busybox', 'sh', '-c', script.replace('VICTIM', victim)], { reject: false, env, timeout: 60_000 });
    expect(r.timedOut).toBe(false);
    expect(readFileSync(victim, 'utf8')).toBe('ORIGINAL');
    // Nothing lost: the result is kept where the program cannot reach, and pawl says where.
    expect(r.exitCode).not.toBe(0);
    const kept = /was replaced while the program ran \(it is not the file pawl opened\): the result is in (\S+)/.exec(r.stderr)?.[1];
    expect(kept, r.stderr).toBeDefined();
    expect(JSON.parse(readFileSync(kept!, 'utf8'))).toMatchObject({ status: 'succeeded' });
  });

  it('--result FILE of a run that could not start holds no earlier run\'s result', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cli-'));
    const result = join(dir, 'r.json');
    expect((await pawl('exec', '--ro-bind', '/usr/bin/busybox', '/bin/busybox', '--result', result, '--', '/bin/busybox', 'true')).exitCode).toBe(0);
    expect(JSON.parse(readFileSync(result, 'utf8'))).toMatchObject({ status: 'succeeded' });
    const refused = await pawl('exec', '--ro-bind', '/usr/bin/busybox', '/bin/busybox', '--memory', '1KB', '--result', result, '--', '/bin/busybox', 'true');
    expect(refused.exitCode).not.toBe(0);
    expect(readFileSync(result, 'utf8')).toBe('');
  });

  it('--result FILE is written from its start and cut to the result (a longer old file leaves nothing behind)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cli-'));
    const result = join(dir, 'r.json');
    writeFileSync(result, 'x'.repeat(100_000));
    const r = await pawl('exec', '--ro-bind', '/usr/bin/busybox', '/bin/busybox', '--result', result, '--', '/bin/busybox', 'true');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(readFileSync(result, 'utf8'))).toMatchObject({ status: 'succeeded' });
  });
});

describe('pawl seccomp', () => {
  it('compiles a Docker/podman profile to BPF and exports a shipped profile as OCI JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-cli-'));
    const c = await pawl('seccomp', 'compile', '--profile', '/usr/share/containers/seccomp.json', '--out', join(dir, 'p.bpf'));
    expect(c.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'p.bpf')).length % 8).toBe(0); // whole sock_filter instructions
    const e = await pawl('seccomp', 'export', '--trust', 'untrusted');
    expect(e.exitCode).toBe(0);
    const oci = JSON.parse(e.stdout);
    expect(oci.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(oci.syscalls.some((r: { names: string[]; action: string }) => r.names.includes('ptrace') && r.action === 'SCMP_ACT_KILL_PROCESS')).toBe(true);
  });

  it('refuses a profile that is not one, with exit 2', async () => {
    const r = await pawl('seccomp', 'compile', '--profile', '/etc/hostname', '--out', '/tmp/never.bpf');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^pawl: cannot load seccomp profile \/etc\/hostname/);
  });
});

describe('runtimes on the command line', () => {
  it('explain --runtime runc prints the OCI config.json with the same limits', async () => {
    const r = await pawl('explain', '--runtime', 'runc', '--trust', 'untrusted');
    expect(r.exitCode).toBe(0);
    const json = r.stdout.slice(r.stdout.indexOf('config.json (runc):') + 'config.json (runc):'.length);
    const config = JSON.parse(json);
    expect(config.process.user).toMatchObject({ uid: 1000, gid: 1000 });
    expect(config.process.noNewPrivileges).toBe(true);
    expect(config.root.readonly).toBe(true);
    expect(config.linux.resources.memory.limit).toBe(64 * 1024 * 1024);
    expect(config.linux.seccomp.defaultAction).toBe('SCMP_ACT_ERRNO');
  });

  it('ps lists the sandboxes pawl owns and gc sweeps what dead supervisors left', async () => {
    // A state dir and cgroup parent of the test's own: a supervisor SIGKILLed mid-run leaves its
    // runc container running, its cgroups and its scratch dir there, and gc must take them all.
    const tag = process.env.PAWL_TEST_TAG ? `-${process.env.PAWL_TEST_TAG}` : '';
    const stateDir = `/var/lib/pawl/test-state-cli${tag}`;
    const gcEnv = { PAWL_STATE_DIR: stateDir, PAWL_CGROUP_PARENT: `pawl-cli-gc${tag}` };
    const host = hostConfig({ cgroupParent: gcEnv.PAWL_CGROUP_PARENT, runDir: join(stateDir, 'runs') });
    const cli = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, env: gcEnv });
    const sup = await startSupervisor('runc', host);
    const ps = await cli('ps');
    expect(ps.exitCode).toBe(0);
    expect(ps.stdout.split('\n')[0]).toBe('ID  RUNTIME  STATE  AGE  OWNER');
    expect(ps.stdout).toMatch(new RegExp(`^${sup.id}  runc  running  \\S+  ${sup.pid}$`, 'm'));
    await sup.kill();
    expect((await leftovers(host)).scratch).toEqual([sup.id]);

    const gc = await cli('gc');
    expect(gc.stderr).toBe('');
    expect(gc.exitCode).toBe(0);
    expect(gc.stdout).toMatch(new RegExp(`^removed 1 container\\(s\\), \\d+ cgroup\\(s\\), 1 scratch dir\\(s\\)\n  runc:${sup.id}\n`));
    expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
    expect((await cli('ps')).stdout).toBe('ID  RUNTIME  STATE  AGE  OWNER');
    expect((await pawl('gc', '--older-than', 'soon')).exitCode).toBe(2);
  });
});

describe('a hardened umask', () => {
  // mkdir's modes are masked by the umask: under a root umask of 077 (or 027) the state dir, the
  // rootfs's dirs, the run dirs and runc/crun's mount points came out 0700, and no sandbox's user
  // could reach its rootfs or workspace (bwrap: "Can't find source path ...: Permission denied";
  // runc/crun: EACCES at exec).
  it.each(['bwrap', 'runc', 'crun'])('does not keep a %s sandbox from its rootfs and workspace (fresh state dir, umask 077)', async (runtime) => {
    const parent = mkdtempSync(join(tmpdir(), 'pawl-umask-'));
    chmodSync(parent, 0o755);
    try {
      const state = join(parent, 'state');
      const r = await execa('sh', ['-c', 'umask 077 && exec "$@"', 'sh', 'node', CLI, 'run', ADD, '--runtime', runtime, '--input', '{"num1": 2, "num2": 3}'], { reject: false, env: { ...env, PAWL_STATE_DIR: state } });
      expect(JSON.parse(r.stdout), r.stderr).toMatchObject({ status: 'succeeded', output: { sum: 5 } });
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('pawl test and explain', () => {
  it('runs the task tests and reports each case', async () => {
    const r = await pawl('test', ADD);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('PASS two plus three');
    expect(r.stdout).toContain('1 passed, 0 failed');
  });

  it('explains the plan: cgroup files, rlimits, bwrap argv and mounts', async () => {
    const r = await pawl('explain', '--trust', 'untrusted');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/memory\.(max|limit_in_bytes) = 67108864/);
    expect(r.stdout).toMatch(/pids\.max = 60/);
    expect(r.stdout).toContain('--unshare-net');
    expect(r.stdout).toContain('/workspace <- ');
    expect(r.stdout).toContain('nofile = 32');
  });
});
