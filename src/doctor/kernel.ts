// Kernel features the sandbox is built from: user namespaces (bwrap runs unprivileged, as the
// run's host id), seccomp (and libseccomp, which compiles the filters), Landlock.
import { readFile } from 'node:fs/promises';
import { landlockProbe } from '../lsm/landlock/probe.js';
import { libseccomp } from '../seccomp/libseccomp.js';
import type { LsmHost } from '../lsm/host.js';
import { check, type Check } from './report.js';

const read = (p: string) => readFile(p, 'utf8').then((t) => t.trim(), () => null);

export async function usernsChecks(lsm: LsmHost): Promise<Check[]> {
  const out: Check[] = [];
  const [clone, max, restrict] = await Promise.all([
    read('/proc/sys/kernel/unprivileged_userns_clone'), read('/proc/sys/user/max_user_namespaces'), read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
  ]);
  const fixSysctl = (k: string, v: string) => `sysctl -w ${k}=${v} (and in /etc/sysctl.d/ to keep it)`;
  if (clone === '0') out.push(check('user namespaces', 'missing', 'kernel.unprivileged_userns_clone is 0: bwrap, which runs as an unprivileged host id, cannot create its user namespace', fixSysctl('kernel.unprivileged_userns_clone', '1'), true));
  else if (max === '0') out.push(check('user namespaces', 'missing', 'user.max_user_namespaces is 0: no user namespace can be created', fixSysctl('user.max_user_namespaces', '15000'), true));
  else out.push(check('user namespaces', 'ok', `unprivileged user namespaces allowed (unprivileged_userns_clone ${clone ?? 'not present'}, max_user_namespaces ${max ?? '?'})`, null, true));
  if (restrict === null || restrict === '0') {
    out.push(check('userns restriction', 'ok', restrict === null ? 'kernel.apparmor_restrict_unprivileged_userns is not present (not an Ubuntu 23.10+ kernel)' : 'kernel.apparmor_restrict_unprivileged_userns is 0', null, true));
  } else {
    // Ubuntu 23.10+: unprivileged processes need an AppArmor profile with `userns,` (bwrap's).
    const allowed = lsm.apparmor.loaded.find((n) => n === 'pawl-bwrap-userns' || n === '/usr/bin/bwrap' || n === 'bwrap' || n === 'bwrap-userns-restrict');
    out.push(allowed
      ? check('userns restriction', 'ok', `kernel.apparmor_restrict_unprivileged_userns is 1; profile ${allowed} lets bwrap create user namespaces`, null, true)
      : check('userns restriction', 'missing', 'kernel.apparmor_restrict_unprivileged_userns is 1 and no AppArmor profile lets /usr/bin/bwrap create user namespaces: every bwrap run fails', 'install native-profiles/apparmor/pawl-bwrap-userns into /etc/apparmor.d/ and load it (apparmor_parser -r), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0', true));
  }
  return out;
}

export async function seccompChecks(): Promise<Check[]> {
  const status = (await read('/proc/self/status')) ?? '';
  const actions = await read('/proc/sys/kernel/seccomp/actions_avail');
  const kernel = /^Seccomp:/m.test(status) && actions !== null && /\bkill_process\b/.test(actions) && /\berrno\b/.test(actions);
  const out = [check('seccomp', kernel ? 'ok' : 'missing', kernel ? `seccomp filters supported (actions: ${actions})` : 'the kernel has no seccomp filter support (/proc/sys/kernel/seccomp/actions_avail)', 'a kernel with CONFIG_SECCOMP_FILTER', true)];
  try {
    out.push(check('libseccomp', 'ok', `libseccomp ${libseccomp().version} compiles the filters`, null, true));
  } catch (e) {
    out.push(check('libseccomp', 'missing', (e as Error).message, 'apt-get install libseccomp2', true));
  }
  return out;
}

export function landlockCheck(): Check {
  const r = landlockProbe();
  if ('abi' in r) return check('landlock', 'ok', `Landlock ABI ${r.abi} (landlock_create_ruleset)`, null, false);
  const why = r.errno === 'ENOSYS' ? 'the kernel has no Landlock (ENOSYS: built without CONFIG_SECURITY_LANDLOCK)' : r.errno === 'EOPNOTSUPP' ? 'Landlock is built in but not enabled (EOPNOTSUPP: add landlock to the lsm= boot parameter)' : `landlock_create_ruleset failed (${r.errno})`;
  return check('landlock', 'missing', why, 'a kernel 5.13+ with CONFIG_SECURITY_LANDLOCK=y and landlock in lsm=', false);
}
