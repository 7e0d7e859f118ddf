/*
 * log.c -- decision and outcome records: one JSON line each, written by
 * liblane itself (libc only: the JSON here is small and fixed, its strings
 * escaped by hand), so that any host logs what the VM decided the same way
 * and `lane replay` can decide it again (compiler/cli/replay.c).
 *
 * A decision record carries what the decision read, so that replaying it
 * is exact: the request fields the policy declares (never message text:
 * a request holds none), the live view of every model whose figures are
 * not a fresh runtime's, and each budget's spend for the request's key.
 * Fields declared `sensitive` are written as a keyed hash (SipHash-2-4,
 * "h:" and 16 hex digits), never in clear; without a key, as "redacted".
 * The schema is doc/decision-log.schema.json (version 1).
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sem.h"
#include "vm.h"

/* A bounded writer with snprintf's contract (as explain.c's). */
typedef struct out {
  char  *buf;
  size_t cap, len;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int k = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  va_end(ap);
  if (k > 0) o->len += (size_t)k;
}

static void putc1(out *o, char c) {
  if (o->len + 1 < o->cap) { o->buf[o->len] = c; o->buf[o->len + 1] = 0; }
  o->len++;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (!k || k > n || (k == 2 && c < 0xC2) || (k == 4 && c > 0xF4)) return 0;
  for (size_t i = 1; i < k; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  if (k == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0))) return 0;
  if (k == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90))) return 0;
  return k;
}

/* A JSON string. Valid UTF-8 goes as is; control characters, '"' and
 * '\\' escaped; a byte that is not valid UTF-8 as U+FFFD (JSON text is
 * UTF-8), which replay then reads as those three bytes. */
static void jstr(out *o, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  putc1(o, '"');
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    size_t k = utf8_len(p + i, n - i);
    if (!k) { put(o, "\\ufffd"); i++; continue; }
    if (c == '"' || c == '\\') { putc1(o, '\\'); putc1(o, (char)c); }
    else if (c < 0x20) put(o, "\\u%04x", c);
    else for (size_t j = 0; j < k; j++) putc1(o, (char)p[i + j]);
    i += k;
  }
  putc1(o, '"');
}

static void jcstr(out *o, const char *s) { jstr(o, s, strlen(s)); }

/* A double that reads back as the same bits; JSON has no nan or inf. */
static void jnum(out *o, double d) {
  if (!isfinite(d)) { put(o, "null"); return; }
  char num[40];
  put(o, "%s", sem_num(num, sizeof num, d));
}

/* ---- SipHash-2-4 (Aumasson and Bernstein), written from the paper ---- */

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

#define SIP_ROUND(v0, v1, v2, v3)                                           \
  do {                                                                      \
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);               \
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                  \
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                  \
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);               \
  } while (0)

uint64_t lane_siphash24(const unsigned char key[16], const void *data, size_t n) {
  const unsigned char *m = data;
  uint64_t k0 = le64(key), k1 = le64(key + 8);
  uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
  size_t whole = n - n % 8;
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t w = le64(m + i);
    v3 ^= w;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= w;
  }
  uint64_t b = (uint64_t)n << 56;
  for (size_t i = 0; i < n % 8; i++) b |= (uint64_t)m[whole + i] << (8 * i);
  v3 ^= b;
  SIP_ROUND(v0, v1, v2, v3);
  SIP_ROUND(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++) SIP_ROUND(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- records ---- */

static const char *name_of(const lane_program *p, int m) {
  const char *s = lane_model_name(p, m);
  return s ? s : "?";
}

static void models(out *o, const lane_program *p, const int *v, int n) {
  putc1(o, '[');
  for (int i = 0; i < n; i++) {
    if (i) putc1(o, ',');
    jcstr(o, name_of(p, v[i]));
  }
  putc1(o, ']');
}

/* A field's value as the text a budget key is read from (and a keyed
 * hash is taken of). */
static size_t value_text(const lane_request *r, int f, int type, char *buf, size_t cap,
                         const char **s) {
  const lane_value *v = &r->v[f];
  switch (type) {
  case LANE_T_STRING: *s = v->s.p; return v->s.n;
  case LANE_T_INT: *s = buf; return (size_t)snprintf(buf, cap, "%" PRId64, v->i);
  case LANE_T_UINT: *s = buf; return (size_t)snprintf(buf, cap, "%" PRIu64, v->u);
  case LANE_T_BOOL: *s = buf; return (size_t)snprintf(buf, cap, "%s", v->i ? "true" : "false");
  default: *s = sem_num(buf, cap, v->d); return strlen(buf);
  }
}

int lane_bucket(const char *s, size_t n) {
  return s || !n ? (int)(bc_splitmix64(bc_fnv1a64(s, n, BC_FNV_OFFSET)) % 100) : 0;
}

/* The buckets of the sensitive fields that are set: {"user":37}. */
static void buckets(out *o, const lane_program *p, const lane_request *r) {
  const bc_image *im = &p->im;
  int first = 1;
  for (uint32_t f = 0; f < im->nfields; f++) {
    if (!(r->set >> f & 1) || !(im->fields[f].flags & BC_FIELD_SENSITIVE)) continue;
    put(o, first ? ",\"buckets\":{" : ",");
    first = 0;
    jcstr(o, im->str[im->fields[f].name].p);
    put(o, ":%d", lane_bucket(r->v[f].s.p, r->v[f].s.n));
  }
  if (!first) putc1(o, '}');
}

static void request(out *o, const lane_program *p, const lane_request *r,
                    const unsigned char *key) {
  const bc_image *im = &p->im;
  int first = 1;
  putc1(o, '{');
  for (uint32_t f = 0; f < im->nfields; f++) {
    if (!(r->set >> f & 1)) continue;
    const bc_field *fd = &im->fields[f];
    if (!first) putc1(o, ',');
    first = 0;
    jcstr(o, im->str[fd->name].p);
    putc1(o, ':');
    const lane_value *v = &r->v[f];
    if (fd->flags & BC_FIELD_SENSITIVE) {
      char num[48];
      const char *s;
      size_t n = value_text(r, (int)f, fd->type, num, sizeof num, &s);
      if (key) put(o, "\"h:%016" PRIx64 "\"", lane_siphash24(key, s, n));
      else put(o, "\"redacted\"");
      continue;
    }
    switch (fd->type) {
    case LANE_T_STRING: jstr(o, v->s.p, v->s.n); break;
    case LANE_T_INT: put(o, "%" PRId64, v->i); break;
    case LANE_T_UINT: put(o, "%" PRIu64, v->u); break;
    case LANE_T_BOOL: put(o, v->i ? "true" : "false"); break;
    default: jnum(o, v->d); break;
    }
  }
  putc1(o, '}');
}

static const char *breaker_name(int st) {
  return st == LANE_BREAKER_OPEN ? "open" : st == LANE_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

/* The live view the decision read: every model whose figures are not a
 * fresh runtime's (samples, or a breaker not closed), and each budget's
 * spend for the request's key. */
static void state(out *o, lane_runtime *rt, const lane_request *r) {
  const lane_program *p = rt->prog;
  int first = 1;
  put(o, "{\"clock\":%" PRIu64 ",\"models\":{", vm_now(rt));
  for (int m = 0; m < lane_model_count(p); m++) {
    lane_live_stats st;
    if (lane_model_stats(rt, m, &st) != LANE_OK) continue;
    if (!st.samples && st.state == LANE_BREAKER_CLOSED) continue;
    if (!first) putc1(o, ',');
    first = 0;
    jcstr(o, name_of(p, m));
    put(o, ":{\"p50\":");
    jnum(o, st.p50);
    put(o, ",\"p95\":");
    jnum(o, st.p95);
    put(o, ",\"error_rate\":");
    jnum(o, st.error_rate);
    put(o, ",\"samples\":%" PRIu64 ",\"breaker\":\"%s\",\"until\":%" PRIu64 "}", st.samples,
        breaker_name(st.state), st.until_ms);
  }
  put(o, "},\"budgets\":{");
  first = 1;
  for (int b = 0; b < lane_budget_count(p); b++) {
    double spent = vm_budget_read(rt, (uint32_t)b, r, 0, vm_now(rt));
    if (!first) putc1(o, ',');
    first = 0;
    jcstr(o, lane_budget_name(p, b));
    put(o, ":{\"spent\":");
    jnum(o, spent);
    putc1(o, '}');
  }
  put(o, "}}");
}

size_t lane_log_decision(lane_runtime *rt, int route, const lane_request *r, int status,
                         const lane_decision *d, const char *id, const unsigned char *key,
                         char *buf, size_t n) {
  out o = {buf, n, 0};
  char idbuf[48];
  if (buf && n) buf[0] = 0;
  if (!rt || !r || !d || r->prog != rt->prog || route < 0 || route >= lane_route_count(rt->prog))
    return 0;
  const lane_program *p = rt->prog;
  uint64_t now = vm_now(rt);
  if (!id) {
    uint64_t seq = atomic_fetch_add_explicit(&rt->logseq, 1, memory_order_relaxed);
    snprintf(idbuf, sizeof idbuf, "%" PRIx64 "-%" PRIx64, now, seq);
    id = idbuf;
  }
  put(&o, "{\"v\":%d,\"type\":\"decision\",\"id\":", LANE_LOG_VERSION);
  jcstr(&o, id);
  put(&o, ",\"ts\":%" PRIu64 ",\"policy\":\"%016" PRIx64 "\",\"route\":", now, p->checksum);
  jcstr(&o, lane_route_name(p, route));
  put(&o, ",\"status\":\"%s\"", status == LANE_OK ? "ok" : status == LANE_ENOMATCH ? "nomatch"
                                                                                 : "error");
  if (status == LANE_OK) {
    put(&o, ",\"rule\":%d,\"rule_name\":", d->rule);
    jcstr(&o, lane_rule_name(p, route, d->rule) ? lane_rule_name(p, route, d->rule) : "");
    put(&o, ",\"candidates\":");
    models(&o, p, d->candidates, d->ncandidates);
    put(&o, ",\"shadows\":");
    models(&o, p, d->shadows, d->nshadows);
    put(&o, ",\"cost\":");
    jnum(&o, d->cost);
    if (d->probed) {
      int v[LANE_MAX_CANDIDATES], k = 0;
      for (int i = 0; i < d->ncandidates; i++)
        if (d->probed >> i & 1) v[k++] = d->candidates[i];
      put(&o, ",\"probed\":");
      models(&o, p, v, k);
    }
  } else if (status == LANE_ENOMATCH && d->filtered_rule) {
    put(&o, ",\"filtered_rule\":%d", d->filtered_rule);
  }
  if (d->nerrors) put(&o, ",\"errors\":%d,\"error_line\":%d", d->nerrors, d->error_line);
  put(&o, ",\"request\":");
  request(&o, p, r, key);
  buckets(&o, p, r);
  put(&o, ",\"state\":");
  state(&o, rt, r);
  put(&o, "}\n");
  return o.len;
}

size_t lane_log_outcome(const lane_program *p, const lane_outcome *oc, char *buf, size_t n) {
  out o = {buf, n, 0};
  if (buf && n) buf[0] = 0;
  if (!p || !oc || !oc->id) return 0;
  put(&o, "{\"v\":%d,\"type\":\"outcome\",\"id\":", LANE_LOG_VERSION);
  jcstr(&o, oc->id);
  put(&o, ",\"ts\":%" PRIu64 ",\"model\":", oc->ts_ms);
  jcstr(&o, oc->model >= 0 ? name_of(p, oc->model) : "");
  put(&o, ",\"attempts\":%d,\"fallbacks\":%d,\"status\":%d,\"latency_ms\":", oc->attempts,
      oc->fallbacks, oc->status);
  jnum(&o, oc->latency_ms);
  put(&o, ",\"input_tokens\":%" PRId64 ",\"output_tokens\":%" PRId64 ",\"cost\":",
      oc->input_tokens, oc->output_tokens);
  jnum(&o, oc->cost);
  if (oc->has_score) {
    put(&o, ",\"score\":");
    jnum(&o, oc->score);
  }
  if (oc->attempt) put(&o, ",\"attempt\":%d", oc->attempt);
  put(&o, ",\"final\":%s", oc->final || !oc->attempt ? "true" : "false");
  if (oc->error) {
    put(&o, ",\"error\":");
    jcstr(&o, oc->error);
  }
  put(&o, "}\n");
  return o.len;
}
