import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { loadTask } from '../../src/task/load.js';
import { compileSchema, schemaCheck, ValidationLimits } from '../../src/task/validate.js';
import { subsetMatch } from '../../src/task/testcase.js';

const schemaErrors = async (...a: Parameters<typeof schemaCheck>) => (await schemaCheck(...a)).errors;

function taskDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pawl-task-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('loading tasks', () => {
  it('reads metadata.json + main.js, schemas, tests, and maps timeout/memory_limit to policy', async () => {
    const dir = taskDir({
      'metadata.json': JSON.stringify({ uuid: 'u', version: '1', label: 'adder', description: 'd', timeout: 1234, memory_limit: '96MB' }),
      'main.js': 'function(input) { return input }',
      'input.schema.json': '{"type":"object"}',
      'tests/a.json': '{"input": {"x": 1}, "expected_output": {"x": 1}}',
      'security.yaml': 'resources:\n  processes: 3\n',
    });
    const t = await loadTask(dir);
    expect(t.name).toBe('adder');
    expect(JSON.parse(t.inputSchema!.text)).toEqual({ type: 'object' });
    expect(t.tests).toHaveLength(1);
    expect(t.policy).toEqual({ resources: { wallTime: 1234, memory: 96 * 1024 * 1024, processes: 3 } });
  });

  // loadTask reads a task's independent files side by side: when several are wrong, the one
  // reported is still the first in its order (source, security.yaml, tests, input, output schema).
  it('reports the first problem in a fixed order when several files are wrong, every time', async () => {
    const dir = taskDir({
      'main.js': 'function(input) { return input }',
      'security.yaml': 'resources: [1, 2',
      'tests/a.json': '{"input":',
      'input.schema.json': '{"type":',
    });
    symlinkSync('/etc/hostname', join(dir, 'output.schema.json'));
    const messages = new Set<string>();
    for (let i = 0; i < 8; i++) messages.add(await loadTask(dir).then(() => 'loaded', (e: Error) => e.message));
    expect([...messages]).toEqual([`${join(dir, 'security.yaml')}: not valid YAML (line 1)`]);
    rmSync(join(dir, 'security.yaml'));
    await expect(loadTask(dir)).rejects.toThrow(`${join(dir, 'tests/a.json')}: not valid JSON`);
    rmSync(join(dir, 'tests'), { recursive: true });
    await expect(loadTask(dir)).rejects.toThrow(`${join(dir, 'input.schema.json')}: not valid JSON`);
    rmSync(join(dir, 'input.schema.json'));
    await expect(loadTask(dir)).rejects.toThrow(/output\.schema\.json: a symbolic link/);
  });

  it.each([
    ['a bad memory_limit, no main.js', { 'metadata.json': '{"memory_limit":"lots"}' }, /has no main\.js/],
    ['security.yaml not a mapping, a bad test file', { 'main.js': 'function(i) { return i }', 'security.yaml': '- a\n', 'tests/a.json': '{' }, /security\.yaml must hold a mapping/],
    ['a bad test_cases entry, an input schema that is not JSON', { 'meta.yaml': 'test_cases: [5]\n', 'task.js': 'function main(i) { return i }', 'input.schema.json': '{' }, /test_cases\[0\]/],
    ['an input schema that does not compile, an output schema that is not JSON', { 'main.js': 'function(i) { return i }', 'input.schema.json': '{"type":"bogus"}', 'output.schema.json': '[' }, /input\.schema\.json: not a usable JSON Schema/],
  ])('reports what it always reported first: %s', async (_what, files, message) => {
    await expect(loadTask(taskDir(files))).rejects.toThrow(message);
  });

  it('reads the newer meta.yaml + task.js shape', async () => {
    const t = await loadTask(taskDir({ 'meta.yaml': 'label: y\ntimeout: 500\n', 'task.js': 'function main(input) { return 1 }' }));
    expect(t.name).toBe('y');
    expect(t.filename).toMatch(/task\.js$/);
  });

  it.each([
    [{}, /has no main\.js/],
    [{ 'metadata.json': '{oops', 'main.js': 'x' }, /metadata\.json: not valid JSON/],
    [{ 'metadata.json': '{"timeout": "soon"}', 'main.js': 'x' }, /timeout/],
    [{ 'main.js': 'x', 'tests/t.json': '[1]' }, /test case/],
    [{ 'main.js': 'x', 'security.yaml': '- a\n- b' }, /security\.yaml must hold a mapping/],
  ])('refuses a broken task with a message (%#)', async (files, message) => {
    await expect(loadTask(taskDir(files as Record<string, string>))).rejects.toThrow(message);
  });

  it('says when the task does not exist', async () => {
    await expect(loadTask('/no/such/task')).rejects.toThrow('task not found: /no/such/task');
  });
});

describe('schemas and test matching', () => {
  it('names the first schema problem (validation stops there: a hostile schema cannot multiply errors)', async () => {
    const limits = ValidationLimits.parse({});
    const schema = await compileSchema({ type: 'object', properties: { a: { type: 'number' } }, required: ['a', 'b'] }, 'input', 'input.schema.json', limits);
    expect(await schemaErrors(schema, { a: 'x' }, limits)).toEqual(["input must have required property 'b'"]);
    expect(await schemaErrors(schema, { a: 'x', b: 1 }, limits)).toEqual(['input/a must be number']);
    expect(await schemaErrors(null, 'anything', limits)).toEqual([]);
  });

  it('reads draft-04 schemas as draft-04 (some Ratchet samples declare it): a boolean exclusiveMinimum', async () => {
    const limits = ValidationLimits.parse({});
    const draft04 = { $schema: 'http://json-schema.org/draft-04/schema#', type: 'object', properties: { n: { type: 'number', minimum: 0, exclusiveMinimum: true } } };
    const schema = await compileSchema(draft04, 'input', 'input.schema.json', limits);
    expect(await schemaErrors(schema, { n: 0 }, limits)).toEqual(['input/n must be > 0']);
    expect(await schemaErrors(schema, { n: 1 }, limits)).toEqual([]);
  });

  it('matches expected_output as a subset, as Ratchet does', () => {
    expect(subsetMatch({ a: 1 }, { a: 1, b: 2 })).toBe(true);
    expect(subsetMatch({ a: { b: 1 } }, { a: { b: 1, c: 2 } })).toBe(true);
    expect(subsetMatch({ a: 1 }, { a: 2 })).toBe(false);
    expect(subsetMatch([1, 2], [1, 2, 3])).toBe(false);
    expect(subsetMatch({ a: null }, {})).toBe(false);
  });
});
