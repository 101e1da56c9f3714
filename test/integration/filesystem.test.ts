// Mounts, volumes, tmpfs, blocked paths and Landlock from the policy, on real bwrap, runc and crun.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execProgram } from '../../src/index.js';
import type { PolicyInput } from '../../src/config/policy.js';
import type { RuntimeName } from '../../src/runtime/index.js';
import { removeVolume, volumeData } from '../../src/fs/volumes.js';
import { leftovers, testHost } from '../helpers/host.js';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

const host = testHost('fs');
const RUNTIMES = (process.env.PAWL_RUNTIMES?.split(',') ?? ['bwrap', 'runc', 'crun']) as RuntimeName[];
const DATA = `/var/lib/pawl/test-fs-${process.env.PAWL_TEST_TAG ?? 'x'}`;
const BUSYBOX = { type: 'bind', source: '/usr/bin/busybox', target: '/bin/busybox' } as const;
const VOLUME = `t-${process.env.PAWL_TEST_TAG ?? 'x'}-${process.pid}`;

const sh = (runtime: RuntimeName, script: string, filesystem: NonNullable<PolicyInput['filesystem']> = {}) =>
  execProgram(['/bin/busybox', 'sh', '-c', script], {
    policy: { runtime, filesystem: { ...filesystem, mounts: [BUSYBOX, ...(filesystem.mounts ?? [])] }, resources: { wallTime: '20s' } },
    host,
  });

beforeAll(() => {
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(`${DATA}/ro`, { recursive: true });
  mkdirSync(`${DATA}/rw`, { recursive: true });
  chmodSync(`${DATA}/rw`, 0o777); // the sandbox's user is an unprivileged host id
  writeFileSync(`${DATA}/ro/x`, 'hello\n');
  symlinkSync('/etc', `${DATA}/to-etc`);
  symlinkSync(`${DATA}/ro`, `${DATA}/to-ro`);
});

afterAll(async () => {
  await removeVolume(host.stateDir, VOLUME);
  rmSync(DATA, { recursive: true, force: true });
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

describe('Landlock cannot be talked out of its rules', () => {
  const ro = { type: 'bind', source: `${DATA}/ro`, target: '/ro' } as const;

  it('a link a run leaves in a volume does not widen the next run\'s rule to where it points', async () => {
    const vol = { type: 'volume', source: VOLUME, target: '/cache', size: '8MB' } as const;
    const plant = await sh('bwrap', 'ln -s / /cache/public && echo planted', { mounts: [vol] });
    expect(plant.stdout).toBe('planted\n');
    const r = await sh('bwrap', 'cat /ro/x', { mounts: [vol, ro], filePermissions: { allowRead: ['/tmp', '/bin/busybox', '/cache/public'] }, landlock: 'required' });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/can't open '\/ro\/x': Permission denied/);
    expect(r.stderr).toContain('pawl-landlock: /cache/public is reached through a symbolic link: no rule for it');
  });

  it('/dev: the device nodes are writable, nothing else (bwrap\'s /dev is a tmpfs of the task\'s user)', async () => {
    const r = await sh('bwrap', 'echo x > /dev/null && echo null-ok; echo x > /dev/a && echo wrote-dev; echo x > /dev/shm/a && echo wrote-shm', { landlock: 'required' });
    expect(r.stdout).toBe('null-ok\n');
    expect(r.stderr).toMatch(/\/dev\/a: Permission denied/);
  });

  it('a seccomp profile without the Landlock calls: named in degraded when optional, refused when required', async () => {
    const doc = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'native-profiles', 'pawl-limited.json'), 'utf8')) as { syscalls: { names: string[] }[] };
    for (const rule of doc.syscalls) rule.names = rule.names.filter((n) => !n.startsWith('landlock_'));
    const run = (landlock: 'optional' | 'required') => execProgram(['/bin/busybox', 'cat', '/ro/x'], {
      policy: { filesystem: { mounts: [BUSYBOX, ro], filePermissions: { allowRead: ['/tmp', '/bin/busybox'] }, landlock }, security: { seccomp: { profile: doc as never } } },
      host,
    });
    const optional = await run('optional');
    // The read goes through (no Landlock), and the result says so rather than nothing.
    expect(optional.stdout).toBe('hello\n');
    expect(optional.degraded).toEqual(['landlock: the seccomp profile does not allow landlock_create_ruleset, landlock_add_rule, landlock_restrict_self; the task runs without Landlock (filesystem.landlock is optional)']);
    await expect(run('required')).rejects.toThrow(/filesystem\.landlock is "required" but the seccomp profile does not allow landlock_create_ruleset/);
  });
});

describe.each(RUNTIMES)('%s: mounts from the policy', (runtime) => {
  it('a read-only bind cannot be written; a read-write bind can, and the host sees the file', async () => {
    const r = await sh(runtime, `cat /ro/x; echo no > /ro/y; echo from-${runtime} > /rw/out-${runtime}`, {
      mounts: [{ type: 'bind', source: `${DATA}/ro`, target: '/ro' }, { type: 'bind', source: `${DATA}/rw`, target: '/rw', readonly: false }],
    });
    expect(r.stdout).toBe('hello\n');
    expect(r.stderr).toMatch(/Read-only file system/);
    expect(existsSync(`${DATA}/ro/y`)).toBe(false);
    expect(readFileSync(`${DATA}/rw/out-${runtime}`, 'utf8')).toBe(`from-${runtime}\n`);
  });

  it('a bind is read-only (if it is), nosuid and nodev down to a mount inside its source', async () => {
    // The sub-mounts are made in a mount namespace of the test's own (unshare -m), in which the
    // CLI then runs the sandbox: the host's mount table never has them.
    const src = `${DATA}/nested-${runtime}`;
    for (const d of ['ro', 'rw']) mkdirSync(`${src}/${d}/sub`, { recursive: true });
    const mountSubs = 'for d in ro rw; do mount -t tmpfs -o size=1m,mode=0777 tmpfs "$0/$d/sub" && echo in-sub > "$0/$d/sub/f" || exit 99; done; exec "$@"';
    const inside = 'cat /ro/sub/f /rw/sub/f; echo x > /ro/sub/g && echo WROTE; grep -E " /(ro|rw)(/[^ ]*)? " /proc/self/mountinfo';
    const r = await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', mountSubs, src,
      process.execPath, CLI, 'exec', '--runtime', runtime, '--result', '/dev/stderr',
      '--ro-bind', '/usr/bin/busybox', '/bin/busybox', '--ro-bind', `${src}/ro`, '/ro', '--bind', `${src}/rw`, '/rw', '--', '/bin/busybox', 'sh', '-c', inside,
    ], { reject: false, env: { PAWL_STATE_DIR: '/var/lib/pawl', PAWL_CGROUP_PARENT: host.cgroupParent } });
    expect(r.exitCode, r.stderr).not.toBe(99);
    expect(r.stdout).not.toContain('WROTE');
    // Each mount at or under a bind's target, with its own flags (mountinfo's sixth field).
    const mounts = r.stdout.split('\n').filter((l) => / - /.test(l)).map((l) => ({ at: l.split(' ')[4]!, flags: l.split(' ')[5]!.split(',') }));
    const subs = mounts.filter((m) => m.at.endsWith('/sub')).map((m) => m.at).sort();
    if (runtime === 'crun') {
      // crun 1.8 binds a source without its sub-mounts: the empty dir beneath shows.
      expect(subs).toEqual([]);
      expect(r.stdout).not.toContain('in-sub');
    } else {
      expect(subs).toEqual(['/ro/sub', '/rw/sub']);
      expect(r.stdout).toContain('in-sub\nin-sub\n');
    }
    for (const m of mounts) {
      expect(m.flags, m.at).toEqual(expect.arrayContaining(['nosuid', 'nodev', ...(m.at.startsWith('/ro') ? ['ro'] : [])]));
    }
    expect(mounts.map((m) => m.at)).toEqual(expect.arrayContaining(['/ro', '/rw']));
  });

  it('a library the task writes cannot be mapped executable: /workspace everywhere, /tmp under runc and crun', async () => {
    // Landlock refuses execve in the trees the task writes; process.dlopen maps the file instead.
    const lib = `${DATA}/lib-${runtime}`;
    mkdirSync(lib, { recursive: true });
    writeFileSync(`${lib}/x.c`, '__attribute__((constructor)) static void ran(void) {}\n');
    execFileSync('gcc', ['-shared', '-fPIC', '-o', `${lib}/x.so`, `${lib}/x.c`]);
    const load = (dir: string) => `try { require('fs').copyFileSync('/so/x.so', '${dir}/x.so'); process.dlopen({ exports: {} }, '${dir}/x.so'); } catch (e) { console.log('${dir}: ' + e.message.split('\\n')[0]); }`;
    const r = await execProgram(['/usr/bin/node', '-e', `${load('/workspace')}; ${load('/tmp')}`], {
      policy: { runtime, filesystem: { mounts: [{ type: 'bind', source: lib, target: '/so' }] }, resources: { wallTime: '20s' } },
      host,
    });
    // Mapped: node then finds no addon in it ("did not self-register"); refused: "failed to map segment".
    expect(r.stdout).toMatch(/^\/workspace: .*failed to map segment/m);
    expect(r.stdout).toMatch(runtime === 'bwrap' ? /^\/tmp: .*did not self-register/m : /^\/tmp: .*failed to map segment/m);
  });

  it('a volume keeps its data between runs and stops at its size', async () => {
    const mounts = [{ type: 'volume', source: VOLUME, target: '/vol', size: '8MB' }] as const;
    const first = await sh(runtime, `echo kept-${runtime} > /vol/keep-${runtime}; dd if=/dev/zero of=/vol/big-${runtime} bs=1M count=32 2>&1; rm /vol/big-${runtime}`, { mounts: [...mounts] });
    expect(first.stdout).toMatch(/No space left on device/);
    // A later run (another host id) reads it, but cannot replace it: not by writing, nor by unlinking it first.
    const second = await sh(runtime, `cat /vol/keep-${runtime}; rm -f /vol/keep-${runtime}; echo new > /vol/keep-${runtime}; cat /vol/keep-${runtime}`, { mounts: [...mounts] });
    expect(second.stdout).toBe(`kept-${runtime}\nkept-${runtime}\n`);
    expect(second.stderr).toMatch(/Operation not permitted/);
    // Its data outlives runs: mounted with write barriers (a run's scratch /workspace goes without).
    const data = volumeData(host.stateDir, VOLUME)!;
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === data) ?? '';
    expect(line).toMatch(/ - ext4 \/dev\/loop\d+ /);
    expect(line.split(' - ')[1]).not.toMatch(/\bnobarrier\b/);
  });

  it('a tmpfs mount stops at its size', async () => {
    const r = await sh(runtime, 'dd if=/dev/zero of=/scratch/f bs=1M count=4 2>&1; echo; ls -l /scratch/f', { mounts: [{ type: 'tmpfs', target: '/scratch', size: '1MB' }] });
    expect(r.stdout).toMatch(/No space left on device/);
    expect(r.stdout).toMatch(/ 1048576 .*\/scratch\/f/);
  });

  it('refuses a bind source that is, or passes through, a symlink', async () => {
    await expect(sh(runtime, 'true', { mounts: [{ type: 'bind', source: `${DATA}/to-etc`, target: '/e' }] })).rejects.toThrow(/to-etc is a symlink/);
    await expect(sh(runtime, 'true', { mounts: [{ type: 'bind', source: `${DATA}/to-ro/x`, target: '/e' }] })).rejects.toThrow(/to-ro is a symlink/);
  });

  it('makes every default blocked path inaccessible (or narrows /proc and /dev)', async () => {
    const r = await sh(runtime, 'for f in /etc/passwd /etc/shadow; do cat $f >/dev/null && echo "read $f"; done; for d in /root /home /sys; do ls $d >/dev/null && echo "listed $d"; done; echo dev: $(ls /dev)');
    expect(r.stdout).not.toMatch(/read |listed /);
    expect(r.stderr).toMatch(/can't open '\/etc\/passwd': Permission denied/);
    expect(r.stderr).toMatch(/can't open '\/etc\/shadow': No such file/);
    for (const d of ['/root', '/home', '/sys']) expect(r.stderr).toContain(`${d}: No such file or directory`);
    // /dev is narrowed, not removed: the runtime's minimal set only.
    expect(r.stdout).toMatch(/^dev: .*null/m);
    expect(r.stdout).not.toMatch(/^dev: .*(sda|vda|loop|mem|kmsg)/m);
  });

  it('Landlock refuses a read outside allowRead that the mount alone allows', async () => {
    const mounts = [{ type: 'bind', source: `${DATA}/ro`, target: '/ro' }] as const;
    const denied = await sh(runtime, 'cat /ro/x', { mounts: [...mounts], filePermissions: { allowRead: ['/tmp', '/bin/busybox'] }, landlock: 'required' });
    expect(denied.stderr).toMatch(/can't open '\/ro\/x': Permission denied/);
    expect(denied.stdout).toBe('');
    // The same mount without Landlock: the read goes through, so it was Landlock that refused it.
    const off = await sh(runtime, 'cat /ro/x', { mounts: [...mounts], filePermissions: { allowRead: ['/tmp', '/bin/busybox'] }, landlock: 'off' });
    expect(off.stdout).toBe('hello\n');
  });

  it('Landlock refuses writes and execution outside allowWrite and allowExecute', async () => {
    const r = await sh(runtime, 'echo a > /tmp/a && echo wrote-tmp; echo b > /workspace/b && echo wrote-ws; cp /bin/busybox /workspace/bb && echo copied && /workspace/bb true && echo ran-copy', { filePermissions: { allowWrite: ['/workspace'] }, landlock: 'required' });
    expect(r.stdout).toBe('wrote-ws\ncopied\n');
    expect(r.stderr).toMatch(/\/tmp\/a: Permission denied/);
    expect(r.stderr).toMatch(/\/workspace\/bb: Permission denied/);
  });
});
