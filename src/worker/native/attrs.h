/*
 * Process attributes applied between clone/fork and exec, shared by the
 * vfork-style child (child.c) and the exec helper (exec-helper.c).
 *
 * PROC_ATTRS below is the one list of them. Each entry is
 *   X(name, kind, min, max, resource, step name)
 *   name       the key of ProcessAttributes in src/shared/spec.ts, the field
 *              of struct proc_attrs, the addon's spawn() flag and the exec
 *              helper's option (--name), all four spelled the same
 *   kind       RLIMIT  an rlimit, soft = hard, applied by setrlimit(resource)
 *              INT     an integer
 *              BOOL    true or false
 *              LIST    a list of integers
 *   min, max   the range of the value, or of each element of a list
 *   step name  what a failure of its system call reads as in errors
 * From it come the struct, the attribute table (attr_table, which the addon
 * also hands to JavaScript), the step enum and its names, and attr_set(),
 * the one place a value is checked and stored. The addon (from a JS object)
 * and the exec helper (from its argv) are two thin front ends over it. An
 * rlimit needs nothing more than its entry; any other kind also needs its
 * step in the sequence below.
 *
 * The apply functions are async-signal-safe: plain system calls on data the
 * caller prepared, no malloc, no stdio, no locks, no NSS. What needs NSS
 * (the target user's supplementary groups) is looked up by the worker thread
 * before clone and arrives here as the groups list. The parsers and
 * proc_attrs_release() allocate and free: the parent and the helper only.
 *
 * The order, libvirt's (virExec, virSetUIDGIDWithCaps):
 *   1. umask
 *   2. rlimits                every RLIMIT entry, in list order
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
 */
#ifndef SPAWNPOOL_ATTRS_H
#define SPAWNPOOL_ATTRS_H

#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* 2^53 - 1: every integer up to it is exact in a JS number. */
#define ATTR_RLIM_MAX 9007199254740991LL
/* (uid_t)-1 means "unchanged" to setreuid: never a value. */
#define ATTR_ID_MAX 0x7fffffffLL

#define PROC_ATTRS(X) \
  X(umask,             INT,    0, 0777,          0,              "umask") \
  X(maxProcesses,      RLIMIT, 0, ATTR_RLIM_MAX, RLIMIT_NPROC,   "setrlimit(RLIMIT_NPROC)") \
  X(maxFiles,          RLIMIT, 0, ATTR_RLIM_MAX, RLIMIT_NOFILE,  "setrlimit(RLIMIT_NOFILE)") \
  X(maxMemLock,        RLIMIT, 0, ATTR_RLIM_MAX, RLIMIT_MEMLOCK, "setrlimit(RLIMIT_MEMLOCK)") \
  X(maxCoreSize,       RLIMIT, 0, ATTR_RLIM_MAX, RLIMIT_CORE,    "setrlimit(RLIMIT_CORE)") \
  X(uid,               INT,    0, ATTR_ID_MAX,   0,              "setreuid") \
  X(gid,               INT,    0, ATTR_ID_MAX,   0,              "setregid") \
  X(groups,            LIST,   0, ATTR_ID_MAX,   0,              "setgroups") \
  X(clearCaps,         BOOL,   0, 1,             0,              "prctl(PR_CAPBSET_DROP)") \
  X(allowedCaps,       LIST,   0, 63,            0,              "capset") \
  X(noNewPrivileges,   BOOL,   0, 1,             0,              "prctl(PR_SET_NO_NEW_PRIVS)") \
  X(parentDeathSignal, INT,    1, NSIG - 1,      0,              "prctl(PR_SET_PDEATHSIG)")

/* The steps that are no attribute's own: the vfork child's, then the helper's. */
#define SPAWN_STEPS(X) \
  X(NONE, "spawn") X(SIGACTION, "sigaction") X(SIGMASK, "sigprocmask") X(SETSID, "setsid") \
  X(SETPGID, "setpgid") X(DUP3, "dup3") X(DUP2, "dup2") X(INHERIT, "fcntl") X(CLOEXEC, "close_range") \
  X(CHDIR, "chdir") X(EXECVE, "execve") X(KEEPCAPS, "prctl(PR_SET_KEEPCAPS)") \
  X(AMBIENT, "prctl(PR_CAP_AMBIENT_RAISE)") X(PDEATHSIG_LOST, "prctl(PR_SET_PDEATHSIG)") \
  X(CLOSE_FDS, "close_range") X(DAEMON_SETSID, "setsid") X(DAEMON_CHDIR, "chdir(/)") X(FORK, "fork") \
  X(PIDFILE_OPEN, "open(pidfile)") X(PIDFILE_LOCK, "fcntl(pidfile, F_SETLK)") X(PIDFILE_STAT, "stat(pidfile)") \
  X(PIDFILE_WRITE, "write(pidfile)") X(HANDSHAKE_WRITE, "handshake(write)") X(HANDSHAKE_READ, "handshake(read)") \
  X(DAEMON_WAIT, "daemon(wait)") X(ARGS, "exec helper arguments")

enum step {
#define X(id, text) STEP_##id,
  SPAWN_STEPS(X)
#undef X
#define X(name, kind, min, max, resource, text) STEP_ATTR_##name,
  PROC_ATTRS(X)
#undef X
  STEP_COUNT
};

static const char *const step_names[STEP_COUNT] = {
#define X(id, text) [STEP_##id] = text,
  SPAWN_STEPS(X)
#undef X
#define X(name, kind, min, max, resource, text) [STEP_ATTR_##name] = text,
  PROC_ATTRS(X)
#undef X
};

static inline const char *step_name(int step) {
  return step >= 0 && step < STEP_COUNT && step_names[step] != NULL ? step_names[step] : "spawn";
}

enum attr_kind { ATTR_RLIMIT, ATTR_INT, ATTR_BOOL, ATTR_LIST };

/* n < 0: not given. */
struct attr_list {
  int n;
  int *v;
};

#define ATTR_CTYPE_RLIMIT long long
#define ATTR_CTYPE_INT long long
#define ATTR_CTYPE_BOOL long long
#define ATTR_CTYPE_LIST struct attr_list

/* What the caller asked for; a scalar at -1 (a BOOL at 0) is left as
   inherited. */
struct proc_attrs {
#define X(name, kind, min, max, resource, text) ATTR_CTYPE_##kind name;
  PROC_ATTRS(X)
#undef X
};

struct attr_desc {
  const char *name;
  enum attr_kind kind;
  long long min, max;
  int resource;
  enum step step;
  size_t offset;
};

enum {
#define X(name, kind, min, max, resource, text) ATTR_INDEX_##name,
  PROC_ATTRS(X)
#undef X
  ATTR_COUNT
};

static const struct attr_desc attr_table[ATTR_COUNT] = {
#define X(name, kind, min, max, resource, text) \
  { #name, ATTR_##kind, (min), (max), (resource), STEP_ATTR_##name, offsetof(struct proc_attrs, name) },
  PROC_ATTRS(X)
#undef X
};

/* The field an entry describes. Const in, writable out: the callers that
   only read pass their const struct. */
static inline long long *attr_scalar(const struct proc_attrs *a, const struct attr_desc *d) {
  return (long long *)(void *)((const char *)a + d->offset);
}

static inline struct attr_list *attr_list(const struct proc_attrs *a, const struct attr_desc *d) {
  return (struct attr_list *)(void *)((const char *)a + d->offset);
}

static inline void proc_attrs_init(struct proc_attrs *a) {
  for (int i = 0; i < ATTR_COUNT; i++) {
    const struct attr_desc *d = &attr_table[i];
    if (d->kind == ATTR_LIST) *attr_list(a, d) = (struct attr_list){ -1, NULL };
    else *attr_scalar(a, d) = d->kind == ATTR_BOOL ? 0 : -1;
  }
}

static inline void proc_attrs_release(struct proc_attrs *a) {
  for (int i = 0; i < ATTR_COUNT; i++) {
    if (attr_table[i].kind != ATTR_LIST) continue;
    struct attr_list *l = attr_list(a, &attr_table[i]);
    free(l->v);
    *l = (struct attr_list){ -1, NULL };
  }
}

static inline const struct attr_desc *attr_find(const char *name) {
  for (int i = 0; i < ATTR_COUNT; i++) {
    const char *s = attr_table[i].name, *t = name;
    while (*s != '\0' && *s == *t) s++, t++;
    if (*s == '\0' && *t == '\0') return &attr_table[i];
  }
  return NULL;
}

/* The one check and store of an attribute's value: n values (exactly 1 but
   for a LIST), each an integer in the entry's range. Doubles, because that
   is what JS hands over, and every value in range is exact in one. Returns
   0, ERANGE (out of range, not an integer), EINVAL (a list where a scalar
   goes) or ENOMEM. */
static inline int attr_set(struct proc_attrs *a, const struct attr_desc *d, const double *values, int n) {
  if (n < 0 || (d->kind != ATTR_LIST && n != 1)) return EINVAL;
  for (int i = 0; i < n; i++) {
    /* The range first: the cast below is only defined in range. NaN fails it. */
    if (!(values[i] >= (double)d->min && values[i] <= (double)d->max)) return ERANGE;
    if (values[i] != (double)(long long)values[i]) return ERANGE;
  }
  if (d->kind != ATTR_LIST) {
    *attr_scalar(a, d) = (long long)values[0];
    return 0;
  }
  int *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  if (v == NULL) return ENOMEM;
  for (int i = 0; i < n; i++) v[i] = (int)values[i];
  struct attr_list *l = attr_list(a, d);
  free(l->v);
  *l = (struct attr_list){ n, v };
  return 0;
}

/* What was parsed, one "name value" line per given attribute (a list
   comma-separated), for the tests of both front ends. Like snprintf:
   returns the length it needed, writes at most cap bytes, NUL included. */
static inline size_t attrs_format(const struct proc_attrs *a, char *out, size_t cap) {
  size_t at = 0;
#define ATTR_PUT(...) do { \
    int k_ = snprintf(out + (at < cap ? at : cap), at < cap ? cap - at : 0, __VA_ARGS__); \
    if (k_ > 0) at += (size_t)k_; \
  } while (0)
  if (cap > 0) out[0] = '\0';
  for (int i = 0; i < ATTR_COUNT; i++) {
    const struct attr_desc *d = &attr_table[i];
    if (d->kind == ATTR_LIST) {
      const struct attr_list *l = attr_list(a, d);
      if (l->n < 0) continue;
      ATTR_PUT("%s ", d->name);
      for (int k = 0; k < l->n; k++) ATTR_PUT(k == 0 ? "%d" : ",%d", l->v[k]);
      ATTR_PUT("\n");
    } else if (*attr_scalar(a, d) != (d->kind == ATTR_BOOL ? 0 : -1)) {
      ATTR_PUT("%s %lld\n", d->name, *attr_scalar(a, d));
    }
  }
#undef ATTR_PUT
  return at;
}

/* ---- applying them (async-signal-safe) ---------------------------------- */

#define ATTR_FAIL(s) do { *step = (s); return errno; } while (0)

static inline int attrs_rlimits(const struct proc_attrs *a, enum step *step) {
  for (int i = 0; i < ATTR_COUNT; i++) {
    const struct attr_desc *d = &attr_table[i];
    long long v;
    if (d->kind != ATTR_RLIMIT || (v = *attr_scalar(a, d)) < 0) continue;
    struct rlimit lim = { (rlim_t)v, (rlim_t)v };
    if (setrlimit(d->resource, &lim) != 0) ATTR_FAIL(d->step);
  }
  return 0;
}

static inline int attrs_credentials(const struct proc_attrs *a, enum step *step) {
  bool to_user = a->uid > 0;
  /* Any allowed cap also drops all the others. */
  bool restrict_caps = a->clearCaps || a->allowedCaps.n > 0;
  uint64_t allowed = 0;
  for (int i = 0; i < a->allowedCaps.n; i++) allowed |= 1ULL << a->allowedCaps.v[i];
  if (restrict_caps) {
    /* Without it a switch to a non-root uid empties the permitted set, and
       capset could not give back what is allowed. */
    if (to_user && allowed != 0 && prctl(PR_SET_KEEPCAPS, 1UL, 0UL, 0UL, 0UL) != 0) ATTR_FAIL(STEP_KEEPCAPS);
    for (unsigned long cap = 0; cap < 64; cap++) {
      if (allowed & (1ULL << cap)) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0UL, 0UL, 0UL) != 0) {
        if (errno == EINVAL) break;   /* past the kernel's last cap */
        ATTR_FAIL(STEP_ATTR_clearCaps);
      }
    }
  }
  /* Raw system calls, as glibc's own posix_spawn makes them: its wrappers
     broadcast the change to every thread of the process (setxid), taking a
     lock and marking the threads it finds, which in a vfork child are the
     parent's. The kernel changes this process only, which is what we want. */
  if (a->gid >= 0 && syscall(SYS_setregid, (gid_t)a->gid, (gid_t)a->gid) != 0) ATTR_FAIL(STEP_ATTR_gid);
  _Static_assert(sizeof(gid_t) == sizeof(int), "groups are stored as int");
  if (a->groups.n >= 0 && syscall(SYS_setgroups, (size_t)a->groups.n, (const gid_t *)a->groups.v) != 0)
    ATTR_FAIL(STEP_ATTR_groups);
  if (a->uid >= 0 && syscall(SYS_setreuid, (uid_t)a->uid, (uid_t)a->uid) != 0) ATTR_FAIL(STEP_ATTR_uid);
  if (restrict_caps) {
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
      uint32_t word = (uint32_t)(allowed >> (32 * i));
      data[i].effective = data[i].permitted = data[i].inheritable = word;
    }
    if (syscall(SYS_capset, &hdr, data) != 0) ATTR_FAIL(STEP_ATTR_allowedCaps);
    if (to_user) {
      for (unsigned long cap = 0; cap < 64; cap++) {
        if ((allowed & (1ULL << cap)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0UL, 0UL) != 0)
          ATTR_FAIL(STEP_AMBIENT);
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
  if (a->noNewPrivileges && prctl(PR_SET_NO_NEW_PRIVS, 1UL, 0UL, 0UL, 0UL) != 0) ATTR_FAIL(STEP_ATTR_noNewPrivileges);
  return 0;
}

/* Step 6. The kernel sends it when the *thread* that cloned us ends. */
static inline int attrs_death_signal(const struct proc_attrs *a, pid_t parent, enum step *step) {
  if (a->parentDeathSignal <= 0) return 0;
  if (prctl(PR_SET_PDEATHSIG, (unsigned long)a->parentDeathSignal, 0UL, 0UL, 0UL) != 0)
    ATTR_FAIL(STEP_ATTR_parentDeathSignal);
  /* A parent that died before the prctl will never send it. */
  if (getppid() != parent) {
    *step = STEP_PDEATHSIG_LOST;
    return ESRCH;
  }
  return 0;
}

#undef ATTR_FAIL

#endif
