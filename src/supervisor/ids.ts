// Run ids and the host ids sandboxes run as.
import { randomBytes, randomInt } from 'node:crypto';
import type { HostConfig } from '../config/host.js';

export function newRunId(): string {
  return `${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** The supervisor pid a run id or cgroup name was made by (for gc of dead supervisors' runs). */
export function ownerPid(name: string): number | null {
  const m = /^(?:run-)?[0-9a-z]+-(\d+)-[0-9a-f]{8}$/.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * As root, each run drops to a host uid/gid drawn at random from the configured range, so that
 * concurrent sandboxes do not share an id that could signal or ptrace the other (two runs drawing
 * the same id out of 65536 is possible but rare). Not root: no drop (null).
 */
export function pickHostId(host: HostConfig): number | null {
  if (process.geteuid?.() !== 0) return null;
  return host.hostIdBase + randomInt(host.hostIdCount);
}
