/* placeholder, replaced below */
#include "internal.h"
int uvws__redis_start(uvws_server_t *p) { (void)p; return UV_ENOTSUP; }
void uvws__redis_publish(uvws_server_t *p, const char *t, size_t n, uvws__sbuf_t *f, size_t hl) { (void)p; (void)t; (void)n; (void)f; (void)hl; }
void uvws__redis_stop(uvws_server_t *p) { (void)p; }
int uvws__redis_busy(const uvws_server_t *p) { (void)p; return 0; }
void uvws__redis_free(uvws_server_t *p) { (void)p; }
void uvws__redis_metrics(const uvws_server_t *p, uvws__buf_t *o) { (void)p; (void)o; }
