// security.yaml sections -> policy layers (PolicyInput), each value remembered with the place in
// the document it came from, so `pawl config show` can say where every value came from and a
// policy error (say, an allow list without mode restricted) can name the line the operator wrote.
import type { PolicyInput } from '../config/policy.js';
import { NetworkPolicy } from '../network/schema.js';
import type { ResourceLimitsConfig, SecurityConfigFile, TaskSecurityPolicyConfig } from './schema.js';

/** A partial policy and, per policy path ("resources.memory"), the document path that set it. */
export interface Layer {
  input: PolicyInput;
  sources: Record<string, string>;
}

class LayerBuilder {
  readonly input: Record<string, unknown> = {};
  readonly sources: Record<string, string> = {};
  set(policyPath: string, value: unknown, from: string): void {
    if (value === undefined) return;
    const keys = policyPath.split('.');
    let at = this.input;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = value;
    this.sources[policyPath] = from;
  }
  done(): Layer {
    return { input: this.input as PolicyInput, sources: this.sources };
  }
}

const RESOURCE_FIELDS: [keyof ResourceLimitsConfig, string][] = [
  ['max_memory_mb', 'resources.memory'],
  ['max_cpu_percent', 'resources.cpuPercent'],
  ['cpu_period_us', 'resources.cpuPeriodUs'],
  ['max_processes', 'resources.processes'],
  ['max_file_descriptors', 'resources.fileDescriptors'],
  ['max_execution_time', 'resources.wallTime'],
  ['cpu_timeout', 'resources.cpuTime'],
  ['max_disk_read_bps', 'resources.diskReadBps'],
  ['max_disk_write_bps', 'resources.diskWriteBps'],
  ['max_disk_space_mb', 'resources.diskSpace'],
];

function resources(b: LayerBuilder, r: ResourceLimitsConfig | undefined, at: string): void {
  if (!r) return;
  for (const [field, path] of RESOURCE_FIELDS) b.set(path, r[field], `${at}.${field}`);
  // The plan's quota/period pair is the same limit as a percentage of one core.
  if (r.cpu_quota_us !== undefined) b.set('resources.cpuPercent', (r.cpu_quota_us * 100) / (r.cpu_period_us ?? 100_000), `${at}.cpu_quota_us`);
}

/** security.default_limits: the operator's base, laid under the trust level presets. */
export function defaultLimitsLayer(doc: SecurityConfigFile['security']): Layer {
  const b = new LayerBuilder();
  resources(b, doc.default_limits, 'security.default_limits');
  return b.done();
}

/** security.runtime_config's part of a policy: the runtime (docker/podman mean pawl's default). */
export function runtimeLayer(doc: SecurityConfigFile['security']): Layer {
  const b = new LayerBuilder();
  const rt = doc.runtime_config.container_runtime;
  if (rt === 'bwrap' || rt === 'runc' || rt === 'crun') b.set('runtime', rt, 'security.runtime_config.container_runtime');
  return b.done();
}

/** security.task_policies.NAME, everything but trust_level (which picks the preset below it). */
export function taskLayer(name: string, t: TaskSecurityPolicyConfig): Layer {
  const b = new LayerBuilder();
  const at = `security.task_policies.${name}`;
  resources(b, t.resource_limits, `${at}.resource_limits`);

  const n = t.network_policy;
  if (n) {
    const np = `${at}.network_policy`;
    b.set('network.mode', n.mode, `${np}.mode`);
    b.set('network.allowedHosts', n.allowed_hosts, `${np}.allowed_hosts`);
    // Added to the default blocked names, as --block-host adds to them: a task policy cannot
    // unblock the metadata service by leaving it out of its list.
    if (n.blocked_hosts) b.set('network.blockedHosts', [...new Set([...NetworkPolicy.shape.blockedHosts.parse(undefined), ...n.blocked_hosts])], `${np}.blocked_hosts`);
    b.set('network.allowedPorts', n.allowed_ports, `${np}.allowed_ports`);
    b.set('network.dnsServers', n.dns_servers, `${np}.dns_servers`);
    b.set('network.bandwidth.down', n.bandwidth_limits?.max_download_bps, `${np}.bandwidth_limits.max_download_bps`);
    b.set('network.bandwidth.up', n.bandwidth_limits?.max_upload_bps, `${np}.bandwidth_limits.max_upload_bps`);
    b.set('network.maxConnections', n.bandwidth_limits?.max_connections, `${np}.bandwidth_limits.max_connections`);
    b.set('network.overLimit', n.over_limit, `${np}.over_limit`);
    b.set('network.forceFull', n.force_full, `${np}.force_full`);
  }

  const f = t.filesystem_policy;
  if (f) {
    const fp = `${at}.filesystem_policy`;
    b.set('resources.tmpSize', f.tmp_size_mb, `${fp}.tmp_size_mb`);
    b.set('filesystem.binds', f.allowed_mounts?.map((m) => ({ src: m.source, dst: m.target, readOnly: m.readonly })), `${fp}.allowed_mounts`);
  }

  const s = t.security_policy;
  if (s) {
    const sp = `${at}.security_policy`;
    b.set('security.seccomp.profile', s.seccomp_profile, `${sp}.seccomp_profile`);
    b.set('security.apparmorProfile', s.apparmor_profile, `${sp}.apparmor_profile`);
    b.set('security.uid', s.uid, `${sp}.uid`);
    b.set('security.gid', s.gid, `${sp}.gid`);
  }
  return b.done();
}

/** A layer with one source for every path it sets (a trust preset, the run's flags). */
export function wholeLayer(input: PolicyInput | undefined, from: string): Layer {
  const sources: Record<string, string> = {};
  for (const path of leafPaths(input ?? {})) sources[path] = from;
  return { input: input ?? {}, sources };
}

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Dotted paths of a value's leaves: arrays and scalars are leaves, objects are walked. */
export function leafPaths(v: unknown, prefix = ''): string[] {
  if (!isPlain(v)) return prefix ? [prefix] : [];
  const keys = Object.keys(v);
  if (keys.length === 0) return prefix ? [prefix] : [];
  return keys.flatMap((k) => leafPaths(v[k], prefix ? `${prefix}.${k}` : k));
}
