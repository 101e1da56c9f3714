// AppArmor and SELinux: what this host can apply (lsm/host.ts, the facts runs use too).
import { execFile } from 'node:child_process';
import { APPARMOR_ENABLED_FILE } from '../lsm/apparmor/host.js';
import { APPARMOR_PARSER, SELINUX_ENFORCE, type LsmHost } from '../lsm/host.js';
import type { Policy } from '../config/policy.js';
import { check, type Check } from './report.js';

export function version(file: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(file, args, { env: {}, timeout: 10_000 }, (err, stdout, stderr) => resolve(err ? null : `${stdout}${stderr}`.trim().split('\n')[0]!));
  });
}

export async function lsmChecks(lsm: LsmHost, policy: Policy): Promise<Check[]> {
  const a = lsm.apparmor;
  const used = policy.security.apparmor !== 'off';
  const aaFix = 'boot a kernel with AppArmor (CONFIG_SECURITY_APPARMOR=y, apparmor in lsm=); until then security.apparmor: optional runs unconfined by it (named in degraded), required refuses';
  const parser = a.parser ? await version(APPARMOR_PARSER, ['--version']) : null;
  const out: Check[] = [
    a.enabled
      ? a.securityfs
        ? check('apparmor', 'ok', `AppArmor enabled, ${a.loaded.length} profile(s) loaded; pawl applies its generated profile with security.apparmor: optional|required (default off)`, null, used)
        : check('apparmor', 'degraded', 'AppArmor enabled, but securityfs is not mounted: profiles cannot be loaded', 'mount -t securityfs securityfs /sys/kernel/security', used)
      : check('apparmor', 'missing', `AppArmor is not enabled in this kernel (${APPARMOR_ENABLED_FILE} is missing or not Y)`, aaFix, used),
    check('apparmor_parser', parser ? 'ok' : 'missing', parser ? `${APPARMOR_PARSER}: ${parser}` : `${APPARMOR_PARSER} is not installed: profiles can be generated (pawl apparmor profile) but not loaded`, 'apt-get install apparmor', used),
  ];
  const labels = policy.security.selinux;
  out.push(lsm.selinux.enabled
    ? check('selinux', 'ok', `SELinux enabled (${lsm.selinux.enforcing ? 'enforcing' : 'permissive'}): security.selinux labels are applied (runc/crun, bwrap --exec-label)`, null, !!labels)
    : check('selinux', 'missing', `SELinux is not enabled (${SELINUX_ENFORCE} is missing): security.selinux labels are refused (or skipped with mode optional)`, 'a kernel with SELinux enabled and a loaded policy (selinux=1 security=selinux)', !!labels));
  return out;
}
