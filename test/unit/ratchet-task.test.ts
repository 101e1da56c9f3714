// Issue 11.2 and 11.3: Ratchet's metadata fields and test formats, read as Ratchet's authors write
// them (fixtures of our own in test/fixtures/ratchet/), and the request handed to the harness.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTask } from '../../src/task/load.js';
import { runPolicy, taskPolicy, taskRequest } from '../../src/supervisor/run.js';
import { judge } from '../../src/supervisor/task-tests.js';
import { schemaCheck } from '../../src/task/validate.js';
import type { RunResult } from '../../src/supervisor/result.js';

const schemaErrors = async (...a: Parameters<typeof schemaCheck>) => (await schemaCheck(...a)).errors;

const RATCHET = join(import.meta.dirname, '..', 'fixtures', 'ratchet');
const task = (name: string) => loadTask(join(RATCHET, name));

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function taskDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-ratchet-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('Ratchet metadata (issue 11.2)', () => {
  it.each([
    [30, 30_000, 'a bare number below 1000 is seconds'],
    [999, 999_000, 'a bare number below 1000 is seconds'],
    [1000, 1000, 'a bare number from 1000 up is milliseconds'],
    [30000, 30_000, 'a bare number from 1000 up is milliseconds'],
    ['45', 45_000, 'a bare number below 1000 is seconds'],
    ['30s', 30_000, 'as written'],
    ['1500ms', 1500, 'as written'],
    ['2m', 120_000, 'as written'],
  ])('timeout %j reads as %i ms', async (timeout, ms, how) => {
    const t = await loadTask(taskDir({ 'metadata.json': JSON.stringify({ timeout }), 'main.js': 'function(i) { return i }' }));
    expect(t.policy.resources?.wallTime).toBe(ms);
    expect(t.readings).toEqual([expect.objectContaining({ field: 'timeout', source: 'metadata.json', read: expect.stringContaining(how) })]);
  });

  it.each([[{ timeout: 'soon' }, /metadata\.json: timeout is not a duration/], [{ timeout: 0 }, /timeout is not a positive number/], [{ cpu_limit: 'half' }, /cpu_limit is not a fraction of a core/], [{ memory_limit: 'lots' }, /memory_limit is not a size/]])(
    'refuses %j naming the field, not quoting the value',
    async (meta, message) => {
      const err = await loadTask(taskDir({ 'metadata.json': JSON.stringify(meta), 'main.js': 'x' })).catch((e: Error) => e);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toMatch(/soon|half|lots/);
    },
  );

  it('metadata.json timeout 30 (seconds), memory_limit and cpu_limit as a fraction of a core', async () => {
    const t = await task('pulse-seconds');
    expect(t.name).toBe('pulse');
    expect(t.policy).toEqual({ resources: { wallTime: 30_000, memory: 64 * 1024 * 1024, cpuPercent: 50 } });
    const policy = taskPolicy(t, { trustLevel: 'trusted' });
    expect(policy.resources).toMatchObject({ wallTime: 30_000, memory: 64 * 1024 * 1024, cpuPercent: 50 });
    expect(t.readings.map((r) => `${r.field}: ${r.raw} (${r.source}) read as ${r.read}`)).toEqual([
      'timeout: 30 (metadata.json) read as 30 s of wall time (a bare number below 1000 is seconds)',
      'memory_limit: "64MB" (metadata.json) read as 64MB of memory',
      'cpu_limit: "0.5" (metadata.json) read as a CPU quota of 50% of one core',
    ]);
  });

  it('meta.yaml in full: entrypoint file, inline schemas, test_cases, timeout with a unit', async () => {
    const t = await task('yaml-complete');
    expect(t.name).toBe('word_counter');
    expect(t.filename).toMatch(/count\.js$/);
    expect(t.source).toContain('nothing to count');
    expect(t.entry).toBeUndefined();
    expect(t.policy.resources).toEqual({ wallTime: 20_000, memory: 96 * 1024 * 1024 });
    expect(t.inputSchema?.source).toBe('meta.yaml input_schema');
    expect(t.outputSchema?.source).toBe('meta.yaml output_schema');
    expect(await schemaErrors(t.inputSchema, { text: 'a', extra: 1 }, t.limits.validation)).toEqual(['input must NOT have additional properties']);
    expect(t.tests.map((c) => [c.name, c.source, c.shouldFail, c.expectedError])).toEqual([
      ['three words', 'meta.yaml test_cases[0]', false, undefined],
      ['empty text is refused by the task', 'meta.yaml test_cases[1]', true, 'nothing to count'],
    ]);
  });

  it('older inputs/outputs field lists become schemas (typed, required as marked)', async () => {
    const t = await task('field-lists');
    expect(t.filename).toMatch(/task\.js$/);
    expect(t.inputSchema?.source).toBe('meta.yaml inputs');
    expect(await schemaErrors(t.inputSchema, { x: 2 }, t.limits.validation)).toEqual(["input must have required property 'y'"]);
    expect(await schemaErrors(t.inputSchema, { x: 2, y: 'three' }, t.limits.validation)).toEqual(['input/y must be number']);
    expect(await schemaErrors(t.outputSchema, { product: 6 }, t.limits.validation)).toEqual([]);
  });

  it('entrypoint naming a function is passed to the harness as entry', async () => {
    const t = await task('named-function');
    expect(t.entry).toBe('cubeRoot');
    expect(t.filename).toMatch(/task\.js$/);
    expect(taskRequest(t, { input: { value: 27 }, executionId: 'run-1', network: 'none' })).toEqual({
      source: t.source, filename: t.filename, input: { value: 27 }, context: { executionId: 'run-1' }, network: 'none', entry: 'cubeRoot',
    });
  });

  it.each([
    [{ 'meta.yaml': 'entrypoint: ../elsewhere.js', 'task.js': 'x' }, /entrypoint is not a relative path inside the task directory/],
    [{ 'meta.yaml': 'entrypoint: "not a name!"', 'task.js': 'x' }, /entrypoint is not a file name ending in \.js or a function name/],
    [{ 'meta.yaml': 'entrypoint: missing.js', 'task.js': 'x' }, /its entrypoint missing\.js does not exist/],
    [{ 'meta.yaml': 'input_schema: {type: object}', 'input.schema.json': '{}', 'task.js': 'x' }, /gives its input schema twice \(input\.schema\.json and meta\.yaml input_schema\)/],
    [{ 'main.js': 'x', 'tests/a.json': '{"input": {}, "expected": 1, "expected_output": 1}' }, /give expected_output or expected, not both/],
    [{ 'main.js': 'x', 'tests/a.json': '{"input": {}, "mock": {"http": {"method": "GET"}}}' }, /test case tests\/a\.json: mock\.http/],
  ])('refuses what is ambiguous or malformed (%#)', async (files, message) => {
    await expect(loadTask(taskDir(files))).rejects.toThrow(message);
  });
});

describe('Ratchet tests (issue 11.3)', () => {
  const ok = (output: unknown) => ({ status: 'succeeded', output }) as RunResult;
  const failed = (kind: string, message: string) => ({ status: 'failed', error: { kind, message } }) as RunResult;

  it('reads expected, expected: null and should_fail with or without expected_error', async () => {
    const t = await task('expect-and-fail');
    expect(t.tests.map((c) => ({ source: c.source, expected: c.expected, shouldFail: c.shouldFail, expectedError: c.expectedError }))).toEqual([
      { source: 'tests/01-expected.json', expected: { half: 4 }, shouldFail: false, expectedError: undefined },
      { source: 'tests/02-null.json', expected: undefined, shouldFail: false, expectedError: undefined },
      { source: 'tests/03-should-fail.json', expected: undefined, shouldFail: true, expectedError: undefined },
      { source: 'tests/04-should-fail-with.json', expected: undefined, shouldFail: true, expectedError: 'odd number' },
    ]);
  });

  it('judges cases as Ratchet does', async () => {
    const [expected, anything, shouldFail, shouldFailWith] = (await task('expect-and-fail')).tests;
    expect(judge(expected!, ok({ half: 4, of: 8 }))).toEqual({ passed: true });
    expect(judge(expected!, ok({ half: 5 }))).toEqual({ passed: false, reason: 'expected {"half":4}, got {"half":5}' });
    expect(judge(expected!, failed('TaskError', 'boom'))).toEqual({ passed: false, reason: 'TaskError: boom' });
    expect(judge(anything!, ok('whatever'))).toEqual({ passed: true });
    expect(judge(shouldFail!, failed('TaskError', 'odd number: 3'))).toEqual({ passed: true });
    expect(judge(shouldFail!, ok({ half: 1 }))).toEqual({ passed: false, reason: 'expected the task to fail, it returned {"half":1}' });
    expect(judge(shouldFailWith!, failed('TaskError', 'odd number: 5'))).toEqual({ passed: true });
    expect(judge(shouldFailWith!, failed('Timeout', 'wall time limit of 1 ms reached')).passed).toBe(false);
  });

  it('mock.http (one or a list) reaches the harness as mocks, and a mocked run has no network', async () => {
    const t = await task('mocked-http');
    const [list, full, notFound] = t.tests;
    expect(full!.mocks).toEqual([{ url: 'forecast.invalid/v1/now', method: 'GET', response: { ok: true, status: 200, statusText: 'OK', body: { celsius: -3 } } }]);
    expect(list!.mocks).toEqual([
      { url: 'forecast.invalid/v1/alerts', method: 'GET', response: [] },
      { url: 'forecast.invalid/v1/now', method: 'GET', response: { celsius: 19 } },
    ]);
    expect(notFound!.mocks![0]!.method).toBe('GET'); // the default
    const req = taskRequest(t, { input: full!.input, executionId: 'run-2', network: 'full', mocks: full!.mocks });
    expect(req).toMatchObject({ network: 'none', mocks: full!.mocks, input: { city: 'Oslo' } });
    // Whatever the operator asked for, the run itself gets no network.
    expect(runPolicy(t, { trustLevel: 'trusted', policy: { network: { mode: 'full' } }, mocks: full!.mocks }).network.mode).toBe('none');
    expect(runPolicy(t, { trustLevel: 'trusted', policy: { network: { mode: 'full' } } }).network.mode).toBe('full');
    expect(taskRequest(t, { input: {}, executionId: 'run-3', network: 'full' })).not.toHaveProperty('mocks');
  });
});

describe('a directory with both metadata.json and meta.yaml (as some Ratchet samples have)', () => {
  it('is read as Ratchet\'s own loader reads it: metadata.json and main.js, and explain says meta.yaml was ignored', async () => {
    const dir = taskDir({
      'metadata.json': JSON.stringify({ label: 'both', timeout: 5 }),
      'meta.yaml': 'name: other\ntimeout: 900\nentrypoint: task.js\n',
      'main.js': 'function main(input) { return { from: "main.js" }; }',
      'task.js': 'function main(input) { return { from: "task.js" }; }',
    });
    const t = await loadTask(dir);
    expect(t.source).toContain('main.js');
    expect(t.policy.resources?.wallTime).toBe(5000);
    expect(t.readings[0]).toMatchObject({ field: 'meta.yaml', read: expect.stringMatching(/^ignored/) });
  });
});
