// pawl doctor on this host (hybrid cgroup v1, Landlock, no AppArmor, no SELinux: HOST-FACTS.md),
// its JSON, and its exit status; progress lines on stderr only when stderr is a terminal.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { DoctorReport } from '../../src/doctor/report.js';
import { landlockProbe as landlockAbi } from '../../src/lsm/landlock/probe.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const ADD = join(import.meta.dirname, '..', '..', 'examples', 'add');
const tag = process.env.PAWL_TEST_TAG ? `-${process.env.PAWL_TEST_TAG}` : '';
const state = mkdtempSync(join(tmpdir(), 'pawl-doctor-'));
chmodSync(state, 0o755);
const env = { PAWL_CGROUP_PARENT: `pawl-doctor${tag}`, PAWL_STATE_DIR: state };
const pawl = (args: string[], extraEnv: Record<string, string> = {}) => execa('node', [CLI, ...args], { reject: false, env: { ...env, ...extraEnv } });
afterAll(() => rmSync(state, { recursive: true, force: true }));
const line = (out: string, name: string) => out.split('\n').find((l) => new RegExp(`^\\S+ +${name} {2,}`).test(l));

describe('pawl doctor on this host', () => {
  it('says line by line what is enforceable here, with the fix under each gap', async () => {
    const r = await pawl(['doctor']);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(line(out, 'cgroup')).toMatch(/^ok +cgroup +v1 \(hybrid: cgroup2 at \/sys\/fs\/cgroup\/unified holds hugetlb\)/);
    for (const c of ['memory', 'cpu', 'pids']) expect(line(out, `cgroup ${c}`)).toMatch(new RegExp(`^ok +cgroup ${c} +v1 ${c} at /sys/fs/cgroup/`));
    expect(line(out, 'cgroup io')).toMatch(/^ok +cgroup io +v1 blkio at \/sys\/fs\/cgroup\/blkio/);
    const abi = landlockAbi();
    expect(abi).toEqual({ abi: expect.any(Number) });
    expect(line(out, 'landlock')).toMatch(new RegExp(`^ok +landlock +Landlock ABI ${(abi as { abi: number }).abi} \\(landlock_create_ruleset\\)$`));
    const aa = out.split('\n').findIndex((l) => /^missing +apparmor +AppArmor is not enabled in this kernel/.test(l));
    expect(aa).toBeGreaterThan(0);
    expect(out.split('\n')[aa + 1]).toMatch(/^ +fix: boot a kernel with AppArmor \(CONFIG_SECURITY_APPARMOR=y, apparmor in lsm=\)/);
    expect(line(out, 'selinux')).toMatch(/^missing +selinux +SELinux is not enabled/);
    expect(line(out, 'seccomp')).toMatch(/^ok +seccomp +seccomp filters supported/);
    expect(line(out, 'libseccomp')).toMatch(/^ok +libseccomp +libseccomp 2\.\d+\.\d+/);
    expect(line(out, 'bwrap')).toMatch(/^ok +bwrap +\/usr\/bin\/bwrap: bubblewrap \d/);
    expect(line(out, 'runc')).toMatch(/^ok +runc +\/usr\/sbin\/runc: runc version/);
    expect(line(out, 'crun')).toMatch(/^ok +crun +\/usr\/bin\/crun: crun version/);
    expect(line(out, 'userns restriction')).toMatch(/^ok +userns restriction +kernel.apparmor_restrict_unprivileged_userns is not present/);
    expect(line(out, 'disk rate limits')).toMatch(/^ok +disk rate limits +throttled on \d+:\d+/);
  });

  it('--json is the same report, parsed by its schema; the exit status is 0 exactly when the default policy is enforceable', async () => {
    const r = await pawl(['doctor', '--json']);
    const report = DoctorReport.parse(JSON.parse(r.stdout));
    expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['cgroup', 'cgroup delegation', 'user namespaces', 'seccomp', 'landlock', 'apparmor', 'selinux', 'bwrap', 'rootfs', 'disk rate limits', 'state dir']));
    expect(report.enforceable).toBe(report.checks.every((c) => !c.neededByDefault || c.status === 'ok'));
    // AppArmor and SELinux are missing here, but the default policy does not use them.
    expect(report.checks.find((c) => c.name === 'apparmor')).toMatchObject({ status: 'missing', neededByDefault: false });
    expect(report.enforceable).toBe(true);
    expect(r.exitCode).toBe(0);
  });

  it('exits 1 and names the gap when something the default policy needs is missing (a state dir others can write)', async () => {
    const open = mkdtempSync(join(tmpdir(), 'pawl-doctor-open-'));
    chmodSync(open, 0o777);
    const r = await pawl(['doctor'], { PAWL_STATE_DIR: open });
    expect(r.exitCode).toBe(1);
    expect(line(r.stdout, 'state dir')).toMatch(/^missing +state dir +the state dir is not pawl's alone: .* writable by others \(mode 777\); pawl trusts the rootfs and the facts it caches there/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('the default policy is NOT fully enforceable on this host: state dir');
  });

  // v1 has no delegation: as another user, doctor said "ok" and every run failed with a raw EACCES.
  it('as a user other than root on cgroup v1: doctor names the gap, and a run says v1 needs root', async () => {
    const mine = mkdtempSync(join(tmpdir(), 'pawl-doctor-user-'));
    chmodSync(mine, 0o755);
    execFileSync('chown', ['nobody', mine]);
    try {
      const as = (args: string[]) => execa('runuser', ['-u', 'nobody', '--', 'env', `PAWL_STATE_DIR=${mine}/state`, `PAWL_CGROUP_PARENT=pawl-doctor-user${tag}`, 'node', CLI, ...args], { reject: false, cwd: '/' });
      const doctor = await as(['doctor']);
      if (!/v1 /.test(doctor.stdout)) return; // a v2 host: delegation is its own check
      expect(line(doctor.stdout, 'cgroup delegation')).toMatch(/^missing +cgroup delegation +v1: only root can create cgroups here/);
      const run = await as(['exec', '--', '/usr/bin/node', '-e', '0']);
      expect(run.exitCode).not.toBe(0);
      expect(run.stderr).toMatch(/cgroup v1 needs root: pawl \(uid 65534\) cannot create .*pawl-doctor-user/);
    } finally {
      rmSync(mine, { recursive: true, force: true });
    }
  }, 120_000);

  it('names a state dir the sandboxes\' users cannot pass through to the rootfs (mode 0700, run as root)', async () => {
    const closed = mkdtempSync(join(tmpdir(), 'pawl-doctor-closed-'));
    try {
      const r = await pawl(['doctor'], { PAWL_STATE_DIR: closed });
      expect(r.exitCode).toBe(1);
      expect(line(r.stdout, 'state dir')).toMatch(/^missing +state dir +.* mode 700: the sandboxes' users cannot pass through it to the rootfs/);
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });
});

/** Run the CLI with stderr (and stdout) on a pseudo-terminal, through script(1); returns what the terminal showed. */
function onTerminal(args: string[]): string {
  const cmd = ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'node', CLI, ...args].map((a) => `'${a}'`).join(' ');
  return execFileSync('script', ['-qfec', cmd, '/dev/null'], { encoding: 'utf8' });
}

describe('progress on a terminal', () => {
  it('pawl rootfs build: progress lines on a terminal, nothing extra on stderr when piped', async () => {
    const piped = await pawl(['rootfs', 'build']);
    expect(piped.exitCode).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toMatch(/^built \//);
    const tty = onTerminal(['rootfs', 'build']);
    expect(tty).toMatch(/\r\x1b\[Kpawl: hashing 1\/\d+ /);
    expect(tty).toMatch(/\r\x1b\[Kpawl: copying \d+\/\d+ \/usr\/bin\/node/);
    // The line is erased before the command's own output.
    expect(tty).toMatch(/\r\x1b\[Kbuilt \//);
  });

  it('pawl test: one line per case as it runs on a terminal, nothing extra on stderr when piped', async () => {
    const piped = await pawl(['test', ADD]);
    expect(piped.exitCode).toBe(0);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe('PASS two plus three\n1 passed, 0 failed');
    const tty = onTerminal(['test', ADD]);
    expect(tty).toMatch(/\r\x1b\[Kpawl: test 1\/1 two plus three\r\x1b\[KPASS two plus three/);
  });
});

