// Applying AppArmor and SELinux: what each runtime gets, and when a run is refused or degraded,
// as a pure function of the policy and the host's LSM facts (fake hosts here; the real host's
// refusals are in test/integration/lsm.test.ts). The profiles pawl loads pass apparmor_parser -Q.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import type { PolicyInput } from '../../src/config/policy.js';
import { apparmorProfile, bwrapSetupProfile } from '../../src/lsm/apparmor/index.js';
import { lsmPlan } from '../../src/lsm/apply.js';
import type { LsmHost } from '../../src/lsm/host.js';
import { ociConfig } from '../../src/runtime/oci/config.js';
import { bwrapArgs } from '../../src/runtime/bwrap/argv.js';
import { bwrapRuntime } from '../../src/runtime/bwrap/index.js';
import { testPlan } from '../helpers/plan.js';
import { PACKAGE_ROOT } from '../../src/config/host.js';

const NO_LSM: LsmHost = { apparmor: { enabled: false, securityfs: false, parser: true, aaExec: true, loaded: [] }, selinux: { enabled: false, enforcing: false }, root: true };
const APPARMOR: LsmHost = { ...NO_LSM, apparmor: { enabled: true, securityfs: true, parser: true, aaExec: true, loaded: [] } };
const SELINUX: LsmHost = { ...NO_LSM, selinux: { enabled: true, enforcing: true } };
const LABELS = { processLabel: 'system_u:system_r:container_t:s0:c1,c2', mountLabel: 'system_u:object_r:container_file_t:s0:c1,c2' };

const policy = (overrides: PolicyInput = {}) => resolvePolicy({ overrides });

describe('security.apparmor', () => {
  it('defaults to off: nothing is applied, nothing degraded', () => {
    expect(policy().security.apparmor).toBe('off');
    expect(lsmPlan(policy(), APPARMOR)).toEqual({ apparmor: null, selinux: null, degraded: [], refusal: null });
  });

  it('required on a host without AppArmor: refused, naming the missing kernel feature', () => {
    const p = lsmPlan(policy({ security: { apparmor: 'required' } }), NO_LSM);
    expect(p.refusal).toMatch(/^security\.apparmor is required, but this kernel has no AppArmor \(\/sys\/module\/apparmor\/parameters\/enabled is missing or not Y: the kernel was built without CONFIG_SECURITY_APPARMOR or booted without apparmor in lsm=\)/);
  });

  it('optional on a host without AppArmor: a named degradation, no profile in the config', () => {
    const pol = policy({ runtime: 'runc', security: { apparmor: 'optional' } });
    const p = lsmPlan(pol, NO_LSM);
    expect(p.refusal).toBeNull();
    expect(p.apparmor).toBeNull();
    expect(p.degraded).toEqual([expect.stringMatching(new RegExp(`^apparmor: this kernel has no AppArmor .*; the generated profile ${apparmorProfile(pol).name} is not applied \\(security.apparmor is optional\\)$`))]);
  });

  it('each thing a host with AppArmor may still lack is named', () => {
    const pol = policy({ security: { apparmor: 'required' } });
    expect(lsmPlan(pol, { ...APPARMOR, apparmor: { ...APPARMOR.apparmor, securityfs: false } }).refusal).toMatch(/securityfs/);
    expect(lsmPlan(pol, { ...APPARMOR, apparmor: { ...APPARMOR.apparmor, parser: false } }).refusal).toMatch(/apparmor_parser is not installed/);
    expect(lsmPlan(pol, { ...APPARMOR, root: false }).refusal).toMatch(/needs root \(CAP_MAC_ADMIN\)/);
    expect(lsmPlan(pol, { ...APPARMOR, apparmor: { ...APPARMOR.apparmor, aaExec: false } }).refusal).toMatch(/aa-exec is not installed/);
    // Not root, but the profiles are loaded already (same name, same rules): applied.
    const name = apparmorProfile(pol).name;
    expect(lsmPlan(pol, { ...APPARMOR, root: false, apparmor: { ...APPARMOR.apparmor, loaded: [name, `${name}-bwrap`] } }).apparmor).toEqual({ profile: name, setup: `${name}-bwrap` });
  });

  it('bwrap on a host with AppArmor is started by aa-exec under the set-up profile', async () => {
    const pol = policy({ security: { apparmor: 'required' } });
    const name = apparmorProfile(pol).name;
    const site = { id: 'ID', host: {} as never, dir: '/tmp/ID', cgroupName: 'run-ID', procsFiles: [], hostId: null, secret: 'S' };
    const prepared = await bwrapRuntime.prepare(testPlan(pol, { lsm: lsmPlan(pol, APPARMOR) }), site);
    expect(prepared.runtime.file).toBe('/usr/bin/aa-exec');
    expect(prepared.runtime.args.slice(0, 4)).toEqual(['-p', `${name}-bwrap`, '--', '/usr/bin/bwrap']);
    const plain = await bwrapRuntime.prepare(testPlan(policy(), { lsm: lsmPlan(policy(), APPARMOR) }), site);
    expect(plain.runtime.file).toBe('/usr/bin/bwrap');
  });

  it('giving both the operator\'s own profile name and the generated one is refused', () => {
    expect(() => policy({ security: { apparmor: 'optional', apparmorProfile: 'mine' } })).toThrow(/not both/);
  });
});

describe('security.selinux', () => {
  it('labels without SELinux: refused by default, degraded when optional', () => {
    expect(lsmPlan(policy({ security: { selinux: LABELS } }), NO_LSM).refusal).toMatch(/^security\.selinux labels are set \(mode required\), but SELinux is not enabled in this kernel \(\/sys\/fs\/selinux\/enforce is missing/);
    const p = lsmPlan(policy({ security: { selinux: { ...LABELS, mode: 'optional' } } }), NO_LSM);
    expect([p.refusal, p.selinux, p.degraded]).toEqual([null, null, [expect.stringMatching(/^selinux: SELinux is not enabled .*labels not applied \(security.selinux.mode is optional\)$/)]]);
    expect(lsmPlan(policy({ security: { selinux: LABELS } }), SELINUX)).toMatchObject({ refusal: null, selinux: LABELS, degraded: [] });
  });

  it('a label that is not a context (or could smuggle an argument) is refused', () => {
    expect(() => policy({ security: { selinux: { processLabel: 'x' } } })).toThrow(/SELinux context/);
    expect(() => policy({ security: { selinux: { processLabel: 'a:b:c\n--bind' } } })).toThrow(/SELinux context/);
  });

  it('bwrap labels its program and mounts (--exec-label, --file-label) before the command', () => {
    const pol = policy({ security: { selinux: LABELS } });
    const argv = bwrapArgs(testPlan(pol, { lsm: lsmPlan(pol, SELINUX) }), { seccomp: null, ready: null, info: null, sources: 8 }, { files: [], dirs: [] });
    const i = argv.indexOf('--exec-label');
    expect(argv.slice(i, i + 4)).toEqual(['--exec-label', LABELS.processLabel, '--file-label', LABELS.mountLabel]);
    expect(i).toBeLessThan(argv.indexOf('--'));
  });
});

describe('OCI config.json with AppArmor and SELinux set', () => {
  it('carries process.apparmorProfile, process.selinuxLabel and linux.mountLabel (snapshot)', () => {
    const pol = resolvePolicy({ trustLevel: 'untrusted', overrides: { runtime: 'runc', security: { apparmor: 'required', selinux: LABELS } } });
    const host: LsmHost = { ...APPARMOR, selinux: { enabled: true, enforcing: true } };
    const config = ociConfig(testPlan(pol, { lsm: lsmPlan(pol, host) }), {
      root: '/var/lib/pawl/runs/ID/root', cgroupsPath: '/pawl/run-ID', hostIds: { user: 600_000, root: 600_001 }, userns: true,
    });
    expect(config.process.apparmorProfile).toBe(apparmorProfile(pol).name);
    expect(config.process.selinuxLabel).toBe(LABELS.processLabel);
    expect(config.linux.mountLabel).toBe(LABELS.mountLabel);
    expect({ process: config.process, mountLabel: config.linux.mountLabel }).toMatchSnapshot();
  });
});

const PARSER = '/usr/sbin/apparmor_parser';
const dir = mkdtempSync(join(tmpdir(), 'pawl-lsm-'));
function parse(name: string, text: string): { status: number | null; stderr: string } {
  writeFileSync(join(dir, name), text);
  const r = spawnSync(PARSER, ['-Q', '-K', '-o', join(dir, `${name}.bin`), join(dir, name)], { encoding: 'utf8' });
  if (r.error) throw new Error(`${PARSER} cannot run (${r.error.message}): scripts/setup installs it (package apparmor)`);
  return { status: r.status, stderr: r.stderr.replace(/^Cache read\/write disabled.*\n/gm, '') };
}

describe('profiles pawl loads pass apparmor_parser -Q', () => {
  it.each(['untrusted', 'limited', 'trusted', 'system'])('the sandbox profile and bwrap\'s set-up profile, as loaded together (%s)', (trustLevel) => {
    const main = apparmorProfile(resolvePolicy({ trustLevel, overrides: { security: { apparmor: 'required' } } }));
    const setup = bwrapSetupProfile(main.name);
    expect(setup.text).toContain(`/** pix -> &${main.name},`);
    expect(parse(`loaded-${trustLevel}`, `${main.text}\n${setup.text}`)).toEqual({ status: 0, stderr: '' });
  });

  it('the shipped Ubuntu 23.10+ profile that lets bwrap create user namespaces', () => {
    const text = readFileSync(join(PACKAGE_ROOT, 'native-profiles', 'apparmor', 'pawl-bwrap-userns'), 'utf8');
    expect(text).toMatch(/^profile pawl-bwrap-userns \/usr\/bin\/bwrap flags=\(unconfined\) \{\n {2}userns,$/m);
    const version = /version (\d+)\./.exec(spawnSync(PARSER, ['--version'], { encoding: 'utf8' }).stdout)?.[1];
    if (Number(version) >= 4) {
      expect(parse('userns', text)).toEqual({ status: 0, stderr: '' });
      return;
    }
    // AppArmor 3.x (Debian 12) knows neither abi 4.0 nor the userns rule: the whole file is checked
    // on a 4.x parser (above); here, that the userns rule is the only thing it lacks.
    const whole = parse('userns', text);
    expect(whole.status).not.toBe(0);
    const without = text.replace('abi <abi/4.0>,', 'abi <abi/3.0>,').replace(/^ {2}userns,\n/m, '');
    expect(parse('userns-3x', without)).toEqual({ status: 0, stderr: '' });
    const only = text.replace('abi <abi/4.0>,', 'abi <abi/3.0>,');
    expect(parse('userns-rule', only).stderr).toMatch(new RegExp(`line ${only.split('\n').findIndex((l) => l === '  userns,') + 1}: syntax error`));
  });
});
