/*
 * convert.c -- `lane convert`: traffic from other sources as request
 * records that `lane eval`, `lane replay` and `lane diff` read (one JSON
 * object per line: {"v":1,"type":"request","id","ts","request":{...}}).
 *
 *   trace  a CSV of TIMESTAMP,ContextTokens,GeneratedTokens (the Azure LLM
 *          inference traces): each row's arrival time and token sizes; the
 *          fields a trace does not have come from --set FIELD=VALUE and
 *          --users N (a user id per row, the same for every run)
 *   body   OpenAI or Anthropic request bodies, read as a policy reads them
 *          (lane_request_from_json): tokens, images, tools, user, ...
 *
 * A row or body that cannot be read is reported with its file and line
 * and skipped; the rest is still converted.
 */
#include "convert.h"
#include "bc.h"

#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), after Howard
 * Hinnant's days_from_civil. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* "2023-11-16 18:15:46.6805900" (UTC) as ms since the epoch; -1 if not. */
static int64_t parse_time(const char *s) {
  int y, mo, d, h, mi, sec, k = 0;
  if (sscanf(s, "%4d-%2d-%2d%*[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &k) != 6)
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
  int64_t ms = 0;
  if (s[k] == '.') {
    int digits = 0;
    for (k++; isdigit((unsigned char)s[k]); k++, digits++)
      if (digits < 3) ms = ms * 10 + (s[k] - '0');
    for (; digits < 3; digits++) ms *= 10;
  }
  if (s[k] && s[k] != 'Z') return -1;
  return ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 24 + h) * 60 + mi) * 60000 +
         (int64_t)sec * 1000 + ms;
}

/* A --set value: a JSON number or bool as itself, anything else a string. */
static json_t *set_value(const char *v) {
  json_error_t e;
  json_t *j = json_loads(v, JSON_DECODE_ANY, &e);
  if (j && (json_is_number(j) || json_is_boolean(j))) return j;
  json_decref(j);
  return json_string(v);
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static int emit(FILE *out, json_t *rec) {
  char *s = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(rec);
  if (!s) return -1;
  int rc = fprintf(out, "%s\n", s) < 0 ? -1 : 0;
  free(s);
  return rc;
}

int convert_trace(const convert_opts *o, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) { fprintf(o->err, "lane: %s: cannot read\n", path); return 2; }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long no = 0, good = 0, bad = 0;
  int tcol = -1, ccol = -1, gcol = -1, rc = 0;
  while ((n = getline(&line, &cap, f)) >= 0) {
    no++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (!n) continue;
    char *cols[8];
    int nc = 0;
    for (char *p = line, *save = NULL, *t; nc < 8 && (t = strtok_r(p, ",", &save)); p = NULL)
      cols[nc++] = t;
    if (tcol < 0 && ccol < 0) {   /* the header names the columns */
      for (int i = 0; i < nc; i++) {
        if (!strcmp(cols[i], "TIMESTAMP")) tcol = i;
        if (!strcmp(cols[i], "ContextTokens")) ccol = i;
        if (!strcmp(cols[i], "GeneratedTokens")) gcol = i;
      }
      if (ccol < 0 || gcol < 0) {
        fprintf(o->err, "lane: %s:%ld: not a trace: the header needs ContextTokens and "
                "GeneratedTokens (and TIMESTAMP for arrival times)\n", path, no);
        rc = 2;
        break;
      }
      continue;
    }
    char *end1, *end2;
    long long ctx = ccol < nc ? strtoll(cols[ccol], &end1, 10) : -1;
    long long gen = gcol < nc ? strtoll(cols[gcol], &end2, 10) : -1;
    int64_t ts = tcol >= 0 && tcol < nc ? parse_time(cols[tcol]) : (int64_t)no * 1000;
    if (ctx < 0 || gen < 0 || *end1 || *end2 || ts < 0) {
      if (++bad <= 20) fprintf(o->err, "lane: %s:%ld: not a trace row; skipped\n", path, no);
      continue;
    }
    json_t *req = json_object();
    json_object_set_new(req, "input_tokens", json_integer(ctx));
    json_object_set_new(req, "max_output_tokens", json_integer(gen));
    for (int i = 0; i < o->nsets; i++) {
      const char *eq = strchr(o->sets[i], '=');
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(eq - o->sets[i]), o->sets[i]);
      json_object_set_new(req, name, set_value(eq + 1));
    }
    if (o->users > 0)
      json_object_set_new(req, "user", json_sprintf("u-%llu", (unsigned long long)
                                                    (bc_splitmix64((uint64_t)no) % (uint64_t)o->users)));
    json_t *rec = json_object();
    json_object_set_new(rec, "v", json_integer(1));
    json_object_set_new(rec, "type", json_string("request"));
    json_object_set_new(rec, "id", json_sprintf("%s:%ld", base_name(path), no));
    json_object_set_new(rec, "ts", json_integer(ts));
    json_object_set_new(rec, "request", req);
    if (emit(o->out, rec)) { fprintf(o->err, "lane: cannot write\n"); rc = 2; break; }
    good++;
  }
  free(line);
  fclose(f);
  if (bad > 20) fprintf(o->err, "lane: %s: %ld rows skipped in all\n", path, bad);
  if (!rc && !good) { fprintf(o->err, "lane: %s: no trace row in it\n", path); rc = 2; }
  return rc;
}

int convert_body(const convert_opts *o, const lane_program *p, const char *path,
                 const char *text, size_t len) {
  lane_request r;
  lane_error err;
  lane_request_init(&r, p);
  if (lane_request_from_json(&r, text, len, LANE_FORMAT_OPENAI_CHAT | LANE_FORMAT_ANTHROPIC_MESSAGES,
                             &err) != LANE_OK) {
    fprintf(o->err, "lane: %s: %s; skipped\n", path, err.message);
    return 1;
  }
  json_t *req = json_object();
  for (int f = 0; f < lane_field_count(p); f++) {
    if (!(r.set >> f & 1)) continue;
    const lane_value *v = &r.v[f];
    json_t *j;
    if (lane_field_sensitive(p, f)) {   /* never in clear, as in a decision log */
      json_object_set_new(req, lane_field_name(p, f), json_string("redacted"));
      continue;
    }
    switch (lane_field_type(p, f)) {
    case LANE_T_STRING: j = json_stringn(v->s.p, v->s.n); break;
    case LANE_T_INT: j = json_integer(v->i); break;
    case LANE_T_UINT: j = json_integer((json_int_t)v->u); break;
    case LANE_T_BOOL: j = json_boolean(v->i); break;
    default: j = json_real(v->d); break;
    }
    json_object_set_new(req, lane_field_name(p, f), j ? j : json_null());
  }
  json_t *rec = json_object();
  json_object_set_new(rec, "v", json_integer(1));
  json_object_set_new(rec, "type", json_string("request"));
  json_object_set_new(rec, "id", json_string(base_name(path)));
  json_object_set_new(rec, "ts", json_integer(0));
  json_object_set_new(rec, "request", req);
  if (emit(o->out, rec)) { fprintf(o->err, "lane: cannot write\n"); return 2; }
  return 0;
}
