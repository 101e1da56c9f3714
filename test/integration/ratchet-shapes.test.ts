// Every shape a Ratchet task file comes in runs unmodified, in a real sandbox; a file whose task
// function cannot be told is InvalidTask naming the candidates. The shape is found by the
// harness inside the sandbox, never by parsing task code on the host.
import { afterAll, describe, expect, it } from 'vitest';
import { leftovers, testHost } from '../helpers/host.js';
import { runFixture } from '../helpers/ratchet.js';

const host = testHost('shapes');
const run = (name: string, opts: Parameters<typeof runFixture>[2] = {}) => runFixture(host, name, opts);

afterAll(async () => {
  expect(await leftovers(host)).toEqual({ cgroups: [], scratch: [], processes: [], mounts: [] });
});

describe('task shapes', () => {
  it.each([
    ['shape-anonymous', 'anonymous'],
    ['shape-paren', 'paren'],
    ['shape-module-exports-fn', 'module-exports-fn'],
    ['shape-async', 'async'],
    ['shape-promise', 'promise'],
  ])('%s runs and returns its output', async (name, shape) => {
    const r = await run(name, { input: { n: 21 } });
    expect(r.error).toBeUndefined();
    expect(r.output).toEqual({ shape, doubled: 42 });
  });

  it('a declaration named main is the task, not the helper beside it, and gets the context', async () => {
    const r = await run('shape-main', { input: { n: 21 } });
    expect(r.output).toEqual({ shape: 'main', doubled: 42, hasExecutionId: true });
  });

  it('a file with exactly one top-level function of another name runs it (was: refused)', async () => {
    const r = await run('shape-single-named', { input: { n: 9 } });
    expect(r.output).toEqual({ shape: 'single-named', half: 4.5 });
    // ... and its Ratchet error classes work as they do in Ratchet.
    const bad = await run('shape-single-named', { input: { n: 'nine' } });
    expect(bad.error).toMatchObject({ kind: 'TaskError', name: 'ValidationError', message: 'n must be a number' });
  });

  it('an exports object naming its one function (not main) runs it', async () => {
    const r = await run('shape-exports-guard-named', { input: { a: 6, b: 7 } });
    expect(r.output).toEqual({ shape: 'exports-guard-named', product: 42 });
  });

  it('module.exports = { main } in a meta.yaml + task.js task runs main (was: "module is not defined")', async () => {
    const r = await run('shape-module-exports-object', { input: { n: 21 } });
    expect(r.error).toBeUndefined();
    expect(r.output).toEqual({ shape: 'module-exports-object', doubled: 42 });
  });

  it('exports.main is the task even with another function exported beside it', async () => {
    const r = await run('shape-exports-main', { input: { n: 21 } });
    expect(r.output).toEqual({ shape: 'exports-main', doubled: 42, label: 'n=21' });
  });

  it('an async main with an exports guard (a heartbeat) runs, its console output captured', async () => {
    const r = await run('heartbeat-like', { policy: { env: { APP_VERSION: '1.2.3' } } });
    expect(r.error).toBeUndefined();
    expect(r.output).toMatchObject({ status: 'ok', version: '1.2.3', uptimeSeconds: expect.any(Number) });
    expect(r.stdout).toBe('heartbeat: checking\n');
  });

  it('two top-level functions, none named main, nothing exported: InvalidTask naming both', async () => {
    const r = await run('shape-ambiguous', { input: { a: 1, b: 2 } });
    expect(r.status).toBe('failed');
    expect(r.error?.kind).toBe('InvalidTask');
    expect(r.error?.message).toContain('add');
    expect(r.error?.message).toContain('subtract');
  });

  it('the metadata\'s entry point picks among them; a missing one is InvalidTask', async () => {
    const r = await run('shape-entry', { input: { a: 5, b: 2 }, request: { entry: 'subtract' } });
    expect(r.output).toEqual({ difference: 3 });
    const missing = await run('shape-entry', { input: { a: 5, b: 2 }, request: { entry: 'multiply' } });
    expect(missing.error?.kind).toBe('InvalidTask');
    expect(missing.error?.message).toMatch(/multiply.*add.*subtract/s);
  });

  it('the shape does not depend on the backend: module.exports under runc', async () => {
    const r = await run('shape-module-exports-object', { input: { n: 21 }, policy: { runtime: 'runc' } });
    expect(r).toMatchObject({ runtime: 'runc', status: 'succeeded', output: { shape: 'module-exports-object', doubled: 42 } });
  });
});

describe('the environment a task sees', () => {
  it('console to stdout/stderr, process.env only what the policy passes, the error classes, no supervisor pipes', async () => {
    const r = await run('environment', { policy: { env: { GREETING: 'hi' } } });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe('to stdout\n');
    expect(r.stderr).toBe('to stderr\n');
    const out = r.output as { env: string[]; errors: string[]; httpError: unknown; fds: { fd: number; link: string; flags: string }[] };
    // The sandbox's base variables, the policy's, and the PWD bwrap sets; none of the supervisor's.
    expect(out.env).toEqual(['GREETING', 'HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']);
    expect(out.errors).toHaveLength(10);
    expect(out.httpError).toEqual({ status: 418, message: 'teapot', name: 'HttpError' });
    // The request channel (fd 3) is closed once read; only the reply channel (fd 4) is left, and
    // close-on-exec, so a program the task spawns does not get it.
    const sockets = out.fds.filter((f) => f.link.startsWith('socket:'));
    expect(sockets.map((f) => f.fd)).toEqual([4]);
    expect(Number.parseInt(sockets[0]!.flags, 8) & 0o2000000).not.toBe(0);
  });
});
