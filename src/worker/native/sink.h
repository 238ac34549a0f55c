#ifndef SPAWNPOOL_SINK_H
#define SPAWNPOOL_SINK_H

/* A captured stream's bytes, grown as they come, handed to JS at the end. */

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

struct sink {
  uint8_t *data;
  size_t len, cap;
  void *map;                   /* our own mapping once large (NULL: malloc'd) */
  size_t map_len;
};

/* Room for at least one more byte, up to `limit`; 0 or ENOMEM. */
int sink_grow(struct sink *s, size_t limit);
void sink_free(struct sink *s);
/* A Uint8Array holding the bytes (the sink is left empty), or NULL with a JS exception pending. */
napi_value sink_to_js(napi_env env, struct sink *s);

#endif
