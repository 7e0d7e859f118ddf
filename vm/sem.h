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
 *                          sem_last_index_of sem_trim (code points),
 *                          sem_split_next
 *   parsing strings        sem_parse_i sem_parse_u sem_parse_b
 *   CEL's math extension   sem_abs_i, sem_sign_d, sem_shl/shr_u,
 *                          sem_max_d sem_min_d, sem_trunc sem_floor
 *                          sem_ceil sem_round sem_fabs (no libm)
 *   bucket()               sem_bucket_u sem_bucket_s
 *   timestamps, durations  sem_ts_parse sem_ts_format sem_ts_part, sem_tz_*
 *                          (POSIX TZ rules), sem_dur_parse sem_dur_format
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

/* The end of the code point that starts at byte i < n of s: its lead
 * byte and the UTF-8 continuation bytes (10xxxxxx) after it, as size()
 * counts code points. */
static inline size_t sem_cp_end(const char *s, size_t n, size_t i) {
  i++;
  while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
  return i;
}

/* s.split(sep), one part at a time (CEL's strings extension, Go's
 * strings.Split): *at starts at 0; each call puts the next part in *p, *pn
 * and returns 1, or returns 0 when there is none left. The parts lie
 * between the occurrences of sep, left to right without overlaps, so a
 * non-empty sep gives one part more than it occurs ("" gives one empty
 * part); an empty sep gives each UTF-8 sequence, none for "". Linear over
 * all the calls. */
static inline int sem_split_next(const char *s, size_t n, const char *sep, size_t sn, size_t *at,
                                 const char **p, size_t *pn) {
  size_t a = *at;
  if (a > n || (sn == 0 && a == n)) return 0;
  *p = a ? s + a : s;
  if (sn == 0) {   /* a code point */
    *at = sem_cp_end(s, n, a);
    *pn = *at - a;
    return 1;
  }
  size_t f = sem_find(*p, n - a, sep, sn);
  if (f == SIZE_MAX) { *pn = n - a; *at = n + 1; return 1; }
  *pn = f;
  *at = a + f + sn;
  return 1;
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
    size_t c = sem_cp_end(s, n, hit) - hit;   /* the code point after an empty match is kept */
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
  for (; k > 0 && i < n; k--) i = sem_cp_end(s, n, i);
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

/* ---------------------------------------------------------------------
 * Timestamps and durations (CEL's): a timestamp is whole milliseconds
 * since 1970-01-01T00:00:00Z, from year 1 to 9999 (proleptic Gregorian);
 * a duration milliseconds as a double, as lane's durations are. A time
 * zone is a POSIX TZ rule ("EST5EDT,M3.2.0,M11.1.0", "<+0530>-5:30"): the
 * compiler turns an IANA name into its zone's current rule (the footer of
 * its TZif file), so a decision reads no file.
 * ------------------------------------------------------------------- */
#define SEM_TS_MIN (-62135596800000LL)   /* 0001-01-01T00:00:00Z */
#define SEM_TS_MAX 253402300799999LL     /* 9999-12-31T23:59:59.999Z */
#define SEM_DUR_MAX 315576000000000.0    /* CEL's: 10,000 years of 365.25 days, in ms */

/* Days from 1970-01-01 to y-m-d (m 1..12), and back (H. Hinnant's). */
static inline int64_t sem_days(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static inline void sem_civil(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

static inline int64_t sem_floordiv(int64_t a, int64_t b) { return a / b - (a % b < 0); }

/* A POSIX TZ rule, parsed. */
typedef struct sem_tz {
  int32_t std, dst;          /* seconds east of UTC (POSIX writes west) */
  int     has_dst;
  struct { int kind, m, w, d; int32_t time; } start, end;   /* kind: 'M', 'J', 'n' */
} sem_tz;

static inline const char *sem_tz_name(const char *p) {
  if (*p == '<') {
    while (*p && *p != '>') p++;
    return *p ? p + 1 : NULL;
  }
  const char *s = p;
  while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) p++;
  return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]]: seconds, its sign as written; NULL if malformed. */
static inline const char *sem_tz_time(const char *p, int32_t *out, int maxh) {
  int sign = 1, h = 0, m = 0, s = 0, n = 0;
  if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
  while (*p >= '0' && *p <= '9' && n < 3) h = h * 10 + (*p++ - '0'), n++;
  if (!n || h > maxh) return NULL;
  if (*p == ':') {
    p++;
    if (!(p[0] >= '0' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9')) return NULL;
    m = (p[0] - '0') * 10 + p[1] - '0';
    p += 2;
    if (*p == ':') {
      p++;
      if (!(p[0] >= '0' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9')) return NULL;
      s = (p[0] - '0') * 10 + p[1] - '0';
      p += 2;
    }
  }
  *out = sign * (h * 3600 + m * 60 + s);
  return p;
}

static inline const char *sem_tz_date(const char *p, int *kind, int *m, int *w, int *d,
                                      int32_t *time) {
  int a = 0, b = 0, c = 0, n = 0;
  if (*p == 'M') {
    p++;
    while (*p >= '0' && *p <= '9' && n < 2) a = a * 10 + (*p++ - '0'), n++;
    if (!n || a < 1 || a > 12 || *p++ != '.' || !(*p >= '1' && *p <= '5')) return NULL;
    b = *p++ - '0';
    if (*p++ != '.' || !(*p >= '0' && *p <= '6')) return NULL;
    c = *p++ - '0';
    *kind = 'M';
  } else {
    *kind = *p == 'J' ? 'J' : 'n';
    if (*p == 'J') p++;
    while (*p >= '0' && *p <= '9' && n < 3) a = a * 10 + (*p++ - '0'), n++;
    if (!n || a > 365 || (*kind == 'J' && a < 1)) return NULL;
  }
  *m = a;
  *w = b;
  *d = c;
  *time = 7200;
  if (*p == '/' && !(p = sem_tz_time(p + 1, time, 167))) return NULL;
  return p;
}

/* Parses rule s (NUL-terminated): 0, or -1 if it is not one. */
static inline int sem_tz_parse(const char *s, sem_tz *z) {
  const char *p = sem_tz_name(s);
  memset(z, 0, sizeof *z);
  if (!p || !(p = sem_tz_time(p, &z->std, 24))) return -1;
  z->std = -z->std;
  if (!*p) return 0;
  if (!(p = sem_tz_name(p))) return -1;
  z->has_dst = 1;
  z->dst = z->std + 3600;
  if (*p && *p != ',') {
    if (!(p = sem_tz_time(p, &z->dst, 24))) return -1;
    z->dst = -z->dst;
  }
  if (*p != ',') return -1;   /* a rule with DST names when it starts */
  p = sem_tz_date(p + 1, &z->start.kind, &z->start.m, &z->start.w, &z->start.d, &z->start.time);
  if (!p || *p != ',') return -1;
  p = sem_tz_date(p + 1, &z->end.kind, &z->end.m, &z->end.w, &z->end.d, &z->end.time);
  return p && !*p ? 0 : -1;
}

/* The day (days since the epoch) a rule date falls on in year y. */
static inline int64_t sem_tz_day(int64_t y, int kind, int m, int w, int d) {
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (kind == 'J') return sem_days(y, 1, 1) + m - 1 + (leap && m >= 60);
  if (kind == 'n') return sem_days(y, 1, 1) + m;
  int64_t first = sem_days(y, m, 1);
  int wd = (int)((first % 7 + 11) % 7);   /* 1970-01-01 was a Thursday (4) */
  int64_t day = first + (d - wd + 7) % 7 + 7 * (w - 1);
  int dim = m == 2 ? 28 + leap : 30 + ((m + (m > 7)) & 1);
  while (day >= first + dim) day -= 7;   /* week 5: the last */
  return day;
}

/* The offset east of UTC, in seconds, of instant t (ms) under rule z. */
static inline int64_t sem_ts_clamp(int64_t t) {   /* any int as a timestamp: defined */
  return t < SEM_TS_MIN ? SEM_TS_MIN : t > SEM_TS_MAX ? SEM_TS_MAX : t;
}

static inline int32_t sem_tz_offset(const sem_tz *z, int64_t t) {
  t = sem_ts_clamp(t);
  if (!z->has_dst) return z->std;
  int64_t y;
  int mo, da;
  sem_civil(sem_floordiv(t + (int64_t)z->std * 1000, 86400000), &y, &mo, &da);
  int64_t start = (sem_tz_day(y, z->start.kind, z->start.m, z->start.w, z->start.d) * 86400 +
                   z->start.time - z->std) * 1000;
  int64_t end = (sem_tz_day(y, z->end.kind, z->end.m, z->end.w, z->end.d) * 86400 +
                 z->end.time - z->dst) * 1000;
  int in = start < end ? t >= start && t < end : t >= start || t < end;
  return in ? z->dst : z->std;
}

/* CEL's timestamp accessors, by part: getFullYear getMonth (0-11)
 * getDate (1-31) getDayOfMonth (0-30) getDayOfWeek (0 Sunday) getDayOfYear
 * (0-365) getHours getMinutes getSeconds getMilliseconds. */
enum { SEM_TS_YEAR, SEM_TS_MONTH, SEM_TS_DATE, SEM_TS_DAYOFMONTH, SEM_TS_DAYOFWEEK,
       SEM_TS_DAYOFYEAR, SEM_TS_HOURS, SEM_TS_MINUTES, SEM_TS_SECONDS, SEM_TS_MILLIS,
       SEM_TS_NPARTS };

static inline int64_t sem_ts_part(int64_t t, int part, const sem_tz *z) {
  t = sem_ts_clamp(t);   /* a timestamp the VM made is in range; a file's ints may not be */
  int64_t local = t + (z ? (int64_t)sem_tz_offset(z, t) * 1000 : 0);
  int64_t day = sem_floordiv(local, 86400000), ms = local - day * 86400000, y;
  int m, d;
  sem_civil(day, &y, &m, &d);
  switch (part) {
  case SEM_TS_YEAR: return y;
  case SEM_TS_MONTH: return m - 1;
  case SEM_TS_DATE: return d;
  case SEM_TS_DAYOFMONTH: return d - 1;
  case SEM_TS_DAYOFWEEK: return (day % 7 + 11) % 7;
  case SEM_TS_DAYOFYEAR: return day - sem_days(y, 1, 1);
  case SEM_TS_HOURS: return ms / 3600000;
  case SEM_TS_MINUTES: return ms / 60000 % 60;
  case SEM_TS_SECONDS: return ms / 1000 % 60;
  default: return ms % 1000;
  }
}

/* RFC 3339 (2009-02-13T23:31:30.123Z, +01:00 offsets): the instant in ms,
 * digits past milliseconds dropped. */
static inline int sem_ts_parse(const char *s, size_t n, int64_t *out) {
  int v[6] = {0}, lens[6] = {4, 2, 2, 2, 2, 2};
  const char seps[6] = {'-', '-', 'T', ':', ':', 0};
  size_t i = 0;
  for (int k = 0; k < 6; k++) {
    for (int j = 0; j < lens[k]; j++, i++) {
      if (i >= n || s[i] < '0' || s[i] > '9') return SEM_ERANGE;
      v[k] = v[k] * 10 + s[i] - '0';
    }
    if (k < 5) {
      if (i >= n || (s[i] != seps[k] && !(k == 2 && s[i] == 't'))) return SEM_ERANGE;
      i++;
    }
  }
  int64_t ms = 0;
  if (i < n && s[i] == '.') {
    int digits = 0;
    for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++)
      if (digits < 3) ms = ms * 10 + s[i] - '0';
    if (!digits || digits > 9) return SEM_ERANGE;
    for (; digits < 3; digits++) ms *= 10;
  }
  int32_t off = 0;
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    for (int k = 1; k < 6; k++)
      if (k != 3 && (s[i + k] < '0' || s[i + k] > '9')) return SEM_ERANGE;
    int hh = (s[i + 1] - '0') * 10 + s[i + 2] - '0', mm = (s[i + 4] - '0') * 10 + s[i + 5] - '0';
    if (hh > 23 || mm > 59) return SEM_ERANGE;
    off = (s[i] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
    i += 6;
  } else {
    return SEM_ERANGE;
  }
  if (i != n || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59)
    return SEM_ERANGE;
  int leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
  int dim = v[1] == 2 ? 28 + leap : 30 + ((v[1] + (v[1] > 7)) & 1);
  if (v[2] > dim || v[0] < 1) return SEM_ERANGE;
  int64_t t = ((sem_days(v[0], v[1], v[2]) * 24 + v[3]) * 60 + v[4]) * 60 + v[5] - off;
  t = t * 1000 + ms;
  if (t < SEM_TS_MIN || t > SEM_TS_MAX) return SEM_ERANGE;
  *out = t;
  return SEM_OK;
}

/* t in RFC 3339, UTC, with milliseconds when it has them; its length. */
static inline int sem_ts_format(int64_t t, char *buf, size_t cap) {
  t = sem_ts_clamp(t);
  int64_t day = sem_floordiv(t, 86400000), ms = t - day * 86400000, y;
  int m, d;
  sem_civil(day, &y, &m, &d);
  int n = snprintf(buf, cap, "%04lld-%02d-%02dT%02d:%02d:%02d", (long long)y, m, d,
                   (int)(ms / 3600000), (int)(ms / 60000 % 60), (int)(ms / 1000 % 60));
  if (ms % 1000) n += snprintf(buf + n, cap - (size_t)n, ".%03d", (int)(ms % 1000));
  n += snprintf(buf + n, cap - (size_t)n, "Z");
  return n;
}

/* Go's duration syntax ("1h30m", "1.5s", "-300ms", "2us", "0"): the
 * milliseconds; beyond CEL's +-10,000 years an error. */
static inline int sem_dur_parse(const char *s, size_t n, double *out) {
  size_t i = 0;
  double total = 0;
  int neg = 0;
  if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
  if (i == n) return SEM_ERANGE;
  if (n - i == 1 && s[i] == '0') { *out = 0; return SEM_OK; }
  while (i < n) {
    double whole = 0, frac = 0, scale = 1;
    int digits = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) whole = whole * 10 + (s[i] - '0');
    if (i < n && s[i] == '.')
      for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        scale /= 10;
        frac += (s[i] - '0') * scale;
      }
    if (!digits) return SEM_ERANGE;
    double unit;
    if (i + 1 < n && s[i] == 'n' && s[i + 1] == 's') unit = 1e-6, i += 2;
    else if (i + 1 < n && s[i] == 'u' && s[i + 1] == 's') unit = 1e-3, i += 2;
    else if (i + 2 < n && (unsigned char)s[i] == 0xC2 && (unsigned char)s[i + 1] == 0xB5 &&
             s[i + 2] == 's') unit = 1e-3, i += 3;   /* µs */
    else if (i + 1 < n && s[i] == 'm' && s[i + 1] == 's') unit = 1, i += 2;
    else if (i < n && s[i] == 's') unit = 1000, i++;
    else if (i < n && s[i] == 'm') unit = 60000, i++;
    else if (i < n && s[i] == 'h') unit = 3600000, i++;
    else return SEM_ERANGE;
    total += whole * unit + frac * unit;
  }
  if (total > SEM_DUR_MAX) return SEM_ERANGE;
  *out = neg ? -total : total;
  return SEM_OK;
}

/* A duration as CEL writes it: seconds, with a fraction when it has one
 * ("1.5s", "1000000s", "-0.001s"); its length. */
static inline int sem_dur_format(double ms, char *buf, size_t cap) {
  char num[48];
  int n = sem_dtoa(num, sizeof num, ms / 1000);
  if (strchr(num, 'e') && ms / 1000 < 1e21 && ms / 1000 > -1e21) {
    /* as a plain decimal (at most 22 digits and 9 decimals), its trailing
     * zeros gone; beyond 1e21 s (lane's durations have no range) the %g
     * form stays */
    n = snprintf(num, sizeof num, "%.9f", ms / 1000);
    if (n >= (int)sizeof num) n = (int)sizeof num - 1;
    while (n > 1 && num[n - 1] == '0') n--;
    if (n > 1 && num[n - 1] == '.') n--;
  }
  return snprintf(buf, cap, "%.*ss", n, num);
}

/* t + d (d in ms, its whole ms toward zero): SEM_ERANGE out of years 1 to
 * 9999 (or d not finite). */
static inline int sem_ts_add(int64_t t, double d, int64_t *out) {
  int64_t r;
  if (!(d > -1e16 && d < 1e16) || __builtin_add_overflow(t, (int64_t)d, &r) ||
      r < SEM_TS_MIN || r > SEM_TS_MAX)
    return SEM_ERANGE;
  *out = r;
  return SEM_OK;
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
  case BC_OP_LIST_GET: case BC_OP_S_SPLIT_GET: return "index out of range";
  case BC_OP_S_CAT: case BC_OP_S_LOWER: case BC_OP_S_UPPER: case BC_OP_S_REPLACE:
  case BC_OP_S_REPLACE_N: case BC_OP_I2S: case BC_OP_U2S: case BC_OP_D2S: case BC_OP_LIST_JOIN:
    return "a string built would pass LANE_MAX_STRING (4096 bytes), or the decision's "
           "scratch (BC_SCRATCH, 16384 bytes) is full";
  case BC_OP_S2D: return "string is not a double";
  case BC_OP_S_MATCH: return "the regular expression's bound on work was reached";
  case BC_OP_TS_PARSE: return "string is not an RFC 3339 timestamp of years 1 to 9999";
  case BC_OP_DUR_PARSE: return "string is not a duration (1h30m, 1.5s, 300ms) within 10,000 years";
  case BC_OP_TS_ADD: case BC_OP_TS_ADD_R: case BC_OP_TS_SUB: case BC_OP_SEC2TS:
    return "timestamp out of range (years 1 to 9999)";
  case BC_OP_TS2S: case BC_OP_DUR2S:
    return "a string built would pass LANE_MAX_STRING (4096 bytes), or the decision's "
           "scratch (BC_SCRATCH, 16384 bytes) is full";
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
  case BC_U_TIMESTAMP: sem_ts_format(i, buf, n); break;
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
