// Every way a run can end maps to exactly one verdict.
import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/config/resolve.js';
import { classify, programExit, type RunFacts } from '../../src/supervisor/classify.js';

const base: RunFacts = {
  mode: 'task', policy: resolvePolicy(), killReason: null, exitCode: 0, signal: null, setupFailed: false,
  oomKills: 0, pidsLimitHits: 0, stderr: '', reply: { ok: true, output: { x: 1 }, violations: [] },
  replyProblem: null, seccompKills: [], refusesWithEperm: (s) => s === 'mount', cpuMs: 30, workspaceBytes: 0,
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
  it('the CPU clock is Timeout/cpu: the watch\'s kill or the cgroup\'s counter', () => {
    expect(f({ ...noReply, killReason: 'cpu' }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
    expect(f({ reply: null, exitCode: 128 + 24, cpuMs: 31_000 }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
  });
  it('the workspace watch or the final measurement is ResourceExhausted/disk', () => {
    expect(f({ reply: null, exitCode: 128 + 25, workspaceBytes: 101 * 1024 * 1024 }).error).toMatchObject({ resource: 'disk' });
    expect(f({ ...noReply, killReason: 'disk' }).error).toMatchObject({ resource: 'disk' });
  });
  it('a kernel audit record of a seccomp kill is SecurityViolation with the syscall when known', () => {
    expect(f({ reply: null, exitCode: 159, seccompKills: [{ syscall: null }] }).error).toMatchObject({ kind: 'SecurityViolation', syscall: null });
    expect(f({ reply: null, exitCode: 159, seccompKills: [{ syscall: 'ptrace' }] }).error).toMatchObject({ syscall: 'ptrace', message: expect.stringContaining('ptrace') });
  });
  it('a seccomp kill of any process of the run fails it, even when the main process replied', () => {
    expect(f({ seccompKills: [{ syscall: 'unshare' }] }).error).toMatchObject({ kind: 'SecurityViolation', syscall: 'unshare' });
  });
  // Each of these limits a task can hit on purpose after its blocked call, to choose its verdict.
  it('a seccomp kill outranks every limit the task could hit after it', () => {
    const killed = { ...noReply, seccompKills: [{ syscall: 'socket' }] };
    for (const more of [{ killReason: 'wall' as const }, { killReason: 'cpu' as const }, { killReason: 'output' as const }, { killReason: 'disk' as const }, { workspaceFull: true }, { pidsLimitHits: 1 }, { oomKills: 1 }]) {
      expect(f({ ...killed, ...more }).error).toMatchObject({ kind: 'SecurityViolation', syscall: 'socket' });
    }
  });
  it('a full /workspace decides a run that gave up, not one the clock ended', () => {
    expect(f({ ...noReply, workspaceFull: true }).error).toMatchObject({ resource: 'disk' });
    expect(f({ ...noReply, workspaceFull: true, killReason: 'wall' }).error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
    expect(f({ ...noReply, workspaceFull: true, killReason: 'cpu' }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
  });
  it('a thrown error is TaskError; EACCES/EROFS is FileSystemBlocked; EMFILE is fds; a blocked fetch is NetworkBlocked', () => {
    const thrown = (error: object, violations = []) => f({ reply: { ok: false, stage: 'run', error: { name: 'Error', message: 'm', ...error }, violations } });
    expect(thrown({}).error).toMatchObject({ kind: 'TaskError', message: 'm' });
    expect(thrown({ code: 'EROFS' }).error?.kind).toBe('FileSystemBlocked');
    expect(thrown({ code: 'EMFILE' }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'fds' });
    expect(thrown({ name: 'NetworkError' }, [{ kind: 'network', detail: 'x' }] as never).error?.kind).toBe('NetworkBlocked');
    expect(thrown({ code: 'EAI_AGAIN' }).error?.kind).toBe('NetworkBlocked');
  });
  // In restricted mode an allowed host's own refusal (ECONNREFUSED) is no block: only the proxy's is.
  it('restricted network: a network errno is NetworkBlocked only with the egress proxy\'s refusal', () => {
    const policy = resolvePolicy({ overrides: { network: { mode: 'restricted', allowedHosts: ['example.com'] } } });
    const thrown = (denials: string[]) => f({ policy, proxyDenials: denials, reply: { ok: false, stage: 'run', error: { name: 'Error', message: 'connect ECONNREFUSED', code: 'ECONNREFUSED' }, violations: [] } });
    expect(thrown([]).error?.kind).toBe('TaskError');
    expect(thrown(['evil.example:443 (not allowed)']).error?.kind).toBe('NetworkBlocked');
  });
  it('a limit crossed after the last poll still decides the verdict', () => {
    expect(f({ workspaceBytes: 200 * 1024 * 1024 }).error).toMatchObject({ kind: 'ResourceExhausted', resource: 'disk' });
    expect(f({ workspaceBytes: Infinity }).error?.message).toMatch(/could not be checked/);
    expect(f({ cpuMs: 31_000 }).error).toMatchObject({ kind: 'Timeout', limit: 'cpu' });
    expect(f({ pidsLimitHits: 1 }).error).toMatchObject({ resource: 'pids' }); // even if the task then returned
  });
  it('a task process that dies without a reply is TaskError naming how', () => {
    expect(f({ reply: null, exitCode: 1, stderr: 'boom' }).error).toMatchObject({ kind: 'TaskError', message: expect.stringContaining('exited with status 1') });
  });
  it('a runtime that did not finish its set-up (its record says so) is RuntimeError', () => {
    expect(f({ reply: null, exitCode: 1, setupFailed: true, stderr: "bwrap: Can't mount proc" }).error).toMatchObject({ kind: 'RuntimeError', message: "bwrap: Can't mount proc" });
    expect(f({ reply: null, exitCode: 125, setupFailed: true, stderr: 'pawl-shim: cannot enter cgroup x' }).error?.kind).toBe('RuntimeError');
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

// Attacks (issue 10.3): what the task writes (stderr, exit status, its reply) never chooses the
// kind over a fact, and never names a kind the sandbox could not have caused.
describe('classify: the task cannot choose its verdict', () => {
  const heap = 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory';
  it('heap-limit text on stderr while the wall clock runs out is Timeout', () => {
    expect(f({ reply: null, exitCode: 137, killReason: 'wall', stderr: heap }).error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
    expect(f({ mode: 'program', reply: null, exitCode: 137, killReason: 'wall', stderr: heap }).error).toMatchObject({ kind: 'Timeout', limit: 'wall' });
  });
  it.each([152, 153, 159])('exit status %i alone is TaskError', (code) => {
    expect(f({ reply: null, exitCode: code }).error?.kind).toBe('TaskError');
    expect(f({ mode: 'program', reply: null, exitCode: code }).error?.kind).toBe('TaskError');
  });
  it('"bwrap: ..." on stderr with exit 1 is TaskError when set-up finished', () => {
    expect(f({ reply: null, exitCode: 1, stderr: "bwrap: Can't mount proc" }).error?.kind).toBe('TaskError');
    expect(f({ mode: 'program', reply: null, exitCode: 1, stderr: "bwrap: Can't mount proc" }).error?.kind).toBe('TaskError');
  });
  it('a reply claiming EPERM from a call the filter allows (or with no filter) is TaskError', () => {
    const claim = { reply: { ok: false as const, stage: 'run' as const, error: { name: 'Error', message: 'm', code: 'EPERM', syscall: 'getpid' }, violations: [{ kind: 'syscall' as const, detail: 'getpid: EPERM' }] } };
    expect(f(claim).error?.kind).toBe('TaskError');
    expect(f({ ...claim, refusesWithEperm: null }).error?.kind).toBe('TaskError');
    const real = { reply: { ...claim.reply, error: { ...claim.reply.error, syscall: 'mount' } } };
    expect(f(real).error).toMatchObject({ kind: 'SecurityViolation', syscall: 'mount' });
  });
  it('a reply claiming a blocked network while the policy gives the full network is TaskError', () => {
    const policy = resolvePolicy({ overrides: { network: { mode: 'full' } } });
    const reply = { ok: false as const, stage: 'run' as const, error: { name: 'NetworkError', message: 'blocked', code: 'ENETUNREACH' }, violations: [{ kind: 'network' as const, detail: 'x' }] };
    expect(f({ policy, reply }).error?.kind).toBe('TaskError');
  });
  it('forged violations alone choose nothing', () => {
    const reply = { ok: false as const, stage: 'run' as const, error: { name: 'Error', message: 'm' }, violations: [{ kind: 'syscall' as const, detail: 'ptrace' }, { kind: 'network' as const, detail: 'x' }] };
    expect(f({ reply }).error?.kind).toBe('TaskError');
  });
});
