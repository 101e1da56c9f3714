// Host-side settings: where pawl keeps its state and how it maps sandboxes onto host ids.
// Not part of a policy (a task cannot choose them); the environment may override them.
import { fileURLToPath } from 'node:url';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { CgroupParent, ownDelegatedParent } from './cgroup-parent.js';
import { PawlError } from '../errors.js';
import { formatZodError } from './resolve.js';
import { DEFAULT_STATE_DIR } from './state-dir.js';

export const HostConfig = z.strictObject({
  /** Rootfs cache, compiled filters. */
  stateDir: z.string().refine(isAbsolute, 'must be an absolute path (a relative one names another dir from every working dir: gc would miss its runs)').default(DEFAULT_STATE_DIR),
  /** Per-run scratch dirs (any storage: README "Storage" says how each kind is limited). */
  runDir: z.string().refine(isAbsolute, 'must be an absolute path').default(join(DEFAULT_STATE_DIR, 'runs')),
  /**
   * pawl's own cgroup subtree, relative to the cgroup mount; per-run groups are created only
   * below it. hostConfig() defaults it to "pawl", or without root on a pure v2 host to a "pawl"
   * group beside the supervisor's own cgroup (inside the subtree delegated to it).
   */
  cgroupParent: CgroupParent.default('pawl'),
  /**
   * When pawl runs as root, each sandbox runs as a host uid/gid drawn from this range, so that
   * the sandbox's uid 1000 maps to an unprivileged host id that owns nothing on the host.
   */
  hostIdBase: z.number().int().min(1000).default(600_000),
  hostIdCount: z.number().int().min(1).default(65_536),
  /** How often cgroup stats are polled for peaks, CPU time and disk, in a run's first moments. */
  pollIntervalMs: z.number().int().min(10).max(10_000).default(100),
  /**
   * The longest gap between two polls of an older run (a quarter of its age, never longer than
   * its remaining CPU time takes on all CPUs: supervisor/watch.ts). Below pollIntervalMs it is
   * pollIntervalMs.
   */
  pollMaxIntervalMs: z.number().int().min(10).max(60_000).default(500),
}).refine((h) => h.hostIdBase + h.hostIdCount <= 2 ** 31, {
  // (uid_t)-1 (4294967295) means "unchanged" to setresuid and the id maps: a range reaching it ran
  // sandboxes as host root. Below 2^31 no id is negative as a signed int either.
  path: ['hostIdCount'],
  message: 'the host id range (hostIdBase + hostIdCount) must end below 2147483648',
});
export type HostConfig = z.infer<typeof HostConfig>;

export function hostConfig(overrides: Partial<z.input<typeof HostConfig>> = {}): HostConfig {
  const env = process.env;
  const parsed = HostConfig.safeParse({
    ...(env.PAWL_STATE_DIR ? { stateDir: env.PAWL_STATE_DIR, runDir: join(env.PAWL_STATE_DIR, 'runs') } : {}),
    ...(env.PAWL_CGROUP_PARENT ? { cgroupParent: env.PAWL_CGROUP_PARENT } : defaultCgroupParent()),
    ...hostIdsFromEnv(env.PAWL_HOST_IDS),
    ...overrides,
  });
  if (!parsed.success) throw new PawlError('InvalidPolicy', formatZodError(parsed.error, 'host configuration (PAWL_* environment)'));
  return parsed.data;
}

/** PAWL_HOST_IDS=BASE:COUNT: the range sandboxes drop to (checked against the account database at start-up). */
function hostIdsFromEnv(v: string | undefined): { hostIdBase?: number; hostIdCount?: number } {
  if (!v) return {};
  const m = /^(\d+):(\d+)$/.exec(v);
  if (!m) throw new PawlError('InvalidPolicy', `PAWL_HOST_IDS must be BASE:COUNT (e.g. 600000:65536), got "${v}"`);
  return { hostIdBase: Number(m[1]), hostIdCount: Number(m[2]) };
}

/** Root uses /sys/fs/cgroup/pawl; anyone else can only use a subtree delegated to it (config/cgroup-parent.ts). */
function defaultCgroupParent(): { cgroupParent?: string } {
  if (process.geteuid?.() === 0) return {};
  const parent = ownDelegatedParent();
  return parent ? { cgroupParent: parent } : {};
}

/** The package root (holds rootfs/, native-profiles/, dist/), from src/ or dist/ alike. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
