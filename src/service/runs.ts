// The runs the service knows about: every run until it ends, and finished ones until they expire
// (resultTtlMs) or the store is full (maxResults, or maxResultBytes of results: oldest dropped
// first). A running run is never dropped, so a client that went away can fetch its result by id
// later, unless newer results pushed it out of the budget.
import { randomBytes } from 'node:crypto';
import type { RunResult } from '../supervisor/result.js';

export type RunState = 'running' | 'done' | 'error';

export interface RunRecord {
  id: string;
  task: string;
  state: RunState;
  createdAt: number;
  finishedAt?: number;
  result?: RunResult;
  /** pawl could not run it at all: the error a waiting client got. */
  error?: { status: number; code: string; message: string };
  cancelled: boolean;
  controller: AbortController;
  /** Settles when the run has ended and its sandbox is reaped. */
  done: Promise<void>;
  /** Its result's size as JSON, once it has one (the store's byte budget). */
  bytes?: number;
}

export const RUN_ID = /^r-[0-9a-f]{24}$/;

export class RunStore {
  private readonly runs = new Map<string, RunRecord>();
  private bytes = 0;

  /**
   * maxBytes bounds what finished results hold in memory together: an output may be 16 MiB, and
   * ~120 of them took the service to its heap limit (measured: ~34 MB of heap per stored result).
   */
  constructor(private readonly ttlMs: number, private readonly max: number, private readonly maxBytes = Infinity) {}

  /** The run has its result (or error): counted against the byte budget, the oldest going first. */
  finished(record: RunRecord): void {
    if (record.bytes !== undefined || !this.runs.has(record.id)) return;
    record.bytes = record.result ? Buffer.byteLength(JSON.stringify(record.result)) : 0;
    this.bytes += record.bytes;
    this.trim(record);
  }

  private drop(id: string, r: RunRecord): void {
    this.runs.delete(id);
    this.bytes -= r.bytes ?? 0;
  }

  add(task: string, run: (record: RunRecord) => Promise<void>): RunRecord {
    const record = { id: `r-${randomBytes(12).toString('hex')}`, task, state: 'running', createdAt: Date.now(), cancelled: false, controller: new AbortController() } as RunRecord;
    this.runs.set(record.id, record);
    record.done = run(record);
    this.trim(undefined, false); // by count: the byte budget is settled as results come in (finished)
    return record;
  }

  get(id: string): RunRecord | undefined {
    return RUN_ID.test(id) ? this.runs.get(id) : undefined;
  }

  running(): RunRecord[] {
    return [...this.runs.values()].filter((r) => r.state === 'running');
  }

  /** Most recent first. */
  recent(limit: number): RunRecord[] {
    return [...this.runs.values()].reverse().slice(0, limit);
  }

  /** Drop finished runs older than the TTL; returns how many went. */
  expire(now = Date.now()): number {
    let n = 0;
    for (const [id, r] of this.runs) {
      if (r.state !== 'running' && now - (r.finishedAt ?? now) > this.ttlMs) {
        this.drop(id, r);
        n++;
      }
    }
    return n;
  }

  /** Oldest finished first, down to `max` runs and (bytes) `maxBytes` of results; never `keep` (the newest result). */
  private trim(keep?: RunRecord, bytes = true): void {
    let excess = this.runs.size - this.max;
    for (const [id, r] of this.runs) {
      if (excess <= 0 && (!bytes || this.bytes <= this.maxBytes)) break;
      if (r.state === 'running' || r === keep) continue;
      this.drop(id, r);
      excess--;
    }
  }

}

/** What a client sees of a run (the result only once it has one). */
export function runView(r: RunRecord, full: boolean): Record<string, unknown> {
  return {
    id: r.id,
    state: r.state,
    task: r.task,
    created_at: new Date(r.createdAt).toISOString(),
    ...(r.finishedAt ? { finished_at: new Date(r.finishedAt).toISOString() } : {}),
    ...(r.cancelled ? { cancel_requested: true } : {}),
    ...(r.result ? (full ? { result: r.result } : { status: r.result.status, ...(r.result.error ? { error_kind: r.result.error.kind } : {}) }) : {}),
    ...(r.error ? { error: { code: r.error.code, message: r.error.message } } : {}),
  };
}
