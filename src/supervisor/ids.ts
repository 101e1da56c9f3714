// Run ids and the host ids sandboxes run as.
import { randomBytes, randomInt } from 'node:crypto';
import type { HostConfig } from '../config/host.js';
import { PawlError } from '../errors.js';

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
 * As root, each run drops to a host uid/gid drawn at random from the configured range, so that
 * concurrent sandboxes do not share an id that could signal or ptrace the other. OCI runtimes
 * also use the id's partner (id ^ 1) for the container's root, so partners are kept apart too.
 * Not root: no drop (null).
 */
export function pickHostId(host: HostConfig): number | null {
  if (process.geteuid?.() !== 0) return null;
  // Never two live runs of this process on one id; across processes a clash is rare (1 in 65536).
  for (let i = 0; i < 64; i++) {
    const id = host.hostIdBase + randomInt(host.hostIdCount);
    if (!inUse.has(id) && !inUse.has(id ^ 1)) {
      inUse.add(id);
      return id;
    }
  }
  throw new PawlError('RuntimeError', `no free host id in ${host.hostIdBase}..${host.hostIdBase + host.hostIdCount - 1}`);
}

const inUse = new Set<number>();

/** The run is over: its host id may be drawn again. */
export function releaseHostId(id: number | null): void {
  if (id !== null) inUse.delete(id);
}
