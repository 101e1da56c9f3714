/*
 * pawl's Landlock launcher, the first program of every sandbox that has file permissions: the
 * runtime has finished its mounts (a Landlock domain forbids mount, so it cannot come earlier),
 * this restricts itself, then execs the task's argv, which inherits the domain for good.
 *
 *   landlock-exec MODE [-l PATH | -r PATH | -w PATH | -x PATH]... -- ARGV...
 *
 * MODE is "required" (no Landlock in this kernel: exit 126) or "optional" (exec without it).
 * -l: list dirs (names only); -r: read files and list dirs; -w: create, write, truncate, remove, rename; -x: execute.
 * A PATH that does not exist in the sandbox is skipped (nothing there to allow), and so is one
 * reached through a symbolic link, which could be the task's own: a link a run left in a volume
 * or writable bind would otherwise turn the next run's rule for /cache/public into one for /.
 * Static (no libraries to bring along); the rules come from the supervisor's argv, never from the task.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TAG "pawl-landlock: "

#ifndef SYS_openat2
#define SYS_openat2 437 /* the generic syscall table's number, x86_64's too */
#endif

/* Debian 12's kernel headers stop at ABI 2; the value is the kernel's uapi (ABI 3, Linux 6.2). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

static int fail(const char *what, const char *arg) {
  fprintf(stderr, TAG "%s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  return 126;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, TAG "usage: landlock-exec required|optional [-l|-r|-w|-x PATH]... -- ARGV...\n");
    return 126;
  }
  int required = strcmp(argv[1], "required") == 0;
  int i = 2;
  while (i < argc && strcmp(argv[i], "--") != 0) i += 2;
  if (i >= argc - 1) {
    fprintf(stderr, TAG "no program after --\n");
    return 126;
  }
  char **task = argv + i + 1;

  int abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) {
    if (required) return fail("this kernel has no Landlock (required by the policy)", NULL);
    execv(task[0], task);
    return fail("exec", task[0]);
  }
  const __u64 read = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
  __u64 write = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) write |= LANDLOCK_ACCESS_FS_REFER;     /* rename/link across dirs (ABI 2) */
  if (abi >= 3) write |= LANDLOCK_ACCESS_FS_TRUNCATE;  /* truncate (ABI 3) */
  const __u64 exec = LANDLOCK_ACCESS_FS_EXECUTE;
  const __u64 file_only = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_EXECUTE |
                          (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0);

  struct landlock_ruleset_attr attr = { .handled_access_fs = read | write | exec };
  int ruleset = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ruleset < 0) return fail("landlock_create_ruleset", NULL);
  for (int a = 2; a < i; a += 2) {
    const char *flag = argv[a], *path = argv[a + 1];
    __u64 access = strcmp(flag, "-l") == 0 ? LANDLOCK_ACCESS_FS_READ_DIR : strcmp(flag, "-r") == 0 ? read : strcmp(flag, "-w") == 0 ? write : strcmp(flag, "-x") == 0 ? exec : 0;
    if (!access || !path) {
      fprintf(stderr, TAG "bad rule %s\n", flag);
      return 126;
    }
    /* openat2 is Linux 5.6, Landlock 5.13: whoever has Landlock has it. */
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
    int fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd < 0) {
      if (errno == ENOENT) continue;
      if (errno == ELOOP) {
        fprintf(stderr, TAG "%s is reached through a symbolic link: no rule for it\n", path);
        continue;
      }
      return fail("open", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0) return fail("stat", path);
    if (!S_ISDIR(st.st_mode)) access &= file_only;
    struct landlock_path_beneath_attr rule = { .allowed_access = access, .parent_fd = fd };
    if (access && syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) < 0) return fail("landlock_add_rule", path);
    close(fd);
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail("PR_SET_NO_NEW_PRIVS", NULL);
  if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0) return fail("landlock_restrict_self", NULL);
  close(ruleset);
  execv(task[0], task);
  return fail("exec", task[0]);
}
