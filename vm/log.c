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
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sem.h"
#include "text.h"
#include "vm.h"

/* A JSON string. Valid UTF-8 goes as is; control characters, '"' and
 * '\\' escaped; a byte that is not valid UTF-8 as U+FFFD (JSON text is
 * UTF-8), which replay then reads as those three bytes. */
static void jstr(text_out *o, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  text_putc(o, '"');
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    size_t k = text_utf8_len(s + i, n - i);
    if (!k) { text_printf(o, "\\ufffd"); i++; continue; }
    if (c == '"' || c == '\\') { text_putc(o, '\\'); text_putc(o, (char)c); }
    else if (c < 0x20) text_printf(o, "\\u%04x", c);
    else for (size_t j = 0; j < k; j++) text_putc(o, (char)p[i + j]);
    i += k;
  }
  text_putc(o, '"');
}

static void jcstr(text_out *o, const char *s) { jstr(o, s, strlen(s)); }

/* A double that reads back as the same bits; JSON has no nan or inf. */
static void jnum(text_out *o, double d) {
  if (!isfinite(d)) { text_printf(o, "null"); return; }
  char num[40];
  text_printf(o, "%s", sem_num(num, sizeof num, d));
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

static void models(text_out *o, const lane_program *p, const int *v, int n) {
  text_putc(o, '[');
  for (int i = 0; i < n; i++) {
    if (i) text_putc(o, ',');
    jcstr(o, name_of(p, v[i]));
  }
  text_putc(o, ']');
}

int lane_log_key_load(const char *path, unsigned char key[16], lane_error *err) {
  FILE *f = path ? fopen(path, "r") : NULL;
  char hex[80] = "";
  if (!f) return errf(err, LANE_EARG, "%s: cannot read the log key", path ? path : "(null)");
  int ok = fscanf(f, " %79s", hex) == 1 && strlen(hex) == 32;
  int extra = ok ? fscanf(f, " %*s") : 0;   /* EOF: nothing after the key */
  fclose(f);
  for (int i = 0; ok && i < 16; i++) {
    unsigned v = 0;
    ok = isxdigit((unsigned char)hex[2 * i]) && isxdigit((unsigned char)hex[2 * i + 1]) &&
         sscanf(hex + 2 * i, "%2x", &v) == 1;
    key[i] = (unsigned char)v;
  }
  if (!ok || extra != EOF)
    return errf(err, LANE_EARG, "%s: a log key is 32 hex digits (16 bytes), e.g. from "
                "`openssl rand -hex 16`", path);
  return LANE_OK;
}

int lane_bucket(const char *s, size_t n) {
  return s || !n ? (int)(bc_splitmix64(bc_fnv1a64(s, n, BC_FNV_OFFSET)) % 100) : 0;
}

/* The buckets of the sensitive fields that are set: {"user":37}. */
static void buckets(text_out *o, const lane_program *p, const lane_request *r) {
  const bc_image *im = &p->im;
  int first = 1;
  for (uint32_t f = 0; f < im->nfields; f++) {
    if (!(r->set >> f & 1) || !(im->fields[f].flags & BC_FIELD_SENSITIVE)) continue;
    text_printf(o, first ? ",\"buckets\":{" : ",");
    first = 0;
    jcstr(o, im->str[im->fields[f].name].p);
    text_printf(o, ":%d", lane_bucket(r->v[f].s.p, r->v[f].s.n));
  }
  if (!first) text_putc(o, '}');
}

static void jvalue(text_out *o, int type, const lane_value *v) {
  switch (type) {
  case LANE_T_STRING: jstr(o, v->s.p, v->s.n); break;
  case LANE_T_INT: text_printf(o, "%" PRId64, v->i); break;
  case LANE_T_UINT: text_printf(o, "%" PRIu64, v->u); break;
  case LANE_T_BOOL: text_printf(o, v->i ? "true" : "false"); break;
  default: jnum(o, v->d); break;
  }
}

/* A map field as a JSON object, its entries in the order set. */
static void jmap(text_out *o, const bc_field *fd, const lane_value *m) {
  int type = bc_unit_type(fd->unit), str = type == LANE_T_STRING;
  uint32_t count = sem_map_count(m->s.p, m->s.n);
  size_t at = 4;
  text_putc(o, '{');
  for (uint32_t i = 0; i < count; i++) {
    const char *k, *vb;
    size_t kn, vn;
    lane_value v;
    sem_map_next(m->s.p, &at, str, &k, &kn, &vb, &vn);
    if (str) { v.s.p = vb; v.s.n = vn; }
    else memcpy(&v.u, vb, 8);
    if (i) text_putc(o, ',');
    jstr(o, k, kn);
    text_putc(o, ':');
    jvalue(o, type, &v);
  }
  text_putc(o, '}');
}

/* A list field (strings, stored as a map of empty keys) as a JSON array. */
static void jlist(text_out *o, const lane_value *m) {
  uint32_t count = sem_map_count(m->s.p, m->s.n);
  size_t at = 4;
  text_putc(o, '[');
  for (uint32_t i = 0; i < count; i++) {
    const char *k, *vb;
    size_t kn, vn;
    sem_map_next(m->s.p, &at, 1, &k, &kn, &vb, &vn);
    if (i) text_putc(o, ',');
    jstr(o, vb, vn);
  }
  text_putc(o, ']');
}

static void request(text_out *o, const lane_program *p, const lane_request *r,
                    const unsigned char *key) {
  const bc_image *im = &p->im;
  int first = 1;
  text_putc(o, '{');
  for (uint32_t f = 0; f < im->nfields; f++) {
    if (!(r->set >> f & 1)) continue;
    const bc_field *fd = &im->fields[f];
    if (!first) text_putc(o, ',');
    first = 0;
    jcstr(o, im->str[fd->name].p);
    text_putc(o, ':');
    const lane_value *v = &r->v[f];
    if (fd->flags & BC_FIELD_SENSITIVE) {   /* a string field: the loader checks it */
      if (key) text_printf(o, "\"h:%016" PRIx64 "\"", lane_siphash24(key, v->s.p, v->s.n));
      else text_printf(o, "\"redacted\"");
      continue;
    }
    if (fd->type == LANE_T_MAP) jmap(o, fd, v);
    else if (fd->type == LANE_T_LIST) jlist(o, v);
    else jvalue(o, fd->type, v);
  }
  text_putc(o, '}');
}

static const char *breaker_name(int st) {
  return st == LANE_BREAKER_OPEN ? "open" : st == LANE_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

/* The live view the decision read: every model whose figures are not a
 * fresh runtime's (samples, or a breaker not closed), and each budget's
 * spend for the request's key. */
static void state(text_out *o, lane_runtime *rt, const lane_request *r, uint64_t now) {
  const lane_program *p = rt->prog;
  int first = 1;
  text_printf(o, "{\"clock\":%" PRIu64 ",\"models\":{", now);
  for (int m = 0; m < lane_model_count(p); m++) {
    lane_live_stats st;
    if (lane_model_stats(rt, m, &st) != LANE_OK) continue;
    if (!st.samples && st.state == LANE_BREAKER_CLOSED) continue;
    if (!first) text_putc(o, ',');
    first = 0;
    jcstr(o, name_of(p, m));
    text_printf(o, ":{\"p50\":");
    jnum(o, st.p50);
    text_printf(o, ",\"p95\":");
    jnum(o, st.p95);
    text_printf(o, ",\"error_rate\":");
    jnum(o, st.error_rate);
    text_printf(o, ",\"samples\":%" PRIu64 ",\"breaker\":\"%s\",\"until\":%" PRIu64 "}", st.samples,
        breaker_name(st.state), st.until_ms);
  }
  text_printf(o, "},\"budgets\":{");
  first = 1;
  for (int b = 0; b < lane_budget_count(p); b++) {
    double spent = vm_budget_read(rt, (uint32_t)b, r, 0, now);
    if (!first) text_putc(o, ',');
    first = 0;
    jcstr(o, lane_budget_name(p, b));
    text_printf(o, ":{\"spent\":");
    jnum(o, spent);
    text_putc(o, '}');
  }
  text_printf(o, "}}");
}

static size_t log_decision_in(lane_runtime *rt, int route, const lane_request *r, int status,
                         const lane_decision *d, const char *id, const unsigned char *key,
                         char *buf, size_t n) {
  text_out o = {buf, n, 0};
  char idbuf[48];
  if (buf && n) buf[0] = 0;
  if (!rt || !r || !d || r->prog != rt->prog || route < 0 || route >= lane_route_count(rt->prog))
    return 0;
  const lane_program *p = rt->prog;
  uint64_t now = vm_now(rt);
  if (!id) {
    uint64_t seq = vm_next_logseq(rt);
    snprintf(idbuf, sizeof idbuf, "%" PRIx64 "-%" PRIx64, now, seq);
    id = idbuf;
  }
  text_printf(&o, "{\"v\":%d,\"type\":\"decision\",\"id\":", LANE_LOG_VERSION);
  jcstr(&o, id);
  text_printf(&o, ",\"ts\":%" PRIu64 ",\"policy\":\"%016" PRIx64 "\",\"route\":", now, p->checksum);
  jcstr(&o, lane_route_name(p, route));
  text_printf(&o, ",\"status\":\"%s\"", status == LANE_OK ? "ok" : status == LANE_ENOMATCH ? "nomatch"
                                                                                 : "error");
  if (status == LANE_OK) {
    text_printf(&o, ",\"rule\":%d,\"rule_name\":", d->rule);
    jcstr(&o, lane_rule_name(p, route, d->rule) ? lane_rule_name(p, route, d->rule) : "");
    text_printf(&o, ",\"candidates\":");
    models(&o, p, d->candidates, d->ncandidates);
    text_printf(&o, ",\"shadows\":");
    models(&o, p, d->shadows, d->nshadows);
    text_printf(&o, ",\"cost\":");
    jnum(&o, d->cost);
    if (d->output_from == LANE_OUTPUT_ESTIMATE)
      text_printf(&o, ",\"output_estimate\":%lld", (long long)d->output_tokens);
    if (d->probed) {
      int v[LANE_MAX_CANDIDATES], k = 0;
      for (int i = 0; i < d->ncandidates; i++)
        if (d->probed >> i & 1) v[k++] = d->candidates[i];
      text_printf(&o, ",\"probed\":");
      models(&o, p, v, k);
    }
  } else if (status == LANE_ENOMATCH && d->filtered_rule) {
    text_printf(&o, ",\"filtered_rule\":%d", d->filtered_rule);
  }
  if (d->nerrors) text_printf(&o, ",\"errors\":%d,\"error_line\":%d", d->nerrors, d->error_line);
  text_printf(&o, ",\"request\":");
  request(&o, p, r, key);
  buckets(&o, p, r);
  text_printf(&o, ",\"state\":");
  state(&o, rt, r, now);   /* one clock reading for the record */
  text_printf(&o, "}\n");
  return o.len;
}

size_t lane_log_decision(lane_runtime *rt, int route, const lane_request *r, int status,
                         const lane_decision *d, const char *id, const unsigned char *key,
                         char *buf, size_t n) {
  vm_pin pin;
  size_t rc = log_decision_in(vm_enter(rt, &pin), route, r, status, d, id, key, buf, n);
  vm_leave(&pin);
  return rc;
}

size_t lane_log_outcome(const lane_program *p, const lane_outcome *oc, char *buf, size_t n) {
  text_out o = {buf, n, 0};
  if (buf && n) buf[0] = 0;
  if (!p || !oc || !oc->id) return 0;
  text_printf(&o, "{\"v\":%d,\"type\":\"outcome\",\"id\":", LANE_LOG_VERSION);
  jcstr(&o, oc->id);
  text_printf(&o, ",\"ts\":%" PRIu64 ",\"model\":", oc->ts_ms);
  jcstr(&o, oc->model >= 0 ? name_of(p, oc->model) : "");
  text_printf(&o, ",\"attempts\":%d,\"fallbacks\":%d,\"status\":%d,\"latency_ms\":", oc->attempts,
      oc->fallbacks, oc->status);
  jnum(&o, oc->latency_ms);
  text_printf(&o, ",\"input_tokens\":%" PRId64 ",\"output_tokens\":%" PRId64 ",\"cost\":",
      oc->input_tokens, oc->output_tokens);
  jnum(&o, oc->cost);
  if (oc->has_score) {
    text_printf(&o, ",\"score\":");
    jnum(&o, oc->score);
  }
  if (oc->attempt) text_printf(&o, ",\"attempt\":%d", oc->attempt);
  if (oc->shadow) text_printf(&o, ",\"shadow\":true");
  text_printf(&o, ",\"final\":%s", oc->final || !oc->attempt ? "true" : "false");
  if (oc->error) {
    text_printf(&o, ",\"error\":");
    jcstr(&o, oc->error);
  }
  text_printf(&o, "}\n");
  return o.len;
}
