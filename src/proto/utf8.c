#include "proto/utf8.h"

#include <string.h>

/* Byte classes: which bytes may follow which is decided by these ranges. */
enum {
  C_ASCII,   /* 00..7F */
  C_80_8F,   /* continuation, low */
  C_90_9F,   /* continuation, middle */
  C_A0_BF,   /* continuation, high */
  C_BAD,     /* C0, C1, F5..FF: never valid */
  C_2B,      /* C2..DF: lead of a 2-byte form */
  C_E0,      /* E0: next must be A0..BF (no overlong) */
  C_3B,      /* E1..EC, EE..EF */
  C_ED,      /* ED: next must be 80..9F (no surrogates) */
  C_F0,      /* F0: next must be 90..BF (no overlong) */
  C_4B,      /* F1..F3 */
  C_F4,      /* F4: next must be 80..8F (<= U+10FFFF) */
  C_COUNT
};

/* States: how many continuation bytes are still owed, and of which range. */
enum { S_ACC = 0, S_1, S_2, S_E0, S_ED, S_3, S_F0, S_F4, S_REJ };

static const uint8_t next_state[9][C_COUNT] = {
  /*            ASCII  80_8F  90_9F  A0_BF  BAD    2B     E0     3B     ED     F0     4B     F4 */
  /* S_ACC */ { S_ACC, S_REJ, S_REJ, S_REJ, S_REJ, S_1,   S_E0,  S_2,   S_ED,  S_F0,  S_3,   S_F4 },
  /* S_1   */ { S_REJ, S_ACC, S_ACC, S_ACC, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_2   */ { S_REJ, S_1,   S_1,   S_1,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_E0  */ { S_REJ, S_REJ, S_REJ, S_1,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_ED  */ { S_REJ, S_1,   S_1,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_3   */ { S_REJ, S_2,   S_2,   S_2,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_F0  */ { S_REJ, S_REJ, S_2,   S_2,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_F4  */ { S_REJ, S_2,   S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
  /* S_REJ */ { S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ, S_REJ },
};

/* Class of every byte value, one row per high nibble. */
#define AS C_ASCII
#define c8 C_80_8F
#define c9 C_90_9F
#define cA C_A0_BF
#define XX C_BAD
#define L2 C_2B
#define E0 C_E0
#define L3 C_3B
#define ED C_ED
#define F0 C_F0
#define L4 C_4B
#define F4 C_F4
static const uint8_t byte_class[256] = {
  /* 0_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 1_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 2_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 3_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 4_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 5_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 6_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 7_ */ AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,AS,
  /* 8_ */ c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,c8,
  /* 9_ */ c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,c9,
  /* A_ */ cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,
  /* B_ */ cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,cA,
  /* C_ */ XX,XX,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,
  /* D_ */ L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,L2,
  /* E_ */ E0,L3,L3,L3,L3,L3,L3,L3,L3,L3,L3,L3,L3,ED,L3,L3,
  /* F_ */ F0,L4,L4,L4,F4,XX,XX,XX,XX,XX,XX,XX,XX,XX,XX,XX,
};
#undef AS
#undef c8
#undef c9
#undef cA
#undef XX
#undef L2
#undef E0
#undef L3
#undef ED
#undef F0
#undef L4
#undef F4

#define ASCII_MASK 0x8080808080808080ull

int uvws__utf8_feed(uint8_t *state, const uint8_t *p, size_t len) {
  uint8_t s = *state;
  size_t i = 0;

  while (i < len) {
    /* Between code points, skip ASCII eight bytes at a time: most text is
     * ASCII and this keeps validation near memory speed. */
    if (s == S_ACC) {
      while (len - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & ASCII_MASK) break;
        i += 8;
      }
      while (i < len && p[i] < 0x80) i++;
      if (i == len) break;
    }
    s = next_state[s][byte_class[p[i]]];
    if (s == S_REJ) {
      *state = S_REJ;
      return -1;
    }
    i++;
  }
  *state = s;
  return 0;
}

int uvws__utf8_valid(const void *p, size_t len) {
  uint8_t s = UVWS__UTF8_ACCEPT;
  return uvws__utf8_feed(&s, p, len) == 0 && s == UVWS__UTF8_ACCEPT;
}
