import { describe, expect, it } from 'vitest';
import { parseAuditRecord, recordSyscallName, seccompViolation, type AuditRecord } from '../../src/seccomp/classify.js';
import type { SeccompPlan } from '../../src/seccomp/index.js';
import { syscallName } from '../../src/seccomp/syscalls.js';

// As printed by this host's kernel (dmesg) for a process killed by SECCOMP_RET_KILL_PROCESS.
const LINE = '6,1234,701655502,-;audit: type=1326 audit(1795775549.012:4): auid=0 uid=0 gid=0 ses=3 pid=11813 comm="prober" exe="/probe/prober" sig=31 arch=c000003e syscall=101 compat=0 ip=0x431597 code=0x80000000';
const NO_SESSION = 'audit: type=1326 audit(1795775539.408:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=11489 comm="prober" exe="/probe/prober" sig=31 arch=c000003e syscall=1073741863 compat=0 ip=0x432d79 code=0x80000000';

const plan = { name: 'pawl-untrusted', hash: 'h', bpf: Buffer.alloc(0), oci: {} as SeccompPlan['oci'], killsOnViolation: true, refusesWithEperm: () => false } satisfies SeccompPlan;
const records = (...lines: string[]) => () => lines.map(parseAuditRecord).filter((r): r is AuditRecord => r !== null);
const killed = { signal: null, exitCode: 159 };

describe('audit records', () => {
  it('parses the kernel line', () => {
    expect(parseAuditRecord(LINE)).toEqual({ session: 3, pid: 11813, signal: 31, arch: 0xc000003e, syscall: 101 });
    expect(parseAuditRecord(NO_SESSION)).toMatchObject({ session: null, pid: 11489 });
    expect(parseAuditRecord('6,1,2,-;EXT4-fs (vda): mounted filesystem')).toBeNull();
    // A kernel with an LSM (AppArmor, as in the v2 VM's Debian kernel) puts subj= between ses= and pid=.
    const lsm = 'audit: type=1326 audit(1795779000.1:9): auid=600123 uid=600123 gid=600123 ses=7 subj=unconfined pid=842 comm="busybox" exe="/bin/busybox" sig=31 arch=c000003e syscall=272 compat=0 ip=0x4a code=0x80000000';
    expect(parseAuditRecord(lsm)).toEqual({ session: 7, pid: 842, signal: 31, arch: 0xc000003e, syscall: 272 });
    // From the audit netlink socket (audit-netlink.ts writes the message type as the log does), as received on this host.
    const netlink = 'type=1326 audit(1796030583.398:1057): auid=642564 uid=642564 gid=642564 ses=7613 pid=6669 comm="busybox" exe="/bin/busybox" sig=31 arch=c000003e syscall=272 compat=0 ip=0x4815c7 code=0x80000000';
    expect(parseAuditRecord(netlink)).toEqual({ session: 7613, pid: 6669, signal: 31, arch: 0xc000003e, syscall: 272 });
  });

  it('names native, x32 and x86 calls', () => {
    expect(recordSyscallName(parseAuditRecord(LINE)!)).toBe('ptrace');
    expect(recordSyscallName(parseAuditRecord(NO_SESSION)!)).toBe('getpid (x32 ABI)');
    expect(recordSyscallName({ session: null, pid: 1, signal: 31, arch: 0x40000003, syscall: 20 })).toBe('getpid (x86 ABI)');
    expect(recordSyscallName({ session: null, pid: 1, signal: 31, arch: 0xc000003e, syscall: 9999 })).toBeNull();
  });

  it('syscallName covers calls newer than libseccomp', () => {
    expect([syscallName(0, 'x86_64'), syscallName(56, 'aarch64'), syscallName(462), syscallName(-1), syscallName(100_000)]).toEqual(['read', 'openat', 'mseal', null, null]);
  });
});

describe('seccompViolation', () => {
  it('is null without SIGSYS, or without a filter', () => {
    expect(seccompViolation({ signal: null, exitCode: 0 }, plan, 1, records(LINE))).toBeNull();
    expect(seccompViolation({ signal: 'SIGKILL', exitCode: null }, plan, 1, records(LINE))).toBeNull();
    expect(seccompViolation({ signal: null, exitCode: 137 }, plan, 1, records(LINE))).toBeNull();
    expect(seccompViolation(killed, null, 11813, records(LINE))).toBeNull();
  });

  it('sees SIGSYS as a signal or as bwrap\'s 128+31', () => {
    expect(seccompViolation({ signal: 'SIGSYS', exitCode: null }, plan)).toEqual({ syscall: null });
    expect(seccompViolation(killed, plan)).toEqual({ syscall: null });
  });

  it('names the call from a record of the run: by audit session or by pid', () => {
    expect(seccompViolation(killed, plan, { session: 3 }, records(LINE))).toEqual({ syscall: 'ptrace' });
    expect(seccompViolation(killed, plan, 11813, records(LINE))).toEqual({ syscall: 'ptrace' });
    expect(seccompViolation(killed, plan, { pids: [5, 11489] }, records(LINE, NO_SESSION))).toEqual({ syscall: 'getpid (x32 ABI)' });
  });

  it('says null rather than guess from another run\'s record', () => {
    expect(seccompViolation(killed, plan, { session: 4 }, records(LINE))).toEqual({ syscall: null });
    expect(seccompViolation(killed, plan, 42, records(LINE, NO_SESSION))).toEqual({ syscall: null });
  });

  it('takes the most recent record of the run', () => {
    const earlier = LINE.replace('syscall=101', 'syscall=165');
    expect(seccompViolation(killed, plan, { session: 3 }, records(earlier, LINE))).toEqual({ syscall: 'ptrace' });
  });
});
