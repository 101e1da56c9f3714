// The policy's filesystem fields beyond the fixed layout (the Ratchet plan's allowed_mounts,
// blocked_paths, file_permissions): their schemas and defaults, and the checks that need the
// whole policy (refineFilesystem, called from config/policy.ts). Operator-only: a task's own
// policy may not set filesystem (config/resolve.ts).
import { posix } from 'node:path';
import { z } from 'zod';
import { Size } from './units.js';

const MiB = 1024 ** 2;

// Normalised form only ("//usr", "/./etc" or "/tmp/." would slip past the prefix checks below).
export const FsPath = z.string().refine((p) => p.startsWith('/') && (p === '/' || posix.normalize(p) === p) && !p.endsWith('/'), {
  message: 'must be a normalised absolute path (no "..", ".", "//" or trailing "/")',
});

/** A host path bound in, ro by default. Resolved on the host without following any symlink (fs/resolve.ts). */
export const BindMountSpec = z.strictObject({ type: z.literal('bind'), source: FsPath, target: FsPath, readonly: z.boolean().default(true) });
/**
 * A named volume: pawl's own directory per name that persists across runs, a filesystem of its
 * own whose size is the hard cap (fs/volumes.ts).
 */
export const VolumeMountSpec = z.strictObject({
  type: z.literal('volume'),
  source: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'a volume name: lower-case letters, digits, "_", "." and "-", at most 63'),
  target: FsPath,
  readonly: z.boolean().default(false),
  size: Size.pipe(z.number().min(4 * MiB, 'must be at least 4MB')).default(64 * MiB),
});
/** A tmpfs of its own; its pages count against resources.memory like /tmp's. */
export const TmpfsMountSpec = z.strictObject({
  type: z.literal('tmpfs'),
  target: FsPath,
  size: Size.pipe(z.number().min(64 * 1024, 'must be at least 64KB (a tmpfs of size 0 is unlimited)')),
});
export const MountSpec = z.discriminatedUnion('type', [BindMountSpec, VolumeMountSpec, TmpfsMountSpec]);
export type MountSpec = z.infer<typeof MountSpec>;

/** The Ratchet plan's default: every one is either absent from pawl's layout or narrowed (fs/blocked.ts). */
export const DEFAULT_BLOCKED_PATHS = ['/proc', '/sys', '/dev', '/etc/passwd', '/etc/shadow', '/root', '/home'];

/**
 * Landlock's allow lists, inside the sandbox. Absent: reads of every mount, writes to every
 * writable one, no extra execute. The runtime's own paths (/usr, /etc, /opt/pawl, /proc, /dev)
 * are always allowed as node needs them (lsm/landlock/rules.ts).
 */
export const FilePermissions = z.strictObject({
  allowRead: z.array(FsPath).optional(),
  allowWrite: z.array(FsPath).optional(),
  allowExecute: z.array(FsPath).optional(),
});
export type FilePermissions = z.infer<typeof FilePermissions>;

export const FilesystemFields = {
  mounts: z.array(MountSpec).default([]),
  blockedPaths: z.array(FsPath).default(DEFAULT_BLOCKED_PATHS),
  filePermissions: FilePermissions.prefault({}),
  /** required: refuse to run where the kernel has no Landlock; optional: run, reported in `degraded`; off: no Landlock. */
  landlock: z.enum(['required', 'optional', 'off']).default('optional'),
};

/** Paths of the layout a mount may not cover or reach into (pawl's rootfs, /proc, /dev, its own sockets). */
export const RESERVED_TARGETS = ['/usr', '/etc', '/lib', '/lib64', '/opt/pawl', '/proc', '/dev', '/sys', '/run/pawl'];
/** Trees the task writes: a mount point inside one would be made in the task's own files. */
export const TASK_TREES = ['/tmp', '/workspace'];

export const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);

interface FsCheckInput {
  filesystem: { mounts: MountSpec[]; blockedPaths: string[]; binds: { dst: string }[] };
  resources: { memory: number; tmpSize: number };
}

export function refineFilesystem(p: FsCheckInput, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path: ['filesystem', ...path], message });
  const targets = [...p.filesystem.binds.map((b) => b.dst), ...p.filesystem.mounts.map((m) => m.target)];
  p.filesystem.mounts.forEach((m, i) => {
    const reserved = [...RESERVED_TARGETS, ...TASK_TREES].find((r) => under(m.target, r) || m.target === '/');
    if (m.target === '/' || reserved) issue(['mounts', i, 'target'], `cannot mount over ${m.target}: it is part of the sandbox pawl builds (${reserved ?? '/'})`);
    const other = targets.find((t, j) => j !== p.filesystem.binds.length + i && (under(t, m.target) || under(m.target, t)));
    if (other) issue(['mounts', i, 'target'], `${m.target} overlaps the mount at ${other} (a mount point would be made inside another mount's files)`);
    const blocked = p.filesystem.blockedPaths.find((b) => under(m.target, b) || under(b, m.target));
    if (blocked) issue(['mounts', i, 'target'], `${m.target} overlaps the blocked path ${blocked}`);
  });
  const tmpfs = p.filesystem.mounts.reduce((n, m) => n + (m.type === 'tmpfs' ? m.size : 0), p.resources.tmpSize);
  // /tmp alone over the limit is the tmpSize rule's (config/policy.ts): one message per problem.
  if (tmpfs > p.resources.tmpSize && tmpfs >= p.resources.memory) issue(['mounts'], `the tmpfs mounts and /tmp (${tmpfs} bytes) must be smaller than resources.memory: their pages count as memory`);
  p.filesystem.blockedPaths.forEach((b, i) => {
    const tree = TASK_TREES.find((t) => under(b, t) || under(t, b));
    if (b === '/' || tree) issue(['blockedPaths', i], `cannot block ${b}: ${b === '/' ? 'it is the whole sandbox' : `the task writes ${tree} and could make the path again`}`);
  });
}
