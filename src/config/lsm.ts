// The policy's mandatory-access-control block (security.apparmor, security.selinux): how the
// generated AppArmor profile and SELinux labels are applied (src/lsm/apply.ts).
import { z } from 'zod';

/**
 * off: no generated profile. optional: load and apply it where the host can, else run with a
 * named entry in the result's `degraded`. required: refuse the run where the host cannot.
 * Default off: the sandbox's walls (namespaces, seccomp, no capabilities, no_new_privs, cgroups)
 * do not depend on it, loading a profile changes kernel state host-wide and needs CAP_MAC_ADMIN,
 * and a default that degrades on every host without AppArmor would put an entry in every
 * result's `degraded`, drowning the gaps that matter. `pawl doctor` says when a host could use it.
 */
export const AppArmorMode = z.enum(['off', 'optional', 'required']);
export type AppArmorMode = z.infer<typeof AppArmorMode>;

// An SELinux context user:role:type:level[:categories]; nothing that could end an argument or a line.
const Label = z.string().regex(/^[A-Za-z0-9_.]+:[A-Za-z0-9_.]+:[A-Za-z0-9_.]+(:[A-Za-z0-9_.,:-]+)?$/, 'must be an SELinux context user:role:type[:level]');

export const SelinuxPolicy = z.strictObject({
  /** The sandboxed program's process label (runc/crun process.selinuxLabel, bwrap --exec-label). */
  processLabel: Label.optional(),
  /** The label of the sandbox's mounts (runc/crun linux.mountLabel, bwrap --file-label). */
  mountLabel: Label.optional(),
  /** required (default when labels are set): refuse where SELinux is not enabled; optional: run with a named degradation. */
  mode: z.enum(['optional', 'required']).default('required'),
});
export type SelinuxPolicy = z.infer<typeof SelinuxPolicy>;
