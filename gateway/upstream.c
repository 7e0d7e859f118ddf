/*
 * upstream.c -- forwarding a request along its decision's candidates.
 *
 * The gateway runs limits.threads workers. A worker is one thread that
 * runs an HTTP server of its own (libmicrohttpd, driven from outside) and
 * a libcurl multi handle of its own -- the forwarder -- for the upstream
 * transfers of the requests that server reads. The server's handler
 * decides a request, suspends the client's connection and hands the call
 * over (gw_forward); once the server's turn is over the forwarder walks
 * the call's chain -- an attempt per candidate, retries after their
 * backoff, the attempt's timeout, the request's deadline -- sets the
 * answer and resumes the connection, which queues it on the server's next
 * turn. No thread waits on a provider, so a thousand requests in flight
 * cost a thousand transfers, not a thousand threads; and everything a
 * request touches here is its worker's own, so nothing below is locked but
 * the shadows' slot pool and the share handle.
 *
 * Until something is sent to the client every failure (connection refused
 * or reset, timeout, 429, 5xx, malformed JSON, a 200 that is not a chat
 * answer) moves on to the next candidate; once a stream's first byte is
 * in, the gateway is committed to that provider and a failure ends the
 * client's stream with an error instead. A committed stream goes on in
 * the forwarder: its bytes are put where the connection reads them, and a
 * connection with nothing to read is suspended until they come.
 *
 * Every attempt's outcome goes to lane_observe; every answer's cost, from
 * its usage, to lane_charge.
 *
 * Connections are kept: a worker's multi handle keeps one cache of
 * connections (and HTTP/2 sessions) for all its transfers. Shadow calls
 * run on worker threads of their own (shadow.c), each transfer on a slot
 * -- a multi handle and an easy handle -- taken from a pool and given back
 * with its connections open. DNS answers and TLS sessions are shared by
 * all through one share handle.
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

static void fwd_free(gw *g);

void gw_upstream_stop(gw *g) {
  fwd_free(g);
  for (gw_slot *s = g->idle, *n; s; s = n) {
    n = s->next;
    slot_close(s);
  }
  g->idle = NULL;
  g->nidle = 0;
  if (g->share) curl_share_cleanup(g->share);
  g->share = NULL;
}

typedef struct stream stream;
typedef struct gw_fwd gw_fwd;

typedef struct xfer {
  gw      *g;        /* the gateway */
  gw_slot *slot;     /* a shadow's handles, from the pool; NULL: the forwarder's */
  const gw_provider *prov; /* where it goes */
  CURL   *easy;      /* the transfer (NULL once detached) */
  CURLM  *multi;     /* drives it: the slot's, or the forwarder's */
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
  /* the forwarder's transfers */
  gw_fwd  *F;        /* the worker driving it */
  gw_call *c;        /* the call it is for */
  stream  *s;        /* once a stream is committed to: its reader */
  struct xfer *prev, *next;  /* in the forwarder's list of transfers in flight */
  struct xfer *ready_next;   /* in its list of streams whose first bytes are in */
  int      ready;
  uint64_t until;    /* gw_now_ms it times out at (a stream: since its last bytes) */
} xfer;

/* A worker: one thread running an HTTP server (its share of the client
 * connections) and a multi handle (one cache of kept connections and
 * HTTP/2 sessions for all its transfers), and the calls it drives.
 * Everything here is the thread's own but `stopping`. */
struct gw_fwd {
  gw             *g;
  struct MHD_Daemon *d;        /* its server: external epoll, the shared port */
  CURLM          *multi;
  pthread_t       thread;
  int             running;
  atomic_int      stopping;    /* 1: answer what is held, end the thread */
  gw_call        *inbox, *inbox_tail; /* calls handed over during MHD_run */
  stream         *cancels;     /* streams whose client is gone */
  int             resumed;     /* a connection was resumed: run the server again */
  xfer           *active;      /* transfers in flight, the newest first */
  xfer           *ready;       /* streams whose first bytes came in the last perform */
  gw_call        *waiting;     /* calls in a retry's backoff */
  uint64_t        next_due;    /* no until or due is earlier (it may be early) */
  CURL           *easies[256]; /* easy handles kept for the next transfers */
  int             neasy;
};

/* Outcomes of one attempt (RETRY: of one call, which the attempt makes
 * again; STARTED: a call is in flight). */
enum { SERVED, FAILED, SKIPPED, RETRY, STARTED };

static long http_status(const xfer *x) {
  long s = 0;
  curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &s);
  return s;
}

static void stream_feed(xfer *x, const char *p, size_t n);

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud) {
  xfer *x = ud;
  size_t n = size * nmemb;
  x->nbody += n;
  if (x->streaming && http_status(x) / 100 == 2) {
    if (x->s) {
      stream_feed(x, p, n);
      return n;
    }
    gw_sse_feed(&x->sse, p, n);
    if (x->c && !x->ready) {   /* the forwarder commits to it after this perform */
      gw_fwd *F = x->F;
      x->ready = 1;
      x->ready_next = F->ready;
      F->ready = x;
    }
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

/* The earliest moment the forwarder must look at its clocks. */
static void due_at(gw_fwd *F, uint64_t t) {
  if (t < F->next_due) F->next_due = t;
}

/* Ends x's transfer: counts the connections it opened, takes it off its
 * multi handle (a transfer stopped midway closes its connection there; a
 * finished one leaves it in the cache) and gives its handles back. Its
 * memory stays for xfer_release. */
static void xfer_detach(xfer *x) {
  if (!x->easy) return;
  long made = 0;   /* connections this transfer had to open */
  if (curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &made) == CURLE_OK && made > 0) {
    char labels[160] = "";
    gw_label(labels, sizeof labels, "provider", x->prov->name);
    gw_metrics_add(x->g->metrics, "lane_gateway_upstream_connections_total", labels,
                   (double)made);
  }
  curl_multi_remove_handle(x->multi, x->easy);
  if (x->slot) {
    slot_put(x->g, x->slot);
    x->slot = NULL;
  } else {
    gw_fwd *F = x->F;
    if (x->prev) x->prev->next = x->next;
    else F->active = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
    if (F->neasy < (int)(sizeof F->easies / sizeof F->easies[0])) {
      curl_easy_reset(x->easy);
      F->easies[F->neasy++] = x->easy;
    } else {
      curl_easy_cleanup(x->easy);
    }
  }
  x->easy = NULL;
}

static void xfer_release(xfer *x) {
  curl_slist_free_all(x->hdrs);
  free(x->upbody);
  gw_buf_free(&x->raw);
  gw_sse_free(&x->sse);
  free(x);
}

static void xfer_free(xfer *x) {
  if (!x) return;
  xfer_detach(x);
  xfer_release(x);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value) {
  char line[1024];
  snprintf(line, sizeof line, "%s: %s", name, value);
  struct curl_slist *n = curl_slist_append(l, line);
  memset(line, 0, sizeof line);  /* it may hold a key */
  return n ? n : l;
}

/* Starts a transfer of body (taken) to provider p: on the forwarder F
 * (the call c's, timing out at c->until), or, F NULL, on a slot of its
 * own (a shadow's, driven by pump). NULL when out of memory. */
static xfer *xfer_start(gw_call *c, const gw_provider *p, char *body, gw_fwd *F) {
  xfer *x = calloc(1, sizeof *x);
  if (!x) return free(body), NULL;
  x->upbody = body;
  x->retry_after_ms = -1;
  x->streaming = c->stream;
  x->g = c->g;
  x->prov = p;
  gw_sse_init(&x->sse, p->format, c->format, c->want_usage);
  if (F) {
    x->easy = F->neasy ? F->easies[--F->neasy] : curl_easy_init();
    x->multi = F->multi;
    if (!x->easy) return xfer_release(x), NULL;
  } else {
    x->slot = slot_take(c->g);
    if (!x->slot) return xfer_release(x), NULL;
    x->easy = x->slot->easy;
    x->multi = x->slot->multi;
  }
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
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->g->cfg.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_USERAGENT, "lane-gateway/" LANE_VERSION_STRING);
  curl_easy_setopt(e, CURLOPT_SHARE, c->g->share);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);  /* h2 over TLS when offered */
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  x->t0 = gw_now_ms();
  if (F) {
    x->F = F;
    x->c = c;
    x->until = c->until;
    due_at(F, x->until);
    x->next = F->active;
    if (x->next) x->next->prev = x;
    F->active = x;
  }
  curl_multi_add_handle(x->multi, e);
  return x;
}

/* Drives a slot's transfer x (a shadow's) until it ends or the clock
 * passes `until`: 0, or 1 on timeout. Bounded: every turn waits at most
 * 200 ms and the clock only advances. */
static int pump(xfer *x, uint64_t until) {
  for (;;) {
    int running = 0, queued = 0;
    curl_multi_perform(x->multi, &running);
    if (!x->sent_ns) x->sent_ns = gw_now_ns();
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(x->multi, &queued)))
      if (msg->msg == CURLMSG_DONE) x->done = 1, x->result = msg->data.result;
    if (x->done) return 0;
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


/* ---- streams after their first byte ----
 *
 * The forwarder feeds a committed stream's bytes into x->sse during a
 * perform; the server reads them out in stream_read during its turn, on
 * the same thread. When there is nothing to read, the reader suspends the
 * connection and the forwarder resumes it as bytes come. */

struct stream {
  xfer      *x;             /* the committed transfer */
  gw_call   *c;             /* its request (one reference held) */
  int        model;         /* answering model */
  int        refs;          /* the response, the forwarder (or a cancel it is sent) */
  int        waiting;       /* the reader suspended the connection for want of bytes */
  int        finished, ok;  /* the transfer is over, and how */
  int        gone;          /* the response is freed: the client is done or gone */
  stream    *cancel_next;   /* in the forwarder's cancels */
};

static void stream_put(stream *s) {
  if (--s->refs) return;
  xfer_release(s->x);   /* detached by the forwarder already */
  gw_call_release(s->c);
  free(s);
}

/* Resumes the connection of a stream whose reader waits for bytes. */
static void stream_wake(stream *s) {
  if (!s->waiting || s->gone) return;
  s->waiting = 0;
  MHD_resume_connection(s->c->con);
  s->x->F->resumed = 1;
}

/* Bookkeeping of a stream that ended: the answer's usage charged, or a
 * stream that broke off counted. */
static void stream_end(stream *s, int ok) {
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

/* The forwarder's: bytes of a committed stream came in (during a perform). */
static void stream_feed(xfer *x, const char *p, size_t n) {
  gw_sse_feed(&x->sse, p, n);
  if (x->sse.out.n > x->sse.out_pos) stream_wake(x->s);
  x->until = gw_now_ms() + (uint64_t)x->g->cfg.stream_idle_ms;
}

/* The forwarder's: x's stream is over -- it ended (ok), broke off, was
 * silent too long, the client left (bookkeeping 0: nothing is booked, as
 * before the first byte), or the gateway stops. */
static void stream_finish(xfer *x, int ok, int bookkeeping) {
  stream *s = x->s;
  xfer_detach(x);
  if (ok) gw_sse_end(&x->sse);
  s->finished = 1;
  s->ok = ok;
  stream_wake(s);   /* the reader sends the end */
  if (bookkeeping) stream_end(s, ok);
  stream_put(s);   /* the forwarder's reference */
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  stream *s = cls;
  xfer *x = s->x;
  ssize_t r;
  (void)pos;
  size_t avail = x->sse.out.n - x->sse.out_pos;
  if (avail) {
    size_t n = avail < max ? avail : max;
    memcpy(buf, x->sse.out.p + x->sse.out_pos, n);
    x->sse.out_pos += n;
    if (x->sse.out_pos == x->sse.out.n) x->sse.out.n = x->sse.out_pos = 0;   /* all out: reuse */
    r = (ssize_t)n;
  } else if (s->finished) {
    r = s->ok ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
  } else {
    s->waiting = 1;   /* the forwarder resumes the connection when bytes come */
    MHD_suspend_connection(s->c->con);
    r = 0;
  }
  return r;
}

static void fwd_cancel(gw_fwd *F, stream *s);

/* The response is freed: the stream was read to its end, or the client
 * went away (then the forwarder stops the transfer). */
static void stream_free(void *cls) {
  stream *s = cls;
  s->gone = 1;
  if (!s->finished) fwd_cancel(s->x->F, s);   /* this reference goes with it */
  else stream_put(s);
}

static struct MHD_Response *stream_response(gw_call *c, int model, xfer *x) {
  stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->x = x, s->c = c, s->model = model;
  s->refs = 2;
  struct MHD_Response *r =
      MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, s, stream_free);
  if (!r) return free(s), NULL;
  atomic_fetch_add(&c->refs, 1);
  x->s = s;
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
    /* the answer's bytes as they came, handed over (not copied) */
    *out = MHD_create_response_from_buffer(x->raw.n, x->raw.p, MHD_RESPMEM_MUST_FREE);
    if (*out) {
      x->raw.p = NULL, x->raw.n = x->raw.cap = 0;
      MHD_add_response_header(*out, "Content-Type", "application/json");
      lane_headers(*out, c);
    }
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
    if (*out) MHD_add_response_header(*out, "x-lane-model", lane_model_name(c->pol->prog, model));
    return SERVED;
  }
  json_t *j = json_loadb(x->raw.p ? x->raw.p : "", x->raw.n, JSON_ALLOW_NUL, NULL);
  const char *msg = gw_error_message(j, p->format);
  char *body = gw_error_body(c->format, (unsigned)st, "upstream_error",
                             msg ? msg : "the provider refused the request");
  *out = body ? text_response(c, body, strlen(body), "application/json") : NULL;
  if (*out) MHD_add_response_header(*out, "x-lane-model", lane_model_name(c->pol->prog, model));
  free(body);
  json_decref(j);
  return SERVED;
}

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

/* ---- the walk along the chain (the forwarder's thread) ---- */

/* The answer is set: the connection resumes and sends it. The forwarder's
 * reference goes; the connection's stays until the answer is queued. */
static void deliver(gw_fwd *F, gw_call *c, struct MHD_Response *r, unsigned status) {
  struct MHD_Connection *con = c->con;
  F->resumed = 1;
  free(c->text);
  c->text = NULL;
  c->resp = r;
  c->status = status;
  c->t_done = gw_now_ns();
  gw_call_release(c);
  MHD_resume_connection(con);
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

/* One call of c's model with its body: STARTED, or SKIPPED (out of
 * memory). While c->tries is below retry.attempts a copy of the body is
 * kept in c->text for the next call. */
static int call_start(gw_fwd *F, gw_call *c) {
  char *body = c->text;
  c->text = c->tries < c->prov->retry.attempts ? strdup(body) : NULL;
  xfer *x = xfer_start(c, c->prov, body, F);
  if (!x) return note(c, c->model, "no_memory", "out of memory"), SKIPPED;
  count(c, "lane_gateway_attempts_total", c->model, NULL, NULL);
  c->calls++;
  return STARTED;
}

/* The first call of candidate model; left: the candidates from this one
 * to the end of the chain that have a provider (this one included).
 * STARTED, or SKIPPED. */
static int attempt_start(gw_fwd *F, gw_call *c, int model, int left) {
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
  c->model = model;
  c->prov = p;
  c->text = text;
  c->tries = 0;
  c->retries_of_model = 0;
  uint64_t t0 = gw_now_ms();
  c->until = c->deadline;
  if (g->cfg.attempt_timeout_ms > 0) {
    if (t0 + (uint64_t)g->cfg.attempt_timeout_ms < c->until)
      c->until = t0 + (uint64_t)g->cfg.attempt_timeout_ms;
  } else if (left > 1 && c->until > t0) {
    /* no attempt_timeout_ms: the time left is shared equally by this
     * candidate and those after it, so a hanging one leaves the others
     * theirs (the last gets all that is left) */
    c->until = t0 + (c->until - t0) / (uint64_t)left;
  }
  /* calls of this model: the first, then up to retry.attempts more on a
   * retryable status, each after its backoff, all within c->until */
  return call_start(F, c);
}

/* The candidate being tried is given up on (how: FAILED or SKIPPED). */
static void give_up(gw_call *c, int how) {
  free(c->text);
  c->text = NULL;
  c->attempted += how == FAILED;
  c->untranslatable += how == SKIPPED && strstr(c->attempts + c->before, "=untranslatable") != NULL;
  c->tried++;
  c->ci++;
}

/* No candidate answered: the gateway's own error. */
static void unserved(gw_fwd *F, gw_call *c) {
  gw *g = c->g;
  unsigned status;
  int late = c->late || gw_now_ms() >= c->deadline;
  const char *code = late ? "lane_deadline" : !c->attempted && c->untranslatable
                                                  ? "lane_untranslatable" : "lane_no_candidate";
  status = late ? 504 : !c->attempted && c->untranslatable ? 400 : 502;
  char msg[900];
  snprintf(msg, sizeof msg, "lane: no candidate could serve this request (route %s, rule %d%s): %s",
           lane_route_name(c->pol->prog, c->d.route), c->d.rule, late ? ", deadline passed" : "",
           c->log[0] ? c->log : "nothing tried");
  char labels[240] = "";
  gw_label(labels, sizeof labels, "route", lane_route_name(c->pol->prog, c->d.route));
  gw_label(labels, sizeof labels, "reason", code + 5);
  gw_metrics_add(g->metrics, "lane_gateway_unserved_total", labels, 1);
  gw_log_outcome(c, -1, 0, (int)status, code + 5, 1, 0, 0, 0);
  char *body = gw_error_body(c->format, status, code, msg);
  struct MHD_Response *r = body ? text_response(c, body, strlen(body), "application/json") : NULL;
  /* the chain is walked: an SDK's own retries would walk it again (the
   * OpenAI SDK retries a 502 twice by default: 9 upstream calls for one) */
  if (r) MHD_add_response_header(r, "x-should-retry", "false");
  free(body);
  deliver(F, c, r, status);
}

/* Walks c's chain from candidate c->ci until a call is in flight, or
 * answers with the gateway's error when none is left (or the deadline
 * passed). */
static void chain_walk(gw_fwd *F, gw_call *c) {
  gw *g = c->g;
  for (; c->ci < c->d.ncandidates;) {
    int model = c->d.candidates[c->ci];
    if (gw_now_ms() >= c->deadline) {
      c->late = 1;
      break;
    }
    if (c->ci > 0) {   /* a fallback: moving on from the candidate before */
      char labels[240] = "";
      gw_label(labels, sizeof labels, "route", lane_route_name(c->pol->prog, c->d.route));
      gw_label(labels, sizeof labels, "from",
               lane_model_name(c->pol->prog, c->d.candidates[c->ci - 1]));
      gw_metrics_add(g->metrics, "lane_gateway_fallbacks_total", labels, 1);
    }
    c->before = (int)strlen(c->attempts);
    int left = 0;
    for (int k = c->ci; k < c->d.ncandidates; k++)
      left += c->pol->model_provider[c->d.candidates[k]] >= 0;
    if (attempt_start(F, c, model, left) == STARTED) return;
    give_up(c, SKIPPED);
  }
  unserved(F, c);
}

/* A call's transfer x is over: it ended, its first bytes of a stream are
 * in (committed to), or it timed out (late). Answers, retries after a
 * backoff, or moves down the chain. */
static void call_done(gw_fwd *F, xfer *x, int late) {
  gw_call *c = x->c;
  int model = c->model;
  const gw_provider *p = c->prov;
  if (x->sent_ns) c->t_up += gw_now_ns() - x->sent_ns;   /* the provider's time, not the gateway's */
  long st = http_status(x);
  int r;
  char what[96];
  struct MHD_Response *out = NULL;
  unsigned status = 502;
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
    if (c->text && retryable(&p->retry, st)) {   /* a body is kept: it may be sent again */
      uint64_t wait = backoff_ms(&p->retry, x, c->retries_of_model);
      int honoured = x->retry_after_ms < 0 || x->retry_after_ms <= p->retry.max_retry_after_ms;
      uint64_t now = gw_now_ms();
      if (honoured && now + wait < c->until) {
        c->retries_of_model++;
        count(c, "lane_gateway_retries_total", model, "status", what + 5);
        xfer_free(x);
        c->due = now + wait;
        c->next = F->waiting;
        F->waiting = c;
        due_at(F, c->due);
        return;
      }
    }
  } else if (st / 100 == 2 && c->stream && !x->done) {
    out = stream_response(c, model, x);
    if (out) {   /* the stream owns x now; the forwarder drives it on */
      x->until = gw_now_ms() + (uint64_t)c->g->cfg.stream_idle_ms;
      due_at(F, x->until);
      deliver(F, c, out, (unsigned)st);
      return;
    }
    r = SKIPPED;
  } else if (st / 100 == 2 && c->stream) {
    gw_sse_end(&x->sse);       /* the whole stream came at once */
    settle(c, model, x, x->sse.have_usage, x->sse.in, x->sse.cached, x->sse.outtok);
    count(c, "lane_gateway_served_total", model, "mode", "stream");
    status = (unsigned)st;
    out = text_response(c, x->sse.out.p ? x->sse.out.p : "", x->sse.out.n, "text/event-stream");
    r = SERVED;
  } else if (st / 100 == 2) {
    r = answered(c, model, p, x, &out);
    status = (unsigned)st;
  } else if (st >= 400) {
    r = refused(c, model, p, x, st, &out, &status);
  } else {
    snprintf(what, sizeof what, "unexpected HTTP %ld", st);
    r = failed(c, model, x, LANE_CALL_SERVER_ERROR, "malformed", what);
  }
  xfer_free(x);
  if (r == SERVED) {
    deliver(F, c, out, status);
    return;
  }
  give_up(c, r);
  chain_walk(F, c);
}

/* ---- the forwarder's thread ---- */

/* The answer of a call the forwarder will not walk: the gateway stops. */
static void deliver_stopping(gw_fwd *F, gw_call *c) {
  char *body = gw_error_body(c->format, 503, "lane_stopping", "lane: the gateway is stopping");
  struct MHD_Response *r = body ? text_response(c, body, strlen(body), "application/json") : NULL;
  if (r) {
    MHD_add_response_header(r, "Retry-After", "1");
    MHD_add_response_header(r, "x-should-retry", "true");
  }
  free(body);
  gw_log_outcome(c, -1, 0, 503, "stopping", 1, 0, 0, 0);
  deliver(F, c, r, 503);
}

/* The worker whose thread this is (gw_forward runs in its server's
 * handler, so the call stays on the thread its connection is on). */
static _Thread_local gw_fwd *self;

void gw_forward(gw_call *c) {
  gw_fwd *F = self;
  atomic_fetch_add(&c->refs, 1);   /* the forwarder's, until it delivers */
  c->next = NULL;
  /* walked once the server's turn is over (never inside its handler) */
  if (F->inbox_tail) F->inbox_tail->next = c;
  else F->inbox = c;
  F->inbox_tail = c;
}

static void fwd_cancel(gw_fwd *F, stream *s) {
  s->cancel_next = F->cancels;
  F->cancels = s;
}

/* Streams whose client is gone: their transfers stop, unbooked. */
static void fwd_cancels(gw_fwd *F) {
  while (F->cancels) {
    stream *s = F->cancels;
    F->cancels = s->cancel_next;
    if (!s->finished) stream_finish(s->x, 0, 0);
    stream_put(s);   /* the reference the cancel came with */
  }
}

/* Transfers past their time, and retries whose backoff is over. */
static void sweep(gw_fwd *F) {
  uint64_t now = gw_now_ms();
  if (now < F->next_due) return;
  F->next_due = UINT64_MAX;
  for (xfer *x = F->active, *n; x; x = n) {
    n = x->next;   /* what x's end starts goes first in the list: not met again here */
    if (x->until > now) {
      due_at(F, x->until);
    } else if (x->s) {   /* a stream silent for stream_idle_ms */
      x->done = 1, x->result = CURLE_OPERATION_TIMEDOUT;
      stream_finish(x, 0, 1);
    } else {
      call_done(F, x, 1);
    }
  }
  for (gw_call **pc = &F->waiting; *pc;) {
    gw_call *c = *pc;
    if (c->due > now) {
      due_at(F, c->due);
      pc = &c->next;
      continue;
    }
    *pc = c->next;
    c->next = NULL;
    c->tries++;
    if (call_start(F, c) != STARTED) {
      give_up(c, SKIPPED);
      chain_walk(F, c);
    }
  }
}

/* At the stop: every call held is answered 503, every stream cut. */
static void fwd_drain(gw_fwd *F) {
  while (F->active) {
    xfer *x = F->active;
    if (x->s) {
      stream_finish(x, 0, 1);
    } else {
      gw_call *c = x->c;
      xfer_free(x);
      deliver_stopping(F, c);
    }
  }
  while (F->waiting) {
    gw_call *c = F->waiting;
    F->waiting = c->next;
    deliver_stopping(F, c);
  }
}

static void *fwd_main(void *arg) {
  gw_fwd *F = arg;
  self = F;
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(F->d, MHD_DAEMON_INFO_EPOLL_FD);
  struct curl_waitfd server = {di ? di->epoll_fd : -1, CURL_WAIT_POLLIN, 0};
  int serve = 1;   /* the server has something to do */
  while (!atomic_load(&F->stopping)) {
    F->resumed = 0;
    if (serve) MHD_run(F->d);   /* clients: reads, handlers, writes; never waits */
    while (F->inbox) {
      gw_call *c = F->inbox;
      F->inbox = c->next;
      if (!F->inbox) F->inbox_tail = NULL;
      c->next = NULL;
      chain_walk(F, c);
    }
    fwd_cancels(F);
    int running = 0, queued = 0;
    curl_multi_perform(F->multi, &running);
    uint64_t now = gw_now_ns();
    for (xfer *x = F->active; x && !x->sent_ns; x = x->next) x->sent_ns = now;   /* new ones first */
    while (F->ready) {   /* streams whose first bytes are in: commit */
      xfer *x = F->ready;
      F->ready = x->ready_next;
      if (!x->s) call_done(F, x, 0);
    }
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(F->multi, &queued))) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURLcode res = msg->data.result;
      char *priv = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      xfer *x = (xfer *)priv;
      if (!x) continue;
      x->done = 1, x->result = res;
      if (x->s) stream_finish(x, res == CURLE_OK, 1);
      else call_done(F, x, 0);
    }
    sweep(F);
    if (F->resumed || F->inbox) {   /* answers to send: the server's turn again */
      serve = 1;
      continue;
    }
    uint64_t ms = gw_now_ms();
    uint64_t wait = F->next_due <= ms ? 0 : F->next_due - ms;
    MHD_UNSIGNED_LONG_LONG mt;
    int timed = MHD_get_timeout(F->d, &mt) == MHD_YES;
    if (timed && mt < wait) wait = mt;
    server.revents = 0;
    curl_multi_poll(F->multi, &server, 1, wait > 1000 ? 1000 : (int)wait, NULL);
    /* the server runs when its sockets (or a resume) woke the poll, or its
     * own timeout (an idle connection's) is up; a wake for the transfers
     * alone leaves it be */
    serve = server.revents != 0 || (timed && gw_now_ms() >= ms + mt);
  }
  fwd_drain(F);
  /* closes its connections: a 503 set by the drain goes out only if a
   * connection was already being written; the drain resumes them because
   * a server cannot stop with connections suspended */
  MHD_stop_daemon(F->d);
  F->d = NULL;
  fwd_cancels(F);   /* streams freed at the stop (finished by the drain) */
  return NULL;
}

int gw_forward_start(gw *g, struct MHD_Daemon **daemons, int n) {
  g->fwd = calloc((size_t)n, sizeof *g->fwd);
  if (!g->fwd) return -1;
  for (int i = 0; i < n; i++) {
    gw_fwd *F = calloc(1, sizeof *F);
    if (!F) return -1;
    g->fwd[g->nfwd++] = F;
    F->g = g;
    F->d = daemons[i];
    daemons[i] = NULL;   /* the worker's now */
    F->next_due = UINT64_MAX;
    F->multi = curl_multi_init();
    if (!F->multi) return -1;
    /* idle connections kept: as many as its clients may be waiting on */
    curl_multi_setopt(F->multi, CURLMOPT_MAXCONNECTS, g->cfg.max_connections / n + 1);
  }
  for (int i = 0; i < n; i++) {
    if (pthread_create(&g->fwd[i]->thread, NULL, fwd_main, g->fwd[i])) return -1;
    g->fwd[i]->running = 1;
  }
  return 0;
}

void gw_forward_stop(gw *g) {
  for (int i = 0; i < g->nfwd; i++) {
    gw_fwd *F = g->fwd[i];
    atomic_store(&F->stopping, 1);
    if (F->multi) curl_multi_wakeup(F->multi);
  }
  for (int i = 0; i < g->nfwd; i++) {
    gw_fwd *F = g->fwd[i];
    if (F->running) pthread_join(F->thread, NULL);
    F->running = 0;
  }
}

/* Once every worker has stopped. */
static void fwd_free(gw *g) {
  gw_forward_stop(g);
  for (int i = 0; i < g->nfwd; i++) {
    gw_fwd *F = g->fwd[i];
    if (F->d) MHD_stop_daemon(F->d);   /* a worker that never started */
    for (int k = 0; k < F->neasy; k++) curl_easy_cleanup(F->easies[k]);
    if (F->multi) curl_multi_cleanup(F->multi);
    free(F);
  }
  free(g->fwd);
  g->fwd = NULL;
  g->nfwd = 0;
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
  xfer *x = xfer_start(c, p, text, NULL);
  if (!x) { gw_shadows_dropped(g, "no_memory", 1); return; }
  x->abort = &g->shadows_stopping;   /* the gateway's stop ends the wait within a poll */
  int late = pump(x, gw_now_ms() + (uint64_t)g->cfg.shadow_timeout_ms);
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
