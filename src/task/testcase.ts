// A task's own test cases, as Ratchet writes them (tests/*.json, or meta.yaml `test_cases`), and
// Ratchet's comparison of an output with what a case expects.
import { z } from 'zod';
import { formatZodError } from '../config/resolve.js';
import { PawlError } from '../errors.js';

/** One mocked HTTP exchange: fetch calls whose URL contains `url` with an equal method get `response`. */
export const HttpMock = z.looseObject({
  url: z.string().min(1),
  method: z.string().min(1).default('GET').transform((m) => m.toUpperCase()),
  /** A full response ({ ok, status, statusText, body }) or the body of a 200 (the harness decides). */
  response: z.unknown(),
});
export type HttpMock = z.infer<typeof HttpMock>;

export const TaskTestCase = z
  .looseObject({
    name: z.string().optional(),
    description: z.string().optional(),
    input: z.unknown().optional(),
    /** What the output must contain (a subset match); `expected` is the same under another name. */
    expected_output: z.unknown().optional(),
    expected: z.unknown().optional(),
    /** The case passes when the task fails (and, with expected_error, when its error mentions that text). */
    should_fail: z.boolean().default(false),
    expected_error: z.string().optional(),
    mock: z.looseObject({ http: z.union([HttpMock, z.array(HttpMock).min(1)]).optional() }).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.expected_output !== undefined && t.expected !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['expected'], message: 'give expected_output or expected, not both' });
    }
  })
  .transform((t) => ({
    name: t.name,
    input: t.input ?? {},
    // null, as Ratchet writes it, means "no expectation on the output".
    expected: t.expected_output ?? t.expected ?? undefined,
    shouldFail: t.should_fail,
    expectedError: t.expected_error,
    mocks: t.mock?.http === undefined ? undefined : Array.isArray(t.mock.http) ? t.mock.http : [t.mock.http],
  }));
/** A case as pawl runs it; `source` says where it was written ("tests/a.json", "meta.yaml test_cases[0]"). */
export type TestCase = z.output<typeof TaskTestCase> & { source: string };

export function readTestCase(doc: unknown, source: string): TestCase {
  const parsed = TaskTestCase.safeParse(doc);
  if (!parsed.success) throw new PawlError('InvalidTask', formatZodError(parsed.error, `test case ${source}`));
  return { ...parsed.data, source };
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
