/*
 * Starting a child from C: what the JS spawn() does, in parts another C
 * file of the addon can call (with its own napi_env, on its own thread).
 *
 *   struct spawn_job job;
 *   spawn_job_init(&job);
 *   if (parse_job(env, 7, args, &job) == 0 && launch_job(env, &job, &pid, &pidfd) == 0) {
 *     ... job.parent_end[0..2]: the parent's pipe ends (-1: none); set each
 *         to -1 once its owner is someone else, or job_release() closes it
 *   }
 *   job_release(&job);
 *
 * parse_job and launch_job throw a JS error and return non-zero on failure;
 * a failed launch_job has reaped its child and closed what it opened.
 */
#ifndef SPAWNPOOL_SPAWN_H
#define SPAWNPOOL_SPAWN_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "child.h"

struct spawn_job {
  struct child_plan plan;
  int spec[3];                 /* as JS gave it: -1 null, -2 pipe, -3 as stdout, fd */
  int stdio[3];                /* the source fd of each of 0, 1, 2 */
  int *keep;                   /* keepFds */
  uint32_t nkeep;
  int *move;                   /* moveFds: pairs of source fd, the child's fd number */
  uint32_t nmove;              /* pairs */
  int parent_end[3];           /* the parent's pipe ends, -1 when none or handed over */
  int child_end[3];            /* closed in the parent once the child has them */
};

void spawn_job_init(struct spawn_job *job);

/* spawn()'s arguments (file, argv, envp, cwd, stdio, keepFds, flags) into job. */
int parse_job(napi_env env, size_t argc, napi_value *argv, struct spawn_job *job);

/* Checks the fds, opens stdio and pipes, builds the fd plan and clones. On
   success *pid and *pidfd are the child's, and the pidfd is the caller's. */
int launch_job(napi_env env, struct spawn_job *job, pid_t *pid, int *pidfd);

void job_release(struct spawn_job *job);

/* The same job on the heap, for a caller that keeps no struct of its own; NULL when out of memory. */
struct spawn_job *spawn_job_new(void);
/* job_release(), then free. */
void spawn_job_free(struct spawn_job *job);
/* The parent's end of the pipe at stdio slot 0, 1 or 2 (-1 if none); the caller owns it from then on. */
int job_take_parent_end(struct spawn_job *job, int slot);
/* SIGKILL, reap and close a child that can no longer be handed over. */
void abandon_child(int pidfd);
/* The raw status exactly as wait(2) encodes it, from waitid's siginfo; -1 if none. */
int wait_status(const siginfo_t *info);
/* Throws Error("<syscall>: <CODE> (<text>)") with .code, .errno and .syscall; returns -1. */
int throw_errno(napi_env env, int err, const char *syscall);

#endif
