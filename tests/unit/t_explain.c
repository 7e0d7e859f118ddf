/*
 * t_explain.c -- a .lanec explains as the policy's source does.
 *
 * For every golden policy (tests/golden/accept/NAME.lane with the route
 * and request lines of NAME.golden, and tests/golden/explain/NAME.lane
 * with NAME.json), each request is decided with a trace and explained
 * twice: from the program's explain tables (lane_explain_text, what
 * `lane eval --explain` prints for a .lanec and a host or the Python
 * binding gets) and from the policy's source through the compiler's
 * evaluator (explain_print_source). The two texts must be equal. The
 * program is loaded from the compiled bytes, as a .lanec file is.
 *
 * So that the test cannot pass by explaining nothing, it also counts
 * the reasons the tables gave: rules with the failing part of their
 * condition, and members removed by a named condition.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "lanec.h"
#include "tap.h"

static int nrule_reasons, nmember_reasons, nrequests, ncut;

/* Sets the fields of a flat JSON request object, as `lane eval` reads a
 * request file; keys the policy does not declare are left out. The
 * request borrows the object's strings: the caller frees *keep after the
 * request's last use. */
static int set_json(lane_request *r, const lane_program *p, const char *text, json_t **keep) {
  json_error_t je;
  json_t *o = json_loads(text, 0, &je), *v;
  const char *k;
  *keep = o;
  if (!json_is_object(o)) return -1;
  lane_request_init(r, p);
  json_object_foreach(o, k, v) {
    int f = lane_field(p, k), rc = LANE_OK;
    if (f < 0) continue;
    switch (lane_field_type(p, f)) {
    case LANE_T_LIST: {   /* an array of strings */
      lane_value items[64];
      size_t n = json_array_size(v);
      if (n > 64) return -1;
      for (size_t i = 0; i < n; i++) {
        items[i].s.p = json_string_value(json_array_get(v, i));
        items[i].s.n = json_string_length(json_array_get(v, i));
      }
      rc = lane_set_list(r, f, items, n);
      break;
    }
    case LANE_T_MAP: {   /* an object: string, int or double values, by the map's unit */
      lane_entry e[64];
      const char *mk, *unit = lane_field_unit(p, f);
      json_t *mv;
      size_t n = 0;
      json_object_foreach(v, mk, mv) {
        if (n == 64) return -1;
        e[n].key = mk;
        e[n].klen = strlen(mk);
        if (json_is_string(mv)) {
          e[n].v.s.p = json_string_value(mv);
          e[n].v.s.n = json_string_length(mv);
        } else if (json_is_integer(mv) && (strstr(unit, "int") || strstr(unit, "tokens"))) {
          e[n].v.i = json_integer_value(mv);
        } else if (json_is_boolean(mv)) {
          e[n].v.i = json_is_true(mv);
        } else {
          e[n].v.d = json_number_value(mv);
        }
        n++;
      }
      rc = lane_set_map(r, f, e, n);
      break;
    }
    case LANE_T_STRING:
      rc = lane_set_str(r, f, json_string_value(v) ? json_string_value(v) : "",
                        json_string_length(v));
      break;
    case LANE_T_BOOL: rc = lane_set_bool(r, f, json_is_true(v)); break;
    case LANE_T_INT: rc = lane_set_int(r, f, json_integer_value(v)); break;
    case LANE_T_UINT: rc = lane_set_uint(r, f, (uint64_t)json_integer_value(v)); break;
    default: rc = lane_set_double(r, f, json_number_value(v)); break;
    }
    if (rc != LANE_OK) return -1;
  }
  return 0;
}

__attribute__((noinline)) static char *explain_with(const explain_in *in, void (*print)(const explain_in *, FILE *)) {
  char *text = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&text, &n);
  if (!f) bail("open_memstream");
  print(in, f);
  fclose(f);
  return text;
}

static int count(const char *s, const char *what) {
  int n = 0;
  size_t at = 0, len = strlen(what);
  for (const char *hit; (hit = strstr(s + at, what)) != NULL; n++) at = (size_t)(hit - s) + len;
  return n;
}

/* Decides and explains one request both ways. */
static void one(const char *name, const lanec_result *res, lane_program *p, const char *route,
                const char *request) {
  static int nth;   /* requests are named by number: a JSON file has newlines */
  nth++;
  lane_runtime *rt = lane_runtime_new(p, NULL);
  lane_request r;
  lane_decision d;
  lane_event ev[512];
  lane_trace t = {ev, 512, 0, 0};
  int ri = lane_route(p, route);
  json_t *keep = NULL;
  if (!rt || ri < 0 || set_json(&r, p, request, &keep) != 0) {
    ok(0, "%s: route %s, request %d (%s): decided", name, route, nth, request);
    json_decref(keep);
    lane_runtime_free(rt);
    return;
  }
  uint64_t now = 0;
  lane_live_stats *before = explain_capture(rt, p, &now);
  int rc = lane_decide_traced(rt, ri, &r, &d, &t);
  explain_in in = {res->unit, p, rt, ri, &r, &d, rc, &t, before, now};
  char *tables = explain_with(&in, explain_print_text);
  char *source = explain_with(&in, explain_print_source);
  nrequests++;
  nrule_reasons += count(tables, "    no: `");
  ncut += count(tables, "...`");
  nmember_reasons += count(tables, "removed: `") - count(tables, "removed: `fits` is false") -
                     count(tables, "removed: `healthy` is false");
  if (!is_str(tables, source, "%s: route %s, request %d: the .lanec explains as the source",
              name, route, nth))
    diag("request %s (got: from the explain tables; expected: from the source)", request);
  free(tables);
  free(source);
  free(before);
  json_decref(keep);
  lane_runtime_free(rt);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) { free(s); s = NULL; }
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

/* Compiles policy and loads its bytes as a .lanec file is loaded. */
static lane_program *compile(const char *policy, lanec_result *res) {
  memset(res, 0, sizeof *res);
  if (lanec_compile(policy, NULL, NULL, res) != LANEC_OK) {
    ok(0, "%s compiles", policy);
    lanec_print_diags(res, stderr);
    return NULL;
  }
  lane_error err;
  lane_program *p = lane_load(res->bytes, res->nbytes, &err);
  if (!p) ok(0, "%s: its bytes load: %s", policy, err.message);
  return p;
}

/* accept/NAME.golden: "route R" then "request {...}" lines, each
 * followed by its "decision" line. */
static void golden(const char *dir, const char *name) {
  char path[512], route[128] = "";
  snprintf(path, sizeof path, "%s/%s.golden", dir, name);
  char *g = slurp(path);
  if (!g) return;   /* a policy without decisions */
  snprintf(path, sizeof path, "%s/%s.lane", dir, name);
  lanec_result res;
  lane_program *p = compile(path, &res);
  for (char *line = strtok(g, "\n"); p && line; line = strtok(NULL, "\n")) {
    if (!strncmp(line, "route ", 6)) snprintf(route, sizeof route, "%s", line + 6);
    else if (!strncmp(line, "request ", 8)) one(name, &res, p, route, line + 8);
  }
  lane_program_free(p);
  lanec_result_free(&res);
  free(g);
}

/* explain/NAME.lane with NAME.json, on the route of its first line
 * (`# route: R`), as tests/golden/run.sh runs it. */
static void explain_case(const char *dir, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s.json", dir, name);
  char *req = slurp(path);
  snprintf(path, sizeof path, "%s/%s.lane", dir, name);
  lanec_result res;
  lane_program *p = req ? compile(path, &res) : NULL;
  char *src = p ? slurp(path) : NULL, route[128] = "";
  if (src && sscanf(src, "# route: %127s", route) != 1) snprintf(route, sizeof route, "%s",
                                                               lane_route_name(p, 0));
  if (p) one(name, &res, p, route, req);
  free(src);
  if (p) lane_program_free(p);
  if (req) lanec_result_free(&res);
  free(req);
}

static void each(const char *dir, const char *ext, void (*fn)(const char *, const char *)) {
  char cmd[600], line[256];
  snprintf(cmd, sizeof cmd, "ls %s | sed -n 's/\\.%s$//p'", dir, ext);
  FILE *ls = popen(cmd, "r");
  if (!ls) bail("cannot list %s", dir);
  while (fgets(line, sizeof line, ls)) {
    line[strcspn(line, "\n")] = 0;
    fn(dir, line);
  }
  pclose(ls);
}

/* A condition longer than a quote, and one that goes on below its first
 * line: quoted cut, with "...", the same from the tables as from the
 * source. */
static void long_conditions(void) {
  char src[2048], req[64];
  size_t n = (size_t)snprintf(src, sizeof src,
      "model a { input $1/Mtok output $1/Mtok }\nrequest { note: string }\nroute r {\n"
      "  when req.note == \"");
  for (int i = 0; i < 300; i++) src[n++] = (char)('a' + i % 26);
  n += (size_t)snprintf(src + n, sizeof src - n, "\" -> a\n  when req.tier == \"pro\" && req.note ==\n"
                        "       \"x\" -> a\n  otherwise -> a\n}\n");
  lanec_result res;
  memset(&res, 0, sizeof res);
  if (lanec_compile("long.lane", src, NULL, &res) != LANEC_OK) {
    lanec_print_diags(&res, stderr);
    ok(0, "the long-condition policy compiles");
    return;
  }
  snprintf(req, sizeof req, "{\"note\": \"y\", \"tier\": \"pro\"}");
  int before = nrequests;
  one("long_conditions", &res, res.prog, "r", req);
  ok(nrequests == before + 1 && ncut == 2,
     "a condition of 300 bytes and one of two lines explained, each quote cut with \"...\" "
     "(%d)", ncut);
  lanec_result_free(&res);
}

int main(void) {
  lane_regex_install(lane_regex_pcre2());   /* the policies' matches() */
  long_conditions();
  each("tests/golden/accept", "golden", golden);
  each("tests/golden/explain", "lane", explain_case);
  diag("%d requests; the tables named %d failing rule conditions and %d removing conditions",
       nrequests, nrule_reasons, nmember_reasons);
  ok(nrequests >= 200, "every golden request was explained (%d)", nrequests);
  ok(nrule_reasons >= 50, "rules that did not match were given their failing condition (%d)",
     nrule_reasons);
  ok(nmember_reasons >= 5, "members were given the condition that removed them (%d)",
     nmember_reasons);
  return done_testing();
}
