// Execution modes (the Ratchet plan's migration strategy): one entry point that resolves a task's
// policy under the operator's security.yaml, runs it sandboxed or (legacy) in-process, marks the
// mode in the result and hands the result to the audit log.
import type { HostConfig } from '../config/host.js';
import { ResourceLimits, type Policy, type PolicyInput } from '../config/policy.js';
import { mergeInputs, resolvePolicy } from '../config/resolve.js';
import { auditRun, type AuditLog } from '../audit/log.js';
import { effectivePolicy, type RunMode, type SecurityConfig } from '../operator/effective.js';
import { checkMessage, invalidInput, runTask } from '../supervisor/run.js';
import type { RunResult } from '../supervisor/result.js';
import { loadTask, type LoadedTask } from '../task/load.js';
import { schemaCheck } from '../task/validate.js';
import { runLegacy } from './legacy.js';

export interface ModeRunOptions {
  input?: unknown;
  /** The operator's security.yaml (loadSecurityConfig); without it every run is sandboxed. */
  config?: SecurityConfig;
  /** Run flags: a trust level and policy laid over everything the config says. */
  trustLevel?: string;
  policy?: PolicyInput;
  host?: HostConfig;
  signal?: AbortSignal;
  context?: Record<string, unknown>;
  /** Where the run's audit lines go (else the process-wide log of setAuditLog, if any). */
  audit?: AuditLog;
  /** Told once per legacy run (default: a line on stderr). */
  warn?: (message: string) => void;
  /** A sandboxed run's result after its teardown, with cleanup_error (RunTaskOptions.awaitCleanup). */
  awaitCleanup?: boolean;
}

export interface TaskRunPlan {
  loaded: LoadedTask;
  policy: Policy;
  mode: RunMode;
  /** What runTask is handed: the operator's layers, the task's own tightening, the run flags. */
  overrides: PolicyInput;
}

/**
 * A task's policy and mode under the config. The task's own limits (metadata timeout and
 * memory_limit, its security.yaml) still only tighten: each is the lower of the task's ask (within
 * its trust level) and the operator's value; run flags, the operator's per-run word, win over all.
 */
export async function planTaskRun(task: string | LoadedTask, opts: Pick<ModeRunOptions, 'config' | 'trustLevel' | 'policy'>): Promise<TaskRunPlan> {
  const loaded = typeof task === 'string' ? await loadTask(task, { tests: false }) : task;
  if (!opts.config) {
    const policy = resolvePolicy({ trustLevel: opts.trustLevel, task: loaded.policy, overrides: opts.policy });
    return { loaded, policy, mode: 'sandboxed', overrides: opts.policy ?? {} };
  }
  const eff = effectivePolicy(opts.config, { taskName: loaded.policyName, trustLevel: opts.trustLevel, overrides: opts.policy });
  const level = eff.policy.trustLevel;
  // Checked as runTask checks it (fields a task may not set are refused), but compared with the
  // operator's value, not the trust preset's: the operator may have raised this task's limits.
  resolvePolicy({ trustLevel: level, task: loaded.policy });
  const asked = ResourceLimits.parse(loaded.policy.resources ?? {});
  const tighter: Record<string, number> = {};
  for (const key of Object.keys(loaded.policy.resources ?? {}) as (keyof typeof asked)[]) tighter[key] = Math.min(asked[key], eff.policy.resources[key]);
  const overrides = mergeInputs(eff.input, { resources: tighter }, opts.policy, { trustLevel: level });
  return { loaded, policy: resolvePolicy({ trustLevel: level, task: loaded.policy, overrides }), mode: eff.mode, overrides };
}

/** Run a task in the mode the config gives it; the result says which (`mode`). */
export async function runWithMode(task: string | LoadedTask, opts: ModeRunOptions = {}): Promise<RunResult> {
  const plan = await planTaskRun(task, opts);
  const { loaded, policy } = plan;
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`pawl: WARNING: ${m}\n`));
  // A task the operator's file does not name runs at the defaults: said, since a name that differs
  // only in case (task_policies keys are exact) looks configured and is not.
  const names = opts.config ? Object.keys(opts.config.security.task_policies) : null;
  if (names && !names.includes(loaded.policyName)) {
    const near = names.find((n) => n.toLowerCase() === loaded.policyName.toLowerCase());
    warn(`task ${JSON.stringify(loaded.policyName)} has no entry in security.task_policies: it runs at trust level ${policy.trustLevel} with default_limits${near ? ` (the entry ${JSON.stringify(near)} differs only in case)` : ''}`);
  }
  let result: RunResult;
  if (plan.mode === 'legacy') {
    warn(
      `task ${loaded.name} runs in legacy execution mode: in-process, WITHOUT a sandbox (unsafe; security.runtime_config.execution_mode)`,
    );
    result = await legacyRun(loaded, policy, opts);
  } else {
    result = {
      ...(await runTask(loaded, { input: opts.input, trustLevel: policy.trustLevel, policy: plan.overrides, host: opts.host, signal: opts.signal, context: opts.context, awaitCleanup: opts.awaitCleanup })),
      mode: 'sandboxed',
    };
  }
  // A sandboxed run reached the process-wide log (setAuditLog) through the run observers already;
  // a legacy run and an explicit log are written here.
  if (plan.mode === 'legacy' || opts.audit) auditRun(result, { task: loaded.policyName, label: loaded.name, policy, log: opts.audit });
  return result;
}

/** Legacy runs get the same input check as sandboxed ones (before any task code runs). */
async function legacyRun(loaded: LoadedTask, policy: Policy, opts: ModeRunOptions): Promise<RunResult> {
  const input = opts.input ?? {};
  const check = await schemaCheck(loaded.inputSchema, input, loaded.limits.validation);
  if (check.errors.length) return { ...invalidInput(policy, 'none', checkMessage(loaded.inputSchema!, check.bound), check.errors), runtime: 'none', mode: 'legacy' };
  return runLegacy(loaded, policy, { input, context: opts.context });
}
