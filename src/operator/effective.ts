// The effective policy of one task under the operator's security.yaml, with where each value came
// from. Layers, later ones winning: pawl's defaults <- security.default_limits <- the trust level's
// preset <- security.runtime_config (runtime) <- security.task_policies.NAME <- run flags.
// default_limits sits under the preset so that it plays the plan's ResourceLimits::default(): the
// "limited" level's numbers, while untrusted/trusted/system keep their own (the plan's sample
// gives "user-content" trust Untrusted and no limits: it must get the untrusted 64MB, not 128MB).
import { Policy, TrustLevel, type PolicyInput } from '../config/policy.js';
import { mergeInputs } from '../config/resolve.js';
import { TRUST_PRESETS } from '../config/trust.js';
import { PawlError } from '../errors.js';
import { defaultLimitsLayer, leafPaths, runtimeLayer, taskLayer, wholeLayer, type Layer } from './layers.js';
import type { SecurityConfigFile } from './schema.js';

/** A loaded security.yaml: the parsed document, its file, and what it sets that pawl does not apply. */
export interface SecurityConfig {
  file: string;
  security: SecurityConfigFile['security'];
  /** Accepted but not applied (e.g. container_runtime docker: pawl has no daemon), one line each. */
  notes: string[];
}

export type RunMode = 'legacy' | 'sandboxed';

export interface EffectivePolicy {
  policy: Policy;
  mode: RunMode;
  /** Why the mode: the execution_mode and, in hybrid, the trust level's place in legacy_trust_levels. */
  modeReason: string;
  /** Policy path -> "default" | "trust preset X" | the security.yaml path | "run flags". */
  sources: Record<string, string>;
  /** The merged layers, as the policy's input (what runTask is handed as the operator's overrides). */
  input: PolicyInput;
}

/** One problem in a security.yaml: the document path, what was expected, and where when known. */
export interface ConfigProblem {
  path: string;
  message: string;
  line?: number;
  col?: number;
}

export class SecurityConfigError extends PawlError {
  constructor(
    readonly file: string,
    readonly problems: ConfigProblem[],
  ) {
    super('InvalidPolicy', problems.map((p) => `${file}${p.line ? `:${p.line}:${p.col}` : ''}: ${p.path}: ${p.message}`).join('\n'));
  }
}

export function effectivePolicy(
  config: SecurityConfig,
  opts: { taskName: string; trustLevel?: string; overrides?: PolicyInput },
): EffectivePolicy {
  const doc = config.security;
  const task = Object.hasOwn(doc.task_policies, opts.taskName) ? doc.task_policies[opts.taskName] : undefined;
  const taskAt = `security.task_policies.${opts.taskName}`;

  const asked = opts.trustLevel ?? task?.trust_level;
  const level = TrustLevel.safeParse(asked ?? 'limited');
  if (!level.success) throw new PawlError('InvalidPolicy', `unknown trust level "${asked}": expected one of ${TrustLevel.options.join(', ')}`);
  const levelFrom = opts.trustLevel !== undefined ? 'run flags' : task?.trust_level !== undefined ? `${taskAt}.trust_level` : 'default';

  const layers: Layer[] = [
    defaultLimitsLayer(doc),
    wholeLayer(TRUST_PRESETS[level.data], `trust preset ${level.data}`),
    runtimeLayer(doc),
    ...(task ? [taskLayer(opts.taskName, task)] : []),
    wholeLayer(opts.overrides, 'run flags'),
    { input: { trustLevel: level.data }, sources: { trustLevel: levelFrom } },
  ];
  const input = mergeInputs(...layers.map((l) => l.input));
  const sourceOf = (path: string): string | undefined => {
    for (const l of [...layers].reverse()) {
      for (const [k, from] of Object.entries(l.sources)) if (path === k || path.startsWith(`${k}.`) || k.startsWith(`${path}.`)) return from;
    }
    return undefined;
  };

  const parsed = Policy.safeParse(input);
  if (!parsed.success) {
    throw new SecurityConfigError(
      config.file,
      parsed.error.issues.map((i) => {
        const policyPath = i.path.join('.');
        const from = sourceOf(policyPath);
        // A value from the document is named by its document path; one from a preset or the
        // defaults by the task policy that combined with it.
        const path = from?.startsWith('security.') ? from : task ? taskAt : 'security';
        return { path, message: `${i.message} (policy ${policyPath || 'as a whole'}${from && !from.startsWith('security.') ? `, from ${from}` : ''})` };
      }),
    );
  }

  const sources: Record<string, string> = {};
  for (const path of leafPaths(parsed.data)) sources[path] = sourceOf(path) ?? 'default';

  const rc = doc.runtime_config;
  const legacyHere = rc.legacy_trust_levels.includes(level.data);
  const mode: RunMode = rc.execution_mode === 'legacy' || (rc.execution_mode === 'hybrid' && legacyHere) ? 'legacy' : 'sandboxed';
  const modeReason =
    rc.execution_mode === 'hybrid'
      ? `execution_mode hybrid: trust level ${level.data} is ${legacyHere ? '' : 'not '}in legacy_trust_levels`
      : `execution_mode ${rc.execution_mode}`;
  return { policy: parsed.data, mode, modeReason, sources, input };
}
