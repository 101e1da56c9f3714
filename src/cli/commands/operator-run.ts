// `pawl run|test --config FILE [--audit-log FILE]`: the task's policy and execution mode from the
// operator's security.yaml (src/operator, src/modes); audit lines to --audit-log or the config's
// runtime_config.audit_log (off by default).
import type { PolicyInput } from '../../config/policy.js';
import type { RunResult } from '../../supervisor/result.js';
import { err } from '../output.js';

export const OPERATOR_OPTIONS = {
  config: { type: 'string' },
  'audit-log': { type: 'string' },
} as const;

interface Values {
  config?: string;
  'audit-log'?: string;
  trust?: string;
}

/** Whether a run needs the operator's path (else `pawl run` stays on its shortest path). */
export const wantsOperator = (v: Values) => v.config !== undefined || v['audit-log'] !== undefined;

export async function runConfigured(task: string, v: Values, input: unknown, policy: PolicyInput): Promise<RunResult> {
  const [{ loadSecurityConfig }, { runWithMode }, { openAuditLog }] = await Promise.all([import('../../operator/index.js'), import('../../modes/index.js'), import('../../audit/index.js')]);
  const config = v.config !== undefined ? await loadSecurityConfig(v.config) : undefined;
  const logFile = v['audit-log'] ?? config?.security.runtime_config.audit_log;
  const audit = logFile ? openAuditLog(logFile) : undefined;
  const result = await runWithMode(task, { input, config, trustLevel: v.trust, policy, audit, awaitCleanup: true, warn: (m) => err(`pawl: WARNING: ${m}`) });
  audit?.flush();
  return result;
}

/** `pawl test --config`: the cases run sandboxed under the task's configured policy. */
export async function testOptions(task: string, v: Values, policy: PolicyInput): Promise<{ trustLevel?: string; policy: PolicyInput }> {
  if (v.config === undefined) return { trustLevel: v.trust, policy };
  const [{ loadSecurityConfig }, { planTaskRun }] = await Promise.all([import('../../operator/index.js'), import('../../modes/index.js')]);
  const plan = await planTaskRun(task, { config: await loadSecurityConfig(v.config), trustLevel: v.trust, policy });
  if (plan.mode === 'legacy') err(`pawl: note: ${plan.loaded.name} is configured for legacy execution; its tests run sandboxed`);
  return { trustLevel: plan.policy.trustLevel, policy: plan.overrides };
}
