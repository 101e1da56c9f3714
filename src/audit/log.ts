// The audit log: one JSON line per finished run and one per security violation, written with pino
// to a file the operator names (--audit-log, security.runtime_config.audit_log). Lines are built
// from an allow list of fields: the task's input, its environment values, its output and error
// messages (which may quote either) never reach the log.
import { observeRuns } from '../supervisor/phases/observers.js';
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { PawlError } from '../errors.js';
import pino, { type Logger } from 'pino';
import type { Policy } from '../config/policy.js';
import type { RunResult } from '../supervisor/result.js';

export type AuditLog = Logger;

/** What the caller knows about a run that its result does not say. */
export interface AuditContext {
  /**
   * Who the task is: its dir or file name (LoadedTask.policyName, what task_policies know it by),
   * never a name it gives itself; a program's argv[0] for exec.
   */
  task: string;
  /** The name the task gives itself (metadata), when it differs: shown apart, as the task's claim. */
  label?: string;
  policy: Policy;
  /** Where to write; without it, the process-wide log set by setAuditLog (none: nothing is written). */
  log?: AuditLog;
}

/**
 * A log appending to FILE (created 0600: it names tasks and hosts), written synchronously so a CLI
 * run that exits at once loses nothing. The file is opened here, without following a link (root
 * appended to whatever a link at the path named), and must be a regular file of this user's that
 * no one else may write (anyone could forge lines in a file of mode 666).
 */
export function openAuditLog(file: string): AuditLog {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PawlError('InvalidPolicy', `audit log ${file}: ${code === 'ELOOP' ? 'is a symbolic link (pawl follows none to its log)' : `cannot be opened (${code ?? 'error'})`}`);
  }
  const st = fstatSync(fd);
  const why = !st.isFile() ? 'not a regular file' : st.uid !== (process.geteuid?.() ?? 0) ? `owned by uid ${st.uid}, not this user` : (st.mode & 0o022) !== 0 ? `writable by others (mode ${(st.mode & 0o777).toString(8)})` : null;
  if (why) {
    closeSync(fd);
    throw new PawlError('InvalidPolicy', `audit log ${file}: ${why}: anyone who can write it could forge its lines`);
  }
  const dest = pino.destination({ fd, sync: true } as Parameters<typeof pino.destination>[0]);
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

/** A task's own text in a log line: controls and bidi overrides escaped (JSON leaves U+202E as is). */
const shown = (text: string) => text.slice(0, 200).replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The observer for a finished run: call it once per result. */
export function auditRun(result: RunResult, ctx: AuditContext): void {
  const log = ctx.log ?? processLog;
  if (!log) return;
  const common = {
    run_id: result.id,
    task: ctx.task,
    ...(ctx.label !== undefined && ctx.label !== ctx.task ? { task_label: shown(ctx.label) } : {}),
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
