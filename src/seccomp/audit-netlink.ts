// The kernel's audit records straight from the audit netlink socket (the read-only log multicast
// group, which needs CAP_AUDIT_READ and the initial network namespace), instead of from the
// kernel log. Without an audit daemon the kernel prints each record to its log through
// printk_ratelimit (10 records per 5 s for the whole host), so a run that follows a few other
// seccomp kills loses its record there; the multicast copy is sent for every record.
// A multicast listener sees only what happens after it joins: it is opened before a sandbox
// with a seccomp filter starts (classify.ts listenSeccompAudit), and drained when records are read.
// The kernel queues a record when the call is made and kauditd sends it later (seconds later on a
// starved machine): the same socket asks the kernel how many records are still queued
// (AUDIT_GET's backlog), so a run's records can be waited for instead of guessed at.
import { closeSync } from 'node:fs';
import { errnoCode, loadLibc } from '../util/libc.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_AUDIT = 9;
/** AUDIT_NLGRP_READLOG = 1; groups are a bit mask of (1 << (group - 1)). */
const READLOG_GROUPS = 1;
const NLMSG_HDRLEN = 16;
/** MAX_AUDIT_MESSAGE_LENGTH is 8970. */
const BUF = 9000;
const NLMSG_ERROR = 2;
const NLM_F_REQUEST = 1;
const AUDIT_GET = 1000;
const AUDIT_SECCOMP = 1326;
/** struct audit_status: mask, enabled, failure, pid, rate_limit, backlog_limit, lost, backlog (u32 each). */
const STATUS_BACKLOG_OFFSET = 28;

let sock: number | null | undefined;
let seq = 0;
/**
 * What the socket held, taken every PULL_MS while it is open: the kernel's queue for a listener
 * is its receive buffer, and records of the whole host (AppArmor's, other runs' kills) would
 * otherwise pile up there between two runs' reads until it overflows and drops the next run's.
 */
let pending: string[] = [];
let puller: NodeJS.Timeout | undefined;
const PULL_MS = 200;
const PENDING_MAX = 20_000;
/** Records the kernel dropped because the socket was full (ENOBUFS), since it was opened. */
let lost = 0;
const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
const RCVBUF = 8 << 20;
/** Replies to status requests by sequence number: the queue's length, or null when refused. */
const statusReplies = new Map<number, number | null>();

/** Join the audit log multicast group once per process; false when the kernel refuses (not root, no audit, another netns). */
export function openAuditNetlink(): boolean {
  if (sock === undefined) {
    sock = null;
    try {
      const libc = loadLibc();
      const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_AUDIT);
      if (fd >= 0) {
        const addr = Buffer.alloc(12); // struct sockaddr_nl: family, pad, pid (0: the kernel picks), groups
        addr.writeUInt16LE(AF_NETLINK, 0);
        addr.writeUInt32LE(READLOG_GROUPS, 8);
        if (libc.bind(fd, addr, addr.length) === 0) {
          sock = fd;
          // A larger queue than the default (~200 KB) where root may set it: a burst of records
          // between two pulls must not overflow it. Without it the default stays; pulls still run.
          const size = Buffer.alloc(4);
          size.writeInt32LE(RCVBUF);
          libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4);
          puller = setInterval(() => void pull(), PULL_MS).unref();
        } else closeSync(fd);
      }
    } catch {
      sock = null; // no koffi/libc: the kernel log is the only source
    }
  }
  return sock !== null;
}

/**
 * Every seccomp record received since the last call, as "type=<n> <text>" lines (the kernel
 * log's format, so one parser reads both). [] when the listener is not open.
 */
export function drainAuditNetlink(): string[] {
  pull();
  const lines = pending;
  pending = [];
  return lines;
}

/** How many records the kernel dropped because the socket was full, since it was opened. */
export function auditRecordsLost(): number {
  return lost;
}

/** Move what the socket holds into `pending` (status replies aside), without waiting. */
function pull(): void {
  if (sock === null || sock === undefined) return;
  const libc = loadLibc();
  const buf = Buffer.alloc(BUF);
  const lines = pending;
  for (let i = 0; i < 100_000; i++) {
    const n = Number(libc.recv(sock, buf, buf.length, 0));
    if (n < 0) {
      // ENOBUFS: the socket's queue overflowed and records were dropped; the rest still follow.
      if (errnoCode() === 'ENOBUFS') {
        lost++;
        continue;
      }
      break; // EAGAIN: nothing more now
    }
    for (let off = 0; off + NLMSG_HDRLEN <= n; ) {
      const len = buf.readUInt32LE(off);
      if (len < NLMSG_HDRLEN || off + len > n) break;
      const type = buf.readUInt16LE(off + 4);
      const replySeq = buf.readUInt32LE(off + 8);
      if (type === AUDIT_GET && len >= NLMSG_HDRLEN + STATUS_BACKLOG_OFFSET + 4) {
        statusReplies.set(replySeq, buf.readUInt32LE(off + NLMSG_HDRLEN + STATUS_BACKLOG_OFFSET));
        off += (len + 3) & ~3;
        continue;
      }
      if (type === NLMSG_ERROR) {
        // struct nlmsgerr: a negative errno (0 is an ack, which is not asked for), then the request's header.
        if (buf.readInt32LE(off + NLMSG_HDRLEN) !== 0) statusReplies.set(replySeq, null);
        off += (len + 3) & ~3;
        continue;
      }
      // Only seccomp's records are kept: the rest of the host's audit traffic is not pawl's.
      if (type === AUDIT_SECCOMP) lines.push(`type=${type} ${buf.toString('utf8', off + NLMSG_HDRLEN, off + len).replace(/\0+$/, '')}`);
      off += (len + 3) & ~3;
    }
  }
  if (lines.length > PENDING_MAX) lines.splice(0, lines.length - PENDING_MAX);
}

/**
 * Ask the kernel how many audit records it holds that kauditd has not yet sent (root: it needs
 * CAP_AUDIT_CONTROL). The reply is read by drainAuditNetlink and found with statusReply(seq).
 * null when the listener is not open or the request could not be sent.
 */
export function requestAuditStatus(): number | null {
  if (sock === null || sock === undefined) return null;
  seq = (seq + 1) >>> 0 || 1;
  const msg = Buffer.alloc(NLMSG_HDRLEN); // struct nlmsghdr: len, type, flags, seq, pid (0: the kernel)
  msg.writeUInt32LE(NLMSG_HDRLEN, 0);
  msg.writeUInt16LE(AUDIT_GET, 4);
  msg.writeUInt16LE(NLM_F_REQUEST, 6);
  msg.writeUInt32LE(seq, 8);
  return Number(loadLibc().send(sock, msg, msg.length, 0)) === msg.length ? seq : null;
}

/** The backlog a status request's reply gave (taken once), null if refused, undefined if none yet. */
export function statusReply(n: number): number | null | undefined {
  const r = statusReplies.get(n);
  statusReplies.delete(n);
  return r;
}

/** Leave the group (tests). */
export function closeAuditNetlink(): void {
  if (typeof sock === 'number') closeSync(sock);
  sock = undefined;
  clearInterval(puller);
  pending = [];
  statusReplies.clear();
}
