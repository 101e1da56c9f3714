// The policy model: the single source of defaults and types for every isolation layer.
// Defaults are the Ratchet isolation plan's "limited" numbers; trust levels (trust.ts) and
// task/run overrides are merged on top as raw input and parsed once here.
import { posix } from 'node:path';
import { z } from 'zod';
import { Duration, Size } from './units.js';
import { SeccompPolicy } from './seccomp.js';
import { NetworkPolicy } from '../network/schema.js';
import { AppArmorMode, SelinuxPolicy } from './lsm.js';
import { CONTROL_CHAR, FilesystemFields, refineFilesystem } from './filesystem.js';

const MiB = 1024 ** 2;

/** The CFS bandwidth controller rejects quotas under 1 ms (kernel/sched/core.c min_cfs_quota_period). */
export const MIN_CPU_QUOTA_US = 1000;
/** The CPU quota the kernel is given: cpuPercent of one core over the period, in whole microseconds. */
export const cpuQuotaUs = (r: { cpuPercent: number; cpuPeriodUs: number }) => Math.round((r.cpuPercent / 100) * r.cpuPeriodUs);

/** Levels where switching the seccomp filter off is refused: the code they run is not trusted. */
export const FILTER_REQUIRED: readonly string[] = ['untrusted', 'limited'];

export const TrustLevel = z.enum(['untrusted', 'limited', 'trusted', 'system']);
export type TrustLevel = z.infer<typeof TrustLevel>;

export const ResourceLimits = z.strictObject({
  /** Memory limit (cgroup memory.max / limit_in_bytes); swap is disabled. */
  memory: Size.default(128 * MiB),
  /** CPU share in percent of one core (cpu.max quota/period). 50 = 50000/100000 us. */
  cpuPercent: z.number().positive().max(6400).default(50),
  cpuPeriodUs: z.number().int().min(1000).max(1_000_000).default(100_000),
  /**
   * Processes as a user counts them. The pids controller and RLIMIT_NPROC count threads, and
   * node alone runs ~7 of them, so the enforced task count is processes * threadsPerProcess
   * (see cgroup/limits.ts): a non-forking task runs under a limit of 1, a fork bomb still stops.
   */
  processes: z.number().int().min(1).max(4096).default(10),
  threadsPerProcess: z.number().int().min(1).max(256).default(12),
  fileDescriptors: z.number().int().min(16).max(1_048_576).default(64),
  // 0 would end every run at its start.
  wallTime: Duration.pipe(z.number().min(1, 'must be at least 1ms')).default(300_000),
  cpuTime: Duration.pipe(z.number().min(1, 'must be at least 1ms')).default(30_000),
  // A floor, not just "not zero" (the kernel reads a 0 rate as unlimited on v1 blkio): under a
  // tiny rate an O_DIRECT write or fsync sleeps uninterruptibly (D state) for as long as the
  // throttle makes it, and a process in D state cannot be killed, so a task that lowered its own
  // rate (security.yaml) to 4 KB/s could outlive its wall time and hold its cgroup. At 1 MB/s one
  // throttled request of the kernel's largest size (a few MB) still ends within seconds.
  diskReadBps: Size.pipe(z.number().min(MiB, 'must be at least 1MB per second (slower I/O makes unkillable D-state sleeps)')).default(10 * MiB),
  diskWriteBps: Size.pipe(z.number().min(MiB, 'must be at least 1MB per second (slower I/O makes unkillable D-state sleeps)')).default(5 * MiB),
  /** Bytes /workspace holds: the size of its own filesystem (supervisor/workspace-fs.ts), plus RLIMIT_FSIZE. */
  diskSpace: Size.pipe(z.number().min(1 * MiB, 'must be at least 1MB')).default(100 * MiB),
  /** Files and dirs /workspace holds (its filesystem's inode count). */
  diskInodes: z.number().int().min(64).max(16_777_216).default(8192),
  /** Size of the /tmp tmpfs (its pages count against the memory limit too). */
  tmpSize: Size.pipe(z.number().min(64 * 1024, 'must be at least 64KB (a tmpfs of size 0 is unlimited)')).default(50 * MiB),
  stdoutMax: Size.default(1 * MiB),
  stderrMax: Size.default(1 * MiB),
}).superRefine((r, ctx) => {
  const quota = cpuQuotaUs(r);
  if (quota < MIN_CPU_QUOTA_US) {
    ctx.addIssue({ code: 'custom', path: ['cpuPercent'], message: `cpuPercent ${r.cpuPercent} of a ${r.cpuPeriodUs} us period is a ${quota} us quota; the kernel needs at least ${MIN_CPU_QUOTA_US} us (raise cpuPercent or cpuPeriodUs)` });
  }
});
export type ResourceLimits = z.infer<typeof ResourceLimits>;

// Normalised form only ("//usr", "/./etc" or "/tmp/." would slip past the reserved-path check).
// No control characters or backslashes: the AppArmor profile names every bind (lsm/apparmor/quote.ts).
const AbsPath = z
  .string()
  .refine((p) => p.startsWith('/') && (p === '/' || posix.normalize(p) === p.replace(/\/$/, '')) && !p.split('/').includes('..'), {
    message: 'must be a normalised absolute path (no "..", ".", or "//")',
  })
  .refine((p) => !/[\x00-\x1f\x7f\\]/.test(p), { message: 'must not hold a control character or a backslash' });

export const BindMount = z.strictObject({
  src: AbsPath,
  dst: AbsPath,
  readOnly: z.boolean().default(true),
});
export type BindMount = z.infer<typeof BindMount>;

export const FilesystemPolicy = z.strictObject({
  /** Extra host paths brought into the sandbox. The root itself is always pawl's read-only rootfs. */
  binds: z.array(BindMount).default([]),
  // Mounts, volumes, tmpfs, blocked paths and Landlock (config/filesystem.ts).
  ...FilesystemFields,
});
export type FilesystemPolicy = z.infer<typeof FilesystemPolicy>;

// The network policy's schema lives with the code that enforces it (src/network).
export { NetworkPolicy } from '../network/schema.js';

export const SecurityPolicy = z.strictObject({
  /** The uid/gid the program sees inside the sandbox. */
  uid: z.number().int().min(1).max(65_534).default(1000),
  gid: z.number().int().min(1).max(65_534).default(1000),
  seccomp: SeccompPolicy.prefault({}),
  /** An AppArmor profile for the sandbox (runc/crun; refused where it cannot be applied). */
  apparmorProfile: z.string().min(1).refine((p) => !CONTROL_CHAR.test(p), 'a loaded profile\'s name, without control characters').optional(),
  /** The profile pawl generates from the policy (src/lsm): off | optional | required (config/lsm.ts says why off). */
  apparmor: AppArmorMode.default('off'),
  /** SELinux labels for the sandbox; absent: none. */
  selinux: SelinuxPolicy.optional(),
});
export type SecurityPolicy = z.infer<typeof SecurityPolicy>;

/** Protections the operator allows to be skipped on a host that cannot apply them. */
export const Degradation = z.enum(['swap-limit']);
export type Degradation = z.infer<typeof Degradation>;

/**
 * Storage gaps the default policy runs with (each reported in the result's `degraded`), and the
 * operator's switches that make them fatal.
 */
export const StoragePolicy = z.strictObject({
  /** Refuse a run when a path it uses is on a filesystem with no single block device to throttle (ZFS, NFS, multi-device btrfs, FUSE). */
  requireIoDevice: z.boolean().default(false),
  /** Refuse a run when /workspace cannot get a filesystem of its own with a hard size (no root, no loop devices). */
  requireWorkspaceFs: z.boolean().default(false),
});
export type StoragePolicy = z.infer<typeof StoragePolicy>;

/** The sandbox runtimes pawl drives (runtime/). */
export const RuntimeName = z.enum(['bwrap', 'runc', 'crun']);
export type RuntimeName = z.infer<typeof RuntimeName>;

export const Policy = z
  .strictObject({
    trustLevel: TrustLevel.default('limited'),
    runtime: RuntimeName.default('bwrap'),
    resources: ResourceLimits.prefault({}),
    filesystem: FilesystemPolicy.prefault({}),
    network: NetworkPolicy.prefault({}),
    security: SecurityPolicy.prefault({}),
    /** Environment of the sandboxed program; it starts from an empty one. */
    env: z.record(z.string(), z.string().refine((v) => !v.includes('\0'), { message: 'must not hold a NUL (it would end the value)' })).default({}),
    allowDegraded: z.array(Degradation).default([]),
    storage: StoragePolicy.prefault({}),
  })
  .superRefine((p, ctx) => {
    if (p.network.mode !== 'restricted' && p.network.allowedHosts.length > 0) {
      ctx.addIssue({ code: 'custom', path: ['network', 'allowedHosts'], message: `an allow list needs network.mode "restricted" (mode is "${p.network.mode}")` });
    }
    if (p.network.mode === 'full' && p.trustLevel === 'untrusted' && !p.network.forceFull) {
      ctx.addIssue({ code: 'custom', path: ['network', 'mode'], message: 'the host\'s network ("full") is refused at trust level untrusted unless the operator forces it (network.forceFull, --force-full-network)' });
    }
    if (p.security.apparmor !== 'off' && p.security.apparmorProfile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['security', 'apparmor'], message: 'give security.apparmorProfile (a profile already loaded) or security.apparmor (pawl\'s generated one), not both' });
    }
    for (const name of Object.keys(p.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) ctx.addIssue({ code: 'custom', path: ['env'], message: `invalid variable name "${name}"` });
    }
    if (p.resources.tmpSize >= p.resources.memory) {
      ctx.addIssue({ code: 'custom', path: ['resources', 'tmpSize'], message: 'must be smaller than resources.memory: /tmp is a tmpfs whose pages count as memory' });
    }
    if (p.security.seccomp.profile === 'none' && FILTER_REQUIRED.includes(p.trustLevel)) {
      ctx.addIssue({ code: 'custom', path: ['security', 'seccomp', 'profile'], message: `"none" is refused at trust level "${p.trustLevel}": use trust level trusted or system to run without a filter` });
    }
    if (p.security.apparmorProfile !== undefined && p.runtime === 'bwrap') {
      ctx.addIssue({ code: 'custom', path: ['security', 'apparmorProfile'], message: 'is applied by runc/crun only; bwrap cannot confine a sandbox with an AppArmor profile (set runtime runc or crun)' });
    }
    if (p.resources.memory < 16 * MiB) {
      ctx.addIssue({ code: 'custom', path: ['resources', 'memory'], message: 'must be at least 16MB' });
    }
    refineFilesystem(p, ctx);
  });
export type Policy = z.infer<typeof Policy>;
/** What a user may write: every field optional, sizes and durations in human form. */
export type PolicyInput = z.input<typeof Policy>;
