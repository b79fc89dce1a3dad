#include "uvws.h"

const char *uvws_strerror(int err) {
  switch (err) {
#define UVWS_STRERROR_GEN(name, val, msg)                                      \
  case UVWS_##name:                                                            \
    return msg;
    UVWS_ERRNO_MAP(UVWS_STRERROR_GEN)
#undef UVWS_STRERROR_GEN
    default:
      return uv_strerror(err);
  }
}

const char *uvws_version(void) { return UVWS_VERSION_STRING; }
