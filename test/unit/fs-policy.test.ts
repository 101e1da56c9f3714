// The filesystem policy: mount targets and blocked paths checked in the schema, Landlock's rules
// and the launcher argv as pure functions of the policy, blocked paths planned against the rootfs.
import { describe, expect, it } from 'vitest';
import { Policy, type PolicyInput } from '../../src/config/policy.js';
import { landlockCommand, landlockRules } from '../../src/lsm/landlock/rules.js';
import { blockedPlan } from '../../src/fs/mounts.js';
import { fsLayoutMounts } from '../../src/plan/layout.js';

const parse = (filesystem: PolicyInput['filesystem']) => Policy.safeParse({ filesystem });
const issues = (filesystem: PolicyInput['filesystem']) => {
  const r = parse(filesystem);
  return r.success ? [] : r.error.issues.map((i) => i.message);
};

describe('filesystem policy', () => {
  it('accepts bind, volume and tmpfs mounts with their defaults', () => {
    const p = Policy.parse({ filesystem: { mounts: [{ type: 'bind', source: '/srv/a', target: '/a' }, { type: 'volume', source: 'cache', target: '/cache' }, { type: 'tmpfs', target: '/scratch', size: '1MB' }] } });
    expect(p.filesystem.mounts).toEqual([
      { type: 'bind', source: '/srv/a', target: '/a', readonly: true },
      { type: 'volume', source: 'cache', target: '/cache', readonly: false, size: 64 * 1024 * 1024 },
      { type: 'tmpfs', target: '/scratch', size: 1024 * 1024 },
    ]);
    expect(p.filesystem.blockedPaths).toEqual(['/proc', '/sys', '/dev', '/etc/passwd', '/etc/shadow', '/root', '/home']);
    expect(p.filesystem.landlock).toBe('optional');
  });

  it.each([
    ['/proc/x', /part of the sandbox/], ['/dev', /part of the sandbox/], ['/opt/pawl/h', /part of the sandbox/], ['/', /part of the sandbox/],
    ['/workspace/x', /part of the sandbox/], ['/tmp', /part of the sandbox/], ['/run/pawl', /part of the sandbox/],
    ['/a/../etc', /normalised/], ['//usr', /normalised/], ['/data/', /normalised/], ['relative', /normalised/],
    ['/home/me', /blocked path \/home/],
  ])('refuses the mount target %s', (target, why) => {
    expect(issues({ mounts: [{ type: 'bind', source: '/srv/a', target }] }).join('\n')).toMatch(why);
  });

  it('refuses overlapping mounts, bad volume names, and blocked paths inside the task\'s trees', () => {
    expect(issues({ mounts: [{ type: 'bind', source: '/srv/a', target: '/a' }, { type: 'tmpfs', target: '/a/b', size: '1MB' }] }).join()).toMatch(/overlaps the mount at \/a/);
    expect(issues({ mounts: [{ type: 'volume', source: '../x', target: '/v' }] }).join()).toMatch(/volume name/);
    expect(issues({ blockedPaths: ['/workspace/secret'] }).join()).toMatch(/the task writes \/workspace/);
    expect(issues({ mounts: [{ type: 'tmpfs', target: '/big', size: '200MB' }] }).join()).toMatch(/smaller than resources.memory/);
  });

  // Each of these was accepted, and then the runtimes (C programs) or the layout did something
  // else than every check saw: a NUL cut "/etc\0x" to /etc (bwrap and crun mounted a writable
  // tmpfs on it), "/\0nothing" to / (a Landlock read rule for the whole sandbox).
  it.each([
    [{ mounts: [{ type: 'tmpfs', target: '/etc\u0000x', size: '1MB' }] }, /mounts\.0\.target: must not hold a control character/],
    [{ mounts: [{ type: 'tmpfs', target: '/opt/pawl\u0000', size: '1MB' }] }, /must not hold a control character/],
    [{ filePermissions: { allowRead: ['/\u0000nothing'] } }, /allowRead\.0: must not hold a control character/],
    [{ blockedPaths: ['/data\nx'] }, /must not hold a control character/],
  ])('refuses a control character in a path: %j', (filesystem, why) => {
    const r = Policy.safeParse({ filesystem });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n')).toMatch(why);
  });

  // Binds are mounts too: under /workspace one made /workspace executable, under a blocked path one
  // showed it while explain called it absent, over /run/pawl one replaced the egress socket.
  it.each([
    ['/workspace/lib', /cannot bind over \/workspace\/lib: it is part of the sandbox pawl builds \(\/workspace\)/],
    ['/tmp/lib', /cannot bind over \/tmp\/lib/],
    ['/run/pawl', /cannot bind over \/run\/pawl/],
    ['/sys/kernel', /cannot bind over \/sys\/kernel/],
    ['/home/u', /\/home\/u overlaps the blocked path \/home/],
    ['/data/sub', /\/data\/sub overlaps the mount at \/data/],
    ['/opt', /cannot bind over \/opt: it is part of the sandbox pawl builds \(\/opt\/pawl\)/],
    ['/run', /cannot bind over \/run: it is part of the sandbox pawl builds \(\/run\/pawl\)/],
  ])('refuses a bind at %s', (dst, why) => {
    expect(issues({ binds: [{ src: '/srv/data', dst: '/data' }, { src: '/srv/b', dst }] }).join('\n')).toMatch(why);
  });

  it('refuses a bind overlapping a mount, and a blocked path it could not enforce', () => {
    expect(issues({ binds: [{ src: '/srv/a', dst: '/a' }], mounts: [{ type: 'tmpfs', target: '/a/t', size: '1MB' }] }).join()).toMatch(/overlaps the mount at \/a/);
    expect(issues({ blockedPaths: ['/opt'] }).join()).toMatch(/cannot block \/opt: it holds pawl's rootfs \(\/opt\/pawl\); block paths inside it/);
    expect(issues({ blockedPaths: ['/lib/x86_64-linux-gnu'] }).join()).toMatch(/cannot block \/lib\/x86_64-linux-gnu: it is reached through a link in the sandbox; block \/usr\/lib\/x86_64-linux-gnu/);
    expect(issues({ blockedPaths: ['/lib64/ld-linux-x86-64.so.2'] }).join()).toMatch(/block \/usr\/lib64\/ld-linux-x86-64\.so\.2/);
    expect(issues({ blockedPaths: ['/usr/lib/x86_64-linux-gnu', '/opt/pawl/x'] })).toEqual([]);
    expect(issues({ filePermissions: { allowExecute: ['/lib64/ld-linux-x86-64.so.2'] } }).join()).toMatch(/is reached through a link in the sandbox: name \/usr\/lib64\/ld-linux-x86-64\.so\.2/);
  });
});

describe('Landlock rules', () => {
  it('are a pure function of the policy (snapshot)', () => {
    const p = Policy.parse({ filesystem: { mounts: [{ type: 'bind', source: '/srv/a', target: '/a' }, { type: 'bind', source: '/srv/b', target: '/b', readonly: false }, { type: 'volume', source: 'v', target: '/v' }, { type: 'tmpfs', target: '/t', size: '1MB' }] } });
    expect(landlockRules(p)).toMatchSnapshot();
    expect(landlockCommand(p, ['/usr/bin/node', '/opt/pawl/harness.cjs'])).toMatchSnapshot();
  });

  it('take the policy\'s own lists, and always keep what node needs', () => {
    const p = Policy.parse({ filesystem: { mounts: [{ type: 'bind', source: '/srv/a', target: '/a' }], filePermissions: { allowRead: ['/tmp'], allowWrite: [], allowExecute: [] } } });
    expect(landlockRules(p)).toEqual({ list: ['/'], read: ['/usr', '/etc', '/opt/pawl', '/proc', '/dev', '/tmp'], write: ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty'], execute: ['/usr', '/opt/pawl'] });
  });

  it('off: the task runs without the launcher; required: the launcher refuses a kernel without Landlock', () => {
    expect(landlockCommand(Policy.parse({ filesystem: { landlock: 'off' } }), ['/x'])).toEqual(['/x']);
    expect(landlockCommand(Policy.parse({ filesystem: { landlock: 'required' } }), ['/x']).slice(0, 2)).toEqual(['/opt/pawl/landlock-exec', 'required']);
  });
});

describe('blocked paths', () => {
  it('covers the rootfs\'s files, leaves absent paths absent and narrows /proc and /dev', () => {
    const plan = blockedPlan(Policy.parse({}), '/nonexistent-rootfs'); // falls back to the recipe's files/
    expect(plan.covers).toEqual([{ kind: 'blocked-file', target: '/etc/passwd' }]);
    expect(plan.lines.join('\n')).toMatch(/\/proc: narrowed/);
    expect(plan.lines.join('\n')).toMatch(/\/root: absent/);
    expect(fsLayoutMounts(Policy.parse({}), '/R')).toEqual([{ type: 'bind', dst: '/etc/passwd', src: '/R/opt/pawl/blocked', readOnly: true }]);
  });
});
