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
});

describe('Landlock rules', () => {
  it('are a pure function of the policy (snapshot)', () => {
    const p = Policy.parse({ filesystem: { mounts: [{ type: 'bind', source: '/srv/a', target: '/a' }, { type: 'bind', source: '/srv/b', target: '/b', readonly: false }, { type: 'volume', source: 'v', target: '/v' }, { type: 'tmpfs', target: '/t', size: '1MB' }] } });
    expect(landlockRules(p)).toMatchSnapshot();
    expect(landlockCommand(p, ['/usr/bin/node', '/opt/pawl/harness.cjs'])).toMatchSnapshot();
  });

  it('take the policy\'s own lists, and always keep what node needs', () => {
    const p = Policy.parse({ filesystem: { mounts: [{ type: 'bind', source: '/srv/a', target: '/a' }], filePermissions: { allowRead: ['/tmp'], allowWrite: [], allowExecute: [] } } });
    expect(landlockRules(p)).toEqual({ list: ['/'], read: ['/usr', '/etc', '/opt/pawl', '/proc', '/dev', '/tmp'], write: ['/dev'], execute: ['/usr', '/opt/pawl'] });
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
