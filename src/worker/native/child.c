/*
 * The child of spawn.c's clone(CLONE_VM | CLONE_VFORK), from clone to exec.
 *
 * It runs on a borrowed stack in the parent's memory, so it is
 * async-signal-safe only: no malloc, no stdio, no locks, and it writes
 * nothing of the parent's but the failure it reports. Each step returns 0
 * or an errno; the first failure is written into the plan with its step,
 * and the child _exit(127)s. In this order:
 *   1. reset_signal_handlers  every disposition to SIG_DFL, SIGCHLD's first
 *                             (the only one the parent leaves unblocked): no
 *                             parent handler may run on this stack, and a
 *                             SIG_IGN (SIGPIPE, in Node) would survive exec
 *   2. unblock_signals        empty mask (the parent blocked everything)
 *   3. start_session          setsid() or setpgid(0, 0), when asked
 *   4. run_fd_plan            the parent's list, in order: copy sources out
 *                             of the way, dup2 onto 0, 1, 2, mark every fd
 *                             from 3 up close-on-exec, clear it on each
 *                             keepFd, dup2 each moved fd onto its number
 *   5. attrs.h: umask, rlimits, capabilities and credentials
 *   6. chdir, when a cwd is given: after the credentials, as the new user
 *   7. attrs.h: no_new_privs, then the parent-death signal, which a change
 *      of credentials clears
 *   8. execve
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "child.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static _Noreturn void child_fail(struct child_plan *p, enum step step, int err) {
  p->failed_errno = err;
  p->failed_step = step;
  _exit(127);
}

static int reset_signal_handlers(void) {
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  /* First: the parent does not block it across the clone (spawn.c). */
  if (sigaction(SIGCHLD, &dfl, NULL) != 0) return errno;
  for (int sig = 1; sig < NSIG; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD) continue;
    /* glibc refuses the two real-time signals it keeps for itself (EINVAL).
       They are only ever sent to threads glibc knows, which this child is
       not, and exec resets their handlers. */
    if (sigaction(sig, &dfl, NULL) != 0 && errno != EINVAL) return errno;
  }
  return 0;
}

static int unblock_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  return sigprocmask(SIG_SETMASK, &none, NULL) == 0 ? 0 : errno;
}

static int start_session(enum session session) {
  if (session == SESSION_NEW) return setsid() < 0 ? errno : 0;
  return setpgid(0, 0) < 0 ? errno : 0;
}

/* Marking instead of closing keeps this one call whatever the keepFds are;
   the kernel closes them all at exec. */
static int mark_fds_cloexec(int from) {
  if (syscall(SYS_close_range, (unsigned int)from, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return 0;
  /* ENOSYS before Linux 5.9; EINVAL for the flag before 5.11. Reading
     /proc/self/fd would need opendir, which allocates: walk the fd space. */
  if (errno != ENOSYS && errno != EINVAL) return errno;
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return errno;
  int end = lim.rlim_cur > INT_MAX ? INT_MAX : (int)lim.rlim_cur;
  for (int fd = from; fd < end; fd++) {
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF) return errno;
  }
  return 0;
}

static int run_fd_action(const struct fd_action *a) {
  switch (a->op) {
  case FD_DUP: return dup3(a->src, a->dst, O_CLOEXEC) < 0 ? errno : 0;
  case FD_DUP2: return dup2(a->src, a->dst) < 0 ? errno : 0;
  case FD_INHERIT: return fcntl(a->dst, F_SETFD, 0) < 0 ? errno : 0;
  case FD_CLOEXEC_FROM: return mark_fds_cloexec(a->dst);
  }
  return EINVAL;
}

static int run_fd_plan(const struct child_plan *p, enum step *step) {
  static const enum step steps[] = {
    [FD_DUP] = STEP_DUP3, [FD_DUP2] = STEP_DUP2, [FD_INHERIT] = STEP_INHERIT, [FD_CLOEXEC_FROM] = STEP_CLOEXEC,
  };
  for (uint32_t i = 0; i < p->nfds; i++) {
    int err = run_fd_action(&p->fds[i]);
    if (err != 0) {
      *step = steps[p->fds[i].op];
      return err;
    }
  }
  return 0;
}

#define STEP(id, call) do { int e_ = (call); if (e_ != 0) child_fail(p, (id), e_); } while (0)
#define STEPS(call) do { enum step at_ = STEP_NONE; int e_ = (call); if (e_ != 0) child_fail(p, at_, e_); } while (0)

int child_main(void *arg) {
  struct child_plan *p = arg;
  STEP(STEP_SIGACTION, reset_signal_handlers());
  STEP(STEP_SIGMASK, unblock_signals());
  if (p->session != SESSION_KEEP)
    STEP(p->session == SESSION_NEW ? STEP_SETSID : STEP_SETPGID, start_session(p->session));
  STEPS(run_fd_plan(p, &at_));
  STEPS(attrs_apply_before_chdir(&p->attrs, &at_));
  if (p->cwd != NULL) STEP(STEP_CHDIR, chdir(p->cwd) == 0 ? 0 : errno);
  STEPS(attrs_no_new_privs(&p->attrs, &at_));
  STEPS(attrs_death_signal(&p->attrs, p->parent, &at_));
  execve(p->file, p->argv, p->envp);
  child_fail(p, STEP_EXECVE, errno);
}
