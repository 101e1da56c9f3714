// The policy's filesystem fields beyond the fixed layout (the Ratchet plan's allowed_mounts,
// blocked_paths, file_permissions): their schemas and defaults, and the checks that need the
// whole policy (refineFilesystem, called from config/policy.ts). Operator-only: a task's own
// policy may not set filesystem (config/resolve.ts).
import { posix } from 'node:path';
import { z } from 'zod';
import { Size } from './units.js';

const MiB = 1024 ** 2;

// Normalised form only ("//usr", "/./etc" or "/tmp/." would slip past the prefix checks below).
// No control character: the runtimes are C programs, for which a NUL ends the string ("/etc\0x"
// passed every check below as a path under /etc\0x, and bwrap and crun mounted a tmpfs on /etc).
export const CONTROL_CHAR = /[\x00-\x1f\x7f]/;
export const FsPath = z
  .string()
  .refine((p) => p.startsWith('/') && (p === '/' || posix.normalize(p) === p) && !p.endsWith('/'), {
    message: 'must be a normalised absolute path (no "..", ".", "//" or trailing "/")',
  })
  .refine((p) => !CONTROL_CHAR.test(p), { message: 'must not hold a control character' });

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

/**
 * How the rootfs appears inside a sandbox (rootfs/layout.ts): these dirs of it are bound in
 * read-only, on a / of pawl's own.
 */
export const ROOTFS_MOUNTS = ['/usr', '/etc', '/opt/pawl'] as const;
/** Debian's merged /usr: the dynamic loader is looked up as /lib64/ld-linux-x86-64.so.2. */
export const ROOTFS_SYMLINKS: Record<string, string> = { '/lib': 'usr/lib', '/lib64': 'usr/lib64' };

/** Paths of the layout a mount may not cover or reach into (pawl's rootfs, /proc, /dev, its own sockets). */
export const RESERVED_TARGETS = [...ROOTFS_MOUNTS, ...Object.keys(ROOTFS_SYMLINKS), '/proc', '/dev', '/sys', '/run/pawl'];
/** Trees the task writes: a mount point inside one would be made in the task's own files. */
export const TASK_TREES = ['/tmp', '/workspace'];

export const under = (p: string, dir: string) => p === dir || p.startsWith(dir === '/' ? '/' : `${dir}/`);

/** `path` in the sandbox's own spelling: under /lib or /lib64, the /usr path the link names; else null. */
export function throughLink(path: string): string | null {
  const link = Object.keys(ROOTFS_SYMLINKS).find((l) => under(path, l));
  return link ? `/${ROOTFS_SYMLINKS[link]}${path.slice(link.length)}` : null;
}

interface FsCheckInput {
  filesystem: { mounts: MountSpec[]; blockedPaths: string[]; binds: { dst: string }[]; filePermissions: FilePermissions };
  resources: { memory: number; tmpSize: number };
}

export function refineFilesystem(p: FsCheckInput, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path: ['filesystem', ...path], message });
  // Binds and mounts alike: each is a mount of its own in the sandbox, and the checks below hold
  // for every one (a bind under /workspace made /workspace executable, one under a blocked path
  // showed it while explain said it was absent).
  const targets = [
    ...p.filesystem.binds.map((b, i) => ({ at: ['binds', i], target: b.dst.replace(/\/+$/, '') || '/', verb: 'bind' })),
    ...p.filesystem.mounts.map((m, i) => ({ at: ['mounts', i, 'target'], target: m.target, verb: 'mount' })),
  ];
  targets.forEach(({ at, target, verb }, i) => {
    // Either way: a mount at /opt would cover /opt/pawl, one at /run the egress socket's /run/pawl.
    const reserved = [...RESERVED_TARGETS, ...TASK_TREES].find((r) => under(target, r) || under(r, target));
    if (target === '/' || reserved) issue(at, `cannot ${verb} over ${target}: it is part of the sandbox pawl builds (${reserved ?? '/'})`);
    const other = targets.find((t, j) => j !== i && (under(t.target, target) || under(target, t.target)));
    if (other) issue(at, `${target} overlaps the mount at ${other.target} (a mount point would be made inside another mount's files)`);
    const blocked = p.filesystem.blockedPaths.find((b) => under(target, b) || under(b, target));
    if (blocked) issue(at, `${target} overlaps the blocked path ${blocked}`);
  });
  const tmpfs = p.filesystem.mounts.reduce((n, m) => n + (m.type === 'tmpfs' ? m.size : 0), p.resources.tmpSize);
  // /tmp alone over the limit is the tmpSize rule's (config/policy.ts): one message per problem.
  if (tmpfs > p.resources.tmpSize && tmpfs >= p.resources.memory) issue(['mounts'], `the tmpfs mounts and /tmp (${tmpfs} bytes) must be smaller than resources.memory: their pages count as memory`);
  // Every blocked path is either kept from the task or refused here: none is accepted and then
  // not enforced.
  p.filesystem.blockedPaths.forEach((b, i) => {
    const tree = TASK_TREES.find((t) => under(b, t) || under(t, b));
    const holds = ROOTFS_MOUNTS.find((m) => under(m, b) && m !== b);
    const spelled = throughLink(b);
    if (b === '/' || tree) issue(['blockedPaths', i], `cannot block ${b}: ${b === '/' ? 'it is the whole sandbox' : `the task writes ${tree} and could make the path again`}`);
    else if (holds) issue(['blockedPaths', i], `cannot block ${b}: it holds pawl's rootfs (${holds}); block paths inside it`);
    else if (spelled) issue(['blockedPaths', i], `cannot block ${b}: it is reached through a link in the sandbox; block ${spelled}`);
  });
  // The launcher follows no link to a rule's path (a task could have made it), so /lib's would be skipped.
  for (const list of ['allowRead', 'allowWrite', 'allowExecute'] as const) {
    p.filesystem.filePermissions[list]?.forEach((path, i) => {
      const spelled = throughLink(path);
      if (spelled) issue(['filePermissions', list, i], `${path} is reached through a link in the sandbox: name ${spelled}`);
    });
  }
}
