/*
 * spawnpool-exec-helper: applies the process attributes a vfork-style child
 * must not (daemonize forks again; the handshake blocks until the parent
 * says go, while the spawning worker thread would be suspended), then execs
 * the target. The native engine starts it only when a spec needs one of
 * those two; everything else the vfork child of spawn.c applies itself,
 * with the same code (attrs.h).
 *
 *   spawnpool-exec-helper --status-fd N [options] -- FILE ARGV0 [ARG...]
 *
 * Options (numbers in decimal):
 *   --NAME [VALUE]    every process attribute of attrs.h under its name:
 *                     a BOOL alone (--clearCaps), a LIST comma-separated
 *                     (--groups 1,2; "" is the empty list), else a number
 *                     (--maxFiles 1024); checked by attrs.h's attr_set()
 *   --cwd DIR  --daemonize  --pidfile PATH  --handshake-fd N  --keep FD,FD,...
 *   --print-attributes  print the attributes as parsed, one "name value"
 *                     line each, on stdout, and exit 0 (for the tests)
 *
 * In this order (libvirt's child order):
 *   1. umask
 *   2. close every fd but 0-2, the kept ones and the two pipes to the worker
 *   3. daemonize: setsid, chdir /, fork; the intermediate reports the
 *      daemon's pid, waits until the daemon has written its pidfile, exits 0;
 *      the daemon goes on once the intermediate is gone (never the child of
 *      a process that is about to exit, when its program starts)
 *   4. pidfile: open, F_SETLK write lock, again if the file was replaced
 *      meanwhile, truncate, write the pid; the locked fd stays open across
 *      exec, so the daemon holds the lock for as long as it lives
 *   5. rlimits; 6. capabilities and credentials (attrs.h)
 *   7. chdir (not for a daemon: it runs in /)
 *   8. no_new_privs, parent-death signal (not for a daemon: it must outlive
 *      its spawner)
 *   9. handshake: "R\n" on the status pipe, then block until the worker
 *      writes one byte, '1'
 *  10. execve
 *
 * The status pipe (close-on-exec, so the worker sees EOF once the target
 * runs) carries lines: "D <pid>" the daemon's pid, "R" ready for the
 * handshake, "E <errno> <step>" a step failed. Exit statuses follow env(1):
 * 125 failed before exec, 126 could not exec, 127 not found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attrs.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char **environ;

static int status_fd = -1;

static void report(const char *line, size_t len) {
  while (len > 0) {
    ssize_t n = write(status_fd, line, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;   /* the worker is gone: nobody to tell */
    line += n;
    len -= (size_t)n;
  }
}

static _Noreturn void fail(enum step step, int err, int exit_status) {
  char line[128];
  int len = snprintf(line, sizeof line, "E %d %s\n", err, step_name(step));
  if (status_fd >= 0 && len > 0) report(line, (size_t)len);
  _exit(exit_status);
}

#define CHECK(step, call) do { int e_ = (call); if (e_ != 0) fail((step), e_, 125); } while (0)

static long long number(const char *s, long long min, long long max) {
  char *end;
  errno = 0;
  long long v = s != NULL ? strtoll(s, &end, 10) : 0;
  if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) fail(STEP_ARGS, EINVAL, 125);
  return v;
}

/* "1,2,3" into a fresh array, as doubles: what attr_set() takes. *n its
   length; "" is an empty list. */
static double *number_list(const char *s, int *n, long long min, long long max) {
  int cap = 1;
  for (const char *c = s; *c; c++) cap += *c == ',';
  double *out = calloc((size_t)cap, sizeof *out);
  char *copy = strdup(s);
  if (out == NULL || copy == NULL) fail(STEP_ARGS, ENOMEM, 125);
  *n = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
    out[(*n)++] = (double)number(tok, min, max);
  free(copy);
  return out;
}

/* The front end of attrs.h's parser for argv; the range is attr_set()'s to check. */
static void parse_attr(struct proc_attrs *a, const struct attr_desc *d, const char *value) {
  double one = 1, *values = &one;
  int n = 1;
  if (d->kind == ATTR_LIST) values = number_list(value, &n, LLONG_MIN, LLONG_MAX);
  else if (d->kind != ATTR_BOOL) one = (double)number(value, LLONG_MIN, LLONG_MAX);
  int rc = attr_set(a, d, values, n);
  if (values != &one) free(values);
  if (rc != 0) fail(STEP_ARGS, rc == ENOMEM ? ENOMEM : EINVAL, 125);
}

static void print_attributes(const struct proc_attrs *a) {
  size_t len = attrs_format(a, NULL, 0);
  char *text = malloc(len + 1);
  if (text == NULL) fail(STEP_ARGS, ENOMEM, 125);
  attrs_format(a, text, len + 1);
  for (size_t at = 0; at < len;) {
    ssize_t k = write(1, text + at, len - at);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) _exit(125);
    at += (size_t)k;
  }
  free(text);
  _exit(0);
}

static int cmp_int(const void *a, const void *b) {
  return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Step 2: close [3, ~0) but the kept fds, one close_range per gap. */
static int close_other_fds(int *keep, int n) {
  qsort(keep, (size_t)n, sizeof *keep, cmp_int);
  unsigned int from = 3;
  for (int i = 0; i <= n; i++) {
    unsigned int to = i < n ? (unsigned int)keep[i] : ~0U;
    if (i < n && keep[i] < 3) continue;
    if (to > from && syscall(SYS_close_range, from, to - 1, 0U) != 0) {
      if (errno != ENOSYS) return errno;
      for (unsigned int fd = from; fd < to && fd < 65536; fd++) close((int)fd);
    }
    if (i < n && to + 1 > from) from = to + 1;
  }
  return 0;
}

/* Step 4: libvirt's virPidFileAcquirePath. The fd is left open on purpose. */
static void acquire_pidfile(const char *path) {
  for (;;) {
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) fail(STEP_PIDFILE_OPEN, errno, 125);
    struct flock lock = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    if (fcntl(fd, F_SETLK, &lock) != 0) fail(STEP_PIDFILE_LOCK, errno, 125);
    /* Someone may have unlinked or replaced it between open and lock: then
       we hold a lock on a file nobody will read. */
    struct stat held, named;
    if (fstat(fd, &held) != 0) fail(STEP_PIDFILE_STAT, errno, 125);
    if (stat(path, &named) != 0) {
      if (errno != ENOENT) fail(STEP_PIDFILE_STAT, errno, 125);
      close(fd);
      continue;
    }
    if (held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
      close(fd);
      continue;
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0) fail(STEP_PIDFILE_WRITE, errno, 125);
    if (write(fd, text, (size_t)len) != len) fail(STEP_PIDFILE_WRITE, errno != 0 ? errno : EIO, 125);
    return;
  }
}

/* The daemon waits for its reparenting: the intermediate's pidfd turns
   readable as it exits. Checked against getppid() first, so a pid already
   gone (and perhaps reused) is never waited on; polled with a timeout for
   the instant between its exit and our new parent. */
static void await_reparent(pid_t intermediate) {
  int fd = (int)syscall(SYS_pidfd_open, intermediate, 0);
  while (getppid() == intermediate) {
    struct pollfd p = { .fd = fd, .events = POLLIN, .revents = 0 };
    if (poll(&p, 1, fd < 0 ? 1 : 10) < 0 && errno != EINTR) break;
  }
  if (fd >= 0) close(fd);
}

/* Step 3. Returns in the daemon; the intermediate never returns. */
static void daemonize(const char *pidfile) {
  if (setsid() < 0) fail(STEP_DAEMON_SETSID, errno, 125);
  if (chdir("/") != 0) fail(STEP_DAEMON_CHDIR, errno, 125);
  pid_t intermediate = getpid();
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) fail(STEP_FORK, errno, 125);
  pid_t pid = fork();
  if (pid < 0) fail(STEP_FORK, errno, 125);
  if (pid > 0) {
    close(ready[1]);
    char line[32];
    int len = snprintf(line, sizeof line, "D %d\n", (int)pid);
    report(line, (size_t)len);
    /* One byte once the pidfile holds the pid; EOF if the daemon failed
       first (it reports that itself). */
    char byte;
    ssize_t n;
    while ((n = read(ready[0], &byte, 1)) < 0 && errno == EINTR) {}
    _exit(n == 1 ? 0 : 125);
  }
  close(ready[0]);
  if (pidfile != NULL) acquire_pidfile(pidfile);
  while (write(ready[1], "1", 1) < 0 && errno == EINTR) {}
  close(ready[1]);
  await_reparent(intermediate);
}

/* Step 9. */
static void handshake(int go_fd) {
  report("R\n", 2);
  char byte;
  ssize_t n;
  while ((n = read(go_fd, &byte, 1)) < 0 && errno == EINTR) {}
  if (n < 0) fail(STEP_HANDSHAKE_READ, errno, 125);
  if (n == 0) fail(STEP_HANDSHAKE_READ, EPIPE, 125);      /* the worker closed without a go */
  if (byte != '1') fail(STEP_HANDSHAKE_READ, EPROTO, 125);
  close(go_fd);
}

int main(int argc, char **argv) {
  struct proc_attrs a;
  proc_attrs_init(&a);
  const char *cwd = NULL, *pidfile = NULL;
  int go_fd = -1, nkeep = 0;
  bool daemon = false, print = false;
  double *keep = NULL;
  int i = 1;
  pid_t parent = getppid();

  /* The status fd first, so that even a bad argument is reported. */
  for (int j = 1; j + 1 < argc && strcmp(argv[j], "--") != 0; j++) {
    if (strcmp(argv[j], "--status-fd") == 0) {
      char *end;
      long fd = strtol(argv[j + 1], &end, 10);
      if (*end == '\0' && fd >= 3 && fd < INT_MAX && fcntl((int)fd, F_SETFD, FD_CLOEXEC) == 0) status_fd = (int)fd;
    }
  }
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const struct attr_desc *d = strncmp(o, "--", 2) == 0 ? attr_find(o + 2) : NULL;
    if (strcmp(o, "--daemonize") == 0) { daemon = true; continue; }
    if (strcmp(o, "--print-attributes") == 0) { print = true; continue; }
    if (d != NULL && d->kind == ATTR_BOOL) { parse_attr(&a, d, NULL); continue; }
    if (v == NULL) fail(STEP_ARGS, EINVAL, 125);
    i++;
    if (d != NULL) parse_attr(&a, d, v);
    else if (strcmp(o, "--status-fd") == 0) continue;
    else if (strcmp(o, "--cwd") == 0) cwd = v;
    else if (strcmp(o, "--pidfile") == 0) pidfile = v;
    else if (strcmp(o, "--handshake-fd") == 0) {
      go_fd = (int)number(v, 3, INT_MAX - 1);
      if (fcntl(go_fd, F_SETFD, FD_CLOEXEC) != 0) fail(STEP_ARGS, errno, 125);
    } else if (strcmp(o, "--keep") == 0) {
      free(keep);
      keep = number_list(v, &nkeep, 0, INT_MAX - 1);
    } else fail(STEP_ARGS, EINVAL, 125);
  }
  if (print) print_attributes(&a);
  /* argv[i] is "--", then the file and the target's argv[0] at least. */
  if (status_fd < 0 || i + 2 >= argc) fail(STEP_ARGS, EINVAL, 125);
  const char *file = argv[i + 1];
  char **target_argv = argv + i + 2;

  /* 1 */
  if (a.umask >= 0) umask((mode_t)a.umask);
  a.umask = -1;
  /* 2 */
  int *kept = malloc((size_t)(nkeep + 2) * sizeof *kept);
  if (kept == NULL) fail(STEP_ARGS, ENOMEM, 125);
  for (int k = 0; k < nkeep; k++) kept[k] = (int)keep[k];
  free(keep);
  kept[nkeep++] = status_fd;
  if (go_fd >= 0) kept[nkeep++] = go_fd;
  CHECK(STEP_CLOSE_FDS, close_other_fds(kept, nkeep));
  free(kept);
  /* 3, 4 */
  if (daemon) daemonize(pidfile);
  /* 5, 6 */
  enum step at = STEP_NONE;
  int err = attrs_apply_before_chdir(&a, &at);
  if (err != 0) fail(at, err, 125);
  /* 7 */
  if (cwd != NULL && !daemon && chdir(cwd) != 0) fail(STEP_CHDIR, errno, 125);
  /* 8 */
  if ((err = attrs_no_new_privs(&a, &at)) != 0) fail(at, err, 125);
  if (!daemon && (err = attrs_death_signal(&a, parent, &at)) != 0) fail(at, err, 125);
  /* 9 */
  if (go_fd >= 0) handshake(go_fd);
  proc_attrs_release(&a);
  /* 10 */
  execve(file, target_argv, environ);
  fail(STEP_EXECVE, errno, errno == ENOENT ? 127 : 126);
}
