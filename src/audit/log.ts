// The audit log: one JSON line per finished run and one per security violation, written with pino
// to a file the operator names (--audit-log, security.runtime_config.audit_log). Lines are built
// from an allow list of fields: the task's input, its environment values, its output and error
// messages (which may quote either) never reach the log.
import { observeRuns } from '../supervisor/phases/observers.js';
import { createHash } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { Policy } from '../config/policy.js';
import type { RunResult } from '../supervisor/result.js';

export type AuditLog = Logger;

/** What the caller knows about a run that its result does not say. */
export interface AuditContext {
  /** The task's name (metadata name or file/dir name); a program's argv[0] for exec. */
  task: string;
  policy: Policy;
  /** Where to write; without it, the process-wide log set by setAuditLog (none: nothing is written). */
  log?: AuditLog;
}

/** A log appending to FILE (created 0600: it names tasks and hosts), written synchronously so a CLI run that exits at once loses nothing. */
export function openAuditLog(file: string): AuditLog {
  const dest = pino.destination({ dest: file, sync: true, mkdir: true, mode: 0o600, append: true } as Parameters<typeof pino.destination>[0]);
  return pino({ base: { service: 'pawl' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, dest);
}

let processLog: AuditLog | null = null;
/** The log auditRun writes to when its context names none (the service and CLI set it once). */
let observing = false;

/**
 * The process-wide audit log: every finished sandboxed run (runTask, execProgram, the pool, the
 * service) is written to it through the run observers; legacy runs by runWithMode.
 */
export function setAuditLog(log: AuditLog | null): void {
  processLog = log;
  if (!observing) {
    observing = true;
    observeRuns((result, ctx) => auditRun(result, ctx));
  }
}

/**
 * The policy's identity for the log: a hash of the whole policy, with env values replaced by
 * their names only (a short secret's hash could be guessed back).
 */
export function policyHash(policy: Policy): string {
  const redacted = { ...policy, env: Object.keys(policy.env).sort() };
  return createHash('sha256').update(JSON.stringify(redacted)).digest('hex').slice(0, 16);
}

/**
 * A violation's detail without what a task could have filled from its input or env: URL userinfo,
 * query and fragment (the task's own reports quote the URLs it fetched). Host and path stay:
 * they are what the policy judged.
 */
export function scrubDetail(detail: string): string {
  return detail.replace(/\b([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/@]*@)?([^\s?#)]*)(?:[?#][^\s)]*)?/gi, (_m, scheme: string, rest: string) => `${scheme}${rest}`);
}

/** The observer for a finished run: call it once per result. */
export function auditRun(result: RunResult, ctx: AuditContext): void {
  const log = ctx.log ?? processLog;
  if (!log) return;
  const common = {
    run_id: result.id,
    task: ctx.task,
    trust_level: result.trust_level,
    mode: result.mode ?? 'sandboxed',
    policy_hash: policyHash(ctx.policy),
  };
  const legacy = common.mode === 'legacy';
  const line = {
    event: 'run',
    ...common,
    // Legacy runs had no sandbox: every one is marked, whatever its outcome.
    unsafe: legacy,
    runtime: result.runtime,
    status: result.status,
    result_kind: result.error?.kind ?? 'Succeeded',
    ...(result.error?.resource ? { resource: result.error.resource } : {}),
    ...(result.error?.limit ? { limit: result.error.limit } : {}),
    usage: result.usage,
    violations: result.violations.map((v) => ({ kind: v.kind, detail: scrubDetail(v.detail), source: v.source ?? 'task' })),
    degraded: result.degraded,
  };
  if (legacy) log.warn(line, 'run finished in legacy mode: in-process, no sandbox (unsafe)');
  else log.info(line, 'run finished');
  for (const v of result.violations) {
    log.warn({ event: 'violation', ...common, kind: v.kind, detail: scrubDetail(v.detail), source: v.source ?? 'task' }, `security violation: ${v.kind}`);
  }
}
