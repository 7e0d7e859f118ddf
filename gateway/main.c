/*
 * main.c -- lane-gateway: an HTTP gateway that routes each LLM request
 * with a lane policy.
 *
 *   lane-gateway -c gateway.json [--port N] [--exit-after SECONDS]
 *
 * POST /v1/chat/completions (OpenAI) and POST /v1/messages (Anthropic):
 * the body becomes a lane_request (lane_request_from_json, plus config
 * defaults and x-lane-field-* headers), lane_decide picks the candidates,
 * upstream.c forwards. GET /metrics, GET /healthz and GET /admin/state.
 * See README.md.
 *
 * libmicrohttpd runs one thread per connection, so a handler may block on
 * its upstream calls; the program and runtime are shared, per-request
 * state lives in a gw_call on the heap (a stream outlives its handler).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include "gateway.h"


uint64_t gw_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t gw_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- configuration ---- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* A path in the config, relative to the config file's directory. */
static char *config_path(const char *cfgfile, const char *p) {
  if (!p) return NULL;
  const char *slash = strrchr(cfgfile, '/');
  if (p[0] == '/' || !slash) return strdup(p);
  size_t n = (size_t)(slash - cfgfile) + 1 + strlen(p) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%.*s/%s", (int)(slash - cfgfile), cfgfile, p);
  return s;
}

static long num(const json_t *o, const char *key, long dflt) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

/* "retry": {"attempts", "backoff_ms", "max_backoff_ms", "max_retry_after_ms",
 * "on"}, over dflt: 0, or -1 with why set (where names the object). */
static int load_retry(const json_t *o, const gw_retry *dflt, gw_retry *r, const char *where,
                      char *why, size_t cap) {
  *r = *dflt;
  if (!o) return 0;
  if (!json_is_object(o))
    return snprintf(why, cap, "%s: \"retry\" is an object: {\"attempts\", \"backoff_ms\", "
                    "\"max_backoff_ms\", \"max_retry_after_ms\", \"on\"}", where), -1;
  r->attempts = (int)num(o, "attempts", r->attempts);
  r->backoff_ms = num(o, "backoff_ms", r->backoff_ms);
  r->max_backoff_ms = num(o, "max_backoff_ms", r->max_backoff_ms);
  r->max_retry_after_ms = num(o, "max_retry_after_ms", r->max_retry_after_ms);
  json_t *on = json_object_get(o, "on");
  if (on) {
    if (!json_is_array(on) || json_array_size(on) > GW_RETRY_ON)
      return snprintf(why, cap, "%s: retry.on is a list of at most %d HTTP statuses (429, 5xx)",
                      where, GW_RETRY_ON), -1;
    r->non = 0;
    size_t i;
    json_t *v;
    json_array_foreach(on, i, v) {
      long st = json_is_integer(v) ? (long)json_integer_value(v) : 0;
      if (st != 429 && (st < 500 || st > 599))
        return snprintf(why, cap, "%s: retry.on: %s is not 429 or a 5xx (another 4xx is the "
                        "request's fault: asking again gets the same answer)", where,
                        json_is_integer(v) ? "that status" : "a non-number"), -1;
      r->on[r->non++] = st;
    }
  }
  if (r->attempts < 0 || r->attempts > 10 || r->backoff_ms < 0 ||
      r->max_backoff_ms < r->backoff_ms || r->max_retry_after_ms < 0)
    return snprintf(why, cap, "%s: retry: attempts 0 to 10, backoff_ms >= 0, max_backoff_ms >= "
                    "backoff_ms, max_retry_after_ms >= 0", where), -1;
  return 0;
}

static int load_providers(gw_config *c, json_t *provs, char *why, size_t cap) {
  const char *name;
  json_t *p;
  json_object_foreach(provs, name, p) {
    if (c->nproviders == GW_MAX_PROVIDERS) return snprintf(why, cap, "too many providers"), -1;
    gw_provider *v = &c->providers[c->nproviders++];
    const char *url = json_string_value(json_object_get(p, "base_url"));
    const char *fmt = json_string_value(json_object_get(p, "format"));
    const char *mt = json_string_value(json_object_get(p, "max_tokens_field"));
    if (!url) return snprintf(why, cap, "provider %s: no base_url", name), -1;
    if (!fmt) fmt = strcmp(name, "anthropic") ? "openai" : "anthropic";
    if (strcmp(fmt, "openai") && strcmp(fmt, "anthropic"))
      return snprintf(why, cap, "provider %s: format is \"openai\" or \"anthropic\"", name), -1;
    v->name = strdup(name);
    v->base_url = strdup(url);
    size_t n = strlen(v->base_url);
    while (n && v->base_url[n - 1] == '/') v->base_url[--n] = 0;
    v->format = fmt[0] == 'a' ? GW_ANTHROPIC : GW_OPENAI;
    v->completion_tokens = mt && !strcmp(mt, "max_completion_tokens");
    v->key_env = dup_or_null(json_string_value(json_object_get(p, "api_key_env")));
    v->api_key = v->key_env ? dup_or_null(getenv(v->key_env)) : NULL;
    char where[160];
    snprintf(where, sizeof where, "provider %s", name);
    if (load_retry(json_object_get(p, "retry"), &c->retry, &v->retry, where, why, cap)) return -1;
  }
  return 0;
}

static int load_config(gw_config *c, const char *file, char *why, size_t cap) {
  json_error_t je;
  json_t *o = json_load_file(file, 0, &je);
  if (!json_is_object(o)) {
    snprintf(why, cap, "%s:%d: %s", file, je.line, o ? "not a JSON object" : je.text);
    json_decref(o);
    return -1;
  }
  c->root = o;
  const char *listen = json_string_value(json_object_get(o, "listen"));
  c->host = strdup("127.0.0.1");
  c->port = 8080;
  if (listen) {
    const char *colon = strrchr(listen, ':');
    if (colon && colon > listen) {
      free(c->host);
      c->host = strndup(listen, (size_t)(colon - listen));
    }
    c->port = atoi(colon ? colon + 1 : listen);
  }
  const char *pol = json_string_value(json_object_get(o, "policy"));
  c->policy = pol && (!strncmp(pol, "http://", 7) || !strncmp(pol, "https://", 8))
                  ? strdup(pol) : config_path(file, pol);
  c->policy_key = config_path(file, json_string_value(json_object_get(o, "policy_key")));
  json_t *rl = json_object_get(o, "reload");
  c->poll_s = num(rl, "poll_s", 0);
  c->fetch_timeout_ms = num(rl, "timeout_ms", 10000);
  c->max_policy_bytes = num(rl, "max_bytes", 64L << 20);
  c->allow_rollback = json_is_true(json_object_get(rl, "allow_rollback"));
  c->route = dup_or_null(json_string_value(json_object_get(o, "route")));
  c->state_file = config_path(file, json_string_value(json_object_get(o, "state_file")));
  c->deadline_ms = num(o, "deadline_ms", 60000);
  c->max_deadline_ms = num(o, "max_deadline_ms", 600000);
  c->attempt_timeout_ms = num(o, "attempt_timeout_ms", 0);
  c->connect_timeout_ms = num(o, "connect_timeout_ms", 5000);
  c->stream_idle_ms = num(o, "stream_idle_ms", 60000);
  c->default_max_tokens = num(o, "default_max_tokens", 4096);
  json_t *sh = json_object_get(o, "shadow");
  c->shadow_concurrency = num(sh, "concurrency", 4);
  c->shadow_queue = num(sh, "queue", 1024);
  c->shadow_timeout_ms = num(sh, "timeout_ms", 60000);
  static const gw_retry no_retry = {0, 100, 2000, 5000, {429, 500, 502, 503, 504}, 5};
  if (load_retry(json_object_get(o, "retry"), &no_retry, &c->retry, file, why, cap)) return -1;
  json_t *lim = json_object_get(o, "limits");
  c->max_body_bytes = num(lim, "body_bytes", 16L << 20);
  c->max_bodies_bytes = num(lim, "bodies_bytes", 256L << 20);
  c->max_connections = num(lim, "connections", 4096);
  c->max_per_ip = num(lim, "connections_per_ip", 0);
  c->idle_timeout_s = num(lim, "idle_timeout_s", 120);
  c->header_timeout_ms = num(lim, "header_timeout_ms", 10000);
  c->body_timeout_ms = num(lim, "body_timeout_ms", 60000);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  c->threads = num(lim, "threads", cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
  c->defaults = json_object_get(o, "defaults");
  if (!c->policy)
    return snprintf(why, cap, "%s: no \"policy\" (a .lanec file or a bundle, a path or a URL)",
                    file), -1;
  if (rl && !json_is_object(rl))
    return snprintf(why, cap, "%s: \"reload\" is an object: {\"poll_s\", \"timeout_ms\", "
                    "\"max_bytes\"}", file), -1;
  if (c->poll_s < 0 || c->fetch_timeout_ms <= 0 || c->max_policy_bytes <= 0)
    return snprintf(why, cap, "%s: reload: poll_s >= 0 (0: on SIGHUP only), timeout_ms and "
                    "max_bytes > 0", file), -1;
  if (c->deadline_ms <= 0 || c->connect_timeout_ms <= 0 || c->stream_idle_ms <= 0)
    return snprintf(why, cap, "%s: timeouts must be positive", file), -1;
  if ((sh && !json_is_object(sh)) || c->shadow_concurrency < 0 || c->shadow_concurrency > 256 ||
      c->shadow_queue < 1 || c->shadow_timeout_ms < 1)
    return snprintf(why, cap, "%s: \"shadow\" is {\"concurrency\": 0 to 256 (0: shadows are "
                    "decided and logged, not sent), \"queue\": >= 1, \"timeout_ms\": >= 1}",
                    file), -1;
  if (lim && !json_is_object(lim))
    return snprintf(why, cap, "%s: \"limits\" is an object: {\"body_bytes\", "
                    "\"bodies_bytes\", \"connections\", \"connections_per_ip\", "
                    "\"idle_timeout_s\", \"header_timeout_ms\", \"body_timeout_ms\", "
                    "\"threads\"}", file), -1;
  if (c->max_body_bytes <= 0 || c->max_bodies_bytes < c->max_body_bytes ||
      c->max_connections < 1 || c->max_connections > 1000000 || c->max_per_ip < 0 ||
      c->idle_timeout_s < 1 || c->header_timeout_ms < 1 || c->body_timeout_ms < 1 ||
      c->threads < 1 || c->threads > 1024)
    return snprintf(why, cap, "%s: limits: body_bytes > 0, bodies_bytes >= body_bytes, "
                    "connections 1 to 1000000, connections_per_ip >= 0 (0: no limit), "
                    "idle_timeout_s, header_timeout_ms and body_timeout_ms >= 1, "
                    "threads 1 to 1024", file), -1;
  return load_providers(c, json_object_get(o, "providers"), why, cap);
}

static void free_config(gw_config *c) {
  for (int i = 0; i < c->nproviders; i++) {
    gw_provider *p = &c->providers[i];
    if (p->api_key) memset(p->api_key, 0, strlen(p->api_key));
    free(p->name), free(p->base_url), free(p->key_env), free(p->api_key);
  }
  free(c->host), free(c->policy), free(c->policy_key), free(c->route), free(c->state_file);
  json_decref(c->root);
}

/* ---- request fields ---- */

/* Sets field f from text (a header value), by the field's type. */
static int set_text(gw_call *c, int f, const char *v) {
  lane_request *r = c->req;
  char *end = NULL;
  errno = 0;
  switch (lane_field_type(c->pol->prog, f)) {
  case LANE_T_STRING: {   /* copied into the request's room, sized for every header */
    size_t n = strlen(v), left;
    char *t = lane_request_text(r, &left);
    if (!t || n > left) return -1;
    memcpy(t, v, n);
    int rc = lane_set_str(r, f, t, n);
    if (rc == LANE_OK) lane_request_text_used(r, n);
    return rc;
  }
  case LANE_T_BOOL:
    if (!strcmp(v, "1") || !strcasecmp(v, "true")) return lane_set_bool(r, f, 1);
    if (!strcmp(v, "0") || !strcasecmp(v, "false")) return lane_set_bool(r, f, 0);
    return -1;
  case LANE_T_INT: {
    long long x = strtoll(v, &end, 10);
    return *v && !*end && !errno ? lane_set_int(r, f, x) : -1;
  }
  case LANE_T_UINT: {
    unsigned long long x = strtoull(v, &end, 10);
    return *v && *v != '-' && !*end && !errno ? lane_set_uint(r, f, x) : -1;
  }
  case LANE_T_DOUBLE: {
    double x = strtod(v, &end);
    return *v && !*end && !errno ? lane_set_double(r, f, x) : -1;
  }
  }
  return -1;
}

/* Sets field f from a config default (strings borrowed from the config). */
static int set_json(lane_request *r, int f, const json_t *v, int type) {
  if (type == LANE_T_STRING && json_is_string(v))
    return lane_set_str(r, f, json_string_value(v), json_string_length(v));
  if (type == LANE_T_BOOL && json_is_boolean(v)) return lane_set_bool(r, f, json_is_true(v));
  if (type == LANE_T_INT && json_is_integer(v)) return lane_set_int(r, f, json_integer_value(v));
  if (type == LANE_T_UINT && json_is_integer(v) && json_integer_value(v) >= 0)
    return lane_set_uint(r, f, (uint64_t)json_integer_value(v));
  if (type == LANE_T_DOUBLE && json_is_number(v)) return lane_set_double(r, f, json_number_value(v));
  return -1;
}

typedef struct hdr_scan {
  gw_call *c;          /* the call whose request is filled */
  char     err[200];   /* first bad header */
} hdr_scan;

/* Adds the length of each x-lane-field-* value to *(size_t *)cls. */
static enum MHD_Result header_bytes(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
  (void)kind;
  if (!strncasecmp(key, "x-lane-field-", 13) && value) *(size_t *)cls += strlen(value);
  return MHD_YES;
}

static enum MHD_Result on_request_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                         const char *value) {
  hdr_scan *h = cls;
  (void)kind;
  if (strncasecmp(key, "x-lane-field-", 13) || !value || h->err[0]) return MHD_YES;
  int f = lane_field(h->c->pol->prog, key + 13);
  if (f < 0)
    snprintf(h->err, sizeof h->err, "%s: the policy has no request field '%s'", key, key + 13);
  else if (set_text(h->c, f, value))
    snprintf(h->err, sizeof h->err, "%s: not a valid %s%s", key,
             lane_field_unit(h->c->pol->prog, f),
             lane_field_type(h->c->pol->prog, f) == LANE_T_STRING
                 ? " (a string is at most LANE_MAX_STRING, 4096 bytes)" : "");
  return MHD_YES;
}

/* ---- responses ---- */

static void count_response(gw *g, const char *url, unsigned status) {
  char labels[240] = "", st[16];
  int known = !strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/messages") ||
              !strcmp(url, "/metrics") || !strcmp(url, "/healthz") ||
              !strcmp(url, "/admin/state");
  snprintf(st, sizeof st, "%u", status);
  gw_label(labels, sizeof labels, "path", known ? url : "other");
  gw_label(labels, sizeof labels, "status", st);
  gw_metrics_add(g->metrics, "lane_gateway_requests_total", labels, 1);
}

static enum MHD_Result queue(gw *g, struct MHD_Connection *con, const char *url, unsigned status,
                             struct MHD_Response *r) {
  if (!r) return MHD_NO;  /* out of memory: MHD closes the connection */
  enum MHD_Result rc = MHD_queue_response(con, status, r);
  MHD_destroy_response(r);
  count_response(g, url, status);
  return rc;
}

static enum MHD_Result send_text(gw *g, struct MHD_Connection *con, const char *url,
                                 unsigned status, const char *ctype, const char *body) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (r) MHD_add_response_header(r, "Content-Type", ctype);
  return queue(g, con, url, status, r);
}

/* An error of the gateway's own, in the client's format. retry 0: asking
 * again gets the same answer (a malformed body, no model fits, the chain
 * already walked), so SDKs that retry 5xx by default (OpenAI's,
 * Anthropic's) are told not to; 1: asking again can cure it (memory is
 * short right now), after a second. */
static enum MHD_Result error_response(gw *g, struct MHD_Connection *con, const char *url,
                                      int format, unsigned status, const char *code,
                                      const char *msg, int retry) {
  char *body = gw_error_body(format, status, code, msg);
  const char *text = body ? body : "{}";
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
  if (r) {
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry) MHD_add_response_header(r, "Retry-After", "1");
    MHD_add_response_header(r, "x-should-retry", retry ? "true" : "false");
  }
  enum MHD_Result rc = queue(g, con, url, status, r);
  fprintf(stderr, "lane-gateway: POST %s %u %s\n", url, status, msg);
  free(body);
  return rc;
}

static enum MHD_Result send_error(gw *g, struct MHD_Connection *con, const char *url, int format,
                                  unsigned status, const char *code, const char *msg) {
  return error_response(g, con, url, format, status, code, msg, 0);
}

static enum MHD_Result send_busy(gw *g, struct MHD_Connection *con, const char *url, int format,
                                 const char *msg) {
  return error_response(g, con, url, format, 503, "lane_busy", msg, 1);
}

json_t *gw_call_body(gw_call *c) {
  if (!c->body) c->body = json_loadb(c->raw, c->nraw, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
  return c->body;
}

void gw_call_release(gw_call *c) {
  if (!c || atomic_fetch_sub(&c->refs, 1) != 1) return;
  gw_policy_put(c->pol);
  json_decref(c->body);
  free(c->req_buf);
  free(c);
}

static json_t *names(const lane_program *p, const int *m, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_string(lane_model_name(p, m[i])));
  return a;
}

static enum MHD_Result dry_run(gw_call *c, struct MHD_Connection *con, const char *url) {
  gw *g = c->g;
  const lane_program *p = c->pol->prog;
  const lane_decision *d = &c->d;
  json_t *cands = json_array();
  for (int i = 0; i < d->ncandidates; i++) {
    int m = d->candidates[i], pi = c->pol->model_provider[m];
    json_array_append_new(
        cands, json_pack("{s:s, s:s, s:s, s:s?, s:f}", "model", lane_model_name(p, m), "provider",
                         lane_model_provider(p, m), "id", lane_model_id(p, m), "format",
                         pi < 0 ? NULL
                         : g->cfg.providers[pi].format == GW_OPENAI ? "openai" : "anthropic",
                         "expected_cost", lane_route_cost(p, d->route, c->req, m)));
  }
  json_t *o = json_pack("{s:b, s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:f, s:I}", "dry_run", 1,
                        "route", lane_route_name(p, d->route), "rule", d->rule, "rule_name",
                        lane_rule_name(p, d->route, d->rule), "primary",
                        lane_model_name(p, d->candidates[0]), "candidates", cands, "fallbacks",
                        names(p, d->candidates + 1, d->ncandidates - 1), "shadows",
                        names(p, d->shadows, d->nshadows), "cost", d->cost, "deadline_ms",
                        (json_int_t)(c->deadline - gw_now_ms()));
  if (o && d->output_from == LANE_OUTPUT_ESTIMATE)   /* no max_tokens: the route's estimate */
    json_object_set_new(o, "output_estimate", json_integer((json_int_t)d->output_tokens));
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
  json_decref(o);
  struct MHD_Response *r =
      s ? MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE) : NULL;
  if (!r) return free(s), MHD_NO;
  char v[64];
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "x-lane-dry-run", "1");
  MHD_add_response_header(r, "x-lane-revision", c->pol->revision);
  MHD_add_response_header(r, "x-lane-route", lane_route_name(p, d->route));
  snprintf(v, sizeof v, "%d", d->rule);
  MHD_add_response_header(r, "x-lane-rule", v);
  MHD_add_response_header(r, "x-lane-model", lane_model_name(p, d->candidates[0]));
  snprintf(v, sizeof v, "%.9f", d->cost);
  MHD_add_response_header(r, "x-lane-cost", v);
  MHD_add_response_header(r, "x-lane-cost-basis", "expected");
  char labels[240] = "";
  gw_label(labels, sizeof labels, "route", lane_route_name(p, d->route));
  gw_metrics_add(g->metrics, "lane_gateway_dry_runs_total", labels, 1);
  return queue(g, con, url, 200, r);
}

/* Fills c->req from config defaults, the body and x-lane-field-* headers,
 * and the deadline: 0, or -1 with why set. */
static int build_request(gw_call *c, struct MHD_Connection *con, const gw_buf *body, char *why,
                         size_t cap) {
  gw *g = c->g;
  /* A compact request with room for every string the body and the
   * headers can give it: no limit of its own on a model name or a user
   * (each string stays within LANE_MAX_STRING) */
  size_t room = body->n;
  MHD_get_connection_values(con, MHD_HEADER_KIND, header_bytes, &room);
  size_t size = lane_request_size(c->pol->prog, room);
  lane_error err;
  c->req_buf = size ? malloc(size) : NULL;
  c->req = c->req_buf ? lane_request_init_in(c->req_buf, size, c->pol->prog, &err) : NULL;
  if (!c->req) return snprintf(why, cap, "out of memory for the request (%zu bytes)", size), -1;
  const char *key;
  json_t *v;
  json_object_foreach(g->cfg.defaults, key, v) {
    int f = lane_field(c->pol->prog, key);
    if (f >= 0) set_json(c->req, f, v, lane_field_type(c->pol->prog, f));
  }
  if (lane_request_from_json(c->req, body->p ? body->p : "", body->n, c->format, &err) != LANE_OK)
    return snprintf(why, cap, "%s", err.message), -1;
  hdr_scan h = {c, ""};
  MHD_get_connection_values(con, MHD_HEADER_KIND, on_request_header, &h);
  if (h.err[0]) return snprintf(why, cap, "%s", h.err), -1;
  long ms = g->cfg.deadline_ms;
  const char *dl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "x-lane-deadline-ms");
  if (dl) {
    char *end;
    ms = strtol(dl, &end, 10);
    if (!*dl || *end || ms <= 0)
      return snprintf(why, cap, "x-lane-deadline-ms: a positive number of milliseconds"), -1;
    if (ms > g->cfg.max_deadline_ms) ms = g->cfg.max_deadline_ms;
  }
  c->deadline = gw_now_ms() + (uint64_t)ms;
  size_t off, len;
  int has = gw_json_member(body->p, body->n, "stream", &off, &len);
  c->stream = has < 0 ? json_is_true(json_object_get(gw_call_body(c), "stream"))
                      : has && len == 4 && !memcmp(body->p + off, "true", 4);
  if (c->stream)   /* streams only: the whole body is parsed for it */
    c->want_usage = json_is_true(
        json_object_get(json_object_get(gw_call_body(c), "stream_options"), "include_usage"));
  c->anthropic_version = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "anthropic-version");
  c->anthropic_beta = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "anthropic-beta");
  return 0;
}

typedef struct conn {
  gw_buf   body;     /* request body so far */
  size_t   counted;  /* bytes of it counted in g->bodies */
  unsigned refuse;   /* 413: over limits.body_bytes; 503: limits.bodies_bytes
                        reached, or no memory (then the body is dropped) */
  gw_call *call;     /* handed to the forwarder (its body is k->body): the
                        connection is suspended until call->resp is set */
} conn;

static void body_drop(gw *g, conn *k);

static enum MHD_Result proxy(gw *g, struct MHD_Connection *con, const char *url, int format,
                             conn *k) {
  const gw_buf *body = &k->body;
  char why[300];
  gw_call *c = calloc(1, sizeof *c);
  if (!c) return MHD_NO;
  atomic_init(&c->refs, 1);
  c->g = g, c->format = format, c->served = -1;
  c->t_in = gw_now_ns();
  c->pol = gw_policy_get(g);   /* this request's program, whatever reloads happen */
  /* The body is read once, by lane_request_from_json (its limits checked
   * on the bytes first; a \u0000 is a character; a duplicate key is
   * refused: the gateway would decide on one value and a provider might
   * read the other). It is parsed again only to be translated. */
  c->raw = body->p ? body->p : "";
  c->nraw = body->n;
  enum MHD_Result rc;
  if (build_request(c, con, body, why, sizeof why)) {
    rc = send_error(g, con, url, format, 400, "lane_bad_request", why);
    goto out;
  }
  const char *route = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "x-lane-route");
  int ri = lane_route(c->pol->prog, route ? route : g->cfg.route);
  if (ri < 0) {
    snprintf(why, sizeof why, "unknown route '%s'", route ? route : g->cfg.route);
    rc = send_error(g, con, url, format, 400, "lane_unknown_route", why);
    goto out;
  }
  int st = lane_decide_route(c->pol->rt, ri, c->req, &c->d);
  const char *dry = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "x-lane-dry-run");
  int is_dry = dry && (!strcmp(dry, "1") || !strcasecmp(dry, "true"));
  snprintf(c->id, sizeof c->id, "%llx-%llx", (unsigned long long)gw_now_ms(),
           (unsigned long long)atomic_fetch_add(&g->seq, 1));
  if (!is_dry) gw_log_decision(c, ri, st);   /* before any charge: what it read */
  if (st != LANE_OK) {
    char labels[240] = "";
    gw_label(labels, sizeof labels, "route", lane_route_name(c->pol->prog, ri));
    gw_metrics_add(g->metrics, "lane_gateway_no_match_total", labels, 1);
    if (st == LANE_ENOMATCH && c->d.filtered_rule)
      snprintf(why, sizeof why, "lane: no model can serve this request on route %s: rule %d "
               "matched but every candidate was filtered out (require, health)",
               lane_route_name(c->pol->prog, ri), c->d.filtered_rule);
    else
      snprintf(why, sizeof why, "lane: no rule of route %s matched this request (%s)",
               lane_route_name(c->pol->prog, ri), lane_status_name(st));
    rc = send_error(g, con, url, format, 503, "lane_no_match", why);
    goto out;
  }
  if (is_dry) {
    rc = dry_run(c, con, url);
    goto out;
  }
  gw_shadows_submit(g, c);   /* copies, sent by their own threads */
  char labels[480] = "", rn[16];
  snprintf(rn, sizeof rn, "%d", c->d.rule);
  gw_label(labels, sizeof labels, "route", lane_route_name(c->pol->prog, ri));
  gw_label(labels, sizeof labels, "rule", rn);
  gw_label(labels, sizeof labels, "model", lane_model_name(c->pol->prog, c->d.candidates[0]));
  gw_metrics_add(g->metrics, "lane_gateway_decisions_total", labels, 1);

  /* the forwarder walks the chain; the connection waits, suspended, and
   * handle() is called again once the answer is set (answer()) */
  c->con = con;
  k->call = c;
  MHD_suspend_connection(con);
  gw_forward(c);
  return MHD_YES;
out:
  gw_call_release(c);
  return rc;
}

/* The forwarder set k's call's answer and resumed the connection. */
static enum MHD_Result answer(gw *g, struct MHD_Connection *con, const char *url, conn *k) {
  gw_call *c = k->call;
  k->call = NULL;
  c->raw = NULL;   /* the body goes now; a stream keeps c */
  c->nraw = 0;
  body_drop(g, k);
  struct MHD_Response *r = c->resp;
  c->resp = NULL;
  fprintf(stderr, "lane-gateway: POST %s %u route=%s rule=%d model=%s fallbacks=%d cost=$%.9f%s "
          "%llums%s%s\n", url, c->status, lane_route_name(c->pol->prog, c->d.route), c->d.rule,
          c->served >= 0 ? lane_model_name(c->pol->prog, c->served) : "-", c->tried, c->cost,
          c->served >= 0 && c->stream ? " (expected; stream: time to first byte)" : "",
          (unsigned long long)((c->t_done - c->t_in) / 1000000), c->log[0] ? " tried: " : "",
          c->log);
  enum MHD_Result rc = queue(g, con, url, c->status, r);
  if (c->served >= 0 && !c->stream) gw_metrics_overhead(g->metrics, gw_now_ns() - c->t_in - c->t_up);
  gw_call_release(c);
  return rc;
}

/* GET /admin/state: the runtime's live state as lane_runtime_snapshot
 * writes it (breakers, live stats, budget spend by key hash), the same
 * JSON `lane eval --state` replays. */
static enum MHD_Result send_state(gw *g, struct MHD_Connection *con, const char *url) {
  size_t cap = 4096;
  for (int tries = 0; tries < 8; tries++) {   /* keys may appear between calls */
    char *buf = malloc(cap);
    if (!buf) return MHD_NO;
    size_t n = lane_runtime_snapshot(g->rt, buf, cap);
    if (n < cap) {
      struct MHD_Response *r = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
      if (!r) return free(buf), MHD_NO;
      MHD_add_response_header(r, "Content-Type", "application/json");
      MHD_add_response_header(r, "Cache-Control", "no-store");
      return queue(g, con, url, 200, r);
    }
    free(buf);
    cap = n + 4096;
  }
  return send_error(g, con, url, GW_OPENAI, 500, "lane_state", "the state keeps growing");
}

/* ---- the server ---- */

/* Gives back what k counted against limits.bodies_bytes, and its body. */
static void body_drop(gw *g, conn *k) {
  atomic_fetch_sub(&g->bodies, k->counted);
  k->counted = 0;
  gw_buf_free(&k->body);
}

/* Takes n more bytes of k's body, within both limits. */
static void body_take(gw *g, conn *k, const char *data, size_t n) {
  if (k->refuse) return;   /* refused already: the rest is read and dropped */
  if (k->body.n + n > (size_t)g->cfg.max_body_bytes) {
    k->refuse = 413;
  } else if (atomic_fetch_add(&g->bodies, n) + n > (uint64_t)g->cfg.max_bodies_bytes) {
    atomic_fetch_sub(&g->bodies, n);
    k->refuse = 503;
  } else {
    k->counted += n;
    if (gw_buf_add(&k->body, data, n)) k->refuse = 503;
  }
  if (k->refuse) body_drop(g, k);
}

/* A Content-Length over limits.body_bytes: refused before a byte of the
 * body is read (MHD then closes the connection instead of reading it). */
static int length_over(const gw *g, struct MHD_Connection *con) {
  const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
  if (!cl) return 0;
  char *end;
  errno = 0;
  unsigned long long n = strtoull(cl, &end, 10);
  return end != cl && (errno == ERANGE || n > (unsigned long long)g->cfg.max_body_bytes);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **ptr) {
  gw *g = cls;
  conn *k = *ptr;
  (void)version;
  int format = !strcmp(url, "/v1/chat/completions") ? GW_OPENAI
             : !strcmp(url, "/v1/messages")         ? GW_ANTHROPIC : 0;
  if (!k) {
    gw_clients_headers_in(g, con);
    if (length_over(g, con)) {
      char msg[160];
      snprintf(msg, sizeof msg, "request body too large: its Content-Length is over "
               "limits.body_bytes (%ld bytes)", g->cfg.max_body_bytes);
      return send_error(g, con, url, format ? format : GW_OPENAI, 413, "lane_too_large", msg);
    }
    *ptr = k = calloc(1, sizeof *k);
    return k ? MHD_YES : MHD_NO;
  }
  if (k->call) return answer(g, con, url, k);
  if (*size) {
    body_take(g, k, data, *size);
    *size = 0;
    return MHD_YES;
  }
  gw_clients_body_in(g, con);
  if (!strcmp(method, "GET") && !strcmp(url, "/healthz")) {
    char *h = gw_health_json(g);
    enum MHD_Result hr = send_text(g, con, url, 200, "application/json", h ? h : "{\"status\": \"ok\"}");
    free(h);
    return hr;
  }
  if (!strcmp(method, "GET") && !strcmp(url, "/metrics")) {
    size_t n;
    gw_metrics_redis(g->metrics, g->redis);
    char *text = gw_metrics_text(g->metrics, &n);
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (r) MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
    else free(text);
    return queue(g, con, url, 200, r);
  }
  if (!strcmp(method, "GET") && !strcmp(url, "/admin/state")) return send_state(g, con, url);
  if (!format) return send_error(g, con, url, GW_OPENAI, 404, "lane_not_found",
                                 "not found: POST /v1/chat/completions or /v1/messages");
  if (strcmp(method, "POST"))
    return send_error(g, con, url, format, 405, "lane_method", "use POST");
  if (k->refuse == 413) {
    char msg[160];
    snprintf(msg, sizeof msg, "request body too large: over limits.body_bytes (%ld bytes)",
             g->cfg.max_body_bytes);
    return send_error(g, con, url, format, 413, "lane_too_large", msg);
  }
  if (k->refuse)
    return send_busy(g, con, url, format, "the gateway holds limits.bodies_bytes of request "
                     "bodies already (or is out of memory): try again");
  enum MHD_Result rc = proxy(g, con, url, format, k);
  if (!k->call) body_drop(g, k);   /* answered already: the bytes are not needed any more */
  return rc;
}

static void completed(void *cls, struct MHD_Connection *con, void **ptr,
                      enum MHD_RequestTerminationCode why) {
  conn *k = *ptr;
  (void)why;
  gw_clients_done(cls, con);
  if (k && k->call) {   /* never answered: the gateway stopped, or the client left */
    if (k->call->resp) MHD_destroy_response(k->call->resp);
    gw_call_release(k->call);
  }
  if (k) body_drop(cls, k);
  free(k);
  *ptr = NULL;
}

/* "decision_log": {"path", "max_bytes", "max_age_s", "queue", "key_file"}:
 * every decision and attempt as liblane's records (log.c). */
static int open_log(gw *g, const char *cfgfile, char *why, size_t cap) {
  json_t *o = json_object_get(g->cfg.root, "decision_log");
  if (!o) return 0;
  char *path = config_path(cfgfile, json_string_value(json_object_get(o, "path")));
  char *keyf = config_path(cfgfile, json_string_value(json_object_get(o, "key_file")));
  int rc = -1;
  long max_bytes = num(o, "max_bytes", 64L << 20), max_age = num(o, "max_age_s", 3600);
  long queue = num(o, "queue", 65536);
  lane_error kerr;
  if (!path) {
    snprintf(why, cap, "%s: decision_log needs a \"path\"", cfgfile);
  } else if (max_bytes < 0 || max_age < 0 || queue < 1 || queue > 16777216) {
    snprintf(why, cap, "%s: decision_log: max_bytes and max_age_s are >= 0 (0: never), "
             "queue 1 to 16777216", cfgfile);
  } else if (keyf && lane_log_key_load(keyf, g->log_key, &kerr) != LANE_OK) {
    snprintf(why, cap, "decision_log key_file %s", kerr.message);
  } else {
    g->log_key_set = keyf != NULL;
    g->log = gw_log_open(path, max_bytes, max_age, (int)queue, g->metrics, why, cap);
    rc = g->log ? 0 : -1;
  }
  free(path);
  free(keyf);
  return rc;
}

static void state_note(void *ctx, const char *note) {
  fprintf(stderr, "lane-gateway: %s: %s\n", (const char *)ctx, note);
}

static void redis_warn(void *ctx, const char *line) {
  (void)ctx;
  fprintf(stderr, "lane-gateway: redis: %s\n", line);
}

/* "redis": "redis://host:port/db" or {"url", "prefix", "instance",
 * "sync_ms", "timeout_ms", "leases"}: budgets and model health shared
 * with every gateway on that Redis (vm/redis/README.md). */
static int open_redis(gw *g, const char *cfgfile, char *why, size_t cap) {
  json_t *o = json_object_get(g->cfg.root, "redis");
  if (!o) return 0;
  lane_redis_options ro;
  memset(&ro, 0, sizeof ro);
  ro.warn = redis_warn;
  if (json_is_string(o)) {
    ro.url = json_string_value(o);
  } else if (json_is_object(o)) {
    ro.url = json_string_value(json_object_get(o, "url"));
    ro.prefix = json_string_value(json_object_get(o, "prefix"));
    ro.instance = json_string_value(json_object_get(o, "instance"));
    long sync = num(o, "sync_ms", 100), tmo = num(o, "timeout_ms", 200);
    json_t *leases = json_object_get(o, "leases");
    if (sync < 1 || sync > 60000 || tmo < 1 || tmo > 60000 || (leases && !json_is_boolean(leases)))
      return snprintf(why, cap, "%s: redis: sync_ms and timeout_ms are 1 to 60000, leases "
                      "true or false", cfgfile), -1;
    ro.sync_ms = (uint32_t)sync;
    ro.timeout_ms = (uint32_t)tmo;
    ro.no_leases = leases && !json_is_true(leases);
  }
  if (!ro.url)
    return snprintf(why, cap, "%s: \"redis\" is a URL (redis://host:port/db) or an object "
                    "with \"url\"", cfgfile), -1;
  lane_error err;
  g->redis = lane_redis_attach(g->rt, &ro, &err);
  if (!g->redis) return snprintf(why, cap, "%s: redis: %s", cfgfile, err.message), -1;
  return 0;
}

static int start(gw *g, const char *cfgfile, int port, char *why, size_t cap) {
  if (load_config(&g->cfg, cfgfile, why, cap)) return -1;
  if (port >= 0) g->cfg.port = port;
  g->metrics = gw_metrics_new();
  if (!g->metrics) return snprintf(why, cap, "out of memory"), -1;
  if (gw_upstream_start(g)) return snprintf(why, cap, "out of memory"), -1;
  if (gw_shadows_start(g, why, cap)) return -1;
  if (gw_clients_start(g)) return snprintf(why, cap, "cannot start the client reaper"), -1;
  if (gw_policy_start(g, why, cap)) return -1;
  for (int i = 0; i < g->cfg.nproviders; i++) {
    const gw_provider *p = &g->cfg.providers[i];
    if (p->key_env && !p->api_key)
      fprintf(stderr, "lane-gateway: warning: %s is not set; calls to %s go without a key\n",
              p->key_env, p->name);
  }
  if (g->cfg.state_file) {
    lane_error err;
    lane_state_report rep;
    memset(&rep, 0, sizeof rep);
    rep.note = state_note;
    rep.note_ctx = g->cfg.state_file;
    FILE *f = fopen(g->cfg.state_file, "rb");
    /* A file of another policy (or a damaged one) must not stop the
     * gateway: it starts with no spend and overwrites the file at exit.
     * A file of an edited policy keeps the spend of every budget that
     * still means the same (lane_runtime_load_ex), and says which not. */
    if (f && (fclose(f), lane_runtime_load_ex(g->rt, g->cfg.state_file, &rep, &err)) != LANE_OK)
      fprintf(stderr, "lane-gateway: warning: %s: %s; budgets start at $0\n",
              g->cfg.state_file, err.message);
    else if (f)
      fprintf(stderr, "lane-gateway: %s: spend of %u budgets loaded (%llu keys), %u dropped\n",
              g->cfg.state_file, rep.budgets_kept, (unsigned long long)rep.keys_kept,
              rep.budgets_dropped);
  }
  if (open_redis(g, cfgfile, why, cap)) return -1;
  return open_log(g, cfgfile, why, cap);
}

static void stop(gw *g) {
  lane_error err;
  gw_shadows_stop(g);     /* shadow calls in flight end; they log and observe */
  gw_clients_stop(g);     /* the server is stopped: no connection is left */
  gw_poller_stop(g);
  gw_log_close(g->log);   /* every queued record written and synced */
  g->log = NULL;
  if (g->redis) {   /* a last push; what Redis never took is said */
    int64_t left = lane_redis_detach(g->redis);
    g->redis = NULL;
    if (left > 0)
      fprintf(stderr, "lane-gateway: redis: $%.9f of this gateway's charges never reached Redis\n",
              (double)left / 1e9);
  }
  if (g->rt && g->cfg.state_file && lane_runtime_save(g->rt, g->cfg.state_file, &err) != LANE_OK)
    fprintf(stderr, "lane-gateway: %s: %s\n", g->cfg.state_file, err.message);
  gw_policy_stop(g);
  gw_upstream_stop(g);
  gw_metrics_free(g->metrics);
  free_config(&g->cfg);
}

static void usage(void) {
  fprintf(stderr, "usage: lane-gateway -c CONFIG.json [--port N] [--exit-after SECONDS]\n");
}

/* Each client connection holds a descriptor, and each attempt upstream
 * another: the soft limit (often 1024) is raised as far as the hard one
 * allows, and a limits.connections it cannot carry is said at start. */
static void raise_fd_limit(const gw *g) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl)) return;
  rlim_t want = (rlim_t)g->cfg.max_connections * 2 + 256;
  if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < want)
    fprintf(stderr, "lane-gateway: warning: %llu open files allowed (ulimit -n), but "
            "limits.connections %ld needs about %llu; connections past it are refused\n",
            (unsigned long long)rl.rlim_cur, g->cfg.max_connections, (unsigned long long)want);
}

int main(int argc, char **argv) {
  lane_regex_install(lane_regex_pcre2());   /* matches(): liblane-re */
  const char *cfgfile = NULL;
  int port = -1;
  long exit_after = 0;
  for (int i = 1; i < argc; i++) {
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
      cfgfile = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--exit-after") && i + 1 < argc) exit_after = atol(argv[++i]);
    else return usage(), 2;
  }
  if (!cfgfile) return usage(), 2;

  /* Signals are taken by sigwait below; every thread inherits the mask. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGALRM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;

  gw g;
  memset(&g, 0, sizeof g);
  char why[512];
  if (start(&g, cfgfile, port, why, sizeof why)) {
    fprintf(stderr, "lane-gateway: %s\n", why);
    stop(&g);
    return 1;
  }
  raise_fd_limit(&g);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)g.cfg.port);
  if (inet_pton(AF_INET, g.cfg.host, &sa.sin_addr) != 1) {
    fprintf(stderr, "lane-gateway: listen: '%s' is not an IPv4 address\n", g.cfg.host);
    stop(&g);
    return 1;
  }
  /* limits.threads workers, each a server of its own on the one port
   * (SO_REUSEPORT: the kernel spreads connections) run by the thread that
   * also drives its requests' upstream transfers */
  int nd = (int)g.cfg.threads;
  struct MHD_Daemon **ds = calloc((size_t)nd, sizeof *ds);
  unsigned bound = (unsigned)g.cfg.port;
  for (int i = 0; ds && i < nd; i++) {
    sa.sin_port = htons((uint16_t)bound);
    ds[i] = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, (uint16_t)bound,
        gw_clients_accept, &g, handle, &g, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_NOTIFY_COMPLETED, completed, &g, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)g.cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)g.cfg.idle_timeout_s,
        MHD_OPTION_NOTIFY_CONNECTION, gw_clients_notify, &g, MHD_OPTION_URI_LOG_CALLBACK,
        gw_clients_first_line, &g, MHD_OPTION_END);
    if (!ds[i]) break;
    if (i == 0) {
      const union MHD_DaemonInfo *info = MHD_get_daemon_info(ds[0], MHD_DAEMON_INFO_BIND_PORT);
      if (info) bound = info->port;
    }
  }
  if (!ds || !ds[nd - 1]) {
    fprintf(stderr, "lane-gateway: cannot listen on %s:%d\n", g.cfg.host, g.cfg.port);
    for (int i = 0; ds && i < nd; i++)
      if (ds[i]) MHD_stop_daemon(ds[i]);
    free(ds);
    stop(&g);
    return 1;
  }
  if (gw_forward_start(&g, ds, nd)) {
    fprintf(stderr, "lane-gateway: cannot start its %d worker threads\n", nd);
    for (int i = 0; i < nd; i++)
      if (ds[i]) MHD_stop_daemon(ds[i]);
    free(ds);
    stop(&g);
    return 1;
  }
  free(ds);
  printf("lane-gateway: listening on http://%s:%u (policy %s, revision %s, route %s)\n",
         g.cfg.host, bound, g.cfg.policy, g.pol->revision, g.cfg.route);
  fflush(stdout);
  if (exit_after > 0) alarm((unsigned)exit_after);
  if (gw_poller_start(&g)) fprintf(stderr, "lane-gateway: cannot start the policy poller\n");
  int sig = 0;
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) gw_reload(&g, "SIGHUP");
  fprintf(stderr, "lane-gateway: %s, stopping\n", sig == SIGALRM ? "time is up" : "signal");
  gw_forward_stop(&g);   /* each worker ends what it holds and stops its server */
  stop(&g);
  curl_global_cleanup();
  return 0;
}
