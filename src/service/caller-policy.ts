// The rule for a caller's "policy" field: a caller may only make a run stricter than the policy
// the service gives the task (policyFor), never looser. Concretely:
//   trustLevel  the service's level or a stricter one; the stricter level's preset then caps
//               every resource too (a caller cannot keep "trusted" limits under "untrusted").
//   resources   each given value must be <= the service's value; a higher one is refused (403),
//               not clamped, so a caller never believes it got limits it did not get.
//   network     mode "none" (or the service's own mode); anything else is refused.
//   env         new variable names only; a variable the service sets cannot be replaced.
// Every other policy field (runtime, filesystem, security, storage, allowDegraded) is the
// operator's: refused with 403 naming the field. Unknown fields are refused with 422.
import { Policy, TrustLevel, type ResourceLimits } from '../config/policy.js';
import { formatZodError, mergeInputs } from '../config/resolve.js';
import { TRUST_PRESETS } from '../config/trust.js';
import { ApiError } from './errors.js';
import { BASE_ENV } from '../plan/layout.js';
import { CallerPolicy } from './schema.js';

const STRICTNESS: readonly TrustLevel[] = TrustLevel.options; // untrusted first: most strict
const OPERATOR_FIELDS = Object.keys(Policy.shape).filter((k) => !(k in CallerPolicy.shape));

/** Parse the raw "policy" of a request: 403 for operator fields, 422 for malformed ones. */
export function parseCallerPolicy(raw: unknown): CallerPolicy | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const theirs = Object.keys(raw).filter((k) => OPERATOR_FIELDS.includes(k));
    if (theirs.length) {
      throw new ApiError(403, 'policy_forbidden', `policy.${theirs.join(', policy.')}: set by the service's operator, not by a caller (a caller may set trustLevel, resources, network.mode and env, only to make a run stricter)`);
    }
  }
  const parsed = CallerPolicy.safeParse(raw);
  if (!parsed.success) throw new ApiError(422, 'invalid_policy', formatZodError(parsed.error, 'policy'));
  return parsed.data;
}

/** The service's policy for a run made stricter by the caller's; throws 403 on any loosening. */
export function applyCallerPolicy(base: Policy, caller: CallerPolicy | undefined): Policy {
  if (!caller) return base;
  let trustLevel = base.trustLevel;
  let resources: ResourceLimits = { ...base.resources };
  if (caller.trustLevel !== undefined && caller.trustLevel !== base.trustLevel) {
    if (STRICTNESS.indexOf(caller.trustLevel) > STRICTNESS.indexOf(base.trustLevel)) {
      throw new ApiError(403, 'policy_forbidden', `policy.trustLevel: "${caller.trustLevel}" is looser than the service's "${base.trustLevel}"; a caller may only choose a stricter level`);
    }
    trustLevel = caller.trustLevel;
    const preset = Policy.parse(mergeInputs(TRUST_PRESETS[trustLevel], { trustLevel })).resources;
    for (const k of Object.keys(resources) as (keyof ResourceLimits)[]) resources = { ...resources, [k]: Math.min(resources[k], preset[k]) };
  }
  for (const [k, v] of Object.entries(caller.resources ?? {}) as [keyof ResourceLimits, number | undefined][]) {
    if (v === undefined) continue;
    if (v > base.resources[k]) {
      throw new ApiError(403, 'policy_forbidden', `policy.resources.${k}: ${v} is above the service's limit ${base.resources[k]}; a caller may only lower limits`);
    }
    resources = { ...resources, [k]: Math.min(v, resources[k]) };
  }
  // /tmp is a tmpfs counted as memory and must stay below it: a caller who only lowered memory
  // gets a /tmp of half of it (smaller is stricter) rather than a refusal it did not ask for.
  if (caller.resources?.tmpSize === undefined && resources.tmpSize >= resources.memory) resources = { ...resources, tmpSize: Math.floor(resources.memory / 2) };
  let network = base.network;
  if (caller.network && caller.network.mode !== base.network.mode) {
    if (caller.network.mode !== 'none') {
      throw new ApiError(403, 'policy_forbidden', `policy.network.mode: "${caller.network.mode}" is not the service's "${base.network.mode}"; a caller may only choose "none"`);
    }
    network = { ...base.network, mode: 'none', allowedHosts: [] };
  }
  // The service's own variables and the ones every sandbox gets (PATH, HOME, ..., PWD) alike.
  const replaced = Object.keys(caller.env ?? {}).filter((k) => Object.hasOwn(base.env, k) || Object.hasOwn(BASE_ENV, k) || k === 'PWD');
  if (replaced.length) throw new ApiError(403, 'policy_forbidden', `policy.env: ${replaced.join(', ')} ${replaced.length > 1 ? 'are' : 'is'} set by the service and cannot be replaced`);
  const merged = Policy.safeParse({ ...base, trustLevel, resources, network, env: { ...base.env, ...caller.env } });
  if (!merged.success) throw new ApiError(422, 'invalid_policy', formatZodError(merged.error, 'policy'));
  return merged.data;
}
