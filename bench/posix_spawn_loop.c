/*
 * The limit for bench/spawn-storm.mjs: a C loop that spawns PROGRAM with
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK), no page tables copied)
 * and keeps CONCURRENCY children in flight, reaping with waitpid, until
 * COUNT have exited. THREADS threads share the work (waitpid(-1) reaps a
 * child of any thread of the process). With BALLAST_MIB > 0 the program
 * first holds that much touched (resident) memory, as the Node host does.
 *
 *   posix_spawn_loop COUNT CONCURRENCY THREADS BALLAST_MIB [PROGRAM]
 *
 * Prints "ready" on a line of its own once the ballast is written (the host
 * measures its own loop from there), then one JSON line: {"count":..,"seconds":..,"spawnsPerSec":..,"rssMiB":..,
 * "cpuSeconds": this process, all threads, "childrenCpuSeconds": its children}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long count, concurrency;
static const char *program = "/bin/true";
static atomic_long launched, reaped, in_flight;
static posix_spawn_file_actions_t actions;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err) {
  fprintf(stderr, "posix_spawn_loop: %s: %s\n", what, strerror(err));
  exit(2);
}

static void *worker(void *arg) {
  (void)arg;
  char *argv[] = { (char *)program, NULL };
  for (;;) {
    /* Launch while below the concurrency and the count. */
    long mine = -1;
    if (atomic_fetch_add(&in_flight, 1) < concurrency) {
      mine = atomic_fetch_add(&launched, 1);
      if (mine >= count) mine = -1;
    }
    if (mine >= 0) {
      pid_t pid;
      int rc = posix_spawn(&pid, program, &actions, NULL, argv, environ);
      if (rc != 0) die("posix_spawn", rc);
      continue;
    }
    atomic_fetch_sub(&in_flight, 1);
    if (atomic_load(&reaped) >= count) return NULL;
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) {        /* another thread reaped the last ones */
        if (atomic_load(&reaped) >= count) return NULL;
        sched_yield();
        continue;
      }
      die("waitpid", errno);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "posix_spawn_loop: child %d ended with status %d\n", pid, status);
      exit(2);
    }
    atomic_fetch_add(&reaped, 1);
    atomic_fetch_sub(&in_flight, 1);
  }
}

static double cpu_seconds(int who) {
  struct rusage ru;
  if (getrusage(who, &ru) != 0) return -1;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long rss_mib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s COUNT CONCURRENCY THREADS BALLAST_MIB [PROGRAM]\n", argv[0]);
    return 2;
  }
  count = atol(argv[1]);
  concurrency = atol(argv[2]);
  long threads = atol(argv[3]), ballast_mib = atol(argv[4]);
  if (argc > 5) program = argv[5];
  if (count < 1 || concurrency < 1 || threads < 1 || ballast_mib < 0) {
    fprintf(stderr, "posix_spawn_loop: bad arguments\n");
    return 2;
  }

  /* The ballast: touched page by page so that it is really resident. */
  size_t ballast_len = (size_t)ballast_mib << 20;
  char *ballast = NULL;
  if (ballast_len > 0) {
    ballast = malloc(ballast_len);
    if (ballast == NULL) die("malloc", errno);
    memset(ballast, 0x5a, ballast_len);
  }

  /* Like the contenders: stdin/stdout/stderr of the child are /dev/null. */
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", 0, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", 1, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", 1, 0);
  printf("ready\n");
  fflush(stdout);

  double cpu0 = cpu_seconds(RUSAGE_SELF);
  double start = now();
  pthread_t *tids = calloc((size_t)threads, sizeof *tids);
  for (long i = 0; i < threads; i++) {
    int rc = pthread_create(&tids[i], NULL, worker, NULL);
    if (rc != 0) die("pthread_create", rc);
  }
  for (long i = 0; i < threads; i++) pthread_join(tids[i], NULL);
  double seconds = now() - start;
  double cpu = cpu_seconds(RUSAGE_SELF) - cpu0, children_cpu = cpu_seconds(RUSAGE_CHILDREN);

  /* Read the ballast so that it cannot be optimised away. */
  unsigned sum = 0;
  for (size_t i = 0; i < ballast_len; i += 4096) sum += (unsigned char)ballast[i];
  printf("{\"count\":%ld,\"seconds\":%.6f,\"spawnsPerSec\":%.1f,\"threads\":%ld,\"concurrency\":%ld,"
         "\"ballastMiB\":%ld,\"rssMiB\":%ld,\"cpuSeconds\":%.3f,\"childrenCpuSeconds\":%.3f,\"check\":%u}\n",
         count, seconds, (double)count / seconds, threads, concurrency, ballast_mib, rss_mib(), cpu, children_cpu, sum);
  free(ballast);
  return 0;
}
