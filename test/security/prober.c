/*
 * prober: tries system calls a pawl seccomp profile must refuse, and a few it must allow, and
 * prints one line per probe: "<name> ok", "<name> errno=<NAME>" or "<name> signal=<NAME>".
 *
 * It is built static by the security tests and run ONLY inside a sandbox (bwrap, or runc/crun
 * through pawl), never on the host: some probes are mount/unshare/ptrace attempts. Each probe runs
 * in its own forked child,
 * so a probe that kills the process (SECCOMP_RET_KILL_PROCESS) is reported and the rest go on.
 * `prober --direct NAME` runs one probe in the process itself (to observe a whole-process kill).
 *
 * Arguments are chosen so that, without a filter, the kernel answers with something other than
 * EPERM where it can (a bad pointer gives EFAULT, a bad fd EBADF, a bad type EINVAL, a pipe
 * ENOTTY): then EPERM can only have come from the filter. The tests run each probe once without
 * the filter (the control) to show that difference.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif
#define BAD ((void *)1) /* a pointer the kernel cannot read: EFAULT where it is checked first */
#define BAD_TYPE 99     /* no such socket type: EINVAL before any family-specific check */
#define X32_SYSCALL_BIT 0x40000000L
#define UFFD_USER_MODE_ONLY 1

static int pipe_fd(void) {
  int p[2];
  if (pipe(p) != 0) return -1;
  return p[0];
}

static long p_mount(void) { return mount(BAD, "/tmp", BAD, 0, NULL); }
static long p_umount2(void) { return umount2("/tmp", 0xffff); /* bad flags: EINVAL */ }
static long p_pivot_root(void) { return syscall(SYS_pivot_root, BAD, BAD); }
static long p_chroot(void) { return chroot(BAD); }
static long p_unshare_user(void) { return unshare(CLONE_NEWUSER); }
static long p_setns(void) { return setns(-1, 0); }
static long p_ptrace(void) { return ptrace(PTRACE_TRACEME, 0, NULL, NULL); }
static long p_process_vm_readv(void) { return process_vm_readv(getpid(), NULL, 0, NULL, 0, 0); }
static long p_process_vm_writev(void) { return process_vm_writev(getpid(), NULL, 0, NULL, 0, 0); }
static long p_bpf(void) { return syscall(SYS_bpf, 5 /* BPF_PROG_LOAD */, BAD, 8); }
static long p_perf_event_open(void) { return syscall(SYS_perf_event_open, BAD, 0, -1, -1, 0); }
static long p_keyctl(void) { return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0); }
static long p_add_key(void) { return syscall(SYS_add_key, BAD, BAD, NULL, 0, 0); }
static long p_request_key(void) { return syscall(SYS_request_key, BAD, BAD, NULL, 0); }
static long p_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, NULL, 0); }
static long p_kexec_file_load(void) { return syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0); }
static long p_init_module(void) { return syscall(SYS_init_module, BAD, 0, ""); }
static long p_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long p_delete_module(void) { return syscall(SYS_delete_module, BAD, 0); }
static long p_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, BAD, 0); }
static long p_userfaultfd(void) { return syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY); }
static long p_io_uring_setup(void) { return syscall(SYS_io_uring_setup, 1, BAD); }
static long p_io_uring_enter(void) { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0); }
static long p_io_uring_register(void) { return syscall(SYS_io_uring_register, -1, 0, NULL, 0); }
static long p_fsopen(void) { return syscall(SYS_fsopen, BAD, 0); }
static long p_syslog(void) { return syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0); }
static long p_personality_unsafe(void) { return personality(PER_LINUX | ADDR_NO_RANDOMIZE); }
static long p_personality_query(void) { return personality(0xffffffff); }
static long p_clone_flags(unsigned long flags) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);
  if (pid == 0) syscall(SYS_exit_group, 0);
  if (pid > 0) waitpid(pid, NULL, 0);
  return pid > 0 ? 0 : pid;
}
static long p_clone_newuser(void) { return p_clone_flags(CLONE_NEWUSER); }
static long p_clone_newns(void) { return p_clone_flags(CLONE_NEWNS); }
static long p_clone_plain(void) { return p_clone_flags(0); }
static long p_clone3(void) { return syscall(SYS_clone3, NULL, 0); }
static long p_socket_packet(void) { return socket(AF_PACKET, BAD_TYPE, 0); }
static long p_socket_netlink(void) { return socket(AF_NETLINK, BAD_TYPE, 0); }
static long p_socket_vsock(void) { return socket(AF_VSOCK, BAD_TYPE, 0); }
static long p_socket_alg(void) { return socket(AF_ALG, BAD_TYPE, 0); }
/* The kernel reads the family as an int: high bits must not smuggle AF_NETLINK past the filter. */
static long p_socket_netlink_high(void) { return syscall(SYS_socket, 0x100000000UL | AF_NETLINK, BAD_TYPE, 0); }
static long p_socket_unix(void) { return socket(AF_UNIX, SOCK_STREAM, 0); }
/* socketpair runs the family's socket creation before refusing: only AF_UNIX may reach it. */
static long p_socketpair_netlink(void) { int sv[2]; return socketpair(AF_NETLINK, SOCK_RAW, 0, sv); }
static long p_socketpair_unix(void) { int sv[2]; return socketpair(AF_UNIX, SOCK_STREAM, 0, sv); }
/* Linux AIO: a context counts against the host-wide aio-max-nr (released at exit). */
static long p_io_setup(void) { unsigned long ctx = 0; return syscall(SYS_io_setup, 1, &ctx); }
static long p_socket_inet6(void) { return socket(AF_INET6, SOCK_DGRAM, 0); }
static long p_tiocsti(void) { char c = 'x'; return ioctl(pipe_fd(), TIOCSTI, &c); }
/* CVE-2019-10063: the kernel reads cmd as 32 bits, so a high bit must not get TIOCSTI through. */
static long p_tiocsti_high(void) { char c = 'x'; return syscall(SYS_ioctl, pipe_fd(), 0x100000000UL | TIOCSTI, &c); }
static long p_tioclinux(void) { char c = 0; return ioctl(pipe_fd(), TIOCLINUX, &c); }
static long p_ioctl_tcgets(void) { char buf[64]; return ioctl(pipe_fd(), TCGETS, buf); }
static long p_x32_getpid(void) { return syscall(X32_SYSCALL_BIT | SYS_getpid); }
static long p_getpid(void) { return getpid() > 0 ? 0 : -1; }

struct probe { const char *name; long (*fn)(void); };
static const struct probe PROBES[] = {
  {"mount", p_mount}, {"umount2", p_umount2}, {"pivot_root", p_pivot_root}, {"chroot", p_chroot},
  {"unshare_user", p_unshare_user}, {"setns", p_setns}, {"ptrace", p_ptrace},
  {"process_vm_readv", p_process_vm_readv}, {"process_vm_writev", p_process_vm_writev},
  {"bpf", p_bpf}, {"perf_event_open", p_perf_event_open}, {"keyctl", p_keyctl},
  {"add_key", p_add_key}, {"request_key", p_request_key}, {"kexec_load", p_kexec_load},
  {"kexec_file_load", p_kexec_file_load}, {"init_module", p_init_module},
  {"finit_module", p_finit_module}, {"delete_module", p_delete_module},
  {"open_by_handle_at", p_open_by_handle_at}, {"userfaultfd", p_userfaultfd},
  {"io_uring_setup", p_io_uring_setup}, {"io_uring_enter", p_io_uring_enter},
  {"io_uring_register", p_io_uring_register}, {"fsopen", p_fsopen}, {"syslog", p_syslog},
  {"personality_unsafe", p_personality_unsafe}, {"clone_newuser", p_clone_newuser},
  {"clone_newns", p_clone_newns}, {"socket_packet", p_socket_packet},
  {"socket_netlink", p_socket_netlink}, {"socket_netlink_high", p_socket_netlink_high},
  {"socket_vsock", p_socket_vsock}, {"socket_alg", p_socket_alg}, {"tiocsti", p_tiocsti},
  {"tiocsti_high", p_tiocsti_high}, {"tioclinux", p_tioclinux}, {"io_setup", p_io_setup},
  {"socketpair_netlink", p_socketpair_netlink},
  /* answered differently on purpose */
  {"clone3", p_clone3}, {"x32_getpid", p_x32_getpid},
  /* must keep working */
  {"getpid", p_getpid}, {"clone_plain", p_clone_plain}, {"personality_query", p_personality_query},
  {"socket_unix", p_socket_unix}, {"socket_inet6", p_socket_inet6}, {"ioctl_tcgets", p_ioctl_tcgets},
  {"socketpair_unix", p_socketpair_unix},
};
#define NPROBES (sizeof(PROBES) / sizeof(PROBES[0]))

static void report(const char *name, const char *what) {
  char line[160];
  int n = snprintf(line, sizeof line, "%s %s\n", name, what);
  if (write(1, line, (size_t)n) < 0) _exit(3);
}

static void run_here(const struct probe *p) {
  errno = 0;
  long rc = p->fn();
  char what[64];
  if (rc < 0) snprintf(what, sizeof what, "errno=%s", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  else snprintf(what, sizeof what, "ok");
  report(p->name, what);
}

static const struct probe *find(const char *name) {
  for (size_t i = 0; i < NPROBES; i++)
    if (strcmp(PROBES[i].name, name) == 0) return &PROBES[i];
  return NULL;
}

static void run_forked(const struct probe *p) {
  pid_t pid = fork();
  if (pid < 0) { report(p->name, "fork-failed"); return; }
  if (pid == 0) { run_here(p); _exit(0); }
  int status;
  if (waitpid(pid, &status, 0) < 0) { report(p->name, "wait-failed"); return; }
  if (WIFSIGNALED(status)) {
    const char *abbrev = sigabbrev_np(WTERMSIG(status)); /* "SYS" for SIGSYS */
    char what[64];
    snprintf(what, sizeof what, "signal=SIG%s", abbrev ? abbrev : "?");
    report(p->name, what);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--direct") == 0) {
    const struct probe *p = find(argv[2]);
    if (!p) return 2;
    run_here(p);
    return 0;
  }
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < NPROBES; i++) report(PROBES[i].name, "");
    return 0;
  }
  for (size_t i = 0; i < NPROBES; i++) run_forked(&PROBES[i]);
  return 0;
}
