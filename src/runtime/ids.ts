// Run ids (a run's cgroup and OCI container are named by it) and the host ids sandboxes run as.
// Here, below the run, because each backend names and maps its sandboxes by them too.
import { randomBytes, randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { HostConfig } from '../config/host.js';
import { PawlError } from '../errors.js';
import { captureOutput } from './spawn.js';

export function newRunId(): string {
  return `${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** When a run id was made (ms since the epoch), from its leading base-36 timestamp. */
export const idTime = (id: string): number => parseInt(id.replace(/^run-/, '').split('-')[0] ?? '', 36);

/** The supervisor pid a run id or cgroup name was made by (for gc of dead supervisors' runs). */
export function ownerPid(name: string): number | null {
  const m = /^(?:run-)?[0-9a-z]+-(\d+)-[0-9a-f]{8}$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * The second id of a run (an OCI sandbox's root maps to it): the other one of its pair, counted
 * from the range's base, so it stays inside the range whatever the base's parity; the last id of
 * an odd-sized range pairs with the one before it.
 */
export function partnerId(host: HostConfig, hostId: number): number {
  const k = hostId - host.hostIdBase;
  const partner = k ^ 1;
  return host.hostIdBase + (partner < host.hostIdCount ? partner : k - 1);
}

/**
 * As root, each run drops to a host uid/gid drawn at random from the configured range, so that
 * concurrent sandboxes do not share an id that could signal or ptrace the other. OCI runtimes
 * also use the id's partner for the container's root, so no two live runs share either id.
 * Not root: no drop (null).
 */
export function pickHostId(host: HostConfig): number | null {
  if (process.geteuid?.() !== 0) return null;
  // Never two live runs of this process on one id; across processes a clash is rare (1 in 65536).
  for (let i = 0; i < 64; i++) {
    const id = host.hostIdBase + randomInt(host.hostIdCount);
    const partner = host.hostIdCount > 1 ? partnerId(host, id) : id;
    if (!reserved.has(id) && !reserved.has(partner)) {
      inUse.set(id, partner);
      reserved.add(id).add(partner);
      return id;
    }
  }
  throw new PawlError('RuntimeError', `no free host id in ${host.hostIdBase}..${host.hostIdBase + host.hostIdCount - 1}`);
}

/** Live runs' ids -> their partners, and every id either holds. */
const inUse = new Map<number, number>();
const reserved = new Set<number>();

/** The run is over: its host id may be drawn again. */
export function releaseHostId(id: number | null): void {
  if (id === null || !inUse.has(id)) return;
  reserved.delete(inUse.get(id)!);
  reserved.delete(id);
  inUse.delete(id);
}

/** Where the account database is read from (tests point these at temp files). */
export interface AccountSources {
  /** `getent passwd` / `getent group` output, or a function giving it (NSS: files, LDAP, SSSD with enumeration). */
  passwd?: () => Promise<string>;
  group?: () => Promise<string>;
  subuid?: string;
  subgid?: string;
}

// posix_spawn, not execFile: a CLI run waits for these two (runtime/spawn.ts says why).
const getent = (db: string) => () => captureOutput('/usr/bin/getent', [db], { maxBytes: 64 << 20, timeoutMs: 10_000 });

/** Every account, group and subordinate id range that overlaps [base, base+count), as "what: detail". */
export async function hostIdConflicts(base: number, count: number, src: AccountSources = {}): Promise<string[]> {
  const end = base + count; // exclusive
  const inRange = (n: number) => n >= base && n < end;
  const out: string[] = [];
  const [passwd, group, subuid, subgid] = await Promise.all([
    (src.passwd ?? getent('passwd'))(),
    (src.group ?? getent('group'))(),
    readFile(src.subuid ?? '/etc/subuid', 'utf8').catch(() => ''),
    readFile(src.subgid ?? '/etc/subgid', 'utf8').catch(() => ''),
  ]);
  for (const line of passwd.split('\n')) {
    const [name, , uid] = line.split(':');
    if (name && inRange(Number(uid))) out.push(`user ${name} (uid ${uid})`);
  }
  for (const line of group.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name && inRange(Number(gid))) out.push(`group ${name} (gid ${gid})`);
  }
  for (const [file, text] of [['/etc/subuid', subuid], ['/etc/subgid', subgid]] as const) {
    for (const line of text.split('\n')) {
      const [owner, first, n] = line.trim().split(':');
      const lo = Number(first);
      const hi = lo + Number(n); // exclusive
      if (owner && Number.isFinite(lo) && Number.isFinite(hi) && lo < end && hi > base) out.push(`${src[file === '/etc/subuid' ? 'subuid' : 'subgid'] ?? file} range of ${owner} (${lo}-${hi - 1})`);
    }
  }
  return out;
}

const checked = new Map<string, Promise<void>>();
/**
 * Refuse to drop sandboxes to host ids that belong to someone (a real user whose uid is drawn
 * would own that sandbox's user namespace). Checked once per process and range, as root only
 * (without root there is no drop). Covers what NSS enumerates (files, LDAP; SSSD only with
 * enumeration on, so an SSSD id-mapping slice must be kept out of the range by configuration)
 * and the subordinate id ranges of /etc/subuid and /etc/subgid.
 */
export function assertHostIds(host: HostConfig, src?: AccountSources): Promise<void> {
  if (process.geteuid?.() !== 0 && !src) return Promise.resolve();
  const key = `${host.hostIdBase}:${host.hostIdCount}:${JSON.stringify(src ?? {})}`;
  let p = checked.get(key);
  if (!p) {
    p = hostIdConflicts(host.hostIdBase, host.hostIdCount, src).then((found) => {
      if (!found.length) return;
      const last = host.hostIdBase + host.hostIdCount - 1;
      const shown = found.slice(0, 5).join(', ') + (found.length > 5 ? ` and ${found.length - 5} more` : '');
      throw new PawlError('HostUnsupported', `the sandbox host id range ${host.hostIdBase}-${last} overlaps ${shown}: set a free range with PAWL_HOST_IDS=BASE:COUNT (or hostConfig({ hostIdBase, hostIdCount }))`);
    });
    if (!src) checked.set(key, p);
  }
  return p;
}
