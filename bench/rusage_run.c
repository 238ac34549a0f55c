/*
 * For bench/batch-runners.mjs: runs one batch runner and reports what it
 * cost. Spawns PROGRAM ARGS (posix_spawnp, no shell) with stdin from
 * STDIN_FILE and stdout on /dev/null, waits for it without reaping
 * (waitid WNOWAIT) to read the zombie's own and its children's CPU time
 * from /proc/PID/stat, then reaps it with wait4.
 *
 *   rusage_run STDIN_FILE PROGRAM [ARGS...]
 *
 * Prints one JSON line: {"seconds": spawn to exit, "status": exit status,
 * "selfCpuSeconds": the runner's own CPU, "childrenCpuSeconds": its jobs'
 * (every child it reaped), "maxRssKiB": the runner's peak RSS}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s STDIN_FILE PROGRAM [ARGS...]\n", argv[0]);
    return 2;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, argv[1], O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  double t0 = now();
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[2], &actions, NULL, argv + 2, environ);
  if (rc != 0) {
    fprintf(stderr, "rusage_run: %s: %s\n", argv[2], strerror(rc));
    return 2;
  }
  siginfo_t info;
  while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) != 0) {
    if (errno != EINTR) {
      perror("rusage_run: waitid");
      return 2;
    }
  }
  double seconds = now() - t0;
  /* Fields 14-17 of /proc/PID/stat, after the ")" that ends the name: utime stime cutime cstime. */
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  unsigned long long ut = 0, st = 0, cut = 0, cst = 0;
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    char *p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut, &st, &cut, &cst) != 4) {
      fprintf(stderr, "rusage_run: cannot parse %s\n", path);
    }
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid) {
    perror("rusage_run: wait4");
    return 2;
  }
  double hz = (double)sysconf(_SC_CLK_TCK);
  printf("{\"seconds\":%.6f,\"status\":%d,\"selfCpuSeconds\":%.3f,\"childrenCpuSeconds\":%.3f,\"maxRssKiB\":%ld}\n", seconds,
         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), (double)(ut + st) / hz, (double)(cut + cst) / hz,
         ru.ru_maxrss);
  return 0;
}
