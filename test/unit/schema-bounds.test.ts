// Issue 10.2, written as the attacks: a task's JSON Schema is hostile. Validation must not stall
// the supervisor (exponential `pattern`, costly keywords), must not collect errors without bound,
// and printing a result must never throw.
import { describe, expect, it } from 'vitest';
import { compileSchema, schemaCheck, ValidationLimits } from '../../src/task/validate.js';
import { formatResult } from '../../src/cli/format.js';
import { PawlError } from '../../src/errors.js';

const schemaErrors = async (...a: Parameters<typeof schemaCheck>) => (await schemaCheck(...a)).errors;

const limits = (over: Partial<ValidationLimits> = {}) => ValidationLimits.parse(over);

describe('task schemas are hostile (issue 10.2)', () => {
  it('a backtracking pattern ^(a|a)*$ against 40 a\'s and a "!" is answered, not timed out', async () => {
    // With a backtracking engine this takes ~2^40 steps; the time bound would end it instead of
    // a verdict. The linear-time engine gives the verdict.
    const schema = await compileSchema({ type: 'object', properties: { tag: { type: 'string', pattern: '^(a|a)*$' } } }, 'output', 'output.schema.json', limits());
    expect(await schemaErrors(schema, { tag: `${'a'.repeat(40)}!` }, limits())).toEqual(['output/tag must match pattern "^(a|a)*$"']);
    expect(await schemaErrors(schema, { tag: 'a'.repeat(40) }, limits())).toEqual([]);
  });

  it('patternProperties use the same linear-time engine', async () => {
    const schema = await compileSchema({ type: 'object', patternProperties: { '^(b|b)*$': { type: 'number' } } }, 'input', 'input.schema.json', limits());
    expect(await schemaErrors(schema, { [`${'b'.repeat(40)}`]: 'x', [`${'b'.repeat(40)}!`]: 'y' }, limits())).toEqual([`input/${'b'.repeat(40)} must be number`]);
  });

  it('an allOf that multiplies errors over a big output reports a bounded number of them', async () => {
    const schema = await compileSchema({ allOf: Array.from({ length: 40 }, (_, i) => ({ items: { type: 'string', minLength: i } })) }, 'output', 'output.schema.json', limits());
    const errors = await schemaErrors(schema, Array.from({ length: 5000 }, (_, i) => i), limits());
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.length).toBeLessThanOrEqual(limits().maxErrors);
  });

  it('the supervisor\'s timers keep firing during a costly validation, which its time bound ends', async () => {
    // uniqueItems over distinct objects compares every pair: O(n^2) deep comparisons.
    const schema = await compileSchema({ type: 'array', uniqueItems: true }, 'output', 'output.schema.json', limits());
    const big = Array.from({ length: 40_000 }, (_, i) => ({ k: [i, { v: i }] }));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    const { errors, bound } = await schemaCheck(schema, big, limits({ timeMs: 1000 }));
    clearInterval(timer);
    expect(bound).toBe('its time bound of 1000 ms');
    expect(errors).toEqual(['output: validation against output.schema.json stopped: it exceeded its time bound of 1000 ms']);
    expect(ticks).toBeGreaterThanOrEqual(10);
    // The terminated worker is replaced: the next validation works.
    expect(await schemaErrors(schema, [1, 2, 3], limits())).toEqual([]);
    expect(await schemaErrors(schema, [1, 1], limits())).toEqual(['output must NOT have duplicate items (items ## 0 and 1 are identical)']);
  });

  it('a value too big for the validator\'s heap hits the memory bound, not the supervisor', async () => {
    const schema = await compileSchema({ type: 'array' }, 'output', 'output.schema.json', limits());
    const big = Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(1 << 20, 'x')); // 64 MiB of strings
    const errors = await schemaErrors(schema, big, limits({ heapMb: 16, timeMs: 30_000 }));
    expect(errors).toEqual(['output: validation against output.schema.json stopped: it exceeded its memory bound of 16 MiB']);
  });

  it.each([
    [{ type: 'no-such-type' }, /input\.schema\.json: not a usable JSON Schema/],
    [{ type: 'string', pattern: '(?<=a)b' }, /input\.schema\.json: not a usable JSON Schema: .*invalid named capture/],
    [{ type: 'string', pattern: '(a)\\1' }, /input\.schema\.json: not a usable JSON Schema/],
    [[1, 2], /input\.schema\.json: must hold a JSON Schema object/],
    // Refused only by the meta-schema check (one checker per draft, schema-worker.ts).
    [{ type: 'object', properties: { a: { minimum: 'ten' } } }, /input\.schema\.json: not a usable JSON Schema: schema is invalid: data\/properties\/a\/minimum must be number/],
    [{ $schema: 'http://json-schema.org/draft-04/schema#', type: 'object', required: [] }, /input\.schema\.json: not a usable JSON Schema: schema is invalid: data\/required must NOT have fewer than 1 items/],
  ])('a schema that cannot be compiled (or needs backtracking) is InvalidTask (%#)', async (schema, message) => {
    const err = await compileSchema(schema, 'input', 'input.schema.json', limits()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PawlError);
    expect((err as PawlError).kind).toBe('InvalidTask');
    expect((err as PawlError).message).toMatch(message);
  });

  it('an $async schema is refused at compile: its validator\'s promise passed every value and its rejection ended the thread, failing another check', async () => {
    await expect(compileSchema({ $async: true, type: 'object', required: ['must'] }, 'input', 'input.schema.json', limits())).rejects.toThrow(/\$async schema is not supported/);
    // A check beside it still gets its own answer.
    const good = await compileSchema({ type: 'object', required: ['n'] }, 'input', 'input.schema.json', limits());
    expect(await schemaErrors(good, { n: 1 }, limits())).toEqual([]);
    expect(await schemaErrors(good, {}, limits())).toEqual(["input must have required property 'n'"]);
  });

  it('printing a result never throws: indentation past V8\'s string limit falls back to compact JSON', () => {
    // 1000 levels of nesting around a million numbers: 2 MB compact, over 2 GB indented.
    let deep: unknown = Array.from({ length: 1_000_000 }, () => 1);
    for (let i = 0; i < 1000; i++) deep = [deep];
    const text = formatResult({ status: 'succeeded', output: deep });
    expect(text.length).toBeLessThan(3_000_000);
    expect(JSON.parse(text).status).toBe('succeeded');
  });
});
