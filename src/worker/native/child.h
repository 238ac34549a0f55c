/*
 * What the vfork-style child runs between clone() and execve() (child.c),
 * and the plan it runs from. The parent (spawn.c) prepares every byte of
 * the plan before clone, so the child only reads it and makes system calls.
 */
#ifndef SPAWNPOOL_CHILD_H
#define SPAWNPOOL_CHILD_H

#include <stdint.h>
#include <sys/types.h>

#include "attrs.h"

enum session { SESSION_KEEP, SESSION_NEW, SESSION_GROUP };

/* One entry of the fd plan. The child walks the list in order. */
enum fd_op {
  FD_DUP,            /* dup3(src, dst, O_CLOEXEC): a copy out of the way of the dup2s below */
  FD_DUP2,           /* dup2(src, dst): the child's dst, inherited across exec */
  FD_INHERIT,        /* clear FD_CLOEXEC on dst: dup2(fd, fd) would leave it set */
  FD_CLOEXEC_FROM,   /* every fd from dst up closes at exec */
};

struct fd_action {
  enum fd_op op;
  int src, dst;
};

/* Everything the child reads, in C form, plus where it reports failure.
   The parent allocates it all before clone() and frees it after. */
struct child_plan {
  char *file;
  char **argv;
  char **envp;
  char *cwd;                   /* NULL: inherit */
  struct fd_action *fds;
  uint32_t nfds;
  enum session session;
  pid_t parent;                /* for the parent-death signal's check */
  struct proc_attrs attrs;
  /* Written by the child; read once clone() has returned, which with
     CLONE_VFORK is after the child exec'ed or exited. */
  enum step failed_step;
  int failed_errno;
};

/* clone()'s entry point; never returns. */
int child_main(void *plan);

#endif
