/*
 * What spawn.c offers the other parts of the addon (runner.c): a spawn job
 * parsed from the same arguments as JS spawn(), launched, and its parent's
 * pipe ends taken over. The job itself is opaque.
 */
#ifndef SPAWNPOOL_SPAWN_H
#define SPAWNPOOL_SPAWN_H

#include <node_api.h>
#include <signal.h>
#include <sys/types.h>

struct spawn_job;

/* NULL when out of memory. */
struct spawn_job *spawn_job_new(void);
/* Closes whatever the job still owns (/dev/null, pipe ends not taken) and frees it. */
void spawn_job_free(struct spawn_job *job);
/* spawn()'s arguments: file, argv, envp, cwd, stdio, keepFds, flags. 0, or -1 with a JS exception pending. */
int parse_job(napi_env env, size_t argc, napi_value *argv, struct spawn_job *job);
/* Checks the fds, opens the pipes, clones. 0, or -1 with a JS exception pending (nothing left running). */
int launch_job(napi_env env, struct spawn_job *job, pid_t *pid, int *pidfd);
/* The parent's end of the pipe at stdio slot 0, 1 or 2 (-1 if none); the caller owns it from then on. */
int job_take_parent_end(struct spawn_job *job, int slot);
/* SIGKILL, reap and close a child that can no longer be handed over. */
void abandon_child(int pidfd);
/* The raw status exactly as wait(2) encodes it, from waitid's siginfo; -1 if none. */
int wait_status(const siginfo_t *info);
/* Throws Error("<syscall>: <CODE> (<text>)") with .code, .errno and .syscall; returns -1. */
int throw_errno(napi_env env, int err, const char *syscall);

#endif
