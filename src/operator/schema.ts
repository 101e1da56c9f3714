// The operator's security.yaml, in the Ratchet isolation plan's shape (security.default_limits,
// security.task_policies, security.runtime_config). Field names are the plan's; every value is
// checked by pawl's own policy sub-schemas (config/policy.ts, network/schema.ts), so the file and
// the CLI flags accept exactly the same things and no default is written twice: a field left out
// is simply not set, and the policy's own default applies.
import { z } from 'zod';
import { ResourceLimits, SecurityPolicy, TrustLevel } from '../config/policy.js';
import { parseDuration, parseSize } from '../config/units.js';
import { NetworkPolicy } from '../network/schema.js';
import { PoolConfig } from '../pool/config.js';

const MiB = 1024 ** 2;
const TRUST_LEVELS = TrustLevel.options as unknown as readonly ['untrusted', 'limited', 'trusted', 'system'];

/** A choice written in any case ("Restricted", "restricted"): the plan writes Rust enum names. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .string({ error: `expected one of ${values.join(', ')}` })
    .transform((s) => s.toLowerCase())
    .pipe(z.enum(values, { error: (iss) => `expected one of ${values.join(', ')}, got ${JSON.stringify(iss.input)}` }));
}

function human<T>(parse: (v: string | number) => T, expected: string) {
  return (v: string | number, ctx: z.RefinementCtx): T | typeof z.NEVER => {
    try {
      return parse(v);
    } catch (e) {
      // A value of the right form out of range says why (the form's own message would not).
      const why = /: (at most .*)$/.exec((e as Error).message)?.[1];
      ctx.addIssue({ code: 'custom', message: why ? `${JSON.stringify(v)}: ${why}` : `expected ${expected}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
  };
}

const bareNumber = (v: string | number) => typeof v === 'number' || /^\s*\d+(\.\d+)?\s*$/.test(v);

/** Seconds (the plan's `max_execution_time: 300`) or a human duration ("30s", "5m"). Output: ms. */
export const Seconds = z
  .union([z.number().nonnegative(), z.string()], { error: 'expected seconds or a duration such as "30s" or "5m"' })
  .transform(human((v) => parseDuration(bareNumber(v) ? Math.round(Number(v) * 1000) : v), 'seconds or a duration such as "30s" or "5m"'));

/** The plan's `*_mb` fields: a number is megabytes, a string a human size ("512MB"). Output: bytes. */
export const MegaBytes = z
  .union([z.number().nonnegative(), z.string()], { error: 'expected megabytes or a size such as "512MB"' })
  .transform(human((v) => (bareNumber(v) ? Math.round(Number(v) * MiB) : parseSize(v)), 'megabytes or a size such as "512MB"'));

/** Bytes per second: a number, or a human size with an optional "/s" ("10MB/s"). Output: bytes. */
export const BytesPerSecond = z
  .union([z.number().nonnegative(), z.string()], { error: 'expected bytes per second or a rate such as "10MB/s"' })
  .transform(human((v) => parseSize(typeof v === 'string' ? v.replace(/\/s\s*$/i, '') : v), 'bytes per second or a rate such as "10MB/s"'));

const limit = ResourceLimits.shape;

/** The plan's ResourceLimits. Ranges and floors are the policy's own, checked when it is resolved. */
export const ResourceLimitsConfig = z.strictObject({
  max_memory_mb: MegaBytes.optional(),
  /** pawl always disables swap; accepted for the plan's files, and reported as not applied. */
  memory_swap_limit_mb: MegaBytes.optional(),
  max_cpu_percent: limit.cpuPercent.unwrap().optional(),
  /** With cpu_period_us (default 100000): another way to write max_cpu_percent. */
  cpu_quota_us: z.number().int().positive().optional(),
  cpu_period_us: limit.cpuPeriodUs.unwrap().optional(),
  max_processes: limit.processes.unwrap().optional(),
  max_file_descriptors: limit.fileDescriptors.unwrap().optional(),
  max_execution_time: Seconds.optional(),
  cpu_timeout: Seconds.optional(),
  max_disk_read_bps: BytesPerSecond.optional(),
  max_disk_write_bps: BytesPerSecond.optional(),
  max_disk_space_mb: MegaBytes.optional(),
}).superRefine((r, ctx) => {
  if (r.max_cpu_percent !== undefined && r.cpu_quota_us !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['cpu_quota_us'], message: 'expected max_cpu_percent or cpu_quota_us, not both (they set the same limit)' });
  }
});

const net = NetworkPolicy.shape;
const bandwidth = net.bandwidth.unwrap().shape;

/** `mode: Restricted` or the plan's struct form `mode: {Restricted: {allow_outbound, allow_inbound}}`. */
const NetworkMode = z.union(
  [
    oneOf(['none', 'restricted', 'full'] as const),
    z.preprocess(
      (v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k.toLowerCase(), x])) : v),
      z.strictObject({
        restricted: z.strictObject({
          allow_outbound: z.boolean().default(true),
          allow_inbound: z.literal(false, { error: 'expected false: nothing outside can connect into a pawl sandbox' }).default(false),
        }),
      }),
    ).transform((m) => (m.restricted.allow_outbound ? 'restricted' : 'none') as 'restricted' | 'none'),
  ],
  { error: 'expected one of none, restricted, full (or {restricted: {allow_outbound, allow_inbound}})' },
);

/** The plan's NetworkPolicy; hosts, ports and DNS servers are checked as --allow-host etc. are. */
export const NetworkPolicyConfig = z.strictObject({
  mode: NetworkMode.optional(),
  allowed_hosts: net.allowedHosts.unwrap().optional(),
  /** Added to the default blocked names (metadata and loopback), as --block-host does. */
  blocked_hosts: net.blockedHosts.unwrap().optional(),
  allowed_ports: net.allowedPorts.unwrap().optional(),
  dns_servers: net.dnsServers.unwrap().optional(),
  bandwidth_limits: z
    .strictObject({
      max_download_bps: z.preprocess((v) => (typeof v === 'string' ? v.replace(/\/s\s*$/i, '') : v), bandwidth.down.unwrap()).optional(),
      max_upload_bps: z.preprocess((v) => (typeof v === 'string' ? v.replace(/\/s\s*$/i, '') : v), bandwidth.up.unwrap()).optional(),
      max_connections: net.maxConnections.unwrap().optional(),
    })
    .optional(),
  /** pawl's own: what a connection over max_connections gets (wait | refuse). */
  over_limit: net.overLimit.unwrap().optional(),
  /** pawl's own: the operator's consent to mode full at trust level untrusted. */
  force_full: z.boolean().optional(),
});

const AlwaysTrue = (why: string) => z.literal(true, { error: `expected true: ${why}` });

/** The plan's FilesystemPolicy: the parts pawl enforces today. */
export const FilesystemPolicyConfig = z.strictObject({
  root_readonly: AlwaysTrue("pawl's root filesystem is always read-only").optional(),
  tmp_size_mb: MegaBytes.optional(),
  allowed_mounts: z
    .array(
      z.strictObject({
        source: z.string(),
        target: z.string(),
        readonly: z.boolean().default(true),
        mount_type: oneOf(['bind'] as const).default('bind'),
      }),
    )
    .optional(),
});

/** The plan's SecurityPolicy: what pawl always does is accepted only as what it does. */
export const SecurityPolicyConfig = z.strictObject({
  seccomp_profile: SecurityPolicy.shape.seccomp.unwrap().shape.profile.unwrap().optional(),
  apparmor_profile: z.string().min(1).optional(),
  capabilities: z
    .strictObject({
      drop: z.array(z.string()).optional(),
      add: z.array(z.string()).max(0, 'expected an empty list: pawl grants a sandbox no capabilities').optional(),
    })
    .optional(),
  no_new_privileges: AlwaysTrue('pawl always sets no_new_privs').optional(),
  readonly_rootfs: AlwaysTrue("pawl's root filesystem is always read-only").optional(),
  user_namespace: AlwaysTrue('every pawl sandbox has its own user namespace').optional(),
  uid: SecurityPolicy.shape.uid.unwrap().optional(),
  gid: SecurityPolicy.shape.gid.unwrap().optional(),
});

export const TaskSecurityPolicyConfig = z.strictObject({
  trust_level: oneOf(TRUST_LEVELS).optional(),
  resource_limits: ResourceLimitsConfig.optional(),
  network_policy: NetworkPolicyConfig.optional(),
  filesystem_policy: FilesystemPolicyConfig.optional(),
  security_policy: SecurityPolicyConfig.optional(),
});

/** The plan's migration strategy (ExecutionMode). */
const EXECUTION_MODES = ['legacy', 'secure', 'hybrid'] as const;
export const ExecutionMode = z.enum(EXECUTION_MODES);
export type ExecutionMode = z.infer<typeof ExecutionMode>;

const pool = PoolConfig.shape;

export const RuntimeConfig = z.strictObject({
  /**
   * bwrap, runc or crun. The plan's docker and podman are accepted so its files load: pawl runs
   * without a container daemon, so they mean pawl's default runtime (reported by `config check`).
   */
  container_runtime: oneOf(['bwrap', 'runc', 'crun', 'docker', 'podman'] as const).optional(),
  /** The plan's image registry: pawl builds its own rootfs instead (reported as not used). */
  image_registry: z.string().optional(),
  /** The plan's rootfs directory: pawl builds its own in its state dir instead (reported as not used). */
  rootfs: z.strictObject({ source: z.string().startsWith('/', 'expected an absolute path') }).optional(),
  cleanup_interval: Seconds.optional(),
  max_concurrent_containers: pool.maxConcurrent.unwrap().optional(),
  pool: z
    .strictObject({
      size: pool.size.unwrap().optional(),
      idle_timeout: Seconds.optional(),
      max_queue: pool.maxQueue.unwrap().optional(),
    })
    .optional(),
  /** legacy: in-process, unsafe; secure: every run sandboxed; hybrid: by trust level (below). */
  execution_mode: oneOf(EXECUTION_MODES).default('secure'),
  /** Hybrid mode: the trust levels whose tasks still run in-process (legacy). */
  legacy_trust_levels: z.array(oneOf(TRUST_LEVELS)).default([]),
  /** A file that gets one JSON line per run and per security violation (src/audit). */
  audit_log: z.string().startsWith('/', 'expected an absolute path').optional(),
});

export const SecurityConfigFile = z.strictObject({
  security: z.strictObject({
    default_limits: ResourceLimitsConfig.optional(),
    task_policies: z.record(z.string().min(1), TaskSecurityPolicyConfig).default({}),
    runtime_config: RuntimeConfig.prefault({}),
  }),
});
export type SecurityConfigFile = z.infer<typeof SecurityConfigFile>;
export type TaskSecurityPolicyConfig = z.infer<typeof TaskSecurityPolicyConfig>;
export type ResourceLimitsConfig = z.infer<typeof ResourceLimitsConfig>;
