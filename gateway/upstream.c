/*
 * upstream.c -- forwarding a request along its decision's candidates.
 *
 * Each attempt is one libcurl transfer driven by a private multi handle, so
 * the gateway can stop waiting exactly when it chooses: at the attempt's
 * timeout, at the request's deadline, or -- for a stream -- as soon as the
 * first byte of a successful answer is in. Until something is sent to the
 * client every failure (connection refused or reset, timeout, 429, 5xx,
 * malformed JSON) moves on to the next candidate; once a stream's first
 * byte has gone out, the gateway is committed to that provider and a
 * failure ends the client's stream with an error instead.
 *
 * Every attempt's outcome goes to lane_observe; every answer's cost, from
 * its usage, to lane_charge.
 *
 * Connections are kept. A transfer runs on a slot -- a multi handle and an
 * easy handle -- taken from the gateway's pool and given back when it
 * ends, so the next request finds the slot's connections (and HTTP/2
 * sessions) to its providers open. A multi handle's connection cache is
 * used by one thread at a time (libcurl does not support one cache across
 * concurrent threads); DNS answers and TLS sessions are shared by every
 * slot through one share handle.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include "gateway.h"

#define BODY_LIMIT (64u << 20)   /* largest upstream body kept */

/* A multi handle and its easy handle, with the connections they keep. */
struct gw_slot {
  CURLM          *multi;
  CURL           *easy;
  struct gw_slot *next;   /* in the idle list */
};

#define IDLE_SLOTS 256   /* idle slots kept; more are closed as they come back */

static void slot_close(gw_slot *s) {
  if (!s) return;
  if (s->multi) curl_multi_cleanup(s->multi);   /* closes its connections */
  if (s->easy) curl_easy_cleanup(s->easy);
  free(s);
}

/* An idle slot, the most recently used first (its connections are the
 * likeliest to be open still), or a new one; NULL when out of memory. */
static gw_slot *slot_take(gw *g) {
  pthread_mutex_lock(&g->slot_lock);
  gw_slot *s = g->idle;
  if (s) {
    g->idle = s->next;
    g->nidle--;
  }
  pthread_mutex_unlock(&g->slot_lock);
  if (s) return s;
  s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->multi = curl_multi_init();
  s->easy = curl_easy_init();
  if (!s->multi || !s->easy) return slot_close(s), NULL;
  curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, 16L);   /* per slot: a few providers */
  return s;
}

static void slot_put(gw *g, gw_slot *s) {
  curl_easy_reset(s->easy);   /* options go; connections, DNS and TLS sessions stay */
  pthread_mutex_lock(&g->slot_lock);
  int keep = g->nidle < IDLE_SLOTS;
  if (keep) {
    s->next = g->idle;
    g->idle = s;
    g->nidle++;
  }
  pthread_mutex_unlock(&g->slot_lock);
  if (!keep) slot_close(s);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access how, void *ud) {
  gw *g = ud;
  (void)h, (void)how;
  pthread_mutex_lock(&g->share_locks[(unsigned)data % GW_SHARE_LOCKS]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ud) {
  gw *g = ud;
  (void)h;
  pthread_mutex_unlock(&g->share_locks[(unsigned)data % GW_SHARE_LOCKS]);
}

int gw_upstream_start(gw *g) {
  pthread_mutex_init(&g->slot_lock, NULL);
  for (int i = 0; i < GW_SHARE_LOCKS; i++) pthread_mutex_init(&g->share_locks[i], NULL);
  g->share = curl_share_init();
  if (!g->share) return -1;
  curl_share_setopt(g->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(g->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(g->share, CURLSHOPT_USERDATA, g);
  curl_share_setopt(g->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(g->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  return 0;
}

void gw_upstream_stop(gw *g) {
  for (gw_slot *s = g->idle, *n; s; s = n) {
    n = s->next;
    slot_close(s);
  }
  g->idle = NULL;
  g->nidle = 0;
  if (g->share) curl_share_cleanup(g->share);
  g->share = NULL;
}

typedef struct xfer {
  gw      *g;        /* the gateway: its slot pool */
  gw_slot *slot;     /* the handles, taken from the pool */
  const gw_provider *prov; /* where it goes */
  CURL   *easy;      /* the transfer: slot->easy */
  CURLM  *multi;     /* drives it: slot->multi */
  struct curl_slist *hdrs; /* request headers (one holds the key) */
  char   *upbody;    /* request body sent */
  gw_buf  raw;       /* response body, unless streamed into sse */
  gw_sse  sse;       /* streamed successful body, passed or translated */
  int     streaming; /* feed 2xx bodies to sse */
  size_t  nbody;     /* body bytes received */
  int     done;      /* the transfer ended */
  CURLcode result;   /* how, once done */
  int     too_big;   /* raw exceeded BODY_LIMIT */
  uint64_t sent_ns;  /* when the first curl_multi_perform returned: the request is out */
  long    retry_after_ms; /* the answer's retry-after-ms or retry-after; -1 none */
  const atomic_int *abort; /* set: stop waiting (a shadow at the gateway's stop) */
  char    ctype[128];/* response Content-Type */
  uint64_t t0;       /* when the attempt started */
} xfer;

/* Outcomes of one attempt (RETRY: of one call, which the attempt makes
 * again). */
enum { SERVED, FAILED, SKIPPED, RETRY };

static long http_status(const xfer *x) {
  long s = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &s);
  return s;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  x->nbody += n;
  if (x->streaming && http_status(x) / 100 == 2) {
    gw_sse_feed(&x->sse, p, n);
  } else {
    if (x->raw.n + n > BODY_LIMIT) return x->too_big = 1, 0;
    if (gw_buf_add(&x->raw, p, n)) return 0;
  }
  return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  if (n > 15 && !strncasecmp(p, "retry-after-ms:", 15)) {
    char *end;
    double v = strtod(p + 15, &end);
    if (end != p + 15 && v >= 0 && v < 864e5) x->retry_after_ms = (long)v;
  } else if (n > 12 && !strncasecmp(p, "retry-after:", 12) && x->retry_after_ms < 0) {
    char *end;
    long v = strtol(p + 12, &end, 10);   /* seconds; an HTTP date is not read: backoff */
    if (end != p + 12 && v >= 0 && v < 86400) x->retry_after_ms = v * 1000;
  }
  if (n > 13 && !strncasecmp(p, "content-type:", 13)) {
    const char *v = p + 13;
    while (*v == ' ') v++;
    size_t len = (size_t)(p + n - v);
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n')) len--;
    if (len >= sizeof x->ctype) len = sizeof x->ctype - 1;
    memcpy(x->ctype, v, len);
    x->ctype[len] = 0;
  }
  return n;
}

static void xfer_free(xfer *x) {
  if (!x) return;
  if (x->slot) {
    long made = 0;   /* connections this transfer had to open */
    if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &made) == CURLE_OK && made > 0) {
      char labels[160] = "";
      gw_label(labels, sizeof labels, "provider", x->prov->name);
      gw_metrics_add(x->g->metrics, "lane_gateway_upstream_connections_total", labels,
                     (double)made);
    }
    /* a transfer stopped midway (a timeout, a client gone) closes its
     * connection here; a finished one leaves it in the slot's cache */
    curl_multi_remove_handle(x->multi, x->easy);
    slot_put(x->g, x->slot);
  }
  curl_slist_free_all(x->hdrs);
  free(x->upbody);
  gw_buf_free(&x->raw);
  gw_sse_free(&x->sse);
  free(x);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value) {
  char line[1024];
  snprintf(line, sizeof line, "%s: %s", name, value);
  struct curl_slist *n = curl_slist_append(l, line);
  memset(line, 0, sizeof line);  /* it may hold a key */
  return n ? n : l;
}

/* Starts a transfer of body (taken) to provider p. NULL when out of memory. */
static xfer *xfer_start(const gw_call *c, const gw_provider *p, char *body) {
  xfer *x = calloc(1, sizeof *x);
  if (!x) return free(body), NULL;
  x->upbody = body;
  x->retry_after_ms = -1;
  x->streaming = c->stream;
  x->g = c->g;
  x->prov = p;
  gw_sse_init(&x->sse, p->format, c->format, c->want_usage);
  x->slot = slot_take(c->g);
  if (!x->slot) return xfer_free(x), NULL;
  x->easy = x->slot->easy;
  x->multi = x->slot->multi;
  char url[1024];
  snprintf(url, sizeof url, "%s%s", p->base_url,
           p->format == GW_OPENAI ? "/chat/completions" : "/messages");
  struct curl_slist *h = NULL;
  h = add_header(h, "Content-Type", "application/json");
  h = add_header(h, "Accept", c->stream ? "text/event-stream" : "application/json");
  h = curl_slist_append(h, "Expect:");  /* no 100-continue round trip */
  if (p->format == GW_OPENAI && p->api_key) {
    char bearer[900];
    snprintf(bearer, sizeof bearer, "Bearer %s", p->api_key);
    h = add_header(h, "Authorization", bearer);
    memset(bearer, 0, sizeof bearer);
  } else if (p->format == GW_ANTHROPIC) {
    if (p->api_key) h = add_header(h, "x-api-key", p->api_key);
    h = add_header(h, "anthropic-version",
                   c->format == GW_ANTHROPIC && c->anthropic_version ? c->anthropic_version
                                                                     : "2023-06-01");
    if (c->format == GW_ANTHROPIC && c->anthropic_beta)
      h = add_header(h, "anthropic-beta", c->anthropic_beta);
  }
  x->hdrs = h;
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->upbody);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(x->upbody));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->g->cfg.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "lane-gateway/" LANE_VERSION_STRING);
  curl_easy_setopt(e, CURLOPT_SHARE, c->g->share);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);  /* h2 over TLS when offered */
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  x->t0 = gw_now_ms();
  curl_multi_add_handle(x->multi, e);
  return x;
}

/* What pump waits for. */
enum {
  UNTIL_DONE,    /* the transfer ends */
  UNTIL_FIRST,   /* ends, or a 2xx answer's first body byte is in */
  UNTIL_OUTPUT   /* ends, or there are bytes for the client */
};

/* Drives x until `what` or the clock passes `until`: 0, or 1 on timeout.
 * Bounded: every turn waits at most 200 ms and the clock only advances. */
static int pump(xfer *x, uint64_t until, int what) {
  for (;;) {
    int running = 0, queued = 0;
    curl_multi_perform(x->multi, &running);
    if (!x->sent_ns) x->sent_ns = gw_now_ns();
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(x->multi, &queued)))
      if (msg->msg == CURLMSG_DONE) x->done = 1, x->result = msg->data.result;
    if (x->done) return 0;
    if (what == UNTIL_FIRST && x->nbody > 0 && http_status(x) / 100 == 2) return 0;
    if (what == UNTIL_OUTPUT && x->sse.out.n > x->sse.out_pos) return 0;
    uint64_t now = gw_now_ms();
    if (now >= until || (x->abort && atomic_load(x->abort))) return 1;
    uint64_t wait = until - now;
    curl_multi_poll(x->multi, NULL, 0, wait > 200 ? 200 : (int)wait, NULL);
  }
}

double gw_usage_cost(const gw_policy *p, int model, long in, long cached, long out) {
  lane_request r;
  lane_request_init(&r, p->prog);
  lane_set_int(&r, p->f_input, in);
  lane_set_int(&r, p->f_output, out);
  if (p->f_cached >= 0) lane_set_int(&r, p->f_cached, cached);
  return lane_cost(p->prog, &r, model);
}

static void note(gw_call *c, int model, const char *kind, const char *what) {
  size_t n = strlen(c->log);
  snprintf(c->log + n, sizeof c->log - n, "%s%s: %s", n ? "; " : "",
           lane_model_name(c->pol->prog, model), what);
  n = strlen(c->attempts);
  snprintf(c->attempts + n, sizeof c->attempts - n, "%s%s=%s", n ? "," : "",
           lane_model_name(c->pol->prog, model), kind);
}

static void count(const gw_call *c, const char *family, int model, const char *k1,
                  const char *v1) {
  char labels[240] = "";
  gw_label(labels, sizeof labels, "provider", lane_model_provider(c->pol->prog, model));
  gw_label(labels, sizeof labels, "model", lane_model_name(c->pol->prog, model));
  if (k1) gw_label(labels, sizeof labels, k1, v1);
  gw_metrics_add(c->g->metrics, family, labels, 1);
}

/* Records a failed attempt: the runtime's view, a metric, the log. */
static int failed(gw_call *c, int model, const xfer *x, int call, const char *kind,
                  const char *what) {
  lane_observe(c->pol->rt, model, (double)(gw_now_ms() - x->t0), call);
  gw_log_outcome(c, model, (double)(gw_now_ms() - x->t0), (int)http_status(x), kind, 0, 0, 0, 0);
  count(c, "lane_gateway_provider_errors_total", model, "kind", kind);
  note(c, model, kind, what);
  return FAILED;
}

/* Books the answer of model: runtime, budgets, metrics. */
static void settle(gw_call *c, int model, const xfer *x, int have, long in, long cached,
                   long out) {
  gw *g = c->g;
  c->served = model;
  c->cost = have ? gw_usage_cost(c->pol, model, in, cached, out)
                  : lane_route_cost(c->pol->prog, c->d.route, c->req, model);
  c->cost_basis = have ? "usage" : "expected";
  lane_observe(c->pol->rt, model, (double)(gw_now_ms() - x->t0), LANE_CALL_OK);
  lane_charge(c->pol->rt, c->req, c->cost);
  gw_log_outcome(c, model, (double)(gw_now_ms() - x->t0), (int)http_status(x), NULL, 1,
                 have ? in : 0, have ? out : 0, c->cost);
  char labels[240] = "";
  gw_label(labels, sizeof labels, "provider", lane_model_provider(c->pol->prog, model));
  gw_label(labels, sizeof labels, "model", lane_model_name(c->pol->prog, model));
  gw_metrics_add(g->metrics, "lane_gateway_spend_dollars_total", labels, c->cost);
}

static void lane_headers(struct MHD_Response *r, const gw_call *c) {
  const lane_program *p = c->pol->prog;
  char v[64];
  MHD_add_response_header(r, "x-lane-route", lane_route_name(p, c->d.route));
  MHD_add_response_header(r, "x-lane-revision", c->pol->revision);
  if (c->id[0]) MHD_add_response_header(r, "x-lane-decision-id", c->id);
  snprintf(v, sizeof v, "%d", c->d.rule);
  MHD_add_response_header(r, "x-lane-rule", v);
  snprintf(v, sizeof v, "%d", c->tried);
  MHD_add_response_header(r, "x-lane-fallbacks", v);
  if (c->attempts[0]) MHD_add_response_header(r, "x-lane-attempts", c->attempts);
  if (c->served >= 0) {
    MHD_add_response_header(r, "x-lane-model", lane_model_name(p, c->served));
    snprintf(v, sizeof v, "%.9f", c->cost);
    MHD_add_response_header(r, "x-lane-cost", v);
    MHD_add_response_header(r, "x-lane-cost-basis", c->cost_basis);
  }
}

static struct MHD_Response *text_response(const gw_call *c, const char *body, size_t n,
                                          const char *ctype) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(n, (void *)body, MHD_RESPMEM_MUST_COPY);
  if (!r) return NULL;
  MHD_add_response_header(r, "Content-Type", ctype);
  lane_headers(r, c);
  return r;
}

/* ---- streams after their first byte ---- */

typedef struct stream {
  xfer    *x;        /* the committed transfer */
  gw_call *c;        /* its request (one reference held) */
  int      model;    /* answering model */
  int      ended;    /* bookkeeping done */
} stream;

static void stream_end(stream *s, int ok) {
  if (s->ended) return;
  s->ended = 1;
  xfer *x = s->x;
  if (ok) {
    settle(s->c, s->model, x, x->sse.have_usage, x->sse.in, x->sse.cached, x->sse.outtok);
    count(s->c, "lane_gateway_served_total", s->model, "mode", "stream");
  } else {
    failed(s->c, s->model, x, LANE_CALL_SERVER_ERROR, "stream_cut", "stream broke off");
    gw_log_outcome(s->c, -1, (double)(gw_now_ms() - x->t0), 0, "stream_cut", 1, 0, 0, 0);
    gw_metrics_add(s->c->g->metrics, "lane_gateway_stream_errors_total", "", 1);
    fprintf(stderr, "lane-gateway: stream from %s broke off after %zu bytes\n",
            lane_model_name(s->c->pol->prog, s->model), x->nbody);
  }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  stream *s = cls;
  xfer *x = s->x;
  (void)pos;
  for (;;) {
    size_t avail = x->sse.out.n - x->sse.out_pos;
    if (avail) {
      size_t n = avail < max ? avail : max;
      memcpy(buf, x->sse.out.p + x->sse.out_pos, n);
      x->sse.out_pos += n;
      return (ssize_t)n;
    }
    if (s->ended) return x->result == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM
                                               : MHD_CONTENT_READER_END_WITH_ERROR;
    if (x->done) {
      int ok = x->result == CURLE_OK;
      if (ok) gw_sse_end(&x->sse);
      stream_end(s, ok);
      continue;
    }
    if (pump(x, gw_now_ms() + (uint64_t)s->c->g->cfg.stream_idle_ms, UNTIL_OUTPUT)) {
      x->done = 1, x->result = CURLE_OPERATION_TIMEDOUT;  /* idle too long */
    }
  }
}

static void stream_free(void *cls) {
  stream *s = cls;
  xfer_free(s->x);   /* a client that went away just stops the transfer */
  gw_call_release(s->c);
  free(s);
}

static struct MHD_Response *stream_response(gw_call *c, int model, xfer *x) {
  stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->x = x, s->c = c, s->model = model;
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, stream_free);
  if (!r) return free(s), NULL;
  atomic_fetch_add(&c->refs, 1);
  c->served = model;
  c->cost = lane_route_cost(c->pol->prog, c->d.route, c->req, model);  /* usage comes last */
  c->cost_basis = "expected";
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  lane_headers(r, c);
  return r;
}

/* ---- one attempt ---- */

/* Answers from a finished transfer of a 2xx non-streaming response. */
static int answered(gw_call *c, int model, const gw_provider *p, xfer *x,
                    struct MHD_Response **out) {
  json_t *j = json_loadb(x->raw.p ? x->raw.p : "", x->raw.n, JSON_ALLOW_NUL, NULL);
  const char *why = "malformed JSON answer";
  if (!j || gw_answer_shape(j, p->format, &why)) {
    /* a 200 that is not a chat answer ({"hello": "world"}, a proxy's page)
     * is the provider's failure, not the client's answer */
    json_decref(j);
    return failed(c, model, x, LANE_CALL_SERVER_ERROR, "malformed", why);
  }
  json_t *t = p->format == c->format ? NULL : gw_translate_response(j, p->format, c->format);
  if (p->format != c->format && !t) {
    json_decref(j);
    return failed(c, model, x, LANE_CALL_SERVER_ERROR, "malformed", "an answer not translated");
  }
  long in = 0, cached = 0, tok_out = 0;
  int have = gw_usage(j, p->format, &in, &cached, &tok_out) == 0;
  settle(c, model, x, have, in, cached, tok_out);
  count(c, "lane_gateway_served_total", model, "mode", "whole");
  if (p->format == c->format) {
    *out = text_response(c, x->raw.p, x->raw.n, "application/json");
  } else {
    char *s = json_dumps(t, JSON_COMPACT);
    *out = s ? text_response(c, s, strlen(s), "application/json") : NULL;
    free(s);
  }
  json_decref(t);
  json_decref(j);
  return SERVED;
}

/* A 4xx other than 429 is the request's fault: passed to the client. */
static int refused(gw_call *c, int model, const gw_provider *p, xfer *x, long st,
                   struct MHD_Response **out, unsigned *status) {
  lane_observe(c->pol->rt, model, (double)(gw_now_ms() - x->t0), LANE_CALL_CLIENT_ERROR);
  count(c, "lane_gateway_provider_errors_total", model, "kind", "client_error");
  gw_log_outcome(c, model, (double)(gw_now_ms() - x->t0), (int)st, "client_error", 1, 0, 0, 0);
  *status = (unsigned)st;
  if (p->format == c->format) {
    *out = text_response(c, x->raw.p ? x->raw.p : "", x->raw.n,
                         x->ctype[0] ? x->ctype : "application/json");
    return SERVED;
  }
  json_t *j = json_loadb(x->raw.p ? x->raw.p : "", x->raw.n, JSON_ALLOW_NUL, NULL);
  const char *msg = gw_error_message(j, p->format);
  char *body = gw_error_body(c->format, (unsigned)st, "upstream_error",
                             msg ? msg : "the provider refused the request");
  *out = body ? text_response(c, body, strlen(body), "application/json") : NULL;
  free(body);
  json_decref(j);
  return SERVED;
}

static int call(gw_call *c, int model, const gw_provider *p, char *text, uint64_t until,
                struct MHD_Response **out, unsigned *status, int may_retry);

/* The body to send model's provider p, in *text (malloc'd). The provider
 * speaks the client's format: the body as it came, its model replaced in
 * the bytes; else (or when the bytes cannot tell, or whole is set and the
 * client asked for a stream) parsed and rewritten, without stream when
 * whole. -1 (with *why when translate.c said) if the body cannot be
 * translated; 0, with *text NULL when memory ran out. */
static int upstream_body(gw_call *c, const gw_provider *p, int model, int whole, char **text,
                         const char **why) {
  const char *id = lane_model_id(c->pol->prog, model);
  size_t n;
  *text = p->format == c->format && !(whole && c->stream)
              ? gw_splice_model(c->raw, c->nraw, id, &n) : NULL;
  if (*text) return 0;
  json_t *body = gw_call_body(c);
  json_t *b = body ? gw_translate_request(body, c->format, p->format, id, p,
                                          c->g->cfg.default_max_tokens, why) : NULL;
  if (!b) return body ? -1 : 0;
  if (whole) {
    json_object_del(b, "stream");
    json_object_del(b, "stream_options");
  }
  *text = json_dumps(b, JSON_COMPACT);
  json_decref(b);
  return 0;
}

/* One attempt of model; left: the candidates from this one to the end
 * of the chain that have a provider (this one included). */
static int attempt(gw_call *c, int model, int left, struct MHD_Response **out,
                   unsigned *status) {
  gw *g = c->g;
  int pi = c->pol->model_provider[model];
  if (pi < 0) {
    count(c, "lane_gateway_skipped_total", model, "reason", "no_provider");
    note(c, model, "no_provider", "no provider configured");
    return SKIPPED;
  }
  const gw_provider *p = &g->cfg.providers[pi];
  const char *why = NULL;
  char *text = NULL;
  if (upstream_body(c, p, model, 0, &text, &why) < 0) {
    count(c, "lane_gateway_skipped_total", model, "reason", "untranslatable");
    char what[160];
    snprintf(what, sizeof what, "not translated (%s)", why ? why : "?");
    note(c, model, "untranslatable", what);
    return SKIPPED;
  }
  if (!text) return note(c, model, "no_memory", "out of memory"), SKIPPED;
  const gw_retry *rp = &p->retry;
  c->retries_of_model = 0;
  uint64_t t0 = gw_now_ms(), until = c->deadline;
  if (g->cfg.attempt_timeout_ms > 0) {
    if (t0 + (uint64_t)g->cfg.attempt_timeout_ms < until)
      until = t0 + (uint64_t)g->cfg.attempt_timeout_ms;
  } else if (left > 1 && until > t0) {
    /* no attempt_timeout_ms: the time left is shared equally by this
     * candidate and those after it, so a hanging one leaves the others
     * theirs (the last gets all that is left) */
    until = t0 + (until - t0) / (uint64_t)left;
  }
  /* Calls of this model: the first, then up to retry.attempts more on a
   * retryable status, each after its backoff, all within `until`. */
  for (int tries = 0;; tries++) {
    char *copy = tries < rp->attempts ? strdup(text) : NULL;   /* for the next try */
    int r = call(c, model, p, text, until, out, status, tries < rp->attempts && copy);
    text = copy;
    if (r != RETRY) {
      free(text);
      return r;
    }
  }
}

/* The backoff before retry number `tries` (0: the first retry): the
 * provider's retry-after-ms or retry-after if it gave one, else
 * backoff_ms x 2^tries capped at max_backoff_ms, with equal jitter (half
 * fixed, half random). */
static uint64_t backoff_ms(const gw_retry *rp, const xfer *x, int tries) {
  if (x->retry_after_ms >= 0) return (uint64_t)x->retry_after_ms;
  uint64_t d = (uint64_t)rp->backoff_ms;
  for (int i = 0; i < tries && d < (uint64_t)rp->max_backoff_ms; i++) d *= 2;
  if (d > (uint64_t)rp->max_backoff_ms) d = (uint64_t)rp->max_backoff_ms;
  uint64_t z = gw_now_ns() ^ (uint64_t)(uintptr_t)x;   /* splitmix64 of the clock */
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return d / 2 + (d ? z % (d / 2 + 1) : 0);
}

static int retryable(const gw_retry *rp, long st) {
  for (int i = 0; i < rp->non; i++)
    if (rp->on[i] == st) return 1;
  return 0;
}

/* One call of model with body text (taken). RETRY when it failed with a
 * status retry.on names, may_retry is set, and its backoff ends before
 * `until` (slept already); else SERVED, FAILED or SKIPPED. */
static int call(gw_call *c, int model, const gw_provider *p, char *text, uint64_t until,
                struct MHD_Response **out, unsigned *status, int may_retry) {
  xfer *x = xfer_start(c, p, text);
  if (!x) return note(c, model, "no_memory", "out of memory"), SKIPPED;
  count(c, "lane_gateway_attempts_total", model, NULL, NULL);
  c->calls++;
  int late = pump(x, until, c->stream ? UNTIL_FIRST : UNTIL_DONE);
  c->t_up += gw_now_ns() - x->sent_ns;   /* the provider's time, not the gateway's */
  long st = http_status(x);
  int r;
  char what[96];
  if (late) {
    r = failed(c, model, x, LANE_CALL_TIMEOUT, "timeout", "timed out");
  } else if (x->done && x->result != CURLE_OK) {
    int conn = x->result == CURLE_COULDNT_CONNECT;
    int slow = x->result == CURLE_OPERATION_TIMEDOUT;
    snprintf(what, sizeof what, "%s", curl_easy_strerror(x->result));
    r = failed(c, model, x, slow ? LANE_CALL_TIMEOUT : LANE_CALL_SERVER_ERROR,
               conn ? "refused" : slow ? "timeout" : "connection", what);
  } else if (st == 429 || st >= 500) {
    snprintf(what, sizeof what, "HTTP %ld", st);
    r = failed(c, model, x, st == 429 ? LANE_CALL_RATE_LIMITED : LANE_CALL_SERVER_ERROR,
               st == 429 ? "http_429" : "http_5xx", what);
    if (may_retry && retryable(&p->retry, st)) {
      uint64_t wait = backoff_ms(&p->retry, x, c->retries_of_model);
      int honoured = x->retry_after_ms < 0 || x->retry_after_ms <= p->retry.max_retry_after_ms;
      if (honoured && gw_now_ms() + wait < until) {
        c->retries_of_model++;
        count(c, "lane_gateway_retries_total", model, "status", what + 5);
        xfer_free(x);
        struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR) {}
        return RETRY;
      }
    }
  } else if (st / 100 == 2 && c->stream && !x->done) {
    *status = (unsigned)st;
    *out = stream_response(c, model, x);
    if (*out) return SERVED;   /* the stream owns x now */
    r = SKIPPED;
  } else if (st / 100 == 2 && c->stream) {
    gw_sse_end(&x->sse);       /* the whole stream came at once */
    settle(c, model, x, x->sse.have_usage, x->sse.in, x->sse.cached, x->sse.outtok);
    count(c, "lane_gateway_served_total", model, "mode", "stream");
    *status = (unsigned)st;
    *out = text_response(c, x->sse.out.p ? x->sse.out.p : "", x->sse.out.n, "text/event-stream");
    r = SERVED;
  } else if (st / 100 == 2) {
    r = answered(c, model, p, x, out);
    *status = (unsigned)st;
  } else if (st >= 400) {
    r = refused(c, model, p, x, st, out, status);
  } else {
    snprintf(what, sizeof what, "unexpected HTTP %ld", st);
    r = failed(c, model, x, LANE_CALL_SERVER_ERROR, "malformed", what);
  }
  xfer_free(x);
  return r;
}

struct MHD_Response *gw_forward(gw_call *c, unsigned *status) {
  gw *g = c->g;
  int attempted = 0, untranslatable = 0, late = 0;
  c->served = -1;
  for (int i = 0; i < c->d.ncandidates; i++) {
    int model = c->d.candidates[i];
    if (gw_now_ms() >= c->deadline) {
      late = 1;
      break;
    }
    if (i > 0) {   /* a fallback: moving on from the candidate before */
      char labels[240] = "";
      gw_label(labels, sizeof labels, "route", lane_route_name(c->pol->prog, c->d.route));
      gw_label(labels, sizeof labels, "from", lane_model_name(c->pol->prog, c->d.candidates[i - 1]));
      gw_metrics_add(g->metrics, "lane_gateway_fallbacks_total", labels, 1);
    }
    struct MHD_Response *r = NULL;
    int before = (int)strlen(c->attempts);
    int left = 0;
    for (int k = i; k < c->d.ncandidates; k++) left += c->pol->model_provider[c->d.candidates[k]] >= 0;
    int how = attempt(c, model, left, &r, status);
    if (how == SERVED) return r;
    attempted += how == FAILED;
    untranslatable += how == SKIPPED && strstr(c->attempts + before, "=untranslatable") != NULL;
    c->tried++;
  }
  late = late || gw_now_ms() >= c->deadline;
  const char *code = late ? "lane_deadline" : !attempted && untranslatable ? "lane_untranslatable"
                                                                           : "lane_no_candidate";
  *status = late ? 504 : !attempted && untranslatable ? 400 : 502;
  char msg[900];
  snprintf(msg, sizeof msg, "lane: no candidate could serve this request (route %s, rule %d%s): %s",
           lane_route_name(c->pol->prog, c->d.route), c->d.rule, late ? ", deadline passed" : "",
           c->log[0] ? c->log : "nothing tried");
  char labels[240] = "";
  gw_label(labels, sizeof labels, "route", lane_route_name(c->pol->prog, c->d.route));
  gw_label(labels, sizeof labels, "reason", code + 5);
  gw_metrics_add(g->metrics, "lane_gateway_unserved_total", labels, 1);
  gw_log_outcome(c, -1, 0, (int)*status, code + 5, 1, 0, 0, 0);
  char *body = gw_error_body(c->format, *status, code, msg);
  struct MHD_Response *r = body ? text_response(c, body, strlen(body), "application/json") : NULL;
  /* the chain is walked: an SDK's own retries would walk it again (the
   * OpenAI SDK retries a 502 twice by default: 9 upstream calls for one) */
  if (r) MHD_add_response_header(r, "x-should-retry", "false");
  free(body);
  return r;
}

/* ---- shadows (shadow.c queues them; a worker thread calls here) ---- */

static void shadow_count(const gw_call *c, const char *family, int model, const char *result,
                         double v) {
  char labels[240] = "";
  gw_label(labels, sizeof labels, "provider", lane_model_provider(c->pol->prog, model));
  gw_label(labels, sizeof labels, "model", lane_model_name(c->pol->prog, model));
  if (result) gw_label(labels, sizeof labels, "result", result);
  gw_metrics_add(c->g->metrics, family, labels, v);
}

void gw_shadow_call(gw_call *c, int model) {
  gw *g = c->g;
  int pi = c->pol->model_provider[model];
  if (pi < 0) { gw_shadows_dropped(g, "no_provider", 1); return; }
  const gw_provider *p = &g->cfg.providers[pi];
  const char *why = NULL;
  char *text = NULL;
  /* a whole answer is asked for, whatever the client asked */
  if (upstream_body(c, p, model, 1, &text, &why) < 0)
    { gw_shadows_dropped(g, "untranslatable", 1); return; }
  if (!text) { gw_shadows_dropped(g, "no_memory", 1); return; }
  c->stream = 0;   /* xfer_start: a whole answer */
  xfer *x = xfer_start(c, p, text);
  if (!x) { gw_shadows_dropped(g, "no_memory", 1); return; }
  x->abort = &g->shadows_stopping;   /* the gateway's stop ends the wait within a poll */
  int late = pump(x, gw_now_ms() + (uint64_t)g->cfg.shadow_timeout_ms, UNTIL_DONE);
  if (late && atomic_load(&g->shadows_stopping)) {   /* cut short by the stop: no verdict */
    gw_shadows_dropped(g, "stopping", 1);
    xfer_free(x);
    return;
  }
  double ms = (double)(gw_now_ms() - x->t0);
  long st = http_status(x), in = 0, cached = 0, out = 0;
  const char *kind = NULL;
  int call = LANE_CALL_OK;
  double cost = 0;
  if (late) {
    kind = "timeout", call = LANE_CALL_TIMEOUT;
  } else if (x->result != CURLE_OK) {
    int slow = x->result == CURLE_OPERATION_TIMEDOUT;
    kind = x->result == CURLE_COULDNT_CONNECT ? "refused" : slow ? "timeout" : "connection";
    call = slow ? LANE_CALL_TIMEOUT : LANE_CALL_SERVER_ERROR;
  } else if (st == 429 || st >= 500) {
    kind = st == 429 ? "http_429" : "http_5xx";
    call = st == 429 ? LANE_CALL_RATE_LIMITED : LANE_CALL_SERVER_ERROR;
  } else if (st / 100 == 2) {
    json_t *j = json_loadb(x->raw.p ? x->raw.p : "", x->raw.n, JSON_ALLOW_NUL, NULL);
    const char *bad;
    if (!j || gw_answer_shape(j, p->format, &bad)) {
      kind = "malformed", call = LANE_CALL_SERVER_ERROR;
    } else if (gw_usage(j, p->format, &in, &cached, &out) == 0) {
      cost = gw_usage_cost(c->pol, model, in, cached, out);
    }
    json_decref(j);
  } else if (st >= 400) {
    kind = "client_error", call = LANE_CALL_CLIENT_ERROR;
  } else {
    kind = "malformed", call = LANE_CALL_SERVER_ERROR;
  }
  lane_observe(c->pol->rt, model, ms, call);
  shadow_count(c, "lane_gateway_shadows_total", model, kind ? kind : "ok", 1);
  if (!kind) {
    shadow_count(c, "lane_gateway_shadow_seconds_total", model, NULL, ms / 1000.0);
    shadow_count(c, "lane_gateway_shadow_spend_dollars_total", model, NULL, cost);
  }
  gw_log_shadow(c, model, ms, (int)st, kind, in, out, cost);
  xfer_free(x);
}
