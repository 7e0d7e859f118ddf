/*
 * sem.h -- the semantic core: what the VM computes and the compiler's
 * evaluator (constant folding, static model filters, `lane eval
 * --explain`, test expectations) must compute alike. One definition of
 * each operation, so the two cannot drift apart; the VM is the truth and
 * these are its rules.
 *
 * Internal to the format layer (beside bc.h): not installed, libc only.
 * The functions are static inline, so the interpreter pays no call; the
 * two-way search's two long helpers are plain static (unused where not
 * called), so the compiler inlines them only where it pays, as it did
 * when they were the VM's own: inlined into the dispatch loop they cost
 * every decision about 2% more instructions.
 *
 *   checked arithmetic     sem_add_i ... sem_mod_u, sem_neg_i (SEM_E*)
 *   conversions            sem_d2i sem_d2u sem_i2u sem_u2i
 *   byte strings           sem_bytes_cmp sem_bytes_eq, sem_starts
 *                          sem_ends sem_contains, sem_utf8_size
 *   CEL string extensions  sem_char_at sem_substring sem_index_of
 *                          sem_last_index_of sem_trim (code points)
 *   parsing strings        sem_parse_i sem_parse_u sem_parse_b
 *   CEL's math extension   sem_abs_i, sem_sign_d, sem_shl/shr_u,
 *                          sem_max_d sem_min_d, sem_trunc sem_floor
 *                          sem_ceil sem_round sem_fabs (no libm)
 *   bucket()               sem_bucket_u sem_bucket_s
 *   request maps           sem_map_count sem_map_next sem_map_find (the
 *                          stored form lane_set_map writes)
 *   model checks           sem_fits, sem_breaker_health
 *   budget figures         sem_budget_figure
 */
#ifndef LANE_SEM_H
#define LANE_SEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc.h"
#include "lane.h"

/* ---------------------------------------------------------------------
 * Checked arithmetic. Each returns SEM_OK with *r set, or the runtime
 * error the VM raises (a rule that does not match; a folding error).
 * ------------------------------------------------------------------- */
enum {
  SEM_OK = 0,
  SEM_EOVERFLOW,   /* the result does not fit (or an unsigned one is < 0) */
  SEM_EZERO,       /* division or modulus by zero */
  SEM_ERANGE,      /* a conversion's operand is out of the target's range */
  SEM_EINDEX,      /* a string index out of range, or a substring's start past its end */
  SEM_ESHIFT,      /* a negative bit shift */
  SEM_ELONG        /* a string built would pass its limit (LANE_MAX_STRING) */
};

static inline int sem_add_i(int64_t a, int64_t b, int64_t *r) {
  return __builtin_add_overflow(a, b, r) ? SEM_EOVERFLOW : SEM_OK;
}
static inline int sem_sub_i(int64_t a, int64_t b, int64_t *r) {
  return __builtin_sub_overflow(a, b, r) ? SEM_EOVERFLOW : SEM_OK;
}
static inline int sem_mul_i(int64_t a, int64_t b, int64_t *r) {
  return __builtin_mul_overflow(a, b, r) ? SEM_EOVERFLOW : SEM_OK;
}
/* a / b truncated toward zero; INT64_MIN / -1 overflows. */
static inline int sem_div_i(int64_t a, int64_t b, int64_t *r) {
  if (b == 0) return SEM_EZERO;
  if (b == -1 && a == INT64_MIN) return SEM_EOVERFLOW;
  *r = a / b;
  return SEM_OK;
}
/* a % b with the sign of a; INT64_MIN % -1 is an error, as in CEL. */
static inline int sem_mod_i(int64_t a, int64_t b, int64_t *r) {
  if (b == 0) return SEM_EZERO;
  if (b == -1 && a == INT64_MIN) return SEM_EOVERFLOW;
  *r = a % b;
  return SEM_OK;
}
static inline int sem_neg_i(int64_t a, int64_t *r) {
  if (a == INT64_MIN) return SEM_EOVERFLOW;
  *r = -a;
  return SEM_OK;
}

/* ---- CEL's math extension (math.abs, math.sign, math.bit*, greatest
 * and least) ---- */
static inline int sem_abs_i(int64_t a, int64_t *r) {
  if (a == INT64_MIN) return SEM_EOVERFLOW;
  *r = a < 0 ? -a : a;
  return SEM_OK;
}

/* Rounding without libm (liblane links libc alone). A double of
 * magnitude 2^52 or more is whole already, as are NaN and infinities;
 * below that the int64 conversion is exact. A whole result keeps d's sign
 * (math.trunc(-0.5) is -0.0, as C's trunc). */
static inline double sem_with_sign(double r, double d) {
  uint64_t rb, db;
  memcpy(&rb, &r, 8);
  memcpy(&db, &d, 8);
  rb = (rb & ~(UINT64_C(1) << 63)) | (db & (UINT64_C(1) << 63));
  memcpy(&r, &rb, 8);
  return r;
}
static inline double sem_fabs(double d) { return sem_with_sign(d, 1.0); }
static inline int sem_whole(double d) { return !(sem_fabs(d) < 4503599627370496.0); }
static inline double sem_trunc(double d) {
  return sem_whole(d) ? d : sem_with_sign((double)(int64_t)d, d);
}
static inline double sem_floor(double d) {
  double t = sem_trunc(d);
  return t > d ? t - 1.0 : t;
}
static inline double sem_ceil(double d) {
  double t = sem_trunc(d);
  return t < d ? sem_with_sign(t + 1.0, d) : t;
}
/* Halves away from zero (C's round): d - trunc(d) is exact here. */
static inline double sem_round(double d) {
  double t = sem_trunc(d);
  if (sem_whole(d) || sem_fabs(d - t) < 0.5) return t;
  return d < 0 ? t - 1.0 : t + 1.0;
}

/* ---------------------------------------------------------------------
 * Request maps as stored (lane_set_map, in the request's text room): a
 * uint32 count, then per entry a uint32 key length and the key's bytes,
 * then the value: a uint32 length and the bytes for a string, else the 8
 * bytes of a lane_value (i, u or d). Lengths are native-endian, and read
 * with memcpy (nothing is aligned). An unset field (no bytes) is the
 * empty map. lane_set_map checks the form; these trust it.
 * ------------------------------------------------------------------- */
static inline uint32_t sem_u32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static inline uint32_t sem_map_count(const char *m, size_t n) { return n >= 4 ? sem_u32(m) : 0; }

/* The entry at *at (the first at 4): its key, its value's bytes (a
 * string's, or the 8 of a number), and *at moved past it. str: the map's
 * values are strings. */
static inline void sem_map_next(const char *m, size_t *at, int str, const char **k, size_t *kn,
                                const char **v, size_t *vn) {
  *kn = sem_u32(m + *at);
  *k = m + *at + 4;
  *at += 4 + *kn;
  *vn = str ? sem_u32(m + *at) : 8;
  *v = m + *at + (str ? 4 : 0);
  *at += (str ? 4 : 0) + *vn;
}

/* Whether key k is in map m (n bytes); its value's bytes in *v, *vn. */
static inline int sem_map_find(const char *m, size_t n, int str, const char *key, size_t klen,
                               const char **v, size_t *vn) {
  uint32_t count = sem_map_count(m, n);
  size_t at = 4;
  for (uint32_t i = 0; i < count; i++) {
    const char *k;
    size_t kn;
    sem_map_next(m, &at, str, &k, &kn, v, vn);
    if (kn == klen && (klen == 0 || !memcmp(k, key, klen))) return 1;
  }
  return 0;
}

/* -1.0, 1.0, or d itself for zeros and NaN. */
static inline double sem_sign_d(double d) { return d > 0 ? 1.0 : d < 0 ? -1.0 : d; }

/* Shifts by n bits: n >= 64 gives 0, a negative n is an error; a right
 * shift fills with zeros, for ints too (CEL's bitShiftRight). */
static inline int sem_shl_u(uint64_t a, int64_t n, uint64_t *r) {
  if (n < 0) return SEM_ESHIFT;
  *r = n >= 64 ? 0 : a << n;
  return SEM_OK;
}

static inline int sem_shr_u(uint64_t a, int64_t n, uint64_t *r) {
  if (n < 0) return SEM_ESHIFT;
  *r = n >= 64 ? 0 : a >> n;
  return SEM_OK;
}

/* The larger and smaller of two doubles; a NaN wins either way, so one
 * NaN among math.greatest's arguments makes the result NaN. */
static inline double sem_max_d(double a, double b) { return a != a ? a : (b > a || b != b) ? b : a; }
static inline double sem_min_d(double a, double b) { return a != a ? a : (b < a || b != b) ? b : a; }
/* Unsigned: wrap-around, and a result below zero, are errors. */
static inline int sem_add_u(uint64_t a, uint64_t b, uint64_t *r) {
  return __builtin_add_overflow(a, b, r) ? SEM_EOVERFLOW : SEM_OK;
}
static inline int sem_sub_u(uint64_t a, uint64_t b, uint64_t *r) {
  return __builtin_sub_overflow(a, b, r) ? SEM_EOVERFLOW : SEM_OK;
}
static inline int sem_mul_u(uint64_t a, uint64_t b, uint64_t *r) {
  return __builtin_mul_overflow(a, b, r) ? SEM_EOVERFLOW : SEM_OK;
}
static inline int sem_div_u(uint64_t a, uint64_t b, uint64_t *r) {
  if (b == 0) return SEM_EZERO;
  *r = a / b;
  return SEM_OK;
}
static inline int sem_mod_u(uint64_t a, uint64_t b, uint64_t *r) {
  if (b == 0) return SEM_EZERO;
  *r = a % b;
  return SEM_OK;
}

/* Conversions (I2D and U2D are plain casts and never fail). D2I truncates
 * toward zero; nan, inf and values outside (-2^63, 2^63) are an error, as
 * in CEL, which excludes -2^63 itself (the comparisons are false for nan).
 * D2U: nan, inf, <= -1 and >= 2^64 are an error. */
static inline int sem_d2i(double d, int64_t *r) {
  if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0)) return SEM_ERANGE;
  *r = (int64_t)d;
  return SEM_OK;
}
static inline int sem_d2u(double d, uint64_t *r) {
  if (!(d > -1.0 && d < 18446744073709551616.0)) return SEM_ERANGE;
  *r = (uint64_t)d;
  return SEM_OK;
}
static inline int sem_i2u(int64_t i, uint64_t *r) {
  if (i < 0) return SEM_ERANGE;
  *r = (uint64_t)i;
  return SEM_OK;
}
static inline int sem_u2i(uint64_t u, int64_t *r) {
  if (u > INT64_MAX) return SEM_ERANGE;
  *r = (int64_t)u;
  return SEM_OK;
}

/* ---------------------------------------------------------------------
 * Byte strings. Strings compare bytewise (memcmp's unsigned bytes), which
 * for UTF-8 is code point order; a proper prefix sorts first.
 * ------------------------------------------------------------------- */
static inline int sem_bytes_cmp(const void *a, size_t an, const void *b, size_t bn) {
  size_t n = an < bn ? an : bn;
  int c = n ? memcmp(a, b, n) : 0;
  return c ? c : (an > bn) - (an < bn);
}

static inline int sem_bytes_eq(const void *a, size_t an, const void *b, size_t bn) {
  if (an != bn) return 0;
  if (an <= 16) {   /* tiers, tasks, regions: compared here, not by a call */
    const unsigned char *x = a, *y = b;
    if (an >= 8) {   /* the first and the last 8 bytes (they may overlap) */
      uint64_t p, q, r, t;
      memcpy(&p, x, 8); memcpy(&q, y, 8); memcpy(&r, x + an - 8, 8); memcpy(&t, y + an - 8, 8);
      return ((p ^ q) | (r ^ t)) == 0;
    }
    if (an >= 4) {
      uint32_t p, q, r, t;
      memcpy(&p, x, 4); memcpy(&q, y, 4); memcpy(&r, x + an - 4, 4); memcpy(&t, y + an - 4, 4);
      return ((p ^ q) | (r ^ t)) == 0;
    }
    unsigned d = 0;
    for (size_t i = 0; i < an; i++) d |= (unsigned)(x[i] ^ y[i]);
    return d == 0;
  }
  return memcmp(a, b, an) == 0;
}

/* s.startsWith(t) and s.endsWith(t): the empty t is in every s. */
static inline int sem_starts(const char *s, size_t sn, const char *t, size_t tn) {
  return tn <= sn && (tn == 0 || memcmp(s, t, tn) == 0);
}
static inline int sem_ends(const char *s, size_t sn, const char *t, size_t tn) {
  return tn <= sn && (tn == 0 || memcmp(s + sn - tn, t, tn) == 0);
}

/* The maximal suffix of x[0,m) in byte order (rev 0) or in reverse byte
 * order (rev 1): returns where it starts, and its period in *per. Each
 * round moves the candidate or the compared position on: linear in m. */
static __attribute__((unused)) size_t sem_max_suffix(const unsigned char *x, size_t m, int rev,
                                                     size_t *per) {
  size_t s = 0, c = 1, k = 1, p = 1;   /* suffix at s, challenger at c */
  while (c + k <= m) {
    unsigned char a = x[c + k - 1], b = x[s + k - 1];
    if (a == b) {
      if (k == p) { c += p; k = 1; }
      else k++;
    } else if ((a < b) != rev) {       /* the challenger is smaller: skip it */
      c += k;
      k = 1;
      p = c - s;
    } else {                           /* the challenger is larger: it leads */
      s = c;
      c = s + 1;
      k = p = 1;
    }
  }
  *per = p;
  return s;
}

/* Whether needle x[0,m) (m >= 1) occurs in y[0,n) (n >= m): Crochemore
 * and Perrin's two-way matching. x splits at a critical position s into
 * x[0,s) and x[s,m); each try matches the right part left to right, then
 * the left part right to left, and a mismatch shifts by what the
 * factorization proves safe. At most 2n byte comparisons after O(m)
 * preparation, and no memory: contains() costs O(n + m) whatever the
 * strings (the cost model counts it so). */
static __attribute__((unused)) size_t sem_two_way(const unsigned char *y, size_t n,
                                                 const unsigned char *x, size_t m) {
  size_t p1, p2, s1 = sem_max_suffix(x, m, 0, &p1), s2 = sem_max_suffix(x, m, 1, &p2);
  size_t s = s1 > s2 ? s1 : s2, per = s1 > s2 ? p1 : p2, pos = 0;
  if (memcmp(x, x + per, s) == 0) {     /* x is periodic: remember the overlap */
    size_t mem = 0;                     /* bytes of x known to match at pos */
    while (pos <= n - m) {
      size_t i = s > mem ? s : mem;
      while (i < m && x[i] == y[pos + i]) i++;
      if (i < m) {
        pos += i - s + 1;
        mem = 0;
        continue;
      }
      for (i = s; i > mem && x[i - 1] == y[pos + i - 1]; i--) {}
      if (i <= mem) return pos + 1;
      pos += per;
      mem = m - per;
    }
  } else {
    per = (s > m - s ? s : m - s) + 1;
    while (pos <= n - m) {
      size_t i = s;
      while (i < m && x[i] == y[pos + i]) i++;
      if (i < m) {
        pos += i - s + 1;
        continue;
      }
      for (i = s; i > 0 && x[i - 1] == y[pos + i - 1]; i--) {}
      if (i == 0) return pos + 1;
      pos += per;
    }
  }
  return 0;
}

/* s.contains(t): the empty t is in every s; linear in both lengths. */
static inline int sem_contains(const char *s, size_t sn, const char *t, size_t tn) {
  if (tn == 0) return 1;
  if (tn > sn) return 0;
  if (tn == 1) return memchr(s, t[0], sn) != NULL;
  return sem_two_way((const unsigned char *)s, sn, (const unsigned char *)t, tn) != 0;
}

/* The byte offset of t's first occurrence in s, or SIZE_MAX; linear. */
static inline size_t sem_find(const char *s, size_t sn, const char *t, size_t tn) {
  if (tn == 0) return 0;
  if (tn > sn) return SIZE_MAX;
  if (tn == 1) {
    const char *p = memchr(s, t[0], sn);
    return p ? (size_t)(p - s) : SIZE_MAX;
  }
  size_t r = sem_two_way((const unsigned char *)s, sn, (const unsigned char *)t, tn);
  return r ? r - 1 : SIZE_MAX;
}

/* ---- strings built at run time (into a decision's scratch) ---- */

/* lowerAscii / upperAscii: ASCII letters mapped, every other byte kept. */
static inline void sem_ascii_case(const char *s, size_t n, int upper, char *out) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (char)(upper ? (c >= 'a' && c <= 'z' ? c - 32 : c) : (c >= 'A' && c <= 'Z' ? c + 32 : c));
  }
}

/* s.replace(o, w, count): the first count occurrences of o (all when
 * count < 0), left to right, without overlaps; an empty o matches at the
 * start and after each UTF-8 sequence (Go's strings.Replace). Writes at
 * most cap bytes to out: SEM_OK with *len, or SEM_ELONG when the result
 * is longer. Linear: sem_find from each match on. */
static inline int sem_replace(const char *s, size_t n, const char *o, size_t on, const char *w,
                              size_t wn, int64_t count, char *out, size_t cap, size_t *len) {
  size_t at = 0, k = 0;
  int64_t done = 0;
#define SEM_PUT(p, m) do { if ((m) > cap - k) return SEM_ELONG; \
                           if (m) { memcpy(out + k, (p), (m)); } \
                           k += (m); } while (0)
  while (count < 0 || done < count) {
    size_t hit;
    if (on == 0) {
      if (at > n) break;
      hit = at;
    } else {
      size_t f = sem_find(s + at, n - at, o, on);
      if (f == SIZE_MAX) break;
      hit = at + f;
    }
    SEM_PUT(s + at, hit - at);
    SEM_PUT(w, wn);
    done++;
    if (on) { at = hit + on; continue; }
    if (hit == n) { at = n + 1; break; }
    size_t c = 1;   /* the code point after an empty match is kept */
    while (hit + c < n && ((unsigned char)s[hit + c] & 0xC0) == 0x80) c++;
    SEM_PUT(s + hit, c);
    at = hit + c;
  }
  if (at < n) SEM_PUT(s + at, n - at);
#undef SEM_PUT
  *len = k;
  return SEM_OK;
}

/* size(s): code points, counted as the bytes that are not UTF-8
 * continuation bytes (10xxxxxx); invalid UTF-8 is counted, not rejected.
 * Eight bytes at a time: a byte's top bit set and the next bit clear,
 * moved to the byte's low bit and summed by a multiplication. */
static inline int64_t sem_utf8_size(const char *s, size_t n) {
  const uint64_t top = 0x8080808080808080ull, ones = 0x0101010101010101ull;
  size_t i = 0, cont = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, sizeof w);
    cont += (size_t)((((w & ~(w << 1) & top) >> 7) * ones) >> 56);
  }
  for (; i < n; i++) cont += ((unsigned char)s[i] & 0xC0) == 0x80;
  return (int64_t)(n - cont);
}

/* ---------------------------------------------------------------------
 * CEL's string extensions (cel-go's ext/strings, which the conformance
 * suite checks): indexes count code points, as size() does (a byte that
 * is not a UTF-8 continuation byte starts one). A result string is a view
 * of the receiver's bytes: never longer, never allocated. Each returns
 * SEM_OK, or SEM_EINDEX for an index out of range.
 * ------------------------------------------------------------------- */

/* The byte offset of code point k (0 <= k) of s; n when s has no more. */
static inline size_t sem_cp_byte(const char *s, size_t n, int64_t k) {
  size_t i = 0;
  while (k > 0 && i < n) {
    i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    k--;
  }
  return i;
}

/* s.charAt(i): the code point at i; "" at i == size(s). */
static inline int sem_char_at(const char *s, size_t n, int64_t i, const char **r, size_t *rn) {
  if (i < 0 || i > sem_utf8_size(s, n)) return SEM_EINDEX;
  size_t b = sem_cp_byte(s, n, i);
  *r = s + b;
  *rn = sem_cp_byte(s + b, n - b, 1);
  return SEM_OK;
}

/* s.substring(a) (whole 0: to the end) and s.substring(a, e). */
static inline int sem_substring(const char *s, size_t n, int64_t a, int64_t e, int to_end,
                                const char **r, size_t *rn) {
  int64_t len = sem_utf8_size(s, n);
  if (to_end) e = len;
  if (a < 0 || a > len || e < 0 || e > len || a > e) return SEM_EINDEX;
  size_t b = sem_cp_byte(s, n, a);
  *r = s + b;
  *rn = sem_cp_byte(s + b, n - b, e - a);
  return SEM_OK;
}

/* s.indexOf(t) (checked 0: from 0, never an error) and s.indexOf(t, from):
 * the code point index of t's first occurrence at or after from, or -1.
 * An empty t is found at from; else from must be an index of s. */
static inline int sem_index_of(const char *s, size_t n, const char *t, size_t tn, int64_t from,
                               int checked, int64_t *r) {
  if (tn == 0) return *r = from, SEM_OK;
  if (checked && (from < 0 || from >= sem_utf8_size(s, n))) return SEM_EINDEX;
  size_t b = sem_cp_byte(s, n, from), p = sem_find(s + b, n - b, t, tn);
  *r = p == SIZE_MAX ? -1 : from + sem_utf8_size(s + b, p);
  return SEM_OK;
}

/* s.lastIndexOf(t) (checked 0) and s.lastIndexOf(t, from): the code point
 * index of t's last occurrence starting at or before from (the last one
 * at all without from), or -1. An empty t is found at from (at size(s)
 * without it); else from must be an index of s. Bytes are compared at
 * each start from the last one back: at most size(s) x size(t) bytes
 * (the cost model counts them so). */
static inline int sem_last_index_of(const char *s, size_t n, const char *t, size_t tn,
                                    int64_t from, int checked, int64_t *r) {
  int64_t len = sem_utf8_size(s, n);
  if (tn == 0) return *r = checked ? from : len, SEM_OK;
  if (checked && (from < 0 || from >= len)) return SEM_EINDEX;
  int64_t tl = sem_utf8_size(t, tn);
  if (!checked || from > len - tl) from = len - tl;
  *r = -1;
  if (from < 0) return SEM_OK;
  for (size_t i = sem_cp_byte(s, n, from) + 1; i-- > 0;)
    if (i + tn <= n && ((unsigned char)s[i] & 0xC0) != 0x80 && !memcmp(s + i, t, tn)) {
      *r = sem_utf8_size(s, i);
      break;
    }
  return SEM_OK;
}

/* Whether the code point starting at p[0, n) is Unicode White_Space (what
 * Go's unicode.IsSpace, so cel-go's trim(), removes); *len its bytes. */
static inline int sem_space_at(const unsigned char *p, size_t n, size_t *len) {
  uint32_t c = p[0];
  size_t k = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (k > n) k = 1;
  for (size_t i = 1; i < k; i++)
    if ((p[i] & 0xC0) != 0x80) k = 1;
  *len = k;
  if (k > 1) {
    c &= 0x7F >> k;
    for (size_t i = 1; i < k; i++) c = c << 6 | (p[i] & 0x3F);
  }
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/* s.trim(): s without its leading and trailing white space. */
static inline void sem_trim(const char *s, size_t n, const char **r, size_t *rn) {
  const unsigned char *p = (const unsigned char *)s;
  size_t a = 0, e = n, k;
  while (a < e && sem_space_at(p + a, e - a, &k)) a += k;
  while (e > a) {
    size_t b = e - 1;
    while (b > a && (p[b] & 0xC0) == 0x80 && e - b < 4) b--;
    if (!sem_space_at(p + b, e - b, &k) || b + k != e) break;
    e = b;
  }
  *r = s + a;
  *rn = e - a;
}

/* ---------------------------------------------------------------------
 * int(s), uint(s), bool(s) of a string, as CEL (Go's strconv.ParseInt,
 * ParseUint, ParseBool): the whole string is the value, nothing around
 * it; no locale. SEM_ERANGE when s is not one.
 * ------------------------------------------------------------------- */
static inline int sem_parse_u(const char *s, size_t n, uint64_t *r) {
  uint64_t v = 0;
  if (n == 0) return SEM_ERANGE;
  for (size_t i = 0; i < n; i++) {
    unsigned d = (unsigned)(unsigned char)s[i] - '0';
    if (d > 9 || v > (UINT64_MAX - d) / 10) return SEM_ERANGE;
    v = v * 10 + d;
  }
  *r = v;
  return SEM_OK;
}

static inline int sem_parse_i(const char *s, size_t n, int64_t *r) {
  int neg = n > 0 && s[0] == '-';
  size_t k = n > 0 && (s[0] == '-' || s[0] == '+');
  uint64_t u;
  if (sem_parse_u(s + k, n - k, &u) || u > (uint64_t)INT64_MAX + (uint64_t)neg) return SEM_ERANGE;
  *r = neg ? (int64_t)(0 - u) : (int64_t)u;
  return SEM_OK;
}

static inline int sem_parse_b(const char *s, size_t n, int64_t *r) {
  static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
  static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
  for (int i = 0; i < 6; i++) {
    if (strlen(yes[i]) == n && !memcmp(yes[i], s, n)) return *r = 1, SEM_OK;
    if (strlen(no[i]) == n && !memcmp(no[i], s, n)) return *r = 0, SEM_OK;
  }
  return SEM_ERANGE;
}

/* ---------------------------------------------------------------------
 * bucket(k): splitmix64 of an int's or uint's 64 bits (an int and a uint
 * with the same bits share a bucket), or of FNV-1a 64 of a string's
 * bytes, % 100, as a fraction.
 * ------------------------------------------------------------------- */
/* k / 100.0 for k = 0 .. 99, divided once by the compiler (constant
 * expressions, rounded as the division at run time would be). */
#define SEM_PCT1(t, u) (double)((t) * 10 + (u)) / 100.0
#define SEM_PCT10(t) SEM_PCT1(t, 0), SEM_PCT1(t, 1), SEM_PCT1(t, 2), SEM_PCT1(t, 3), \
  SEM_PCT1(t, 4), SEM_PCT1(t, 5), SEM_PCT1(t, 6), SEM_PCT1(t, 7), SEM_PCT1(t, 8), SEM_PCT1(t, 9)
static const double sem_pct[100] = { SEM_PCT10(0), SEM_PCT10(1), SEM_PCT10(2), SEM_PCT10(3),
  SEM_PCT10(4), SEM_PCT10(5), SEM_PCT10(6), SEM_PCT10(7), SEM_PCT10(8), SEM_PCT10(9) };
#undef SEM_PCT10
#undef SEM_PCT1
static inline double sem_bucket_u(uint64_t k) {
  return sem_pct[bc_splitmix64(k) % 100];
}
static inline double sem_bucket_s(const char *s, size_t n) {
  return sem_bucket_u(bc_fnv1a64(s, n, BC_FNV_OFFSET));
}

/* ---------------------------------------------------------------------
 * Model checks
 * ------------------------------------------------------------------- */
/* `fits`: (context == 0 || in + out <= context) && (max_output == 0 ||
 * out <= max_output), with in = input_tokens and out = max_output_tokens
 * as the request holds them; a sum that overflows fits no known context. */
static inline int sem_fits(int64_t in, int64_t out, int64_t context, int64_t max_output) {
  int64_t sum;
  if (context != 0 && (__builtin_add_overflow(in, out, &sum) || sum > context)) return 0;
  return max_output == 0 || out <= max_output;
}

/* What a breaker lets a decision do with its model at time now (ms):
 * SEM_HEALTHY when closed; SEM_PROBE when open or half-open and its
 * deadline `until` (the end of the cooldown, or of an unanswered probe)
 * has come: the model passes `healthy` and takes the probe if a selection
 * picks it; SEM_UNHEALTHY otherwise. `healthy` holds unless SEM_UNHEALTHY
 * (the VM also refuses a 17th model awaiting a probe in one decision). */
enum { SEM_UNHEALTHY = 0, SEM_HEALTHY = 1, SEM_PROBE = 2 };

static inline int sem_breaker_health(int state, uint64_t until, uint64_t now) {
  if (state == LANE_BREAKER_CLOSED) return SEM_HEALTHY;
  return now >= until ? SEM_PROBE : SEM_UNHEALTHY;
}

/* ---------------------------------------------------------------------
 * Budget figures: of `spent` dollars against `limit`, the spent (which
 * 0), remaining (1, never below 0) or used (2, a fraction of the limit;
 * 0 for a zero limit) figure.
 * ------------------------------------------------------------------- */
static inline double sem_budget_figure(double spent, double limit, int which) {
  if (which == 0) return spent;
  if (which == 1) return spent < limit ? limit - spent : 0;
  return limit > 0 ? spent / limit : 0;
}

/* d in the shortest %g form that reads back as exactly d (up to 17
 * digits), written without an exponent from 1e-5 to 1e15, into buf: how
 * explanations, test failures and --expr show a number. */
static inline const char *sem_num(char *buf, size_t n, double d) {
  double a = d < 0 ? -d : d;
  int plain = a >= 1e-5 && a < 1e15;
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, d);
    if (strtod(buf, NULL) == d && !(plain && strchr(buf, 'e'))) break;
  }
  return buf;
}

/* string(d): the shortest "%.<p>g" (p = 1..17) that reads back as d,
 * into buf (40 bytes); its length. */
static inline int sem_dtoa(char *buf, size_t n, double d) {
  int len = 0;
  for (int prec = 1; prec <= 17; prec++) {
    len = snprintf(buf, n, "%.*g", prec, d);
    if (strtod(buf, NULL) == d || d != d) break;
  }
  return len;
}

/* double(s): the whole of s a number as strtod reads it (no spaces), at
 * most 63 bytes. */
static inline int sem_parse_d(const char *s, size_t n, double *r) {
  char buf[64], *end;
  if (n == 0 || n >= sizeof buf || strchr(" \t\n\v\f\r", s[0])) return SEM_ERANGE;
  memcpy(buf, s, n);
  buf[n] = 0;
  if (memchr(buf, 0, n)) return SEM_ERANGE;
  *r = strtod(buf, &end);
  return *end ? SEM_ERANGE : SEM_OK;
}

/* The runtime error operation op (a BC_OP_*) raises, as the evaluator
 * and explanations name it; zero says its divisor was 0. */
static inline const char *sem_fault_text(int op, int zero) {
  switch (op) {
  case BC_OP_DIV_I: case BC_OP_DIV_U: if (zero) return "division by zero"; break;
  case BC_OP_MOD_I: case BC_OP_MOD_U: if (zero) return "modulus by zero"; break;
  case BC_OP_D2I: return "double out of range for int";
  case BC_OP_D2U: return "double out of range for uint";
  case BC_OP_I2U: return "negative int out of range for uint";
  case BC_OP_U2I: return "uint out of range for int";
  case BC_OP_S_CHARAT: case BC_OP_S_SUBSTR: case BC_OP_S_SUBSTR2: case BC_OP_S_INDEX_AT:
  case BC_OP_S_LASTINDEX_AT:
    return "index out of range";
  case BC_OP_S2I: return "string is not an int";
  case BC_OP_S2U: return "string is not a uint";
  case BC_OP_S2B: return "string is not a bool";
  case BC_OP_SHL_I: case BC_OP_SHL_U: case BC_OP_SHR_I: case BC_OP_SHR_U:
    return "negative bit shift";
  case BC_OP_MAP_GET: return "no such key";
  case BC_OP_S_CAT: case BC_OP_S_LOWER: case BC_OP_S_UPPER: case BC_OP_S_REPLACE:
  case BC_OP_S_REPLACE_N: case BC_OP_I2S: case BC_OP_U2S: case BC_OP_D2S:
    return "a string built would pass LANE_MAX_STRING (4096 bytes), or the decision's "
           "scratch (BC_SCRATCH, 16384 bytes) is full";
  case BC_OP_S2D: return "string is not a double";
  default: break;
  }
  switch (op) {
  case BC_OP_ADD_U: case BC_OP_SUB_U: case BC_OP_MUL_U: case BC_OP_DIV_U: case BC_OP_MOD_U:
    return "unsigned overflow";
  default: return "integer overflow";
  }
}

/* A value of unit `unit` (a bc_unit) as explanations show it: i holds an
 * int, a bool or a uint's bits, d a double, s and len a string's bytes. */
static inline const char *sem_show(char *buf, size_t n, int unit, int64_t i, double d,
                                   const char *s, size_t len) {
  char num[40];
  switch (unit) {
  case BC_U_INT: snprintf(buf, n, "%lld", (long long)i); break;
  case BC_U_TOKENS: snprintf(buf, n, "%lld tokens", (long long)i); break;
  case BC_U_UINT: snprintf(buf, n, "%lluu", (unsigned long long)(uint64_t)i); break;
  case BC_U_BOOL: snprintf(buf, n, "%s", i ? "true" : "false"); break;
  /* doubles in the shortest form that reads back exactly; a price or a
   * fraction scaled ($/Mtok, %), exact for the scaled value */
  case BC_U_DOUBLE: snprintf(buf, n, "%s", sem_num(num, sizeof num, d)); break;
  case BC_U_MONEY: snprintf(buf, n, "$%s", sem_num(num, sizeof num, d)); break;
  case BC_U_PRICE: snprintf(buf, n, "$%s/Mtok", sem_num(num, sizeof num, d * 1e6)); break;
  case BC_U_DURATION: snprintf(buf, n, "%sms", sem_num(num, sizeof num, d)); break;
  case BC_U_FRACTION: snprintf(buf, n, "%s%%", sem_num(num, sizeof num, d * 100)); break;
  case BC_U_STRING: snprintf(buf, n, "\"%.*s\"", (int)len, s); break;
  default: snprintf(buf, n, "?"); break;
  }
  return buf;
}

/* Sizes the explanation writers share, so that the compiler's evaluator
 * and the VM's explain tables write the same text: a node's source text,
 * a value shown, one reason. */
#define SEM_SRC_MAX    200
#define SEM_SHOW_MAX   160
#define SEM_REASON_MAX 1024

#endif /* LANE_SEM_H */
