// Execution modes and the audit log, with real runs: hybrid mode sends a task whose trust level is
// marked for legacy in-process (it sees this process's pid and the host's files) and every other
// task into a real sandbox (its own pid namespace and root); each run leaves JSON audit lines that
// carry the run's facts but never its input or environment values; a request the egress proxy
// denies becomes an audit violation line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditLog } from '../../src/audit/index.js';
import { parseSecurityConfig } from '../../src/operator/index.js';
import { runWithMode } from '../../src/modes/index.js';
import { RunResult } from '../../src/supervisor/result.js';
import { leftovers, testHost } from '../helpers/host.js';

const host = testHost('modes');
const SECRET_INPUT = 'in-7f3c1e-secret-input-value';
const SECRET_ENV = 'env-b29d44-secret-env-value';
let dir: string;

const WHERE = `function main(input) {
  const fs = require('fs');
  let hostname;
  try { hostname = fs.readFileSync('/etc/hostname', 'utf8').trim(); } catch (e) { hostname = e.code; }
  console.log('got a secret:', typeof input.secret === 'string');
  if (input.fail) {
    try { fetch('http://user:' + process.env.API_TOKEN + '@api.example.com/v1?token=' + input.secret); } catch (e) {}
    throw new Error('rejected token ' + input.secret + ' / ' + process.env.API_TOKEN);
  }
  return { pid: process.pid, hostname, envSeen: process.env.API_TOKEN === ${JSON.stringify(SECRET_ENV)} };
}`;
const FETCH_METADATA = `function main() {
  try { fetch('http://169.254.169.254/latest/meta-data/'); return { reached: true }; } catch (e) { return { refused: e.name }; }
}`;

function task(name: string, source: string): string {
  const d = join(dir, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d);
  writeFileSync(join(d, 'metadata.json'), JSON.stringify({ name, version: '1.0.0' }));
  writeFileSync(join(d, 'main.js'), source);
  return d;
}

const CONFIG = `security:
  task_policies:
    legacy-tool: {trust_level: System}
    user-content: {trust_level: Untrusted}
    metadata-prober:
      trust_level: Limited
      network_policy: {mode: Restricted, allowed_hosts: [api.example.com]}
  runtime_config:
    execution_mode: hybrid
    legacy_trust_levels: [system]
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pawl-modes-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const auditLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('hybrid execution mode', () => {
  it('routes by trust level: legacy in-process for system, a real sandbox for untrusted; the mode is in the result', async () => {
    const config = parseSecurityConfig(CONFIG, 'security.yaml');
    const logFile = join(dir, 'audit.log');
    const audit = openAuditLog(logFile);
    const warnings: string[] = [];
    const run = (name: string, input: Record<string, unknown>) =>
      runWithMode(task(name, WHERE), { config, input, host, audit, policy: { env: { API_TOKEN: SECRET_ENV } }, warn: (m) => warnings.push(m) });

    const legacy = await run('legacy-tool', { secret: SECRET_INPUT });
    expect(legacy).toMatchObject({ status: 'succeeded', mode: 'legacy', runtime: 'none', cgroup: 'none', trust_level: 'system' });
    expect(() => RunResult.parse(legacy)).not.toThrow(); // the one result schema
    // In this very process: its pid, the host's /etc/hostname.
    expect(legacy.output).toEqual({ pid: process.pid, hostname: readFileSync('/etc/hostname', 'utf8').trim(), envSeen: true });
    expect(warnings).toEqual([expect.stringContaining('task legacy-tool runs in legacy execution mode: in-process, WITHOUT a sandbox (unsafe')]);

    const sandboxed = await run('user-content', { secret: SECRET_INPUT });
    expect(sandboxed).toMatchObject({ status: 'succeeded', mode: 'sandboxed', runtime: 'bwrap', trust_level: 'untrusted' });
    const out = sandboxed.output as { pid: number; hostname: string; envSeen: boolean };
    expect(out.pid).not.toBe(process.pid);
    expect(out.pid).toBeLessThan(10); // its own pid namespace
    expect(out.hostname).not.toBe(readFileSync('/etc/hostname', 'utf8').trim());
    expect(out.envSeen).toBe(true);
    expect(warnings).toHaveLength(1); // only the legacy run warned

    // A failing run whose error message quotes both secrets.
    const failed = await run('user-content', { secret: SECRET_INPUT, fail: true });
    expect(failed).toMatchObject({ status: 'failed', mode: 'sandboxed', error: { kind: 'TaskError' } });
    expect(failed.error!.message).toContain(SECRET_INPUT);
    // The task's own report of the blocked fetch quotes the URL with both secrets in it.
    expect(JSON.stringify(failed.violations)).toContain(SECRET_INPUT);
    audit.flush();

    const text = readFileSync(logFile, 'utf8');
    expect(text).not.toContain(SECRET_INPUT);
    expect(text).not.toContain(SECRET_ENV);
    const lines = auditLines(logFile);
    const runs = lines.filter((l) => l.event === 'run');
    expect(runs).toHaveLength(3);
    expect(lines.filter((l) => l.event === 'violation')).toEqual([expect.objectContaining({ kind: 'network', source: 'task', detail: expect.stringContaining('http://api.example.com/v1'), run_id: failed.id })]);
    for (const l of runs) {
      expect(l).toMatchObject({ event: 'run', policy_hash: expect.stringMatching(/^[0-9a-f]{16}$/), usage: { wall_ms: expect.any(Number) }, violations: expect.any(Array) });
      expect(typeof l.time).toBe('string');
    }
    expect(runs[0]!.violations).toEqual([]);
    expect(runs[0]).toMatchObject({ task: 'legacy-tool', trust_level: 'system', mode: 'legacy', unsafe: true, level: 'warn', runtime: 'none', result_kind: 'Succeeded', run_id: legacy.id });
    expect(runs[1]).toMatchObject({ task: 'user-content', trust_level: 'untrusted', mode: 'sandboxed', unsafe: false, level: 'info', runtime: 'bwrap', result_kind: 'Succeeded', run_id: sandboxed.id });
    expect(runs[2]).toMatchObject({ task: 'user-content', status: 'failed', result_kind: 'TaskError', run_id: failed.id });
    // Same policy, same hash; the legacy task's (system) differs.
    expect(runs[1]!.policy_hash).toBe(runs[2]!.policy_hash);
    expect(runs[0]!.policy_hash).not.toBe(runs[1]!.policy_hash);
  });

  it('a task is known to task_policies by its dir name: naming itself after the legacy task in its metadata gains it nothing', async () => {
    const config = parseSecurityConfig(CONFIG, 'security.yaml');
    const d = task('user-content', WHERE);
    writeFileSync(join(d, 'metadata.json'), JSON.stringify({ name: 'legacy-tool\u202e', version: '1.0.0' }));
    const warnings: string[] = [];
    const logFile = join(dir, 'audit-named.log');
    const audit = openAuditLog(logFile);
    const r = await runWithMode(d, { config, input: { secret: 'x' }, host, audit, warn: (m) => warnings.push(m) });
    expect(r).toMatchObject({ status: 'succeeded', mode: 'sandboxed', runtime: 'bwrap', trust_level: 'untrusted' });
    expect((r.output as { pid: number }).pid).not.toBe(process.pid);
    expect(warnings).toEqual([]);
    // And the audit log names it the same way: the name it gave itself is its claim, apart and escaped.
    audit.flush();
    expect(auditLines(logFile).find((l) => l.event === 'run')).toMatchObject({ task: 'user-content', task_label: 'legacy-tool\\u202e' });
  });

  it('a task the config does not name runs at the defaults, and is told so (names are exact: one that differs in case is named)', async () => {
    const config = parseSecurityConfig(CONFIG, 'security.yaml');
    const warnings: string[] = [];
    const r = await runWithMode(task('User-Content', 'function main() { return 1 }'), { config, host, warn: (m) => warnings.push(m) });
    expect(r).toMatchObject({ status: 'succeeded', mode: 'sandboxed', trust_level: 'limited' });
    expect(warnings).toEqual(['task "User-Content" has no entry in security.task_policies: it runs at trust level limited with default_limits (the entry "user-content" differs only in case)']);
  });

  it('a legacy run still stops at its wall time, and a task that throws is TaskError', async () => {
    const config = parseSecurityConfig(CONFIG.replace('legacy-tool: {trust_level: System}', 'legacy-tool: {trust_level: System, resource_limits: {max_execution_time: 1}}'), 'security.yaml');
    const spin = await runWithMode(task('legacy-tool', 'function main() { for (;;) {} }'), { config, host, warn: () => {} });
    expect(spin).toMatchObject({ status: 'failed', mode: 'legacy', error: { kind: 'Timeout', limit: 'wall', limit_value: 1000 } });
    const thrown = await runWithMode(task('legacy-tool', 'module.exports = function (input) { throw new ValidationError("no " + input.x); }'), { config, input: { x: 'y' }, host, warn: () => {} });
    expect(thrown).toMatchObject({ status: 'failed', mode: 'legacy', error: { kind: 'TaskError', name: 'ValidationError', message: 'no y' } });
    // Its timers end with its run: nothing of it keeps firing in this process.
    const ticks = join(dir, 'ticks');
    writeFileSync(ticks, '');
    const ticker = await runWithMode(task('legacy-tool', `function main() { setInterval(() => require('fs').appendFileSync(${JSON.stringify(ticks)}, 'x'), 10); return new Promise((r) => setTimeout(() => r({ ok: true }), 100)); }`), { config, host, warn: () => {} });
    expect(ticker).toMatchObject({ status: 'succeeded', output: { ok: true } });
    const after = readFileSync(ticks, 'utf8').length;
    expect(after).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(readFileSync(ticks, 'utf8').length).toBe(after);
  });
});

describe('audit violations', () => {
  // Root appended to whatever a link at the log's path named; a file of mode 666 let anyone forge lines.
  it('the log file is opened without following a link, and must be this user\'s alone', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'ORIGINAL');
    symlinkSync(victim, join(dir, 'linked.log'));
    expect(() => openAuditLog(join(dir, 'linked.log'))).toThrow(/linked\.log: is a symbolic link/);
    expect(readFileSync(victim, 'utf8')).toBe('ORIGINAL');
    writeFileSync(join(dir, 'open.log'), '', { mode: 0o666 });
    chmodSync(join(dir, 'open.log'), 0o666);
    expect(() => openAuditLog(join(dir, 'open.log'))).toThrow(/open\.log: writable by others \(mode 666\)/);
    writeFileSync(join(dir, 'theirs.log'), '', { mode: 0o600 });
    chownSync(join(dir, 'theirs.log'), 65534, 65534);
    expect(() => openAuditLog(join(dir, 'theirs.log'))).toThrow(/theirs\.log: owned by uid 65534/);
  });

  it('a request the egress proxy denies is a violation line of its own (source supervisor)', async () => {
    const config = parseSecurityConfig(CONFIG, 'security.yaml');
    const logFile = join(dir, 'audit-net.log');
    const audit = openAuditLog(logFile);
    const r: RunResult = await runWithMode(task('metadata-prober', FETCH_METADATA), { config, host, audit, warn: () => {} });
    expect(r).toMatchObject({ status: 'succeeded', mode: 'sandboxed', output: { refused: 'NetworkError' } });
    audit.flush();
    const lines = auditLines(logFile);
    const violations = lines.filter((l) => l.event === 'violation');
    expect(violations).toContainEqual(expect.objectContaining({
      task: 'metadata-prober', trust_level: 'limited', mode: 'sandboxed', kind: 'network', source: 'supervisor', run_id: r.id,
      detail: expect.stringContaining('egress proxy denied 169.254.169.254:80'),
    }));
    const run = lines.find((l) => l.event === 'run')!;
    expect(run.violations).toContainEqual(expect.objectContaining({ kind: 'network', source: 'supervisor' }));
    expect(await leftovers(host)).toMatchObject({ cgroups: [], scratch: [], processes: [] });
  });
});
