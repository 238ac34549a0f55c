/*
 * Process attributes applied between clone/fork and exec, shared by the
 * vfork-style child of spawn.c and the exec helper (exec-helper.c).
 *
 * Everything here is async-signal-safe: plain system calls on data the
 * caller prepared, no malloc, no stdio, no locks, no NSS. What needs NSS
 * (the target user's supplementary groups) is computed by the worker thread
 * before clone and arrives here as a list.
 *
 * The order, libvirt's (virExec, virSetUIDGIDWithCaps):
 *   1. umask
 *   2. rlimits                nproc, nofile, memlock, core; soft = hard
 *   3. capabilities, credentials
 *        PR_SET_KEEPCAPS      when allowed caps must survive a switch to a
 *                             non-root uid
 *        PR_CAPBSET_DROP      every cap not allowed leaves the bounding set
 *                             (needs CAP_SETPCAP, so before capset)
 *        setregid, setgroups, setreuid
 *        capset               effective = permitted = inheritable = allowed
 *        PR_CAP_AMBIENT_RAISE each allowed cap, for a non-root uid: the only
 *                             way a cap survives exec of a plain binary
 *   4. chdir                  (the caller's: the helper chdirs elsewhere)
 *   5. PR_SET_NO_NEW_PRIVS
 *   6. PR_SET_PDEATHSIG       after the credentials: a change of credentials
 *                             clears it
 * Each step reports its errno and its step, whose name the error message
 * carries (step_name()).
 */
#ifndef SPAWNPOOL_ATTRS_H
#define SPAWNPOOL_ATTRS_H

#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#endif

/* Every step a spawn can fail at, the vfork child's and the helper's. */
enum step {
  STEP_NONE, STEP_SIGACTION, STEP_SIGMASK, STEP_SETSID, STEP_SETPGID, STEP_PDEATHSIG,
  STEP_CHDIR, STEP_LIFT, STEP_DUP2, STEP_CLOEXEC, STEP_KEEP, STEP_EXECVE,
  STEP_RLIMIT_NPROC, STEP_RLIMIT_NOFILE, STEP_RLIMIT_MEMLOCK, STEP_RLIMIT_CORE,
  STEP_KEEPCAPS, STEP_CAPBSET, STEP_SETREGID, STEP_SETGROUPS, STEP_SETREUID, STEP_CAPSET,
  STEP_AMBIENT, STEP_NO_NEW_PRIVS,
  /* the helper's own */
  STEP_CLOSE_FDS, STEP_DAEMON_SETSID, STEP_DAEMON_CHDIR, STEP_FORK, STEP_PIDFILE_OPEN,
  STEP_PIDFILE_LOCK, STEP_PIDFILE_STAT, STEP_PIDFILE_WRITE, STEP_HANDSHAKE_WRITE,
  STEP_HANDSHAKE_READ, STEP_DAEMON_WAIT, STEP_ARGS,
  STEP_COUNT
};

static const char *const step_names[STEP_COUNT] = {
  [STEP_NONE] = "spawn", [STEP_SIGACTION] = "sigaction", [STEP_SIGMASK] = "sigprocmask",
  [STEP_SETSID] = "setsid", [STEP_SETPGID] = "setpgid", [STEP_PDEATHSIG] = "prctl(PR_SET_PDEATHSIG)",
  [STEP_CHDIR] = "chdir", [STEP_LIFT] = "fcntl", [STEP_DUP2] = "dup2",
  [STEP_CLOEXEC] = "close_range", [STEP_KEEP] = "fcntl", [STEP_EXECVE] = "execve",
  [STEP_RLIMIT_NPROC] = "setrlimit(RLIMIT_NPROC)", [STEP_RLIMIT_NOFILE] = "setrlimit(RLIMIT_NOFILE)",
  [STEP_RLIMIT_MEMLOCK] = "setrlimit(RLIMIT_MEMLOCK)", [STEP_RLIMIT_CORE] = "setrlimit(RLIMIT_CORE)",
  [STEP_KEEPCAPS] = "prctl(PR_SET_KEEPCAPS)", [STEP_CAPBSET] = "prctl(PR_CAPBSET_DROP)",
  [STEP_SETREGID] = "setregid", [STEP_SETGROUPS] = "setgroups", [STEP_SETREUID] = "setreuid",
  [STEP_CAPSET] = "capset", [STEP_AMBIENT] = "prctl(PR_CAP_AMBIENT_RAISE)",
  [STEP_NO_NEW_PRIVS] = "prctl(PR_SET_NO_NEW_PRIVS)",
  [STEP_CLOSE_FDS] = "close_range", [STEP_DAEMON_SETSID] = "setsid", [STEP_DAEMON_CHDIR] = "chdir(/)",
  [STEP_FORK] = "fork", [STEP_PIDFILE_OPEN] = "open(pidfile)", [STEP_PIDFILE_LOCK] = "fcntl(pidfile, F_SETLK)",
  [STEP_PIDFILE_STAT] = "stat(pidfile)", [STEP_PIDFILE_WRITE] = "write(pidfile)",
  [STEP_HANDSHAKE_WRITE] = "handshake(write)", [STEP_HANDSHAKE_READ] = "handshake(read)",
  [STEP_DAEMON_WAIT] = "daemon(wait)", [STEP_ARGS] = "exec helper arguments",
};

static inline const char *step_name(int step) {
  return step >= 0 && step < STEP_COUNT && step_names[step] != NULL ? step_names[step] : "spawn";
}

enum { RLIM_NPROC_I, RLIM_NOFILE_I, RLIM_MEMLOCK_I, RLIM_CORE_I, RLIM_COUNT };

/* What the caller asked for; -1 (or false) leaves a thing as inherited. */
struct proc_attrs {
  int umask;
  long long rlim[RLIM_COUNT];
  int uid, gid;
  int ngroups;                 /* -1: no setgroups */
  const gid_t *groups;
  bool restrict_caps;          /* drop every cap but allowed_caps */
  uint64_t allowed_caps;
  bool no_new_privs;
};

static inline void proc_attrs_init(struct proc_attrs *a) {
  a->umask = -1;
  for (int i = 0; i < RLIM_COUNT; i++) a->rlim[i] = -1;
  a->uid = a->gid = -1;
  a->ngroups = -1;
  a->groups = 0;
  a->restrict_caps = false;
  a->allowed_caps = 0;
  a->no_new_privs = false;
}

static inline int attrs_rlimits(const struct proc_attrs *a, enum step *step) {
  static const int resource[RLIM_COUNT] = { RLIMIT_NPROC, RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_CORE };
  static const enum step steps[RLIM_COUNT] = { STEP_RLIMIT_NPROC, STEP_RLIMIT_NOFILE, STEP_RLIMIT_MEMLOCK, STEP_RLIMIT_CORE };
  for (int i = 0; i < RLIM_COUNT; i++) {
    if (a->rlim[i] < 0) continue;
    struct rlimit lim = { (rlim_t)a->rlim[i], (rlim_t)a->rlim[i] };
    if (setrlimit(resource[i], &lim) != 0) {
      *step = steps[i];
      return errno;
    }
  }
  return 0;
}

#define ATTR_FAIL(s) do { *step = (s); return errno; } while (0)

static inline int attrs_credentials(const struct proc_attrs *a, enum step *step) {
  bool to_user = a->uid > 0;
  if (a->restrict_caps) {
    /* Without it a switch to a non-root uid empties the permitted set, and
       capset could not give back what is allowed. */
    if (to_user && a->allowed_caps != 0 && prctl(PR_SET_KEEPCAPS, 1UL, 0UL, 0UL, 0UL) != 0) ATTR_FAIL(STEP_KEEPCAPS);
    for (unsigned long cap = 0; cap < 64; cap++) {
      if (a->allowed_caps & (1ULL << cap)) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0UL, 0UL, 0UL) != 0) {
        if (errno == EINVAL) break;   /* past the kernel's last cap */
        ATTR_FAIL(STEP_CAPBSET);
      }
    }
  }
  /* Raw system calls, as glibc's own posix_spawn makes them: its wrappers
     broadcast the change to every thread of the process (setxid), taking a
     lock and marking the threads it finds, which in a vfork child are the
     parent's. The kernel changes this process only, which is what we want. */
  if (a->gid >= 0 && syscall(SYS_setregid, (gid_t)a->gid, (gid_t)a->gid) != 0) ATTR_FAIL(STEP_SETREGID);
  if (a->ngroups >= 0 && syscall(SYS_setgroups, (size_t)a->ngroups, a->groups) != 0) ATTR_FAIL(STEP_SETGROUPS);
  if (a->uid >= 0 && syscall(SYS_setreuid, (uid_t)a->uid, (uid_t)a->uid) != 0) ATTR_FAIL(STEP_SETREUID);
  if (a->restrict_caps) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
      uint32_t word = (uint32_t)(a->allowed_caps >> (32 * i));
      data[i].effective = data[i].permitted = data[i].inheritable = word;
    }
    if (syscall(SYS_capset, &hdr, data) != 0) ATTR_FAIL(STEP_CAPSET);
    if (to_user) {
      for (unsigned long cap = 0; cap < 64; cap++) {
        if ((a->allowed_caps & (1ULL << cap)) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0UL, 0UL) != 0) ATTR_FAIL(STEP_AMBIENT);
      }
    }
  }
  return 0;
}

/* Steps 1-3 (umask, rlimits, caps and credentials). */
static inline int attrs_apply_before_chdir(const struct proc_attrs *a, enum step *step) {
  if (a->umask >= 0) umask((mode_t)a->umask);
  int err = attrs_rlimits(a, step);
  return err != 0 ? err : attrs_credentials(a, step);
}

/* Step 5. */
static inline int attrs_no_new_privs(const struct proc_attrs *a, enum step *step) {
  if (a->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) ATTR_FAIL(STEP_NO_NEW_PRIVS);
  return 0;
}

/* Step 6. The kernel sends it when the *thread* that cloned us ends. */
static inline int attrs_death_signal(int sig, pid_t parent, enum step *step) {
  if (sig == 0) return 0;
  if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) != 0) ATTR_FAIL(STEP_PDEATHSIG);
  /* A parent that died before the prctl will never send it. */
  if (getppid() != parent) {
    *step = STEP_PDEATHSIG;
    return ESRCH;
  }
  return 0;
}

#undef ATTR_FAIL

#endif
