// The seccomp part of the policy, and the profile format it accepts: an OCI `linux.seccomp`
// object or a Docker/podman profile file, as they are (archMap, includes/excludes, errno names),
// so /usr/share/containers/seccomp.json or moby's default.json loads unchanged. One extension:
// `optional` on a rule. Checks that need the system call tables (unknown names) happen when the
// profile is resolved (seccomp/resolve.ts); everything else is refused here, with the field named.
import { constants } from 'node:os';
import { z } from 'zod';

export const ACTIONS = [
  'SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP', 'SCMP_ACT_TRACE', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
] as const;
export type Action = (typeof ACTIONS)[number];
/** Actions that end the process or thread (SIGSYS); SCMP_ACT_KILL is the old name of KILL_THREAD. */
export const KILL_ACTIONS: ReadonlySet<string> = new Set<Action>(['SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS']);

/** ==, !=, <, <=, >, >= and "masked ==" ((arg & value) == valueTwo), on the full 64 bits. */
export const OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'] as const;
export type Op = (typeof OPS)[number];

const ARCHITECTURES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
] as const;

// x32 syscalls arrive as x86_64 with bit 30 set in the number. pawl's filters send them to the
// bad-architecture action (kill), so a profile that asks for x32 asks for what cannot be given.
const NO_X32 = 'the x32 ABI is not supported: pawl filters kill x32 system calls';

const Architecture = z.enum(ARCHITECTURES);

/** An errno number as the kernel accepts it from a filter (at most MAX_ERRNO). */
const ErrnoNumber = z.number().int().min(0).max(4095);
const ErrnoName = z.string().refine((n) => n in constants.errno, { message: 'unknown errno name' });

/** errnoRet and errno (podman's name for it) may both be given, but must then name the same errno. */
function errnosAgree(errnoRet: number | undefined, name: string | undefined, ctx: z.RefinementCtx, field = 'errnoRet'): void {
  const byName = name === undefined ? undefined : constants.errno[name as keyof typeof constants.errno];
  if (errnoRet !== undefined && byName !== undefined && errnoRet !== byName) {
    ctx.addIssue({ code: 'custom', path: [field], message: `${field} ${errnoRet} and errno ${name} (${byName}) disagree` });
  }
}

// JSON numbers above 2^53 are rounded when parsed by JavaScript: refuse them rather than compile
// a comparison against a value the author did not write.
const ArgValue = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER, 'must be at most 2^53-1 (larger JSON numbers lose precision)');

const Arg = z.strictObject({
  /** Which system call argument, 0-5. */
  index: z.number().int().min(0).max(5),
  /** The operand; for SCMP_CMP_MASKED_EQ, the mask. */
  value: ArgValue,
  /** For SCMP_CMP_MASKED_EQ, what the masked argument must equal; unused otherwise. */
  valueTwo: ArgValue.default(0),
  op: z.enum(OPS),
});
export type Arg = z.infer<typeof Arg>;

/** Docker's conditions on a rule (both profiles as shipped use them). */
const Condition = z.strictObject({
  /** Docker architecture names (amd64, arm64, x32, ...). */
  arches: z.array(z.string()).optional(),
  /** Capabilities: pawl runs everything with none, so includes.caps never hold, excludes.caps always do. */
  caps: z.array(z.string()).optional(),
  /** "major.minor": the rule applies from that kernel on. */
  minKernel: z.string().regex(/^\d+\.\d+$/, 'must be "major.minor"').optional(),
});
export type Condition = z.infer<typeof Condition>;

const SyscallName = z.string().regex(/^[a-z0-9_]+$/, 'a system call name is lower-case letters, digits and "_"');

const Action = z.enum(ACTIONS).refine((a) => a !== 'SCMP_ACT_NOTIFY', { message: 'SCMP_ACT_NOTIFY needs a seccomp agent, which pawl does not run' });

export const SeccompRule = z
  .strictObject({
    names: z.array(SyscallName).optional(),
    /** Docker before 1.12 wrote one name per rule. */
    name: SyscallName.optional(),
    action: Action,
    /** The errno for SCMP_ACT_ERRNO (default EPERM), or the message for SCMP_ACT_TRACE. */
    errnoRet: ErrnoNumber.optional(),
    /** podman: the errno by name, used when errnoRet is absent. */
    errno: ErrnoName.optional(),
    /** All must hold (AND). */
    args: z.array(Arg).nullable().optional(),
    comment: z.string().optional(),
    includes: Condition.optional(),
    excludes: Condition.optional(),
    /** pawl: skip names no system call table knows, instead of refusing the profile. */
    optional: z.boolean().optional(),
  })
  .superRefine((r, ctx) => {
    errnosAgree(r.errnoRet, r.errno, ctx);
    if (!r.names?.length && !r.name) ctx.addIssue({ code: 'custom', path: ['names'], message: 'a rule needs at least one system call name' });
    const seen = new Set<number>();
    for (const a of r.args ?? []) {
      if (seen.has(a.index)) {
        // runc turns such a rule into one rule per condition (OR), libseccomp refuses it (EINVAL):
        // the same profile would mean different things to different runtimes.
        ctx.addIssue({ code: 'custom', path: ['args'], message: `argument ${a.index} is compared twice in one rule; runtimes disagree on what that means (runc ORs, libseccomp refuses): write one rule per comparison` });
      }
      seen.add(a.index);
    }
  });
export type SeccompRule = z.infer<typeof SeccompRule>;

export const SeccompProfile = z.strictObject({
  defaultAction: Action,
  defaultErrnoRet: ErrnoNumber.optional(),
  /** podman: the default errno by name. */
  defaultErrno: ErrnoName.optional(),
  /** OCI/old Docker. pawl filters the native ABI of the host; other entries only matter to OCI runtimes. */
  architectures: z.array(Architecture.refine((a) => a !== 'SCMP_ARCH_X32', { message: NO_X32 })).optional(),
  /** Docker/podman: per native architecture, its compat ABIs (which pawl does not admit: see resolve.ts). */
  archMap: z
    .array(z.strictObject({
      architecture: Architecture.refine((a) => a !== 'SCMP_ARCH_X32', { message: NO_X32 }),
      subArchitectures: z.array(Architecture).nullable().optional(),
    }))
    .optional(),
  syscalls: z.array(SeccompRule).nullable().optional(),
  /** OCI: passed on to runc/crun; bwrap installs filters without flags. */
  flags: z.array(z.enum(['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'])).optional(),
}).superRefine((p, ctx) => errnosAgree(p.defaultErrnoRet, p.defaultErrno, ctx, 'defaultErrnoRet'));
export type SeccompProfile = z.infer<typeof SeccompProfile>;

const ProfileName = z.string().refine((s) => s === 'trust-level' || s === 'none' || s.startsWith('/'), {
  message: 'must be "trust-level", "none", an absolute path to a JSON profile, or a profile object',
});

/** zod reports a failed union as "Invalid input": name the issues of the branch the input was meant for. */
function unionMessage(iss: { input?: unknown; errors?: { path: PropertyKey[]; message: string }[][] }): string {
  const issues = iss.errors?.[typeof iss.input === 'string' ? 0 : 1] ?? [];
  return issues.map((i) => `${i.path.map(String).join('.') || '(profile)'}: ${i.message}`).join('; ') || 'invalid seccomp profile';
}

export const SeccompPolicy = z.strictObject({
  /**
   * Which filter confines the run. "trust-level" (the default): pawl's shipped profile for the
   * run's trust level (native-profiles/pawl-<level>.json). "none": no filter, refused at the
   * untrusted and limited levels. An absolute path: a profile file in the format above (e.g.
   * /usr/share/containers/seccomp.json). An object: such a profile inline.
   */
  profile: z.union([ProfileName, SeccompProfile], { error: (iss) => unionMessage(iss as Parameters<typeof unionMessage>[0]) }).default('trust-level'),
});
export type SeccompPolicy = z.infer<typeof SeccompPolicy>;
