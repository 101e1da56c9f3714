// Every way a run can end maps to exactly one verdict.
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { classify, programExit, type RunFacts } from '../../src/supervisor/classify.js';

const base: RunFacts = {
  mode: 'task', policy: resolvePolicy(), killReason: null, exitCode: 0, signal: null, shimFailed: false,
  oomKills: 0, pidsLimitHits: 0, stderr: '', reply: { ok: true, output: { x: 1 }, violations: [] },
  replyProblem: null, outputErrors: [], seccomp: null, cpuMs: 30, workspaceBytes: 0,
};
const f = (o: Partial<RunFacts>) => classify({ ...base, ...o });
const noReply = { reply: null, exitCode: 137 };

describe('classify', () => {
  it('a returned value is success', () => expect(f({})).toMatchObject({ status: 'succeeded', output: { x: 1 } }));
  it('an OOM kill is ResourceExhausted/memory, whatever else happened', () => {
    expect(f({ ...noReply, oomKills: 1, killReason: 'wall' }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'memory' });
  });
  it('a V8 heap exhaustion is ResourceExhausted/memory too', () => {
    expect(f({ reply: null, exitCode: 134, stderr: 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory' }).error).toMatchObject({ resource: 'memory' });
  });
  it('a refused fork is ResourceExhausted/pids', () => expect(f({ ...noReply, killReason: 'pids', pidsLimitHits: 3 }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'pids' }));
  it('the wall clock is Timeout/wall', () => expect(f({ ...noReply, killReason: 'wall' }).error).toMatchObject({ kind: 'Timeout', limit: 'wall' }));
  it('the CPU clock is Timeout/cpu, also via SIGXCPU', () => {
    expect(f({ ...noReply, killReason: 'cpu' }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
    expect(f({ reply: null, exitCode: 128 + 24 }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
  });
  it('SIGXFSZ or the workspace watch is ResourceExhausted/disk', () => {
    expect(f({ reply: null, exitCode: 128 + 25 }).error).toMatchObject({ resource: 'disk' });
    expect(f({ ...noReply, killReason: 'disk' }).error).toMatchObject({ resource: 'disk' });
  });
  it('SIGSYS is SecurityViolation with the syscall when known', () => {
    expect(f({ reply: null, exitCode: 128 + 31 }).error).toMatchObject({ kind: 'SecurityViolation', syscall: null });
    expect(f({ reply: null, exitCode: 159, seccomp: { syscall: 'ptrace' } }).error).toMatchObject({ syscall: 'ptrace', message: expect.stringContaining('ptrace') });
  });
  it('a thrown error is TaskError; EACCES/EROFS is FileSystemBlocked; EMFILE is fds; a blocked fetch is NetworkBlocked', () => {
    const thrown = (error: object, violations = []) => f({ reply: { ok: false, stage: 'run', error: { name: 'Error', message: 'm', ...error }, violations } });
    expect(thrown({}).error).toMatchObject({ kind: 'TaskError', message: 'm' });
    expect(thrown({ code: 'EROFS' }).error?.kind).toBe('FileSystemBlocked');
    expect(thrown({ code: 'EMFILE' }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'fds' });
    expect(thrown({ name: 'NetworkError' }, [{ kind: 'network', detail: 'x' }] as never).error?.kind).toBe('NetworkBlocked');
    expect(thrown({ code: 'EAI_AGAIN' }).error?.kind).toBe('NetworkBlocked');
  });
  it('a limit crossed after the last poll still decides the verdict', () => {
    expect(f({ workspaceBytes: 200 * 1024 * 1024 }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk' });
    expect(f({ workspaceBytes: Infinity }).error?.message).toMatch(/could not be checked/);
    expect(f({ cpuMs: 31_000 }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
    expect(f({ pidsLimitHits: 1 }).error).toMatchObject({ resource: 'pids' }); // even if the task then returned
  });
  it('output that fails its schema is InvalidOutput', () => expect(f({ outputErrors: ['output/sum must be number'] }).error?.kind).toBe('InvalidOutput'));
  it('a task process that dies without a reply is TaskError naming how', () => {
    expect(f({ reply: null, exitCode: 1, stderr: 'boom' }).error).toMatchObject({ kind: 'TaskError', message: expect.stringContaining('exited with status 1') });
  });
  it('a runtime that could not set up is RuntimeError', () => {
    expect(f({ reply: null, exitCode: 1, stderr: "bwrap: Can't mount proc" }).error?.kind).toBe('RuntimeError');
    expect(f({ reply: null, exitCode: 125, shimFailed: true, stderr: 'pawl-shim: cannot enter cgroup x' }).error?.kind).toBe('RuntimeError');
  });
  it('cancellation is Cancelled', () => expect(f({ ...noReply, killReason: 'cancelled' }).error?.kind).toBe('Cancelled'));
  it('programs: exit 0 succeeds, anything else is TaskError with the status', () => {
    expect(f({ mode: 'program', reply: null, exitCode: 0 }).status).toBe('succeeded');
    expect(f({ mode: 'program', reply: null, exitCode: 3 })).toMatchObject({ status: 'failed', exit_code: 3, error: { kind: 'TaskError' } });
  });
  it('reads 128+N from the runtime as signal N', () => {
    expect(programExit(137, null)).toEqual({ exit_code: null, signal: 'SIGKILL' });
    expect(programExit(3, null)).toEqual({ exit_code: 3, signal: null });
  });
});
