// Applying mandatory access control to a sandbox: pawl's generated AppArmor profile and the
// policy's SELinux labels. What to apply is a pure function of the policy and the host's LSM
// facts (host.ts); the runtimes take it through three small hooks:
//   runc/crun  ociLsmFields()    -> process.apparmorProfile, process.selinuxLabel, linux.mountLabel
//   bwrap      bwrapLsmArgs()    -> --exec-label / --file-label
//              bwrapLsmLaunch()  -> bwrap started by aa-exec under the set-up profile
//                                   (apparmor/setup.ts), its program entering the sandbox profile
// and prepareLsm() runs before the sandbox: it refuses, or loads the profile, or names the gap.
import type { Policy } from '../config/policy.js';
import { PawlError } from '../errors.js';
import { apparmorProfile } from './apparmor/profile.js';
import { bwrapSetupProfile } from './apparmor/setup.js';
import { loadProfiles } from './apparmor/load.js';
import { AA_EXEC, APPARMOR_PARSER, APPARMOR_PROFILES, lsmHost, SELINUX_ENFORCE, type LsmHost } from './host.js';
import { APPARMOR_ENABLED_FILE } from './apparmor/host.js';

export interface LsmPlan {
  /** The generated profile to apply (and bwrap's set-up profile), or null. */
  apparmor: { profile: string; setup: string } | null;
  selinux: { processLabel?: string; mountLabel?: string } | null;
  /** Gaps the policy allows (the result's `degraded`). */
  degraded: string[];
  /** Why the run must be refused, or null. */
  refusal: string | null;
}

/** Why this host cannot apply a generated AppArmor profile, or null when it can. */
export function apparmorGap(host: LsmHost, runtime: Policy['runtime'], name: string): string | null {
  const a = host.apparmor;
  if (!a.enabled) return `this kernel has no AppArmor (${APPARMOR_ENABLED_FILE} is missing or not Y: the kernel was built without CONFIG_SECURITY_APPARMOR or booted without apparmor in lsm=)`;
  if (!a.securityfs) return 'AppArmor\'s interface is not mounted (/sys/kernel/security/apparmor: mount -t securityfs securityfs /sys/kernel/security)';
  const loaded = a.loaded.includes(name) && (runtime !== 'bwrap' || a.loaded.includes(`${name}-bwrap`));
  if (!loaded && !a.parser) return `${APPARMOR_PARSER} is not installed (Debian/Ubuntu package apparmor)`;
  if (!loaded && !host.root) return `loading profile ${name} needs root (CAP_MAC_ADMIN), and it is not loaded (${APPARMOR_PROFILES})`;
  if (runtime === 'bwrap' && !a.aaExec) return `${AA_EXEC} is not installed (package apparmor): bwrap is started through it`;
  return null;
}

export function lsmPlan(policy: Policy, host: LsmHost = lsmHost()): LsmPlan {
  const plan: LsmPlan = { apparmor: null, selinux: null, degraded: [], refusal: null };
  const { apparmor: mode, selinux } = policy.security;
  if (mode !== 'off') {
    const { name } = apparmorProfile(policy);
    const gap = apparmorGap(host, policy.runtime, name);
    if (!gap) plan.apparmor = { profile: name, setup: `${name}-bwrap` };
    else if (mode === 'optional') plan.degraded.push(`apparmor: ${gap}; the generated profile ${name} is not applied (security.apparmor is optional)`);
    else {
      plan.refusal = `security.apparmor is required, but ${gap}`;
      plan.apparmor = { profile: name, setup: `${name}-bwrap` }; // what would be applied (explain shows it)
    }
  }
  if (selinux && (selinux.processLabel || selinux.mountLabel)) {
    const labels = { ...(selinux.processLabel ? { processLabel: selinux.processLabel } : {}), ...(selinux.mountLabel ? { mountLabel: selinux.mountLabel } : {}) };
    const gap = host.selinux.enabled ? null : `SELinux is not enabled in this kernel (${SELINUX_ENFORCE} is missing: no selinuxfs, or the kernel runs without SELinux)`;
    if (!gap) plan.selinux = labels;
    else if (selinux.mode === 'optional') plan.degraded.push(`selinux: ${gap}; labels not applied (security.selinux.mode is optional)`);
    else {
      plan.refusal ??= `security.selinux labels are set (mode required), but ${gap}`;
      plan.selinux = labels;
    }
  }
  return plan;
}

/** Before the sandbox: refuse (HostUnsupported), or load the profiles; returns the gaps for `degraded`. */
export async function prepareLsm(policy: Policy): Promise<string[]> {
  const plan = lsmPlan(policy);
  if (plan.refusal) throw new PawlError('HostUnsupported', plan.refusal);
  if (plan.apparmor) {
    const main = apparmorProfile(policy);
    const names = policy.runtime === 'bwrap' ? [main.name, plan.apparmor.setup] : [main.name];
    await loadProfiles(names, policy.runtime === 'bwrap' ? `${main.text}\n${bwrapSetupProfile(main.name).text}` : main.text);
  }
  return plan.degraded;
}

/** For `pawl explain`: whether a run of this policy applies the generated profile here, and why (not). */
export function apparmorExplanation(policy: Policy, host?: LsmHost): { applied: boolean; note: string } {
  const mode = policy.security.apparmor;
  if (mode === 'off') return { applied: false, note: 'generated, not applied (security.apparmor is off; pawl apparmor profile prints it)' };
  const p = lsmPlan(policy, host);
  if (p.refusal) return { applied: false, note: `security.apparmor is required: a run is refused here (${p.refusal})` };
  const gap = p.degraded.find((d) => d.startsWith('apparmor: '));
  if (gap) return { applied: false, note: `security.apparmor is optional and not applied here: ${gap.slice('apparmor: '.length)}` };
  return { applied: true, note: `loaded and applied (security.apparmor ${mode})${policy.runtime === 'bwrap' ? `; bwrap runs under ${p.apparmor!.setup}` : ''}` };
}
