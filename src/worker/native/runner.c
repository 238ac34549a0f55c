/*
 * The fast path: children whose stdio needs no JavaScript stream. Per worker
 * thread, one epoll set, registered with the thread's libuv loop as one
 * poll handle, watches every such child's pidfd and the parent's ends of its
 * pipes. The addon writes the input and send buffers, reads the captures
 * (bounded by maxBuffer) and the stderr tail, reaps, and calls JavaScript
 * once per wake-up with the records of every run that finished in it.
 *
 * JavaScript keeps what needs a timer or a decision: timeouts, abort, the
 * kill grace period and the order of the reasons. It ends a run with
 * runnerKill(), after which the run does not wait for EOF on its pipes (a
 * grandchild may hold them open).
 *
 * Every fd is removed from the epoll set before it is closed. A vfork child
 * of another thread, between its clone and its exec, holds a copy of each of
 * our fds; an fd closed while still registered would leave its open file
 * alive in the set, reporting events for memory already freed.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"
#include "sink.h"
#include "spawn.h"

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* What an uncaptured stderr keeps for the error message (STDERR_TAIL_BYTES). */
#define TAIL_BYTES 4096
/* Read at most this much from one pipe per wake-up: the others get their turn. */
#define READ_BUDGET (1 << 20)

enum ep_kind { EP_PIDFD, EP_STDIN, EP_STDOUT, EP_STDERR, EP_SEND, EP_WAKE };

struct run;

/* One fd in the epoll set; epoll hands this pointer back. */
struct endpoint {
  struct run *run;
  int fd;                      /* -1 once closed */
  enum ep_kind kind;
};

/* Bytes for the child: an input buffer or a send buffer, held by a JS reference. */
struct source {
  struct endpoint ep;
  napi_ref ref;
  const uint8_t *data;
  size_t len, off;
};

struct run {
  struct run *prev, *next;
  struct runner *runner;
  int32_t id;
  pid_t pid;
  bool group;                  /* leads its process group: signals go to the group */
  struct endpoint pidfd, out, err;
  struct source input;
  struct source *send;
  uint32_t nsend;
  size_t limit;
  bool capture_out, capture_err, tail_err;
  struct sink cap_out, cap_err;
  uint8_t tail[TAIL_BYTES];
  size_t tail_total;
  bool ending, overflowed, reaped;
  int raw;
};

struct runner {
  uv_poll_t poll;              /* first: libuv hands this pointer back */
  napi_env env;
  int epfd;
  struct endpoint wake;        /* an eventfd: runnerKill() finishing a run wakes the loop to report it */
  napi_ref callback;
  napi_async_context async;
  napi_async_cleanup_hook_handle cleanup;
  struct run *runs;
  uint32_t count;
  struct run *done;            /* finished in this wake-up, to hand to JS */
  bool tearing_down;
};

/* ---- fds ------------------------------------------------------------------ */

static int watch_fd(struct runner *r, struct endpoint *ep, uint32_t events) {
  struct epoll_event ev = { .events = events, .data.ptr = ep };
  return epoll_ctl(r->epfd, EPOLL_CTL_ADD, ep->fd, &ev) == 0 ? 0 : errno;
}

/* Out of the set first, then closed: see the top of the file. */
static void close_endpoint(struct runner *r, struct endpoint *ep) {
  if (ep->fd < 0) return;
  epoll_ctl(r->epfd, EPOLL_CTL_DEL, ep->fd, NULL);
  close(ep->fd);
  ep->fd = -1;
}

static void release_source(struct runner *r, struct source *s) {
  close_endpoint(r, &s->ep);
  if (s->ref != NULL && !r->tearing_down) napi_delete_reference(r->env, s->ref);
  s->ref = NULL;
}

static int set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 ? 0 : errno;
}

static bool signal_run(struct run *run, int sig) {
  if (run->reaped) return false;
  if (run->group) return kill(-run->pid, sig) == 0;
  return syscall(SYS_pidfd_send_signal, run->pidfd.fd, sig, NULL, 0) == 0;
}

/* ---- the child's bytes ---------------------------------------------------- */

/* Writes what the pipe takes now. Done (closed) at the end, or when the child
   closed its end (EPIPE): reading its input is the child's business. */
static void feed(struct runner *r, struct source *s) {
  while (s->off < s->len) {
    ssize_t n = write(s->ep.fd, s->data + s->off, s->len - s->off);
    if (n > 0) {
      s->off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    break;
  }
  release_source(r, s);
}

static void tail_keep(struct run *run, const uint8_t *bytes, size_t n) {
  if (n >= TAIL_BYTES) {
    bytes += n - TAIL_BYTES;
    run->tail_total += n - TAIL_BYTES;
    n = TAIL_BYTES;
  }
  size_t at = run->tail_total % TAIL_BYTES;
  size_t first = n < TAIL_BYTES - at ? n : TAIL_BYTES - at;
  memcpy(run->tail + at, bytes, first);
  memcpy(run->tail, bytes + first, n - first);
  run->tail_total += n;
}

/* Ends the run now: the first reason JS records wins; here it is maxBuffer. */
static void overflow(struct run *run) {
  run->overflowed = true;
  run->ending = true;
  signal_run(run, SIGKILL);
}

/* Reads what is there, up to the budget; closes the pipe at EOF or error. */
static void drain(struct runner *r, struct run *run, struct endpoint *ep) {
  bool captured = ep->kind == EP_STDOUT ? run->capture_out : run->capture_err;
  struct sink *sink = ep->kind == EP_STDOUT ? &run->cap_out : &run->cap_err;
  uint8_t scratch[16384];
  size_t budget = READ_BUDGET;
  while (budget > 0) {
    uint8_t *into = scratch;
    size_t room = sizeof scratch;
    if (captured) {
      if (sink->len == sink->cap && sink->cap < run->limit && sink_grow(sink, run->limit) != 0) {
        overflow(run);   /* out of memory: end it as past maxBuffer would */
        break;
      }
      /* At the limit: one more byte read tells that the child went past it. */
      if (sink->len < sink->cap) {
        into = sink->data + sink->len;
        room = sink->cap - sink->len;
      } else {
        room = 1;
      }
    }
    ssize_t n = read(ep->fd, into, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) break;
    budget -= (size_t)n < budget ? (size_t)n : budget;
    if (!captured) tail_keep(run, scratch, (size_t)n);
    else if (into == scratch) {
      overflow(run);
      break;
    } else sink->len += (size_t)n;
  }
  if (budget == 0) return;   /* more to read: level-triggered, we are called again */
  close_endpoint(r, ep);
}

/* ---- ending --------------------------------------------------------------- */

static void close_inputs(struct runner *r, struct run *run) {
  release_source(r, &run->input);
  for (uint32_t i = 0; i < run->nsend; i++) release_source(r, &run->send[i]);
}

static void maybe_done(struct runner *r, struct run *run) {
  if (!run->reaped) return;
  /* A run that was ended does not wait for EOF: a grandchild may hold the pipe. */
  if (run->ending) {
    close_endpoint(r, &run->out);
    close_endpoint(r, &run->err);
  }
  if (run->out.fd >= 0 || run->err.fd >= 0) return;
  /* Off the live list, onto this wake-up's finished list. */
  if (run->prev != NULL) run->prev->next = run->next;
  else r->runs = run->next;
  if (run->next != NULL) run->next->prev = run->prev;
  r->count--;
  run->next = r->done;
  r->done = run;
}

static void reap(struct runner *r, struct run *run) {
  siginfo_t info;
  memset(&info, 0, sizeof info);
  int rc;
  do rc = waitid(P_PIDFD, (id_t)run->pidfd.fd, &info, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);
  if (rc == 0 && info.si_pid == 0) return;   /* not yet */
  run->raw = rc < 0 ? -1 : wait_status(&info);
  run->reaped = true;
  close_endpoint(r, &run->pidfd);
  /* The child is gone: nobody will read the rest of its input. */
  close_inputs(r, run);
  maybe_done(r, run);
}

static void free_run(struct runner *r, struct run *run) {
  close_endpoint(r, &run->pidfd);
  close_endpoint(r, &run->out);
  close_endpoint(r, &run->err);
  close_inputs(r, run);
  sink_free(&run->cap_out);
  sink_free(&run->cap_err);
  free(run->send);
  free(run);
}

/* ---- to JavaScript -------------------------------------------------------- */

/* A copy the JS side owns (and may transfer to another thread). */
static napi_value bytes_value(napi_env env, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
  napi_value ab, view;
  void *data;
  if (napi_create_arraybuffer(env, alen + blen, &data, &ab) != napi_ok) return NULL;
  if (alen > 0) memcpy(data, a, alen);
  if (blen > 0) memcpy((uint8_t *)data + alen, b, blen);
  return napi_create_typedarray(env, napi_uint8_array, alen + blen, ab, 0, &view) == napi_ok ? view : NULL;
}

static napi_value sink_value(napi_env env, bool captured, struct sink *s) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (!captured) return undefined;
  napi_value v = sink_to_js(env, s);
  return v != NULL ? v : undefined;
}

static napi_value tail_value(napi_env env, const struct run *run) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  /* Nothing written: nothing to carry (most runs). */
  if (!run->tail_err || run->tail_total == 0) return undefined;
  size_t n = run->tail_total < TAIL_BYTES ? run->tail_total : TAIL_BYTES;
  size_t start = (run->tail_total - n) % TAIL_BYTES;
  size_t first = n < TAIL_BYTES - start ? n : TAIL_BYTES - start;
  napi_value v = bytes_value(env, run->tail + start, first, run->tail, n - first);
  return v != NULL ? v : undefined;
}

/* Fields per record: id, raw status, overflowed, stdout (or combined), stderr, stderr tail. */
#define RECORD_FIELDS 6

static void deliver(struct runner *r) {
  if (r->done == NULL) return;
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  uint32_t n = 0;
  for (struct run *run = r->done; run != NULL; run = run->next) n++;
  napi_value records, fn, recv, v;
  bool ok = napi_create_array_with_length(env, (size_t)n * RECORD_FIELDS, &records) == napi_ok;
  uint32_t at = 0;
  /* The list is newest first; hand them over in the order they finished. */
  struct run **order = malloc(n * sizeof *order);
  uint32_t k = n;
  for (struct run *run = r->done; run != NULL && order != NULL; run = run->next) order[--k] = run;
  for (uint32_t i = 0; ok && order != NULL && i < n; i++) {
    struct run *run = order[i];
    napi_value fields[RECORD_FIELDS];
    ok = napi_create_int32(env, run->id, &fields[0]) == napi_ok && napi_create_int32(env, run->raw, &fields[1]) == napi_ok &&
         napi_get_boolean(env, run->overflowed, &fields[2]) == napi_ok;
    if (!ok) break;
    fields[3] = sink_value(env, run->capture_out, &run->cap_out);
    fields[4] = sink_value(env, run->capture_err, &run->cap_err);
    fields[5] = tail_value(env, run);
    for (int f = 0; ok && f < RECORD_FIELDS; f++) ok = napi_set_element(env, records, at++, fields[f]) == napi_ok;
  }
  free(order);
  struct run *done = r->done;
  r->done = NULL;
  while (done != NULL) {
    struct run *next = done->next;
    free_run(r, done);
    done = next;
  }
  if (r->count == 0) uv_unref((uv_handle_t *)&r->poll);
  if (ok && napi_get_reference_value(env, r->callback, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
    /* make_callback: it runs the microtasks the callback queues. */
    if (napi_make_callback(env, r->async, recv, fn, 1, &records, &v) == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_events(uv_poll_t *handle, int status, int events) {
  (void)status, (void)events;
  struct runner *r = (struct runner *)handle;
  struct epoll_event ev[64];
  int n;
  do {
    do n = epoll_wait(r->epfd, ev, 64, 0);
    while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
      struct endpoint *ep = ev[i].data.ptr;
      struct run *run = ep->run;
      /* An earlier event of this batch may have closed it. */
      if (ep->fd < 0) continue;
      switch (ep->kind) {
      case EP_WAKE: {
        uint64_t count;
        (void)!read(ep->fd, &count, sizeof count);
        break;
      }
      case EP_PIDFD: reap(r, run); break;
      case EP_STDIN:
      case EP_SEND: feed(r, (struct source *)ep); break;
      case EP_STDOUT:
      case EP_STDERR:
        drain(r, run, ep);
        maybe_done(r, run);
        break;
      }
    }
  } while (n == 64);
  deliver(r);
}

/* ---- lifetime ------------------------------------------------------------- */

static void on_runner_closed(uv_handle_t *handle) {
  struct runner *r = (struct runner *)handle;
  close_endpoint(r, &r->wake);
  close(r->epfd);
  if (r->cleanup != NULL) napi_remove_async_cleanup_hook(r->cleanup);
  free(r);
}

/* The thread is ending: nobody could reap these children afterwards. Kill
   and reap them here (SIGKILL is prompt), then let the loop close the handle. */
static void on_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  struct runner *r = arg;
  r->tearing_down = true;
  if (r->callback != NULL) napi_delete_reference(r->env, r->callback);
  if (r->async != NULL) napi_async_destroy(r->env, r->async);
  r->callback = NULL;
  r->async = NULL;
  for (struct run *run = r->runs, *next; run != NULL; run = next) {
    next = run->next;
    if (!run->reaped) {
      siginfo_t info;
      signal_run(run, SIGKILL);
      if (run->group) syscall(SYS_pidfd_send_signal, run->pidfd.fd, SIGKILL, NULL, 0);
      while (waitid(P_PIDFD, (id_t)run->pidfd.fd, &info, WEXITED) < 0 && errno == EINTR) {}
    }
    free_run(r, run);
  }
  r->runs = NULL;
  for (struct run *run = r->done, *next; run != NULL; run = next) {
    next = run->next;
    free_run(r, run);
  }
  r->done = NULL;
  uv_close((uv_handle_t *)&r->poll, on_runner_closed);
}

static void runner_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)data, (void)hint;
  /* The runner lives until the thread ends (on_teardown frees it). */
}

/* runnerOpen(callback(records)) -> runner. One per thread. */
static napi_value RunnerOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value fn, resource, name, external;
  napi_valuetype t;
  uv_loop_t *loop;
  if (napi_get_cb_info(env, info, &argc, &fn, NULL, NULL) != napi_ok) return NULL;
  if (argc < 1 || napi_typeof(env, fn, &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  struct runner *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_errno(env, ENOMEM, "calloc"), NULL;
  r->env = env;
  r->wake = (struct endpoint){ NULL, -1, EP_WAKE };
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  int err = r->epfd < 0 ? errno : 0;
  if (err == 0 && (r->wake.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) err = errno;
  if (err == 0) err = watch_fd(r, &r->wake, EPOLLIN);
  if (err != 0) {
    close_endpoint(r, &r->wake);
    if (r->epfd >= 0) close(r->epfd);
    free(r);
    return throw_errno(env, err, "runnerOpen"), NULL;
  }
  int rc = -ENOMEM;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || napi_create_reference(env, fn, 1, &r->callback) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "spawnpool:runner", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &r->async) != napi_ok || (rc = uv_poll_init(loop, &r->poll, r->epfd)) != 0) {
    if (r->callback != NULL) napi_delete_reference(env, r->callback);
    if (r->async != NULL) napi_async_destroy(env, r->async);
    close_endpoint(r, &r->wake);
    close(r->epfd);
    free(r);
    return throw_errno(env, -rc, "runnerOpen"), NULL;
  }
  if (napi_add_async_cleanup_hook(env, on_teardown, r, &r->cleanup) != napi_ok ||
      (rc = uv_poll_start(&r->poll, UV_READABLE, on_events)) != 0 ||
      napi_create_external(env, r, runner_finalize, NULL, &external) != napi_ok) {
    if (r->cleanup != NULL) napi_remove_async_cleanup_hook(r->cleanup);
    r->cleanup = NULL;
    napi_delete_reference(env, r->callback);
    napi_async_destroy(env, r->async);
    uv_close((uv_handle_t *)&r->poll, on_runner_closed);
    return throw_errno(env, rc < 0 ? -rc : ENOMEM, "runnerOpen"), NULL;
  }
  uv_unref((uv_handle_t *)&r->poll);
  return external;
}

static struct runner *runner_arg(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "runner must be what runnerOpen() returned");
    return NULL;
  }
  return p;
}

static int hold_bytes(napi_env env, napi_value v, struct source *s) {
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "a buffer must be a Uint8Array");
    return -1;
  }
  if (napi_create_reference(env, v, 1, &s->ref) != napi_ok) return throw_errno(env, ENOMEM, "napi_create_reference");
  s->data = data;
  s->len = length;
  return 0;
}

static int get_int(napi_env env, napi_value arr, uint32_t i, int32_t *out) {
  napi_value v;
  if (napi_get_element(env, arr, i, &v) != napi_ok || napi_get_value_int32(env, v, out) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "io: expected an integer");
    return -1;
  }
  return 0;
}

/* What JS says of the run beyond spawn()'s arguments:
   io = [id, input (Uint8Array | null), sendFds (our write ends), sendData (Uint8Array each),
         captureOut, captureErr, tailErr, maxBuffer, group] */
enum { IO_ID, IO_INPUT, IO_SEND_FDS, IO_SEND_DATA, IO_CAPTURE_OUT, IO_CAPTURE_ERR, IO_TAIL_ERR, IO_MAX_BUFFER, IO_GROUP, IO_COUNT };

static int parse_io(napi_env env, napi_value io, struct run *run) {
  int32_t v[IO_COUNT] = { 0 };
  napi_value input, fds, data, el;
  napi_valuetype t;
  static const int ints[] = { IO_ID, IO_CAPTURE_OUT, IO_CAPTURE_ERR, IO_TAIL_ERR, IO_GROUP };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
    if (get_int(env, io, (uint32_t)ints[i], &v[ints[i]]) != 0) return -1;
  double limit;
  if (napi_get_element(env, io, IO_MAX_BUFFER, &el) != napi_ok || napi_get_value_double(env, el, &limit) != napi_ok || !(limit >= 0)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "io: maxBuffer must be a number");
    return -1;
  }
  run->id = v[IO_ID];
  run->capture_out = v[IO_CAPTURE_OUT] != 0;
  run->capture_err = v[IO_CAPTURE_ERR] != 0;
  run->tail_err = v[IO_TAIL_ERR] != 0;
  run->group = v[IO_GROUP] != 0;
  run->limit = limit > (double)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)limit;
  if (napi_get_element(env, io, IO_INPUT, &input) != napi_ok || napi_typeof(env, input, &t) != napi_ok) return -1;
  if (t != napi_null && t != napi_undefined && hold_bytes(env, input, &run->input) != 0) return -1;
  uint32_t n = 0, nd = 0;
  if (napi_get_element(env, io, IO_SEND_FDS, &fds) != napi_ok || napi_get_array_length(env, fds, &n) != napi_ok ||
      napi_get_element(env, io, IO_SEND_DATA, &data) != napi_ok || napi_get_array_length(env, data, &nd) != napi_ok || n != nd) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "io: sendFds and sendData must be arrays of one length");
    return -1;
  }
  if (n > 0 && (run->send = calloc(n, sizeof *run->send)) == NULL) return throw_errno(env, ENOMEM, "calloc");
  for (uint32_t i = 0; i < n; i++) {
    run->send[i].ep = (struct endpoint){ run, -1, EP_SEND };
    if (napi_get_element(env, data, i, &el) != napi_ok || hold_bytes(env, el, &run->send[i]) != 0) return -1;
    run->nsend = i + 1;
  }
  /* The fds last: from here on, the run owns them. */
  for (uint32_t i = 0; i < n; i++) {
    if (get_int(env, fds, i, &run->send[i].ep.fd) != 0) return -1;
  }
  return 0;
}

/* Registers what the run watches, and writes what the pipes take at once. */
static int start_watching(struct runner *r, struct run *run) {
  int err = 0;
  if (run->input.ep.fd >= 0 && (err = set_nonblocking(run->input.ep.fd)) != 0) return err;
  for (uint32_t i = 0; i < run->nsend; i++)
    if ((err = set_nonblocking(run->send[i].ep.fd)) != 0) return err;
  struct endpoint *reads[] = { &run->out, &run->err };
  for (int i = 0; i < 2; i++) {
    if (reads[i]->fd < 0) continue;
    if ((err = set_nonblocking(reads[i]->fd)) != 0 || (err = watch_fd(r, reads[i], EPOLLIN)) != 0) return err;
  }
  if ((err = watch_fd(r, &run->pidfd, EPOLLIN)) != 0) return err;
  if (run->input.ep.fd >= 0) {
    feed(r, &run->input);
    if (run->input.ep.fd >= 0 && (err = watch_fd(r, &run->input.ep, EPOLLOUT)) != 0) return err;
  }
  for (uint32_t i = 0; i < run->nsend; i++) {
    feed(r, &run->send[i]);
    if (run->send[i].ep.fd >= 0 && (err = watch_fd(r, &run->send[i].ep, EPOLLOUT)) != 0) return err;
  }
  return 0;
}

/* runnerSpawn(runner, file, argv, envp, cwd, stdio, keepFds, flags, io) -> pid.
   The same spawn as spawn(); the addon then feeds, drains and reaps it, and
   reports it through the runner's callback. On a throw nothing is running
   and the send fds are still the caller's. */
static napi_value RunnerSpawn(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value args[9], result;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok) return NULL;
  if (argc < 9) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "runnerSpawn() takes 9 arguments");
    return NULL;
  }
  struct runner *r = runner_arg(env, args[0]);
  if (r == NULL) return NULL;
  struct run *run = calloc(1, sizeof *run);
  struct spawn_job *job = spawn_job_new();
  if (run == NULL || job == NULL) {
    free(run);
    if (job != NULL) spawn_job_free(job);
    return throw_errno(env, ENOMEM, "calloc"), NULL;
  }
  run->runner = r;
  run->pidfd = (struct endpoint){ run, -1, EP_PIDFD };
  run->out = (struct endpoint){ run, -1, EP_STDOUT };
  run->err = (struct endpoint){ run, -1, EP_STDERR };
  run->input.ep = (struct endpoint){ run, -1, EP_STDIN };
  pid_t pid = 0;
  int pidfd = -1;
  if (parse_io(env, args[8], run) != 0 || parse_job(env, 7, args + 1, job) != 0 || launch_job(env, job, &pid, &pidfd) != 0) {
    /* The send fds stay the caller's. */
    for (uint32_t i = 0; i < run->nsend; i++) run->send[i].ep.fd = -1;
    free_run(r, run);
    spawn_job_free(job);
    return NULL;
  }
  run->pid = pid;
  run->pidfd.fd = pidfd;
  run->input.ep.fd = job_take_parent_end(job, 0);
  run->out.fd = job_take_parent_end(job, 1);
  run->err.fd = job_take_parent_end(job, 2);
  spawn_job_free(job);
  /* Buffers the caller did not ask for have no pipe: nothing to hold. */
  if (run->input.ep.fd < 0) release_source(r, &run->input);
  run->next = r->runs;
  if (r->runs != NULL) r->runs->prev = run;
  r->runs = run;
  if (r->count++ == 0) uv_ref((uv_handle_t *)&r->poll);
  int err = start_watching(r, run);
  if (err != 0) {
    /* Cannot watch it: end it here, reaped, and say why. */
    run->ending = true;
    signal_run(run, SIGKILL);
    if (run->prev != NULL) run->prev->next = run->next;
    else r->runs = run->next;
    if (run->next != NULL) run->next->prev = run->prev;
    if (--r->count == 0) uv_unref((uv_handle_t *)&r->poll);
    int fd = run->pidfd.fd;
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
    run->pidfd.fd = -1;
    abandon_child(fd);
    free_run(r, run);
    return throw_errno(env, err, "epoll_ctl"), NULL;
  }
  if (napi_create_int32(env, pid, &result) != napi_ok) return NULL;
  return result;
}

static struct run *find_run(struct runner *r, int32_t id) {
  for (struct run *run = r->runs; run != NULL; run = run->next)
    if (run->id == id) return run;
  return NULL;
}

/* runnerKill(runner, id, signal) -> false once the child is reaped. From the
   first call on, the run no longer waits for EOF on its pipes. */
static napi_value RunnerKill(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value args[3], result;
  int32_t id, sig;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok) return NULL;
  struct runner *r = argc >= 3 ? runner_arg(env, args[0]) : NULL;
  if (r == NULL) return NULL;
  if (napi_get_value_int32(env, args[1], &id) != napi_ok || napi_get_value_int32(env, args[2], &sig) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "id and signal must be integers");
    return NULL;
  }
  struct run *run = find_run(r, id);
  bool sent = false;
  if (run != NULL) {
    run->ending = true;
    sent = signal_run(run, sig);
    /* Reaped already, waiting only for a pipe a grandchild holds: done now,
       reported from the loop (never from inside this call). */
    maybe_done(r, run);
    if (r->done != NULL) {
      uint64_t one = 1;
      (void)!write(r->wake.fd, &one, sizeof one);
    }
  }
  napi_get_boolean(env, sent, &result);
  return result;
}

int runner_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "runnerOpen", NULL, RunnerOpen, NULL, NULL, NULL, napi_enumerable, NULL },
    { "runnerSpawn", NULL, RunnerSpawn, NULL, NULL, NULL, napi_enumerable, NULL },
    { "runnerKill", NULL, RunnerKill, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok ? 0 : -1;
}
