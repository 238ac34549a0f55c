/*
 * Capture buffers. A small capture grows in malloc'd memory. A large one
 * lives in a mapping of its own, grown by mremap (the kernel moves page
 * tables, nothing is copied) with huge pages asked for. At the end the
 * bytes must sit in memory V8 owns (an ArrayBuffer that can be moved to the
 * main thread). Copying them there would fault in and zero a second region
 * of the capture's size: on a guest where a first touch costs microseconds
 * per page that doubled the cost of a capture. So the whole pages of the
 * capture are moved over the ArrayBuffer's fresh, untouched pages with
 * mremap(MREMAP_FIXED), and only the ragged ends are copied. That needs the
 * two to share their offset within a page: the data starts at the offset
 * glibc's allocator gives a large block (two words past a page boundary),
 * and where the ArrayBuffer's offset differs, it is copied after all.
 */
#define _GNU_SOURCE
#include "sink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A capture starts with this much, doubling. */
#define FIRST_CAPACITY 16384
/* From this size a capture gets its own mapping. */
#define MAP_FROM (4u << 20)
/* Where the data starts in that mapping: a large malloc block's offset. */
#define SKEW (2 * sizeof(size_t))
/* Moving pages only pays for itself on larger captures. */
#define MOVE_FROM (1u << 20)

static const uintptr_t PAGE = 4096;

static uintptr_t round_up(uintptr_t x, uintptr_t to) { return (x + to - 1) & ~(to - 1); }
static uintptr_t round_down(uintptr_t x, uintptr_t to) { return x & ~(to - 1); }

int sink_grow(struct sink *s, size_t limit) {
  size_t cap = s->cap == 0 ? FIRST_CAPACITY : 2 * s->cap;
  if (cap > limit) cap = limit;
  if (cap < MAP_FROM) {
    uint8_t *data = realloc(s->data, cap);
    if (data == NULL) return ENOMEM;
    s->data = data;
  } else {
    size_t map_len = round_up(SKEW + cap, PAGE);
    void *map = s->map == NULL ? mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                               : mremap(s->map, s->map_len, map_len, MREMAP_MAYMOVE);
    if (map == MAP_FAILED) return ENOMEM;
    /* The whole mapping, so that it stays one VMA (mremap moves only within one). */
    madvise(map, map_len, MADV_HUGEPAGE);
    if (s->map == NULL) {
      memcpy((uint8_t *)map + SKEW, s->data, s->len);
      free(s->data);
    }
    s->map = map;
    s->map_len = map_len;
    s->data = (uint8_t *)map + SKEW;
  }
  s->cap = cap;
  return 0;
}

void sink_free(struct sink *s) {
  if (s->map != NULL) munmap(s->map, s->map_len);
  else free(s->data);
  memset(s, 0, sizeof *s);
}

/* dest's whole pages become src's (same offset in a page); the ends are copied. */
static void move_bytes(uint8_t *dest, uint8_t *src, size_t len) {
  uintptr_t first = round_up((uintptr_t)dest, PAGE), last = round_down((uintptr_t)dest + len, PAGE);
  bool movable = len >= MOVE_FROM && ((uintptr_t)dest & (PAGE - 1)) == ((uintptr_t)src & (PAGE - 1)) && last > first;
  if (movable) {
    size_t head = first - (uintptr_t)dest;
    void *moved = mremap(src + head, last - first, last - first, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)first);
    if (moved != MAP_FAILED) {
      memcpy(dest, src, head);
      memcpy((void *)last, src + (last - (uintptr_t)dest), (uintptr_t)dest + len - last);
      return;
    }
  }
  memcpy(dest, src, len);
}

napi_value sink_to_js(napi_env env, struct sink *s) {
  napi_value ab, view;
  void *data;
  if (napi_create_arraybuffer(env, s->len, &data, &ab) != napi_ok) return NULL;
  if (s->map != NULL) move_bytes(data, s->data, s->len);
  else if (s->len > 0) memcpy(data, s->data, s->len);
  size_t len = s->len;
  sink_free(s);
  return napi_create_typedarray(env, napi_uint8_array, len, ab, 0, &view) == napi_ok ? view : NULL;
}
