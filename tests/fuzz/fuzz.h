/*
 * fuzz.h -- helpers shared by the libFuzzer targets of tests/fuzz/.
 *
 * A byte reader that never fails (past the end it reads zeros), the
 * resealing of a .lanec image (size field and checksum) so that mutations
 * reach the verifier's deeper checks instead of the checksum, and a request
 * filler driven by fuzzer bytes.
 */
#ifndef LANE_FUZZ_H
#define LANE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc.h"
#include "lane.h"

/* Reads bytes from the fuzzer's input; zeros once it runs out. */
typedef struct fz {
  const uint8_t *p;   /* input */
  size_t         n;   /* bytes left */
} fz;

static inline uint8_t fz_u8(fz *f) {
  if (!f->n) return 0;
  f->n--;
  return *f->p++;
}

static inline uint32_t fz_u32(fz *f) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)fz_u8(f) << (8 * i);
  return v;
}

static inline uint64_t fz_u64(fz *f) {
  return (uint64_t)fz_u32(f) | (uint64_t)fz_u32(f) << 32;
}

/* An int from a small table of edge values, or raw bytes. */
static inline int64_t fz_int(fz *f) {
  static const int64_t edge[] = {0, 1, -1, 2, 100, 1000, 4096, 8000, 32000, 128000,
                                 INT64_MAX, INT64_MIN, INT64_MAX - 1, INT32_MAX};
  uint8_t k = fz_u8(f);
  if (k < 14 * 16) return edge[k % 14];
  return (int64_t)fz_u64(f);
}

static inline double fz_double(fz *f) {
  static const double edge[] = {0, 1, -1, 0.5, 0.05, 1e-6, 1500, 1e300, -0.0};
  uint8_t k = fz_u8(f);
  if (k < 9 * 16) return edge[k % 9];
  uint64_t bits = fz_u64(f);
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* Sets the header's size field to n and recomputes the checksum. */
static inline void fz_reseal(uint8_t *b, size_t n) {
  if (n < BC_HEADER_SIZE) return;
  for (int i = 0; i < 4; i++) b[16 + i] = (uint8_t)((uint64_t)n >> (8 * i));
  uint64_t h = bc_checksum(b, n);
  for (int i = 0; i < 8; i++) b[24 + i] = (uint8_t)(h >> (8 * i));
}

/* Fills some fields of r from the input, each with a value of its type
 * (sometimes of another type: the setters must refuse it). Strings point
 * into pool, which must outlive the decisions. */
static inline void fz_request(fz *f, const lane_program *p, lane_request *r,
                              char (*pool)[16], int npool) {
  static const char *const words[] = {"", "a", "b", "acme", "chat", "code", "pro", "free",
                                      "enterprise", "summarize", "eu", "us", "frank",
                                      "\xc3\xa9t\xc3\xa9", "x\0y", "globex"};
  int nf = lane_field_count(p), nset = fz_u8(f) % 24, used = 0;
  lane_request_init(r, p);
  for (int i = 0; i < nset && f->n; i++) {
    int field = fz_u8(f) % (nf + 2) - 1;   /* -1 and nf: out of range */
    int ty = lane_field_type(p, field);
    if (fz_u8(f) % 16 == 0) ty = fz_u8(f) % 6;
    switch (ty) {
    case LANE_T_INT: lane_set_int(r, field, fz_int(f)); break;
    case LANE_T_UINT: lane_set_uint(r, field, (uint64_t)fz_int(f)); break;
    case LANE_T_DOUBLE: lane_set_double(r, field, fz_double(f)); break;
    case LANE_T_BOOL: lane_set_bool(r, field, fz_u8(f) & 1); break;
    case LANE_T_STRING: {
      uint8_t k = fz_u8(f);
      if (k < 128 || used >= npool) {
        const char *w = words[k % 16];
        lane_set_str(r, field, w, k % 16 == 14 ? 3 : strlen(w));
      } else {
        size_t len = k % 16;
        for (size_t j = 0; j < len; j++) pool[used][j] = (char)fz_u8(f);
        lane_set_str(r, field, pool[used++], len);
      }
      break;
    }
    default: lane_set_int(r, field, 1); break;
    }
  }
}

/* The properties every successful decision has; aborts (a finding) if not. */
static inline void fz_check_decision(const lane_program *p, int rc, const lane_decision *d) {
  int nm = lane_model_count(p);
  if (rc != LANE_OK && rc != LANE_ENOMATCH && rc != LANE_EARG) {
    fprintf(stderr, "unexpected status %d\n", rc);
    abort();
  }
  if (rc == LANE_EARG) return;   /* nothing decided, out untouched */
  if ((uint64_t)d->steps > lane_program_max_steps(p)) {
    fprintf(stderr, "%u steps, worst case %llu\n", (unsigned)d->steps,
            (unsigned long long)lane_program_max_steps(p));
    abort();
  }
  if (rc != LANE_OK) return;
  if (d->ncandidates < 1 || d->ncandidates > LANE_MAX_CANDIDATES ||
      d->nshadows < 0 || d->nshadows > LANE_MAX_SHADOWS)
    abort();
  for (int i = 0; i < d->ncandidates; i++) {
    if (d->candidates[i] < 0 || d->candidates[i] >= nm) abort();
    for (int j = 0; j < i; j++)
      if (d->candidates[j] == d->candidates[i]) abort();
  }
  for (int i = 0; i < d->nshadows; i++)
    if (d->shadows[i] < 0 || d->shadows[i] >= nm) abort();
}

#endif /* LANE_FUZZ_H */
