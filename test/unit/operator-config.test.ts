// The operator's security.yaml: the Ratchet plan's own sample loads unchanged, each kind of bad file
// is refused with its exact message (file:line:col, document path, what was expected), and
// `config show` says where each effective value came from.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planTaskRun } from '../../src/modes/index.js';
import { effectivePolicy, loadSecurityConfig, parseSecurityConfig, runtimeSettings, SecurityConfigError } from '../../src/operator/index.js';

const PLAN_SAMPLE = join(import.meta.dirname, '..', 'fixtures', 'operator', 'ratchet-plan-security.yaml');
const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
const MiB = 1024 ** 2;

const refused = (text: string): string[] => {
  try {
    parseSecurityConfig(text, 'sec.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(SecurityConfigError);
    return (e as Error).message.split('\n');
  }
  throw new Error('the config loaded');
};
const y = (...lines: string[]) => `${lines.join('\n')}\n`;

describe('the Ratchet plan sample security.yaml', () => {
  it('loads unchanged, and each task gets what the plan means', async () => {
    const c = await loadSecurityConfig(PLAN_SAMPLE);
    const dp = effectivePolicy(c, { taskName: 'data-processing' });
    expect(dp.policy).toMatchObject({ trustLevel: 'limited', resources: { memory: 256 * MiB, cpuPercent: 75, wallTime: 600_000, processes: 10, fileDescriptors: 64, diskReadBps: 10 * MiB, diskWriteBps: 5 * MiB } });
    expect(dp.policy.network).toMatchObject({ mode: 'restricted', allowedHosts: ['api.example.com', 'data.example.com'], allowedPorts: [80, 443] });
    expect(dp.mode).toBe('sandboxed');
    // Untrusted with no limits of its own: the untrusted preset over default_limits (64MB, not 128MB).
    const uc = effectivePolicy(c, { taskName: 'user-content' });
    expect(uc.policy).toMatchObject({ trustLevel: 'untrusted', resources: { memory: 64 * MiB, wallTime: 60_000 }, network: { mode: 'none' } });
    // A task in no policy: default_limits as the limited level.
    expect(effectivePolicy(c, { taskName: 'other' }).policy.resources).toMatchObject({ memory: 128 * MiB, wallTime: 300_000 });
    expect(c.notes.join('\n')).toContain('container_runtime: docker is a container daemon; pawl runs without one');
  });

  it('says what it accepts and does not use (a rootfs.source was taken without a word)', () => {
    const c = parseSecurityConfig(y('security:', '  runtime_config: {rootfs: {source: /srv/rootfs}, image_registry: r.example.com}'), 'sec.yaml');
    expect(c.notes).toEqual(expect.arrayContaining([
      'security.runtime_config.image_registry: not used; pawl builds its own read-only rootfs (pawl rootfs build)',
      'security.runtime_config.rootfs.source: not used; pawl builds its read-only rootfs in its state dir (<PAWL_STATE_DIR>/rootfs, pawl rootfs build), not from /srv/rootfs',
    ]));
  });
});

describe('bad security.yaml files: every problem, precisely', () => {
  it.each([
    ['a value outside an enum', y('security:', '  task_policies:', '    user-content:', '      network_policy:', '        mode: Nonee'),
      ['sec.yaml:5:15: security.task_policies.user-content.network_policy.mode: expected one of none, restricted, full (or {restricted: {allow_outbound, allow_inbound}})']],
    ['an unknown key, with the keys expected there', y('security:', '  task_policies:', '    x:', '      resource_limits: {max_memry_mb: 3}'),
      ['sec.yaml:4:25: security.task_policies.x.resource_limits.max_memry_mb: unknown key: expected one of max_memory_mb, memory_swap_limit_mb, max_cpu_percent, cpu_quota_us, cpu_period_us, max_processes, max_file_descriptors, max_execution_time, cpu_timeout, max_disk_read_bps, max_disk_write_bps, max_disk_space_mb']],
    ['an unknown top-level section', y('security:', '  runtime_config: {}', '  bogus: 1'),
      ['sec.yaml:3:3: security.bogus: unknown key: expected one of default_limits, task_policies, runtime_config']],
    ['a size and a duration that are not', y('security:', '  default_limits:', '    max_memory_mb: lots', '    max_execution_time: 5 fortnights'),
      ['sec.yaml:3:20: security.default_limits.max_memory_mb: expected megabytes or a size such as "512MB", got "lots"',
        'sec.yaml:4:25: security.default_limits.max_execution_time: expected seconds or a duration such as "30s" or "5m", got "5 fortnights"']],
    ['a trust level that does not exist', y('security:', '  task_policies:', '    x: {trust_level: Godlike}'),
      ['sec.yaml:3:22: security.task_policies.x.trust_level: expected one of untrusted, limited, trusted, system, got "godlike"']],
    ['hosts and ports the CLI flags refuse too', y('security:', '  task_policies:', '    x:', '      network_policy: {mode: restricted, allowed_hosts: ["exa mple.com"], allowed_ports: [70000]}'),
      ['sec.yaml:4:58: security.task_policies.x.network_policy.allowed_hosts.0: "exa mple.com" is not a host name',
        'sec.yaml:4:91: security.task_policies.x.network_policy.allowed_ports.0: Too big: expected number to be <=65535']],
    ['a rule across fields: an allow list without mode restricted', y('security:', '  task_policies:', '    api:', '      network_policy:', '        mode: none', '        allowed_hosts: [api.example.com]'),
      ['sec.yaml:6:24: security.task_policies.api.network_policy.allowed_hosts: an allow list needs network.mode "restricted" (mode is "none") (policy network.allowedHosts)']],
    ['a limit below the policy floor', y('security:', '  task_policies:', '    x:', '      resource_limits: {max_memory_mb: 8, max_disk_read_bps: 1000}'),
      ['sec.yaml:4:40: security.task_policies.x.resource_limits.max_memory_mb: must be at least 16MB (policy resources.memory)',
        'sec.yaml:4:62: security.task_policies.x.resource_limits.max_disk_read_bps: must be at least 1MB per second (slower I/O makes unkillable D-state sleeps) (policy resources.diskReadBps)',
        // The default /tmp (50MB) no longer fits in 8MB: named at the task policy that shrank memory.
        'sec.yaml:4:7: security.task_policies.x: must be smaller than resources.memory: /tmp is a tmpfs whose pages count as memory (policy resources.tmpSize)']],
    ['what pawl cannot honour', y('security:', '  task_policies:', '    x:', '      security_policy: {no_new_privileges: false, capabilities: {add: [CAP_SYS_ADMIN]}}', '      network_policy: {mode: {Restricted: {allow_inbound: true}}}'),
      ['sec.yaml:5:30: security.task_policies.x.network_policy.mode: expected one of none, restricted, full (or {restricted: {allow_outbound, allow_inbound}})',
        'sec.yaml:4:71: security.task_policies.x.security_policy.capabilities.add: expected an empty list: pawl grants a sandbox no capabilities',
        'sec.yaml:4:44: security.task_policies.x.security_policy.no_new_privileges: expected true: pawl always sets no_new_privs']],
    ['full network for an untrusted task without the operator forcing it', y('security:', '  task_policies:', '    x: {trust_level: untrusted, network_policy: {mode: full}}'),
      ['sec.yaml:3:56: security.task_policies.x.network_policy.mode: the host\'s network ("full") is refused at trust level untrusted unless the operator forces it (network.forceFull, --force-full-network) (policy network.mode)']],
    ['a task named __proto__ (which a plain record would drop)', y('security:', '  task_policies:', '    __proto__: {trust_level: system}'),
      ['sec.yaml:3:5: security.task_policies.__proto__: expected a task name; __proto__ cannot name one']],
    // node's timers fire at once past 2^31-1 ms: every run was a Timeout at its start, gc spun.
    ['durations no timer can wait for', y('security:', '  default_limits: {max_execution_time: 600h}', '  runtime_config: {cleanup_interval: 2592000}'),
      ['sec.yaml:2:40: security.default_limits.max_execution_time: "600h": at most 2147483647 ms (~24 days), the longest a timer can wait',
        'sec.yaml:3:38: security.runtime_config.cleanup_interval: 2592000: at most 2147483647 ms (~24 days), the longest a timer can wait']],
    ['no time at all', y('security:', '  default_limits: {cpu_timeout: 0}'),
      ['sec.yaml:2:33: security.default_limits.cpu_timeout: must be at least 1ms (policy resources.cpuTime)']],
    ['YAML that does not parse', 'security: [\n', ['sec.yaml:2:1: (yaml): not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]']],
    ['no security section', y('limits: {}'), ['sec.yaml:1:1: limits: unknown key: expected one of security', 'sec.yaml:1:1: security: required: Invalid input: expected object, received undefined']],
  ])('%s', (_what, text, messages) => {
    expect(refused(text).sort()).toEqual([...messages].sort());
  });

  it('durations in seconds or human form, sizes human, rates with /s: all the same values', () => {
    const c = parseSecurityConfig(y('security:', '  task_policies:', '    a:', '      resource_limits: {max_memory_mb: "512MB", max_execution_time: "5m", cpu_timeout: 30, max_disk_read_bps: "20MB/s"}',
      '      network_policy: {mode: restricted, bandwidth_limits: {max_download_bps: "2MB/s", max_connections: 3}}'), 'sec.yaml');
    const p = effectivePolicy(c, { taskName: 'a' }).policy;
    expect(p.resources).toMatchObject({ memory: 512 * MiB, wallTime: 300_000, cpuTime: 30_000, diskReadBps: 20 * MiB });
    expect(p.network).toMatchObject({ bandwidth: { down: 2 * MiB }, maxConnections: 3 });
  });
});

describe('runtime_config', () => {
  it('execution modes: legacy for all, secure for none, hybrid by the listed trust levels', () => {
    const modeOf = (rc: string, task: string) => effectivePolicy(parseSecurityConfig(y('security:', '  task_policies: {sys: {trust_level: system}, web: {trust_level: untrusted}}', `  runtime_config: ${rc}`), 'sec.yaml'), { taskName: task }).mode;
    expect(['sys', 'web'].map((t) => modeOf('{execution_mode: Legacy}', t))).toEqual(['legacy', 'legacy']);
    expect(['sys', 'web'].map((t) => modeOf('{}', t))).toEqual(['sandboxed', 'sandboxed']);
    expect(['sys', 'web', 'unlisted'].map((t) => modeOf('{execution_mode: hybrid, legacy_trust_levels: [System]}', t))).toEqual(['legacy', 'sandboxed', 'sandboxed']);
    expect(['sys', 'web'].map((t) => modeOf('{execution_mode: hybrid}', t))).toEqual(['sandboxed', 'sandboxed']);
  });

  it('pool sizes, cleanup interval and the runtime reach the parts that use them', () => {
    const c = parseSecurityConfig(y('security:', '  runtime_config:', '    container_runtime: crun', '    cleanup_interval: 5m', '    max_concurrent_containers: 10', '    pool: {size: 3, idle_timeout: 30s, max_queue: 100}', '    audit_log: /var/log/pawl/audit.log'), 'sec.yaml');
    expect(runtimeSettings(c)).toEqual({ pool: { maxConcurrent: 10, size: 3, idleMs: 30_000, maxQueue: 100 }, cleanupIntervalMs: 300_000, auditLog: '/var/log/pawl/audit.log' });
    expect(effectivePolicy(c, { taskName: 'any' })).toMatchObject({ policy: { runtime: 'crun' }, sources: { runtime: 'security.runtime_config.container_runtime' } });
  });
});

describe("a task's own limits under the operator's file", () => {
  it('only tighten: the lower of the metadata ask and the task policy, whatever the trust preset says', async () => {
    const config = await loadSecurityConfig(PLAN_SAMPLE);
    // task_policies know a task by its dir's name.
    const dir = join(mkdtempSync(join(tmpdir(), 'pawl-ops-')), 'data-processing');
    mkdirSync(dir);
    const task = (meta: object) => {
      writeFileSync(join(dir, 'metadata.json'), JSON.stringify({ name: 'data-processing', ...meta }));
      writeFileSync(join(dir, 'main.js'), 'function main() { return {}; }');
      return planTaskRun(dir, { config });
    };
    // Asks for 1GB and 30 s: the operator's 256MB (above the limited preset's 128MB) and the task's 30 s.
    expect((await task({ memory_limit: '1GB', timeout: 30 })).policy.resources).toMatchObject({ memory: 256 * MiB, wallTime: 30_000 });
    expect((await task({ memory_limit: '64MB' })).policy.resources).toMatchObject({ memory: 64 * MiB, wallTime: 600_000 });
    // Run flags are the operator's per-run word: they win.
    expect((await planTaskRun(dir, { config, policy: { resources: { memory: '300MB' } } })).policy.resources.memory).toBe(300 * MiB);
  });
});

describe('pawl config (CLI)', () => {
  const cli = (...args: string[]) => execa('node', [CLI, 'config', ...args], { reject: false });

  it('check: exit 0 and a summary for the plan sample; exit 2 and the messages for a bad file', async () => {
    const ok = await cli('check', PLAN_SAMPLE);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toContain('data-processing: trust limited, network restricted, memory 256MB, sandboxed');
    expect(ok.stdout).toContain('user-content: trust untrusted, network none, memory 64MB, sandboxed');
    const dir = mkdtempSync(join(tmpdir(), 'pawl-ops-'));
    writeFileSync(join(dir, 'bad.yaml'), y('security:', '  task_policies:', '    user-content:', '      network_policy: {mode: Nonee}'));
    const bad = await cli('check', join(dir, 'bad.yaml'));
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toBe(`${join(dir, 'bad.yaml')}:4:30: security.task_policies.user-content.network_policy.mode: expected one of none, restricted, full (or {restricted: {allow_outbound, allow_inbound}})`);
  });

  it('show: each effective value and where it came from', async () => {
    const r = await cli('show', PLAN_SAMPLE, '--task', 'data-processing', '--json');
    expect(r.exitCode).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.sources).toMatchObject({
      trustLevel: 'security.task_policies.data-processing.trust_level',
      'resources.memory': 'security.task_policies.data-processing.resource_limits.max_memory_mb',
      'resources.processes': 'security.default_limits.max_processes',
      'resources.cpuTime': 'default',
      'network.mode': 'security.task_policies.data-processing.network_policy.mode',
      'network.bandwidth.down': 'default',
    });
    const u = await cli('show', PLAN_SAMPLE, '--task', 'user-content');
    expect(u.stdout).toMatch(/^resources\.memory = 64MB +<- trust preset untrusted$/m);
    expect(u.stdout).toMatch(/^network\.mode = "none" +<- security\.task_policies\.user-content\.network_policy\.mode$/m);
    expect(u.stdout).toMatch(/^resources\.diskReadBps = 10MB\/s +<- security\.default_limits\.max_disk_read_bps$/m);
  });
});
