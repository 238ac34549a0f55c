/*
 * spawnpool_native: the few system calls JavaScript cannot make.
 *
 * spawn() starts a program with clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD).
 * The child borrows the parent's memory until it execs, so no page table is
 * copied and the cost does not grow with the heap (fork copies the tables of
 * the whole process, whichever thread calls it). watch() reaps the child
 * through its pidfd on the calling thread's own libuv loop: no SIGCHLD, no
 * waitpid(-1), nothing shared between the worker threads.
 *
 * The parent, in launch_job() (spawn.h: the JS spawn() is parse_job() and
 * launch_job(), and so may be another C file's):
 *   1. parse_job(): every argument in its C form: the child must not allocate;
 *   2. check that the fds the caller named are open, then take this thread's
 *      /dev/null and open the pipes, all O_CLOEXEC so that no other spawn
 *      inherits them;
 *   3. build_fd_plan(): the child's fd work as a flat list of actions;
 *   4. block every signal in this thread, clone, restore the mask; the
 *      thread sleeps until the child has exec'ed or exited;
 *   5. if a step failed: reap that one pid, close all it opened, throw;
 *   6. close the child's ends, hand the parent's over.
 *
 * The child, between clone and exec, is child.c. The supplementary groups
 * of a target user need NSS: the worker looks them up (groupList(), before
 * spawn()), never the child.
 *
 * What a vfork child cannot do (daemonize, which forks again; a handshake,
 * which would block this thread) the exec helper does: see exec-helper.c.
 */
#define _GNU_SOURCE
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <pwd.h>

#include "spawn.h"
#include "runner.h"

/* Older headers: the numbers are the same on every architecture since 5.1. */
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* Under AddressSanitizer: the previous child never returned from its frames,
   so their poison is still in the shadow of the reused stack. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FRESH_STACK(base, len) __asan_unpoison_memory_region((base), (len))
#else
#define FRESH_STACK(base, len) ((void)0)
#endif

/* The child needs a few hundred bytes; the rest is margin for sanitizers. */
#define CHILD_STACK_SIZE (64 * 1024)

/* ---- errors ------------------------------------------------------------- */

static const char *errno_name(int err) {
  const char *name = strerrorname_np(err);
  return name != NULL ? name : "UNKNOWN";
}

/* Throws Error("<syscall>: <text>") with .code, .errno (negative, as Node's
   own system errors have it) and .syscall. Returns -1 for `return throw...`. */
int throw_errno(napi_env env, int err, const char *syscall) {
  const char *text = strerrordesc_np(err);
  char message[160];
  snprintf(message, sizeof message, "%s: %s (%s)", syscall, errno_name(err), text != NULL ? text : "Unknown error");
  napi_value code, msg, error, sc, num;
  if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg) != napi_ok ||
      napi_create_error(env, code, msg, &error) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc) != napi_ok ||
      napi_set_named_property(env, error, "syscall", sc) != napi_ok ||
      napi_create_int32(env, -err, &num) != napi_ok ||
      napi_set_named_property(env, error, "errno", num) != napi_ok) {
    napi_throw_error(env, errno_name(err), message);
    return -1;
  }
  napi_throw(env, error);
  return -1;
}

static int throw_type(napi_env env, const char *what, const char *expected) {
  char message[128];
  snprintf(message, sizeof message, "%s must be %s", what, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return -1;
}

static int throw_range(napi_env env, const char *message) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
  return -1;
}

/* ---- arguments ---------------------------------------------------------- */

static int js_string(napi_env env, napi_value v, const char *what, char **out) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return throw_type(env, what, "a string");
  char *s = malloc(len + 1);
  if (s == NULL) return throw_errno(env, ENOMEM, "malloc");
  napi_get_value_string_utf8(env, v, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    return throw_type(env, what, "a string without NUL bytes");
  }
  *out = s;
  return 0;
}

/* A NULL-terminated vector and its bytes in one allocation, so the child
   reads it as is and the parent frees it with one call. */
static int js_string_array(napi_env env, napi_value v, const char *what, char ***out) {
  bool is_array = false;
  uint32_t n;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, v, &n) != napi_ok)
    return throw_type(env, what, "an array of strings");
  size_t bytes = 0, len;
  napi_value el;
  for (uint32_t i = 0; i < n; i++) {
    if (napi_get_element(env, v, i, &el) != napi_ok ||
        napi_get_value_string_utf8(env, el, NULL, 0, &len) != napi_ok)
      return throw_type(env, what, "an array of strings");
    bytes += len + 1;
  }
  char **vec = malloc(((size_t)n + 1) * sizeof *vec + bytes);
  if (vec == NULL) return throw_errno(env, ENOMEM, "malloc");
  char *cursor = (char *)(vec + n + 1), *end = cursor + bytes;
  for (uint32_t i = 0; i < n; i++) {
    /* A getter may answer with another string the second time. Copying it
       bounded by what is left would truncate it silently, or, with nothing
       left, copy nothing and leave strlen() to read past the end: measure
       this very value and refuse it unless it fits whole. */
    if (napi_get_element(env, v, i, &el) != napi_ok ||
        napi_get_value_string_utf8(env, el, NULL, 0, &len) != napi_ok) {
      free(vec);
      return throw_type(env, what, "an array of strings");
    }
    if (len >= (size_t)(end - cursor)) {
      free(vec);
      return throw_type(env, what, "an array of strings that do not change while read");
    }
    napi_get_value_string_utf8(env, el, cursor, len + 1, &len);
    if (strlen(cursor) != len) {
      free(vec);
      return throw_type(env, what, "an array of strings without NUL bytes");
    }
    vec[i] = cursor;
    cursor += len + 1;
  }
  vec[n] = NULL;
  *out = vec;
  return 0;
}

/* The environment as environBlock() gives it: "K=V" entries, each ended by
   a NUL, in one buffer. Into the same one-allocation vector as above. */
static int js_env_block(napi_env env, napi_value v, char ***out) {
  void *data = NULL;
  size_t len = 0;
  if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return throw_type(env, "envp", "an array of strings or a Buffer");
  const char *bytes = data;
  if (len > 0 && bytes[len - 1] != '\0') return throw_type(env, "envp", "a Buffer of NUL-terminated entries");
  /* Entries are counted by their first byte; empty ones are dropped. */
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += bytes[i] != '\0' && (i == 0 || bytes[i - 1] == '\0');
  char **vec = malloc((n + 1) * sizeof *vec + len);
  if (vec == NULL) return throw_errno(env, ENOMEM, "malloc");
  char *copy = (char *)(vec + n + 1);
  if (len > 0) memcpy(copy, bytes, len);
  size_t k = 0;
  for (size_t at = 0; at < len; at += strlen(copy + at) + 1) {
    if (copy[at] != '\0') vec[k++] = copy + at;
  }
  vec[k] = NULL;
  *out = vec;
  return 0;
}

/* An array of numbers, as doubles; *out is the caller's to free. */
static int js_number_array(napi_env env, napi_value v, const char *what, double **out, uint32_t *count) {
  bool is_array = false;
  napi_value el;
  *out = NULL;
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, count) != napi_ok)
    return throw_type(env, what, "an array of numbers");
  if ((*out = malloc(((size_t)*count + 1) * sizeof **out)) == NULL) return throw_errno(env, ENOMEM, "malloc");
  for (uint32_t i = 0; i < *count; i++) {
    if (napi_get_element(env, v, i, &el) != napi_ok || napi_get_value_double(env, el, &(*out)[i]) != napi_ok)
      return throw_type(env, what, "an array of numbers");
  }
  return 0;
}

/* An array of fd numbers (or stdio codes); *out is the caller's to free. */
static int js_int_array(napi_env env, napi_value v, const char *what, int **out, uint32_t *count) {
  double *d;
  int rc = js_number_array(env, v, what, &d, count);
  *out = rc == 0 ? malloc(((size_t)*count + 1) * sizeof **out) : NULL;
  if (rc == 0 && *out == NULL) rc = throw_errno(env, ENOMEM, "malloc");
  for (uint32_t i = 0; rc == 0 && i < *count; i++) {
    if (!(d[i] >= INT_MIN && d[i] <= INT_MAX) || d[i] != (double)(int)d[i]) rc = throw_type(env, what, "an array of integers");
    else (*out)[i] = (int)d[i];
  }
  free(d);
  return rc;
}

static int throw_attr_range(napi_env env, const struct attr_desc *d) {
  char message[128];
  snprintf(message, sizeof message, "%s must be %s from %lld to %lld", d->name,
           d->kind == ATTR_LIST ? "a list of integers" : "an integer", d->min, d->max);
  return throw_range(env, message);
}

/* One attribute from JS, converted by its kind and stored by attr_set(). */
static int parse_attr(napi_env env, const struct attr_desc *d, napi_value v, napi_valuetype t, struct proc_attrs *a) {
  double one, *values = &one;
  uint32_t n = 1;
  bool b;
  if (d->kind == ATTR_BOOL) {
    if (t != napi_boolean) return throw_type(env, d->name, "a boolean");
    if (napi_get_value_bool(env, v, &b) != napi_ok) return -1;
    one = b;
  } else if (d->kind == ATTR_LIST) {
    if (js_number_array(env, v, d->name, &values, &n) != 0) {
      free(values);
      return -1;
    }
  } else if (t != napi_number || napi_get_value_double(env, v, &one) != napi_ok) {
    return throw_type(env, d->name, "a number");
  }
  int rc = n > INT_MAX ? ERANGE : attr_set(a, d, values, (int)n);
  if (values != &one) free(values);
  if (rc == ERANGE) return throw_attr_range(env, d);
  if (rc != 0) return throw_errno(env, rc, "malloc");
  return 0;
}

static const struct attr_desc *attr_named(const char *name) {
  for (int i = 0; i < ATTR_COUNT; i++)
    if (strcmp(attr_table[i].name, name) == 0) return &attr_table[i];
  return NULL;
}

/* The keys of spawn()'s flags that are not process attributes. */
struct job_flags {
  bool setsid, setpgid;
  napi_value move_fds;           /* NULL when not given */
};

/* The front end of attrs.h's parser for JS. Only the keys the object has
   are read: a plain run's flags hold one or two, and a lookup by name per
   entry of the table (a V8 string made for each) cost more than the rest of
   the parsing. A key nobody knows is refused, not ignored. `job` NULL:
   attributes only. */
static int parse_flags(napi_env env, napi_value flags, struct proc_attrs *a, struct job_flags *job) {
  napi_value keys;
  uint32_t nkeys;
  proc_attrs_init(a);
  if (napi_get_all_property_names(env, flags, napi_key_own_only, napi_key_enumerable | napi_key_skip_symbols,
                                  napi_key_numbers_to_strings, &keys) != napi_ok ||
      napi_get_array_length(env, keys, &nkeys) != napi_ok)
    return -1;
  for (uint32_t i = 0; i < nkeys; i++) {
    napi_value key, v;
    napi_valuetype t;
    char name[32];
    size_t len;
    if (napi_get_element(env, keys, i, &key) != napi_ok || napi_get_value_string_utf8(env, key, name, sizeof name, &len) != napi_ok ||
        napi_get_property(env, flags, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok)
      return -1;
    if (t == napi_undefined) continue;
    const struct attr_desc *d = len < sizeof name - 1 ? attr_named(name) : NULL;
    if (d != NULL) {
      if (parse_attr(env, d, v, t, a) != 0) return -1;
    } else if (job != NULL && (strcmp(name, "setsid") == 0 || strcmp(name, "setpgid") == 0)) {
      if (t != napi_boolean) return throw_type(env, name, "a boolean");
      if (napi_get_value_bool(env, v, strcmp(name, "setsid") == 0 ? &job->setsid : &job->setpgid) != napi_ok) return -1;
    } else if (job != NULL && strcmp(name, "moveFds") == 0) {
      job->move_fds = v;
    } else {
      char what[48];
      snprintf(what, sizeof what, "flags.%s", name);
      return throw_type(env, what, "absent: it is not a flag spawn() knows");
    }
  }
  return 0;
}

/* ---- spawn -------------------------------------------------------------- */

/* Per JS environment, i.e. per thread: the child's stack, mapped once, and
   /dev/null, opened once. Spawn is synchronous and the child is done with
   the stack when clone() returns. */
struct thread_state {
  void *stack;
  size_t stack_len;
  int devnull;                 /* -1 until first needed */
  dev_t devnull_dev;           /* what it was when opened, to notice a host */
  ino_t devnull_ino;           /* that closed it and reused its number */
  /* environBlock()'s last answer, and the environ it was copied from. */
  napi_ref env_block;
  char **env_array;
  char **env_entries;
  size_t env_count;
};

static void free_thread_state(napi_env env, void *data, void *hint) {
  (void)hint;
  struct thread_state *st = data;
  if (st->stack != NULL) munmap(st->stack, st->stack_len);
  if (st->devnull >= 0) close(st->devnull);
  if (st->env_block != NULL) napi_delete_reference(env, st->env_block);
  free(st->env_entries);
  free(st);
}

static struct thread_state *thread_state(napi_env env) {
  struct thread_state *st;
  if (napi_get_instance_data(env, (void **)&st) != napi_ok || st == NULL) {
    throw_errno(env, EINVAL, "napi_get_instance_data");
    return NULL;
  }
  return st;
}

static void *child_stack_top(struct thread_state *st) {
  if (st->stack == NULL) {
    size_t guard = (size_t)sysconf(_SC_PAGESIZE), len = CHILD_STACK_SIZE + guard;
    void *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return NULL;
    /* The stack grows down: an overflow hits this page and kills the child
       instead of writing into the parent's heap. */
    if (mprotect(base, guard, PROT_NONE) != 0) {
      int err = errno;
      munmap(base, len);
      errno = err;
      return NULL;
    }
    st->stack = base;
    st->stack_len = len;
  }
  FRESH_STACK(st->stack, st->stack_len);
  return (char *)st->stack + st->stack_len;
}

/* This thread's /dev/null. An fstat is cheaper than the open (no path
   walk), and catches a host that closed our fd behind our back: its number
   is someone else's then, and stays theirs. */
static int thread_devnull(struct thread_state *st) {
  struct stat now;
  if (st->devnull >= 0 && fstat(st->devnull, &now) == 0 && now.st_dev == st->devnull_dev && now.st_ino == st->devnull_ino)
    return st->devnull;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &now) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    errno = err;
    return -1;
  }
  st->devnull = fd;
  st->devnull_dev = now.st_dev;
  st->devnull_ino = now.st_ino;
  return fd;
}

void spawn_job_init(struct spawn_job *j) {
  memset(j, 0, sizeof *j);
  proc_attrs_init(&j->plan.attrs);
  for (int i = 0; i < 3; i++) j->parent_end[i] = j->child_end[i] = j->stdio[i] = -1;
}

void job_release(struct spawn_job *j) {
  for (int i = 0; i < 3; i++) {
    if (j->parent_end[i] >= 0) close(j->parent_end[i]);
    if (j->child_end[i] >= 0) close(j->child_end[i]);
    j->parent_end[i] = j->child_end[i] = -1;
  }
  free(j->plan.file);
  free(j->plan.cwd);
  free(j->plan.argv);
  free(j->plan.envp);
  free(j->plan.fds);
  free(j->keep);
  free(j->move);
  proc_attrs_release(&j->plan.attrs);
  j->plan.file = j->plan.cwd = NULL;
  j->plan.argv = j->plan.envp = NULL;
  j->plan.fds = NULL;
  j->keep = j->move = NULL;
}

static int js_envp(napi_env env, napi_value v, char ***out) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok) return throw_type(env, "envp", "an array of strings or a Buffer");
  return is_buffer ? js_env_block(env, v, out) : js_string_array(env, v, "envp", out);
}

/* flags.moveFds: [source, target, source, target, ...]. */
static int parse_moves(napi_env env, napi_value list, struct spawn_job *j) {
  uint32_t n = 0;
  if (list == NULL) return 0;
  if (js_int_array(env, list, "moveFds", &j->move, &n) != 0) return -1;
  if (n % 2 != 0) return throw_type(env, "moveFds", "pairs of integers (source, target)");
  j->nmove = n / 2;
  return 0;
}

int parse_job(napi_env env, size_t argc, napi_value *argv, struct spawn_job *j) {
  struct child_plan *p = &j->plan;
  napi_valuetype t;
  int *stdio = NULL;
  struct job_flags jf = { false, false, NULL };
  uint32_t nstdio = 0;
  if (argc < 7) return throw_type(env, "spawn()", "called with 7 arguments");
  if (js_string(env, argv[0], "file", &p->file) || js_string_array(env, argv[1], "argv", &p->argv) ||
      js_envp(env, argv[2], &p->envp) || napi_typeof(env, argv[3], &t) != napi_ok ||
      (t != napi_null && t != napi_undefined && js_string(env, argv[3], "cwd", &p->cwd)) ||
      js_int_array(env, argv[5], "keepFds", &j->keep, &j->nkeep))
    return -1;
  int rc = js_int_array(env, argv[4], "stdio", &stdio, &nstdio);
  if (rc == 0 && nstdio == 3) memcpy(j->spec, stdio, sizeof j->spec);
  free(stdio);
  if (rc != 0) return -1;
  if (nstdio != 3) return throw_type(env, "stdio", "an array of 3 integers");
  for (int slot = 0; slot < 3; slot++) {
    if (j->spec[slot] < -3 || (j->spec[slot] == -3 && slot != 2))
      return throw_range(env, "stdio: -1 null, -2 pipe, -3 (fd 2 only) as stdout, or an fd");
  }
  if (napi_typeof(env, argv[6], &t) != napi_ok || t != napi_object) return throw_type(env, "flags", "an object");
  if (parse_flags(env, argv[6], &p->attrs, &jf) != 0) return -1;
  p->session = jf.setsid ? SESSION_NEW : jf.setpgid ? SESSION_GROUP : SESSION_KEEP;
  return parse_moves(env, jf.move_fds, j);
}

/* Every fd the caller names must be open now: otherwise /dev/null or a pipe
   opened below could take its number and reach the child in its place. */
static int check_fds(napi_env env, const struct spawn_job *j) {
  for (uint32_t i = 0; i < j->nkeep; i++) {
    if (j->keep[i] < 3) return throw_range(env, "keepFds: 0, 1 and 2 are the stdio slots");
    if (fcntl(j->keep[i], F_GETFD) < 0) return throw_errno(env, errno, "fcntl");
  }
  for (int slot = 0; slot < 3; slot++) {
    if (j->spec[slot] >= 0 && fcntl(j->spec[slot], F_GETFD) < 0) return throw_errno(env, errno, "fcntl");
  }
  for (uint32_t i = 0; i < j->nmove; i++) {
    int target = j->move[2 * i + 1];
    if (target < 3) return throw_range(env, "moveFds: 0, 1 and 2 are the stdio slots");
    for (uint32_t k = 0; k < j->nkeep; k++)
      if (j->keep[k] == target) return throw_range(env, "moveFds: a target is also a keepFd");
    for (uint32_t k = 0; k < i; k++)
      if (j->move[2 * k + 1] == target) return throw_range(env, "moveFds: two sources for one target");
    if (fcntl(j->move[2 * i], F_GETFD) < 0) return throw_errno(env, errno, "fcntl");
  }
  return 0;
}

static int open_stdio(napi_env env, struct thread_state *st, struct spawn_job *j) {
  int devnull = -1;   /* checked once per spawn, however many slots get it */
  for (int slot = 0; slot < 3; slot++) {
    int spec = j->spec[slot];
    if (spec == -1) {
      if (devnull < 0 && (devnull = thread_devnull(st)) < 0) return throw_errno(env, errno, "open");
      j->stdio[slot] = devnull;
    } else if (spec == -2) {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe2");
      /* The child reads its stdin and writes its stdout and stderr. */
      j->child_end[slot] = slot == 0 ? fds[0] : fds[1];
      j->parent_end[slot] = slot == 0 ? fds[1] : fds[0];
      j->stdio[slot] = j->child_end[slot];
    } else if (spec == -3) {
      j->stdio[slot] = j->stdio[1];
    } else {
      j->stdio[slot] = spec;
    }
  }
  return 0;
}

static void plan_fd(struct child_plan *p, enum fd_op op, int src, int dst) {
  p->fds[p->nfds++] = (struct fd_action){ op, src, dst };
}

/* The child's fd work, as a list it only has to walk. Copies go to fixed
   numbers from `next` up, above every fd the plan names (sources, keepFds,
   targets), so that a copy never lands on an fd still to be read or kept;
   what else sits there in the child's table is closed at exec anyway.
     1. copy up each stdio source below its slot: 0, 1, 2 are filled in that
        order, so it may be overwritten before its turn (stdout and stderr
        crossed: 2 -> 1 then 1 -> 2); and every moved source, which may sit
        at another pair's target or below 3;
     2. each source onto 0, 1, 2 (one already there: clear its close-on-exec);
     3. every fd from 3 up close-on-exec, including those the host opened
        without O_CLOEXEC: one call whatever the keepFds are;
     4. clear close-on-exec on each keepFd;
     5. each moved copy onto its number (a send buffer's pipe at the fd the
        caller was promised). */
static int build_fd_plan(napi_env env, struct spawn_job *j) {
  struct child_plan *p = &j->plan;
  size_t most = 3 + j->nmove + 3 + 1 + j->nkeep + j->nmove;
  if ((p->fds = malloc(most * sizeof *p->fds)) == NULL) return throw_errno(env, ENOMEM, "malloc");
  p->nfds = 0;
  int next = 3;
  for (int slot = 0; slot < 3; slot++) next = j->stdio[slot] >= next ? j->stdio[slot] + 1 : next;
  for (uint32_t i = 0; i < j->nkeep; i++) next = j->keep[i] >= next ? j->keep[i] + 1 : next;
  for (uint32_t i = 0; i < 2 * j->nmove; i++) next = j->move[i] >= next ? j->move[i] + 1 : next;
  if (next > INT_MAX - 3 - (int)j->nmove) return throw_errno(env, EMFILE, "spawn");

  int src[3] = { j->stdio[0], j->stdio[1], j->stdio[2] };
  for (int slot = 0; slot < 3; slot++) {
    if (src[slot] >= slot) continue;
    plan_fd(p, FD_DUP, src[slot], next);
    src[slot] = next++;
  }
  int moved = next;
  for (uint32_t i = 0; i < j->nmove; i++) plan_fd(p, FD_DUP, j->move[2 * i], next++);
  for (int slot = 0; slot < 3; slot++) plan_fd(p, src[slot] == slot ? FD_INHERIT : FD_DUP2, src[slot], slot);
  plan_fd(p, FD_CLOEXEC_FROM, 3, 3);
  for (uint32_t i = 0; i < j->nkeep; i++) plan_fd(p, FD_INHERIT, j->keep[i], j->keep[i]);
  for (uint32_t i = 0; i < j->nmove; i++) plan_fd(p, FD_DUP2, moved + (int)i, j->move[2 * i + 1]);
  return 0;
}

static void reap_pid(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

/* A running child that can no longer be handed over: end it now rather than
   leave a process nobody will reap. */
void abandon_child(int pidfd) {
  siginfo_t info;
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
  while (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR) {}
  close(pidfd);
}

static int start_child(napi_env env, struct thread_state *st, struct child_plan *p, pid_t *pid, int *pidfd) {
  void *stack = child_stack_top(st);
  if (stack == NULL) return throw_errno(env, errno, "mmap");
  p->parent = getpid();
  p->failed_step = STEP_NONE;
  p->failed_errno = 0;

  /* Blocked until the child has reset every handler: a handler of this
     process running in the child would run in our memory, on its stack.
     All but SIGCHLD, which keeps this thread's own state: the children of
     this thread exit while it sleeps here, and the kernel drops a SIGCHLD
     left at SIG_DFL only if the thread it is aimed at (the parent) does
     not block it. Blocked, it is queued to the process and wakes a thread
     that will take it, the main thread, to drop it there: two in three
     wake-ups of the main loop in a storm were that. The child resets
     SIGCHLD's handler first (child.c): nothing else sends it one. */
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, SIGCHLD);
  int rc = pthread_sigmask(SIG_BLOCK, &all, &old);
  if (rc != 0) return throw_errno(env, rc, "pthread_sigmask");
  *pidfd = -1;
  *pid = clone(child_main, stack, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, p, pidfd);
  /* Only meaningful on failure: a child that ran shared this thread's errno. */
  int clone_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  if (*pid < 0) return throw_errno(env, clone_errno, "clone");
  if (p->failed_step != STEP_NONE) {
    reap_pid(*pid);
    close(*pidfd);
    return throw_errno(env, p->failed_errno, step_name(p->failed_step));
  }
  return 0;
}

struct spawn_job *spawn_job_new(void) {
  struct spawn_job *j = malloc(sizeof *j);
  if (j != NULL) spawn_job_init(j);
  return j;
}

void spawn_job_free(struct spawn_job *j) {
  job_release(j);
  free(j);
}

int job_take_parent_end(struct spawn_job *j, int slot) {
  int fd = j->parent_end[slot];
  j->parent_end[slot] = -1;
  return fd;
}

int launch_job(napi_env env, struct spawn_job *j, pid_t *pid, int *pidfd) {
  struct thread_state *st = thread_state(env);
  if (st == NULL || check_fds(env, j) != 0 || open_stdio(env, st, j) != 0 || build_fd_plan(env, j) != 0 ||
      start_child(env, st, &j->plan, pid, pidfd) != 0)
    return -1;
  for (int i = 0; i < 3; i++) {
    if (j->child_end[i] >= 0) close(j->child_end[i]);
    j->child_end[i] = -1;
  }
  return 0;
}

static napi_status set_string(napi_env env, napi_value obj, const char *name, const char *value) {
  napi_value v;
  napi_status s = napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  return s != napi_ok ? s : napi_set_named_property(env, obj, name, v);
}

static napi_status set_number(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_status s = napi_create_double(env, value, &v);
  return s != napi_ok ? s : napi_set_named_property(env, obj, name, v);
}

/* spawn(file, argv, envp, cwd, stdio, keepFds, flags)
   -> { pid, pidfd, stdin, stdout, stderr } */
static napi_value Spawn(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value args[7];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok) return NULL;

  struct spawn_job job;
  spawn_job_init(&job);
  pid_t pid = 0;
  int pidfd = -1;
  napi_value result = NULL;
  if (parse_job(env, argc, args, &job) == 0 && launch_job(env, &job, &pid, &pidfd) == 0) {
    napi_value obj;
    if (napi_create_object(env, &obj) == napi_ok && set_number(env, obj, "pid", pid) == napi_ok &&
        set_number(env, obj, "pidfd", pidfd) == napi_ok && set_number(env, obj, "stdin", job.parent_end[0]) == napi_ok &&
        set_number(env, obj, "stdout", job.parent_end[1]) == napi_ok &&
        set_number(env, obj, "stderr", job.parent_end[2]) == napi_ok) {
      result = obj;
      for (int i = 0; i < 3; i++) job.parent_end[i] = -1;   /* JS owns them now */
    } else {
      abandon_child(pidfd);
      throw_errno(env, ENOMEM, "spawn");
    }
  }
  job_release(&job);
  return result;
}

/* ---- watch -------------------------------------------------------------- */

struct pidfd_watch {
  uv_poll_t poll;              /* first: libuv hands this pointer back */
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  int pidfd;
  bool closing;                /* uv_close() called; the close callback frees */
  bool tearing_down;           /* the thread is ending: call no JS */
};

int wait_status(const siginfo_t *info) {
  switch (info->si_code) {
  case CLD_EXITED: return (info->si_status & 0xff) << 8;
  case CLD_KILLED: return info->si_status & 0x7f;
  case CLD_DUMPED: return (info->si_status & 0x7f) | 0x80;
  default: return -1;
  }
}

/* 1 when reaped (*raw is -1 if the status was lost: SIGCHLD ignored, or a
   waitpid(-1) elsewhere took it), 0 when the child has not exited yet. */
static int reap_pidfd(int pidfd, int *raw) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int rc;
  do rc = waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    if (errno == EAGAIN) return 0;   /* libuv made the pidfd non-blocking */
    *raw = -1;
    return 1;
  }
  if (info.si_pid == 0) return 0;
  *raw = wait_status(&info);
  return 1;
}

static void on_watch_closed(uv_handle_t *handle) {
  struct pidfd_watch *w = (struct pidfd_watch *)handle;
  /* Also tells a teardown that was waiting on us that we are done. */
  if (w->cleanup != NULL) napi_remove_async_cleanup_hook(w->cleanup);
  free(w);
}

static void release_js(struct pidfd_watch *w) {
  if (w->callback != NULL) napi_delete_reference(w->env, w->callback);
  if (w->async != NULL) napi_async_destroy(w->env, w->async);
  w->callback = NULL;
  w->async = NULL;
}

/* uv_close() stops the polling at once; only then may the fd be closed. */
static void close_watch(struct pidfd_watch *w) {
  w->closing = true;
  uv_close((uv_handle_t *)&w->poll, on_watch_closed);
  close(w->pidfd);
  w->pidfd = -1;
}

static void call_back(struct pidfd_watch *w, int raw) {
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, arg;
  /* make_callback wants an object as `this`; the callback does not use it. */
  if (napi_get_reference_value(env, w->callback, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, raw, &arg) == napi_ok) {
    /* make_callback, not call_function: it runs the microtasks the callback
       queues (a resolved promise) and keeps async_hooks context. */
    if (napi_make_callback(env, w->async, recv, fn, 1, &arg, NULL) == napi_pending_exception) {
      /* No JS frame lies below a libuv callback: report it as uncaught. */
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_pidfd_readable(uv_poll_t *handle, int status, int events) {
  (void)status, (void)events;   /* on a poll error waitid tells us more */
  struct pidfd_watch *w = (struct pidfd_watch *)handle;
  int raw;
  if (!reap_pidfd(w->pidfd, &raw)) return;
  close_watch(w);
  if (!w->tearing_down) {
    call_back(w, raw);
    release_js(w);
  }
}

/* The thread is ending (worker terminated) with the child still running.
   Nobody could reap it afterwards, so kill it and finish asynchronously:
   Node keeps this loop turning until on_watch_closed() removes the hook. */
static void on_env_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  struct pidfd_watch *w = arg;
  if (w->closing) return;
  w->tearing_down = true;
  release_js(w);
  if (syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH) close_watch(w);
}

/* watch(pidfd, callback(rawStatus)). From here on the pidfd is ours, whatever
   happens: closed once the child is reaped, or, if the watch cannot be set
   up, after killing and reaping the child here. */
static napi_value Watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value args[2], resource, name;
  napi_valuetype t;
  uv_loop_t *loop;
  int pidfd, rc = -ENOMEM;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok) return NULL;
  if (argc < 2 || napi_get_value_int32(env, args[0], &pidfd) != napi_ok) return throw_type(env, "pidfd", "an integer"), NULL;
  if (napi_typeof(env, args[1], &t) != napi_ok || t != napi_function) return throw_type(env, "callback", "a function"), NULL;

  struct pidfd_watch *w = calloc(1, sizeof *w);
  if (w == NULL) goto no_watch;
  w->env = env;
  w->pidfd = pidfd;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || napi_create_reference(env, args[1], 1, &w->callback) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "spawnpool:child", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &w->async) != napi_ok || (rc = uv_poll_init(loop, &w->poll, pidfd)) != 0)
    goto no_watch;
  /* The handle exists: from here every way out goes through uv_close(). */
  rc = napi_add_async_cleanup_hook(env, on_env_teardown, w, &w->cleanup) == napi_ok
       ? uv_poll_start(&w->poll, UV_READABLE, on_pidfd_readable) : -ENOMEM;
  if (rc == 0) return NULL;
  release_js(w);
  w->closing = true;
  uv_close((uv_handle_t *)&w->poll, on_watch_closed);
  abandon_child(pidfd);
  return throw_errno(env, -rc, "watch"), NULL;

no_watch:
  if (w != NULL) release_js(w);
  free(w);
  abandon_child(pidfd);
  return throw_errno(env, -rc, "watch"), NULL;
}

/* ---- kill, closeFd, clearCloexec ---------------------------------------- */

static int int_args(napi_env env, napi_callback_info info, size_t n, int *out) {
  size_t argc = n;
  napi_value args[2];
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok) return -1;
  for (size_t i = 0; i < n; i++) {
    if (i >= argc || napi_get_value_int32(env, args[i], &out[i]) != napi_ok) return throw_type(env, "argument", "an integer");
  }
  return 0;
}

static napi_value boolean(napi_env env, bool b) {
  napi_value v;
  return napi_get_boolean(env, b, &v) == napi_ok ? v : NULL;
}

/* kill(pidfd, signal): false when the child is gone. A zombie still takes
   the signal (and ignores it): true. */
static napi_value Kill(napi_env env, napi_callback_info info) {
  int a[2];
  if (int_args(env, info, 2, a) != 0) return NULL;
  if (syscall(SYS_pidfd_send_signal, a[0], a[1], NULL, 0) == 0) return boolean(env, true);
  if (errno == ESRCH) return boolean(env, false);
  throw_errno(env, errno, "pidfd_send_signal");
  return NULL;
}

static napi_value CloseFd(napi_env env, napi_callback_info info) {
  int fd;
  if (int_args(env, info, 1, &fd) != 0) return NULL;
  /* Linux releases the fd even when close reports EINTR: never retry. */
  if (close(fd) != 0 && errno != EINTR) throw_errno(env, errno, "close");
  return NULL;
}

/* Test-only: makes an fd inheritable, as a careless host library would. */
static napi_value ClearCloexec(napi_env env, napi_callback_info info) {
  int fd;
  if (int_args(env, info, 1, &fd) != 0) return NULL;
  if (fcntl(fd, F_SETFD, 0) != 0) throw_errno(env, errno, "fcntl");
  return NULL;
}

/* attributeTable() -> [{ name, kind, min, max, step }]: attrs.h's list, so
   that JavaScript spells and checks nothing of its own. */
static napi_value AttributeTable(napi_env env, napi_callback_info info) {
  (void)info;
  static const char *const kinds[] = { [ATTR_RLIMIT] = "rlimit", [ATTR_INT] = "int", [ATTR_BOOL] = "bool", [ATTR_LIST] = "list" };
  napi_value arr, entry;
  if (napi_create_array_with_length(env, ATTR_COUNT, &arr) != napi_ok) return NULL;
  for (int i = 0; i < ATTR_COUNT; i++) {
    const struct attr_desc *d = &attr_table[i];
    if (napi_create_object(env, &entry) != napi_ok || set_string(env, entry, "name", d->name) != napi_ok ||
        set_string(env, entry, "kind", kinds[d->kind]) != napi_ok || set_number(env, entry, "min", (double)d->min) != napi_ok ||
        set_number(env, entry, "max", (double)d->max) != napi_ok ||
        set_string(env, entry, "step", step_name(d->step)) != napi_ok || napi_set_element(env, arr, (uint32_t)i, entry) != napi_ok)
      return NULL;
  }
  return arr;
}

/* Test-only: parsedAttributes(flags) -> what spawn() would apply, as the
   exec helper's --print-attributes prints it (attrs_format()). */
static napi_value ParsedAttributes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value flags, result = NULL;
  napi_valuetype t;
  if (napi_get_cb_info(env, info, &argc, &flags, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_typeof(env, flags, &t) != napi_ok || t != napi_object) return throw_type(env, "flags", "an object"), NULL;
  struct proc_attrs a;
  if (parse_flags(env, flags, &a, NULL) == 0) {
    size_t len = attrs_format(&a, NULL, 0);
    char *text = malloc(len + 1);
    if (text == NULL) throw_errno(env, ENOMEM, "malloc");
    else {
      attrs_format(&a, text, len + 1);
      napi_create_string_utf8(env, text, len, &result);
      free(text);
    }
  }
  proc_attrs_release(&a);
  return result;
}


/* groupList(uid, gid) -> the groups setgroups() gets for that target, looked
   up here, on the worker thread, before any clone: the child must not touch
   NSS. A uid with a passwd entry: its groups from getgrouplist, based on gid
   (or the user's own group when gid is -1). Otherwise just gid, or none. */
static napi_value GroupList(napi_env env, napi_callback_info info) {
  int a[2];
  if (int_args(env, info, 2, a) != 0) return NULL;
  gid_t stack_groups[64], *groups = stack_groups;
  int n = 0;
  if (a[0] >= 0) {
    struct passwd pw, *found = NULL;
    char buf[4096];
    int rc;
    while ((rc = getpwuid_r((uid_t)a[0], &pw, buf, sizeof buf, &found)) == EINTR) {}
    if (rc != 0 && rc != ENOENT && rc != ESRCH) return throw_errno(env, rc, "getpwuid_r"), NULL;
    if (found != NULL) {
      gid_t base = a[1] >= 0 ? (gid_t)a[1] : pw.pw_gid;
      n = 64;
      if (getgrouplist(pw.pw_name, base, groups, &n) < 0) {
        groups = malloc((size_t)n * sizeof *groups);
        if (groups == NULL) return throw_errno(env, ENOMEM, "malloc"), NULL;
        if (getgrouplist(pw.pw_name, base, groups, &n) < 0) n = 0;
      }
    }
  }
  if (n == 0 && a[1] >= 0) {
    groups[0] = (gid_t)a[1];
    n = 1;
  }
  napi_value arr, el, result = NULL;
  if (napi_create_array_with_length(env, (size_t)n, &arr) == napi_ok) {
    result = arr;
    for (int i = 0; i < n; i++) {
      if (napi_create_uint32(env, groups[i], &el) != napi_ok || napi_set_element(env, arr, (uint32_t)i, el) != napi_ok) {
        result = NULL;
        break;
      }
    }
  }
  if (groups != stack_groups) free(groups);
  return result;
}

/* environ unchanged since the snapshot? glibc's setenv never frees or
   rewrites an entry it replaces (it allocates the new one, and reuses only
   an identical string), so the same pointers mean the same strings. */
static bool environ_unchanged(const struct thread_state *st) {
  if (st->env_block == NULL || environ != st->env_array) return false;
  size_t n = 0;
  for (char **e = environ; *e != NULL; e++, n++) {
    if (n >= st->env_count || *e != st->env_entries[n]) return false;
  }
  return n == st->env_count;
}

static void environ_snapshot(napi_env env, struct thread_state *st, napi_value block) {
  size_t n = 0;
  for (char **e = environ; *e != NULL; e++) n++;
  char **entries = malloc((n + 1) * sizeof *entries);
  napi_ref ref;
  if (entries == NULL || napi_create_reference(env, block, 1, &ref) != napi_ok) {
    free(entries);
    return;   /* no cache: the next call copies again */
  }
  memcpy(entries, environ, n * sizeof *entries);
  if (st->env_block != NULL) napi_delete_reference(env, st->env_block);
  free(st->env_entries);
  st->env_block = ref;
  st->env_array = environ;
  st->env_entries = entries;
  st->env_count = n;
}

/* environBlock() -> Buffer: this process's environment, each "K=V" ended by
   a NUL, for spawn()'s envp. On the main thread this is what process.env
   reads and writes, for a small part of what enumerating process.env costs
   (a getter call, a lock and a string per variable). While environ does not
   change, every call returns the same Buffer (callers must not write to
   it), so that a pool can tell its workers "the same as before" instead of
   copying it per run. Bounded by the first pass's size, should another
   thread's setenv() grow it in between. */
static napi_value EnvironBlock(napi_env env, napi_callback_info info) {
  (void)info;
  struct thread_state *st = NULL;
  napi_value cached;
  if (napi_get_instance_data(env, (void **)&st) == napi_ok && st != NULL && environ_unchanged(st) &&
      napi_get_reference_value(env, st->env_block, &cached) == napi_ok && cached != NULL)
    return cached;
  size_t bytes = 0;
  for (char **e = environ; *e != NULL; e++) bytes += strlen(*e) + 1;
  void *data;
  napi_value buffer;
  if (napi_create_buffer(env, bytes, &data, &buffer) != napi_ok) return NULL;
  size_t at = 0;
  for (char **e = environ; *e != NULL; e++) {
    size_t n = strlen(*e) + 1;
    if (n > bytes - at) break;
    memcpy((char *)data + at, *e, n);
    at += n;
  }
  /* Shrunk meanwhile: the rest stays NUL, read as empty entries that are dropped below. */
  if (at < bytes) memset((char *)data + at, 0, bytes - at);
  if (st != NULL) environ_snapshot(env, st, buffer);
  return buffer;
}

/* pipe() -> [readFd, writeFd], both close-on-exec. */
static napi_value Pipe(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return throw_errno(env, errno, "pipe2"), NULL;
  napi_value arr, r, w;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok || napi_create_int32(env, fds[0], &r) != napi_ok ||
      napi_create_int32(env, fds[1], &w) != napi_ok || napi_set_element(env, arr, 0, r) != napi_ok ||
      napi_set_element(env, arr, 1, w) != napi_ok) {
    close(fds[0]);
    close(fds[1]);
    return throw_errno(env, ENOMEM, "pipe"), NULL;
  }
  return arr;
}

/* adviseHugePages(arrayBuffer) -> whether the kernel took the advice.
   Large captures fill one buffer; with 4 KiB pages each first touch is a
   page fault (tens of microseconds under some hypervisors), with 2 MiB
   pages one per 512. Only the aligned interior can be advised. */
static napi_value AdviseHugePages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  void *data = NULL;
  size_t length = 0;
  bool is_ab = false;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_is_arraybuffer(env, arg, &is_ab) != napi_ok || !is_ab ||
      napi_get_arraybuffer_info(env, arg, &data, &length) != napi_ok)
    return throw_type(env, "adviseHugePages()", "called with an ArrayBuffer"), NULL;
  const uintptr_t huge = 2u << 20;
  uintptr_t from = ((uintptr_t)data + huge - 1) & ~(huge - 1);
  uintptr_t to = ((uintptr_t)data + length) & ~(huge - 1);
  bool took = to > from && madvise((void *)from, to - from, MADV_HUGEPAGE) == 0;
  return boolean(env, took);
}

NAPI_MODULE_INIT() {
  struct thread_state *st = calloc(1, sizeof *st);
  if (st == NULL || napi_set_instance_data(env, st, free_thread_state, NULL) != napi_ok) {
    free(st);
    napi_throw_error(env, "ENOMEM", "spawnpool_native: cannot allocate its per-thread state");
    return NULL;
  }
  st->devnull = -1;
  napi_property_descriptor props[] = {
    { "spawn", NULL, Spawn, NULL, NULL, NULL, napi_enumerable, NULL },
    { "watch", NULL, Watch, NULL, NULL, NULL, napi_enumerable, NULL },
    { "kill", NULL, Kill, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "clearCloexec", NULL, ClearCloexec, NULL, NULL, NULL, napi_enumerable, NULL },
    { "attributeTable", NULL, AttributeTable, NULL, NULL, NULL, napi_enumerable, NULL },
    { "parsedAttributes", NULL, ParsedAttributes, NULL, NULL, NULL, napi_enumerable, NULL },
    { "groupList", NULL, GroupList, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pipe", NULL, Pipe, NULL, NULL, NULL, napi_enumerable, NULL },
    { "adviseHugePages", NULL, AdviseHugePages, NULL, NULL, NULL, napi_enumerable, NULL },
    { "environBlock", NULL, EnvironBlock, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok || runner_define(env, exports) != 0)
    return NULL;
  return exports;
}
