/*
 * What the benchmarks' results depend on most, measured on this machine:
 * the cost of a system call and of a first-touch page fault (4 KiB pages, and
 * 2 MiB transparent huge pages where madvise allows them). On bare metal
 * these are ~0.1 us and ~0.1-0.3 us per 4 KiB; under nested virtualisation
 * with shadow page tables they are 10 to 100 times that, and every number of
 * the spawn and capture benchmarks moves with them.
 *
 * Prints one JSON line: {"syscallUs":..,"fault4kUs":..,"faultThpUsPer4k":..}
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds to map `len` bytes and write one byte per 4 KiB page. */
static double touch(size_t len, int huge) {
  double t = now();
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  if (huge) madvise(p, len, MADV_HUGEPAGE);
  for (size_t i = 0; i < len; i += 4096) p[i] = 1;
  double d = now() - t;
  munmap(p, len);
  return d;
}

int main(void) {
  const int calls = 200000;
  double t = now();
  for (int i = 0; i < calls; i++) syscall(SYS_getppid);
  double syscall_us = (now() - t) / calls * 1e6;
  const size_t len = 64u << 20;
  double best4k = 1e9, besthuge = 1e9;
  for (int r = 0; r < 3; r++) {
    double a = touch(len, 0), b = touch(len, 1);
    if (a >= 0 && a < best4k) best4k = a;
    if (b >= 0 && b < besthuge) besthuge = b;
  }
  double pages = (double)(len / 4096);
  printf("{\"syscallUs\":%.3f,\"fault4kUs\":%.3f,\"faultThpUsPer4k\":%.3f}\n", syscall_us, best4k / pages * 1e6,
         besthuge / pages * 1e6);
  return 0;
}
