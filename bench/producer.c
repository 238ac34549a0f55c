/*
 * The producer for bench/capture.mjs: writes BYTES bytes to stdout in writes
 * of CHUNK bytes (default 1 MiB) from one buffer filled once, so that the
 * rate is the pipe's and the reader's, not this program's.
 *
 *   producer BYTES [CHUNK]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s BYTES [CHUNK]\n", argv[0]);
    return 2;
  }
  long long left = atoll(argv[1]);
  size_t chunk = argc > 2 ? (size_t)atoll(argv[2]) : (size_t)1 << 20;
  if (left < 0 || chunk == 0) return 2;
  char *buf = malloc(chunk);
  if (buf == NULL) return 2;
  for (size_t i = 0; i < chunk; i++) buf[i] = (char)('a' + i % 26);
  while (left > 0) {
    size_t n = left < (long long)chunk ? (size_t)left : chunk;
    ssize_t w = write(1, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      perror("producer: write");
      return 1;
    }
    left -= w;
  }
  return 0;
}
