// Ratchet tasks through the CLI, in real sandboxes: metadata read as Ratchet's authors mean it
// (issue 11.2), `pawl test` with Ratchet's test formats (issue 11.3), and the host-side attacks of
// issue 10 (linked task files, a backtracking schema, an output too big to indent).
import { afterAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTask } from '../../src/task/load.js';
import { runTask } from '../../src/supervisor/run.js';
import { testHost } from '../helpers/host.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const RATCHET = join(import.meta.dirname, '..', 'fixtures', 'ratchet');
const tag = process.env.PAWL_TEST_TAG ? `-${process.env.PAWL_TEST_TAG}` : '';
const env = { PAWL_CGROUP_PARENT: `pawl-ratchet${tag}`, PAWL_STATE_DIR: '/var/lib/pawl' };
const pawl = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, env });
const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('Ratchet metadata through the CLI (issue 11.2)', () => {
  it('a metadata timeout of 30 is 30 seconds: a task that takes 200 ms is not killed', async () => {
    const r = await pawl('run', join(RATCHET, 'pulse-seconds'));
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'succeeded', output: { alive: true, run: 'string' } });
    expect(r.exitCode).toBe(0);
  });

  it('explain shows how each field was read', async () => {
    const r = await pawl('explain', join(RATCHET, 'pulse-seconds'));
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('timeout: 30 (metadata.json) read as 30 s of wall time (a bare number below 1000 is seconds)');
    expect(r.stdout).toContain('cpu_limit: "0.5" (metadata.json) read as a CPU quota of 50% of one core');
    expect(r.stdout).toMatch(/limits {8}memory=67108864 cpu=50% .* wall=30000ms/);
  });
});

describe('pawl test with Ratchet test formats (issue 11.3)', () => {
  it('expected, expected: null, should_fail and expected_error: one line per case and the count', async () => {
    const r = await pawl('test', join(RATCHET, 'expect-and-fail'));
    expect(r.stdout.split('\n')).toEqual([
      'PASS expected (not expected_output)',
      'PASS expected null: any output will do',
      'PASS odd input fails',
      'PASS odd input fails saying why',
      '4 passed, 0 failed',
    ]);
    expect(r.exitCode).toBe(0);
  });

  it('mock.http cases are answered from their mocks (a mocked 404 throws HttpError), even when the flags give the network', async () => {
    const r = await pawl('test', join(RATCHET, 'mocked-http'), '--network', 'full');
    expect(r.stdout.split('\n')).toEqual([
      'PASS a list of mocks, the answer a bare body',
      'PASS a mock giving a whole response',
      'PASS a 404 from the mock throws HttpError, as a real one would',
      '3 passed, 0 failed',
    ]);
    expect(r.exitCode).toBe(0);
  });

  it('meta.yaml test_cases, its entrypoint file and inline schemas', async () => {
    const r = await pawl('test', join(RATCHET, 'yaml-complete'));
    expect(r.stdout.split('\n')).toEqual(['PASS three words', 'PASS empty text is refused by the task', '2 passed, 0 failed']);
    expect(r.exitCode).toBe(0);
  });

  it('exits 1 on any failure, saying why each case failed; --json gives the same report as data', async () => {
    const r = await pawl('test', join(RATCHET, 'one-wrong'));
    expect(r.exitCode).toBe(1);
    const lines = r.stdout.split('\n');
    expect(lines.at(-1)).toBe('1 passed, 2 failed');
    expect(lines).toContain('FAIL wrong on purpose: expected {"sum":4}, got {"sum":3}');
    expect(lines).toContain('FAIL claims to fail but succeeds: expected the task to fail, it returned {"sum":2}');
    const j = await pawl('test', '--json', join(RATCHET, 'one-wrong'));
    expect(j.exitCode).toBe(1);
    const report = JSON.parse(j.stdout);
    expect(report).toMatchObject({ passed: 1, failed: 2 });
    expect(report.cases.map((c: { source: string; passed: boolean }) => [c.source, c.passed])).toEqual([
      ['tests/right.json', true],
      ['tests/should-fail-but-succeeds.json', false],
      ['tests/wrong.json', false],
    ]);
  });
});

describe('the schema worker as a library sees it', () => {
  it('waits for validations to finish, then lets the process exit by itself', async () => {
    const script = `
      import { loadTask } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'index.js'))};
      import { schemaCheck } from ${JSON.stringify(join(import.meta.dirname, '..', '..', 'dist', 'task', 'validate.js'))};
      const t = await loadTask(${JSON.stringify(join(RATCHET, 'yaml-complete'))});
      console.log(JSON.stringify((await schemaCheck(t.inputSchema, { text: 1 }, t.limits.validation)).errors));`;
    const r = await execa('node', ['--input-type=module', '-e', script], { reject: false, timeout: 30_000 });
    expect(r.stdout).toBe('["input/text must be string"]');
    expect(r.exitCode).toBe(0);
  });
});

describe('host-side attacks through the CLI (issue 10)', () => {
  it('an output too costly to validate is InvalidOutput saying which bound, and the run is reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-task-'));
    made.push(dir);
    writeFileSync(join(dir, 'main.js'), 'function main() { return Array.from({ length: 40000 }, (_, i) => ({ k: [i, { v: i }] })); }');
    writeFileSync(join(dir, 'output.schema.json'), '{"type": "array", "uniqueItems": true}');
    // Compiled under the default bound (a busy machine may take 300 ms to compile), validated under 300 ms.
    const loaded = await loadTask(dir);
    const task = { ...loaded, limits: { ...loaded.limits, validation: { ...loaded.limits.validation, timeMs: 300 } } };
    const r = await runTask(task, { host: testHost('ratchet') });
    expect(r.error).toEqual({
      kind: 'InvalidOutput',
      message: 'the task output could not be checked against output.schema.json: validation exceeded its time bound of 300 ms',
      details: ['output: validation against output.schema.json stopped: it exceeded its time bound of 300 ms'],
    });
  });

  it('pawl test prints a task\'s names and messages with their control characters escaped: no line is forged', async () => {
    // A case named with an escape sequence, whose task throws "\r" and a fake PASS line: on a
    // terminal the raw line read "PASS ok".
    const dir = mkdtempSync(join(tmpdir(), 'pawl-task-'));
    made.push(dir);
    writeFileSync(join(dir, 'main.js'), 'function(input) { throw new Error("x\\rPASS ok   \\u001b[32m"); }');
    writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name: 'forge', test_cases: [{ name: 'ok\u001b[32m', input: {} }, { name: 'two\nPASS all fine', input: {} }] }));
    const r = await pawl('test', dir);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^FAIL ok\\u001b\[32m: TaskError: x\\u000dPASS ok {3}\\u001b\[32m/);
    // A newline in a name is no line of its own either.
    expect(lines[1]).toMatch(/^FAIL two\\u000aPASS all fine: TaskError/);
    expect(lines.slice(2)).toEqual(['0 passed, 2 failed']);
  });

  it('a main.js linked to a root-only file is refused, quoting nothing of it', async () => {
    const secret = mkdtempSync(join(tmpdir(), 'pawl-canary-'));
    const dir = mkdtempSync(join(tmpdir(), 'pawl-task-'));
    made.push(secret, dir);
    chmodSync(secret, 0o700);
    writeFileSync(join(secret, 'secret'), 'CANARY-2b7e root only\n', { mode: 0o600 });
    symlinkSync(join(secret, 'secret'), join(dir, 'main.js'));
    const r = await pawl('run', dir);
    expect(`${r.stdout}${r.stderr}`).not.toContain('CANARY');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(`pawl: ${join(dir, 'main.js')}: a symbolic link (pawl follows no links in a task)`);
  });

  it('an output schema pattern ^(a|a)*$ over 40 a\'s and a "!" gives InvalidOutput, not a stalled supervisor', async () => {
    const r = await pawl('run', join(RATCHET, 'backtracking-pattern'));
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout).error).toEqual({
      kind: 'InvalidOutput',
      message: 'the task output does not match output.schema.json',
      details: ['output/tag must match pattern "^(a|a)*$"'],
    });
  });

  it('an output too big to indent is still printed (compact), not an internal error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pawl-task-'));
    made.push(dir);
    // 98 levels (replies nest at most 100) around 3 million numbers: 6 MB compact, ~600 MB
    // indented, past V8's maximum string length (~512 MB).
    writeFileSync(join(dir, 'main.js'), 'function main() { let v = new Array(3000000).fill(1); for (let i = 0; i < 98; i++) v = [v]; return v; }');
    const r = await pawl('run', dir);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    // One compact line. (Parsing it whole needs stdout through a pipe never cut: issue 9.2.)
    expect(r.stdout).not.toContain('\n');
    expect(r.stdout.slice(0, 100)).toMatch(/^\{"id":"[^"]+","status":"succeeded","output":\[\[\[/);
  }, 120_000);
});
