// JSON Schema validation of a task's input and output, on the host (ajv), where the task's code
// cannot reach it.
import { Ajv, type ValidateFunction } from 'ajv';
import { PawlError } from '../errors.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new WeakMap<object, ValidateFunction>();

/** Problems, one line each; empty when valid or when there is no schema. */
export function schemaErrors(schema: object | null, value: unknown, what: string): string[] {
  if (!schema) return [];
  let validate = compiled.get(schema);
  if (!validate) {
    try {
      validate = ajv.compile(schema);
    } catch (e) {
      throw new PawlError('InvalidTask', `the task's ${what} schema is not a valid JSON Schema: ${(e as Error).message}`);
    }
    compiled.set(schema, validate);
  }
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${what}${e.instancePath || ''} ${e.message ?? 'is invalid'}`);
}

/** Ratchet's test comparison: every field present in `expected` must match in `actual`. */
export function subsetMatch(expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => subsetMatch(e, actual[i]));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    return Object.entries(expected).every(([k, v]) => subsetMatch(v, (actual as Record<string, unknown>)[k]));
  }
  return Object.is(expected, actual);
}
