// What this host offers the mandatory access control layers, read from the kernel's own files.
// Read once per process (a few small sysfs reads); `pawl doctor` prints the same facts.
import { existsSync, readFileSync } from 'node:fs';
import { APPARMOR_ENABLED_FILE } from './apparmor/host.js';

export const APPARMOR_PARSER = '/usr/sbin/apparmor_parser';
export const AA_EXEC = '/usr/bin/aa-exec';
/** The kernel's list of loaded profiles ("name (mode)" per line); securityfs must be mounted. */
export const APPARMOR_PROFILES = '/sys/kernel/security/apparmor/profiles';
export const SELINUX_ENFORCE = '/sys/fs/selinux/enforce';

export interface LsmHost {
  apparmor: {
    /** The kernel runs AppArmor (/sys/module/apparmor/parameters/enabled is Y). */
    enabled: boolean;
    /** securityfs shows AppArmor's interface (needed to load and list profiles). */
    securityfs: boolean;
    parser: boolean;
    aaExec: boolean;
    /** Names of the profiles loaded now (empty when they cannot be read). */
    loaded: string[];
  };
  /** SELinux is enabled (selinuxfs mounted); enforcing or permissive. */
  selinux: { enabled: boolean; enforcing: boolean };
  root: boolean;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function readLsmHost(): LsmHost {
  const enabled = read(APPARMOR_ENABLED_FILE)?.trim() === 'Y';
  const profiles = enabled ? read(APPARMOR_PROFILES) : null;
  const enforce = read(SELINUX_ENFORCE);
  return {
    apparmor: {
      enabled,
      securityfs: existsSync('/sys/kernel/security/apparmor'),
      parser: existsSync(APPARMOR_PARSER),
      aaExec: existsSync(AA_EXEC),
      loaded: (profiles ?? '').split('\n').map((l) => l.replace(/ \([a-z]+\)$/, '')).filter(Boolean),
    },
    selinux: { enabled: enforce !== null, enforcing: enforce?.trim() === '1' },
    root: process.geteuid?.() === 0,
  };
}

let cached: LsmHost | null = null;

export function lsmHost(): LsmHost {
  return (cached ??= readLsmHost());
}

/** After loading a profile: the next read sees it. */
export function forgetLsmHost(): void {
  cached = null;
}
