/*
 * pawl's shim, the process the supervisor spawns for every bwrap sandbox (shim.ts says why):
 *
 *   pawl-shim TAG N PROCS_FILE... (UID|-) NOFILE -- ARGV...
 *
 * It writes its own pid into each of the N cgroup.procs files, opens a fresh audit session for
 * the run (UID given: loginuid, root only), waits for the supervisor's release on fd 8 (a byte;
 * EOF is a refusal) and closes it, sets RLIMIT_NOFILE to NOFILE (soft and hard), drops to
 * UID:UID with no supplementary groups (UID given), and execs ARGV. TAG prefixes its error
 * messages; it fails with status 125 and runs nothing when any step fails.
 *
 * One static binary instead of /bin/sh and setpriv: the two dynamically linked execs cost ~6 ms
 * of CPU and of wall time in every sandbox's start here (measured: fork+exec of /bin/true 2.3 ms,
 * through sh 4.1 ms, through sh and setpriv 8.4 ms).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define FAILED 125
#define GO_FD 8

static const char *tag = "pawl-shim";

static int fail(const char *what, const char *arg) {
  int e = errno;
  fprintf(stderr, "%s: %s%s%s%s%s\n", tag, what, arg ? " " : "", arg ? arg : "", e ? ": " : "", e ? strerror(e) : "");
  return FAILED;
}

/* A decimal number that fills the whole string, or -1. */
static long long number(const char *s) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return errno || *end || v < 0 ? -1 : v;
}

static int write_all(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  int e = errno;
  close(fd);
  errno = e;
  return n == (ssize_t)len ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc > 1) tag = argv[1];
  long long n = argc > 2 ? number(argv[2]) : -1;
  /* TAG N FILES... UID NOFILE -- at least one word of ARGV */
  if (n < 0 || n > argc || argc < 3 + n + 4 || strcmp(argv[3 + n + 2], "--") != 0) {
    errno = 0;
    return fail("usage: pawl-shim TAG N PROCS_FILE... (UID|-) NOFILE -- ARGV...", NULL);
  }
  char **files = argv + 3;
  const char *uid_arg = argv[3 + n];
  long long nofile = number(argv[3 + n + 1]);
  char **run = argv + 3 + n + 3;
  long long uid = strcmp(uid_arg, "-") == 0 ? -2 : number(uid_arg);
  if (uid == -1 || uid >= 0x7fffffff || nofile < 0) {
    errno = 0;
    return fail("bad uid or open-file limit", NULL);
  }

  char pid[24];
  snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  for (long long i = 0; i < n; i++)
    if (write_all(files[i], pid) < 0) return fail("cannot enter cgroup", files[i]);

  char id[24];
  if (uid >= 0) {
    /* A fresh audit session for the run (root only): the kernel's seccomp audit records carry it,
       which is how a SIGSYS death is traced back to the system call that caused it. */
    snprintf(id, sizeof id, "%lld", uid);
    (void)write_all("/proc/self/loginuid", id);
  }

  /* The release: by now the supervisor has set the other rlimits (prlimit(2) on this pid). */
  char go;
  ssize_t got;
  do got = read(GO_FD, &go, 1);
  while (got < 0 && errno == EINTR);
  if (got != 1) {
    if (got == 0) errno = 0;
    return fail("not released by the supervisor", NULL);
  }
  close(GO_FD);

  struct rlimit files_limit = { (rlim_t)nofile, (rlim_t)nofile };
  if (setrlimit(RLIMIT_NOFILE, &files_limit) < 0) {
    snprintf(id, sizeof id, "%lld", nofile);
    return fail("cannot set the limit of open files to", id);
  }

  if (uid >= 0) {
    snprintf(id, sizeof id, "%lld", uid);
    /* Groups first: once the uid is dropped, nothing more may be changed. */
    if (setgroups(0, NULL) < 0) return fail("cannot clear the supplementary groups for uid", id);
    if (setresgid((gid_t)uid, (gid_t)uid, (gid_t)uid) < 0) return fail("cannot set the gid to", id);
    if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0) return fail("cannot set the uid to", id);
  }

  execv(run[0], run);
  return fail("cannot run", run[0]);
}
