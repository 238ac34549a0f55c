/*
 * A reference for bench/capture.mjs: what capturing a stream into memory
 * costs on this machine without any runtime in the way. Reads stdin to EOF
 * into one buffer of CAPACITY bytes (mmap'ed, so only what is written becomes
 * resident), optionally advised for transparent huge pages, then touches
 * nothing else and exits. The difference to `cat > /dev/null` is the price
 * of the destination memory (page faults, zeroing) on this kernel.
 *
 *   capture_reader CAPACITY [huge]
 *
 * Prints one JSON line: {"bytes":..}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CAPACITY [huge]\n", argv[0]);
    return 2;
  }
  size_t capacity = (size_t)atoll(argv[1]);
  int huge = argc > 2 && strcmp(argv[2], "huge") == 0;
  char *buf = mmap(NULL, capacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (buf == MAP_FAILED) {
    perror("capture_reader: mmap");
    return 2;
  }
  if (huge && madvise(buf, capacity, MADV_HUGEPAGE) != 0) perror("capture_reader: madvise");
  size_t have = 0;
  for (;;) {
    size_t room = capacity - have;
    if (room == 0) {
      fprintf(stderr, "capture_reader: more than %zu bytes\n", capacity);
      return 1;
    }
    ssize_t n = read(0, buf + have, room < (1u << 20) ? room : (1u << 20));
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("capture_reader: read");
      return 1;
    }
    if (n == 0) break;
    have += (size_t)n;
  }
  printf("{\"bytes\":%zu}\n", have);
  return 0;
}
