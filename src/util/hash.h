/* FNV-1a, the one hash of the tree: short keys (topic names, peer
 * addresses) into hash-table buckets. Not for anything an attacker may
 * aim collisions at beyond slowing a chain. */
#ifndef UVWS_HASH_H
#define UVWS_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t uvws__hash(const void *p, size_t n) {
  const uint8_t *s = p;
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
  return h;
}

#endif
