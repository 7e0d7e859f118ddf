/*
 * t_alloc.c -- lane_decide allocates nothing.
 *
 * malloc, calloc, realloc and free are defined here and forward to glibc's
 * __libc_* entry points, counting calls while `counting` is set. Under
 * AddressSanitizer, which owns the allocator, the test is skipped.
 */
#include "tap.h"

#include "golden/lanec/asm.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#endif

#ifndef T_ASAN
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void  __libc_free(void *p);

static volatile int counting;
static volatile long nalloc;

void *malloc(size_t n) { if (counting) nalloc++; return __libc_malloc(n); }
void *calloc(size_t n, size_t size) { if (counting) nalloc++; return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { if (counting) nalloc++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }

static la *build(void) {
  la *a = la_new();
  uint32_t C = BC_MEMBER_CHECK, pool, f, j;
  la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  la_model(a, "beta.mid", 3, 6, 100000, 8000, 0.8, 0, 0);
  pool = la_pool(a, 3, (uint32_t[]){ 0 | C, 2, 1 | C });  /* by quality: best() */
  f = la_filter(a);
  la_op(a, BC_OP_M_FITS, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 2);
  la_rule(a, "req.images / req.images > 0");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_DIV_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_SHADOW, 0, 0, 2);
  la_op(a, BC_OP_CAND, BC_ORD_BEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  la_rule(a, "bucket(req.user) < 50%");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_USER);
  la_op(a, BC_OP_BUCKET_S, 0, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.5));
  la_op(a, BC_OP_LT_D, 0, 0, 0);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_FASTEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}
#endif

int main(void) {
#ifdef T_ASAN
  skip(3, "AddressSanitizer owns malloc");
#else
  {
    la *a = build();
    lane_error err;
    lane_program *p;
    lane_runtime *rt;
    lane_request r;
    lane_decision d;
    char user[32];
    long decided = 0;
    counting = 1;
    p = la_load(a, &err);
    counting = 0;
    ok(nalloc > 0, "the counter sees the loader's %ld allocations", nalloc);
    rt = p ? lane_runtime_new(p, &err) : NULL;
    if (!rt) bail("cannot load the program");
    nalloc = 0;
    counting = 1;
    for (int i = 0; i < 20000; i++) {
      lane_request_init(&r, p);
      snprintf(user, sizeof user, "u%d", i);
      lane_set_str(&r, BC_F_USER, user, strlen(user));
      lane_set_int(&r, BC_F_IMAGES, i % 3);
      lane_set_int(&r, BC_F_INPUT_TOKENS, i % 30000);
      lane_set_int(&r, BC_F_MAX_OUTPUT_TOKENS, 500);
      decided += lane_decide(rt, "chat", &r, &d) == LANE_OK;
      lane_observe(rt, d.candidates[0], 100, i % 7 != 0);
    }
    counting = 0;
    is_int(nalloc, 0, "no allocation in 20000 decisions");
    is_int(decided, 20000, "all decided");
    lane_runtime_free(rt);
    lane_program_free(p);
    free(a);
  }
#endif
  return done_testing();
}
