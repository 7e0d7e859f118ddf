/*
 * gateway.h -- internal interfaces of lane-gateway, the example HTTP gateway
 * in front of OpenAI- and Anthropic-style providers (see README.md here).
 *
 *   main.c       configuration, the HTTP server, requests and decisions
 *   upstream.c   the workers (a thread, an HTTP server, a curl multi handle each)
 *                and forwarding with libcurl: the fallback walk, retries, streaming,
 *                the pool of kept connections, shadow calls
 *   shadow.c     the shadows' queue and worker threads
 *   clients.c    deadlines on a client's headers and body (slowloris)
 *   translate.c  OpenAI <-> Anthropic bodies, responses, streams and errors
 *   metrics.c    counters served as Prometheus text on GET /metrics
 *   log.c        the decision log: records queued, a writer thread, rotation
 *   policy.c     the policy served: loading it (a .lanec or a bundle, from a
 *                file or a URL), reloading it (SIGHUP, polling) and what
 *                each request holds of it
 *
 * Module prefix: gw_. Nothing here is part of liblane's API.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "lane.h"
#include "lane_redis.h"

struct MHD_Response;
struct MHD_Connection;
struct MHD_Daemon;

/* API formats: the same numbers as LANE_FORMAT_* so one value serves both. */
enum { GW_OPENAI = LANE_FORMAT_OPENAI_CHAT, GW_ANTHROPIC = LANE_FORMAT_ANTHROPIC_MESSAGES };

#define GW_MAX_PROVIDERS 32
#define GW_SHARE_LOCKS   8    /* one mutex per kind of data libcurl shares */

typedef struct gw_slot gw_slot;

/* ---- growable byte buffer ---- */
typedef struct gw_buf {
  char  *p;     /* bytes, NUL-terminated when non-empty */
  size_t n;     /* bytes in use */
  size_t cap;   /* bytes allocated */
} gw_buf;

int  gw_buf_add(gw_buf *b, const char *s, size_t n);   /* 0, or -1 out of memory */
void gw_buf_free(gw_buf *b);
uint64_t gw_now_ms(void);                              /* monotonic */
uint64_t gw_now_ns(void);                              /* monotonic */

/* ---- configuration ---- */
#define GW_RETRY_ON 16
/* "retry": the same model called again on a failure, before the next
 * candidate. */
typedef struct gw_retry {
  int  attempts;           /* calls after the first (0: none) */
  long backoff_ms;         /* the first backoff, doubled each time ... */
  long max_backoff_ms;     /* ... up to this, with equal jitter */
  long max_retry_after_ms; /* a longer retry-after moves down the chain instead */
  long on[GW_RETRY_ON];    /* the statuses retried */
  int  non;
} gw_retry;

typedef struct gw_provider {
  char *name;          /* the policy's provider name, e.g. "openai" */
  char *base_url;      /* the API path ("/chat/completions", "/messages") is
                          appended to it, e.g. https://api.openai.com/v1 */
  char *key_env;       /* environment variable holding the key (the name is
                          logged, the value never) */
  char *api_key;       /* its value at start, or NULL */
  int   format;        /* GW_OPENAI or GW_ANTHROPIC */
  int   completion_tokens; /* OpenAI format: send max_completion_tokens
                              instead of max_tokens when translating */
  gw_retry retry;      /* its "retry", else the config's */
} gw_provider;

typedef struct gw_config {
  char    *host;             /* listen address, default 127.0.0.1 */
  int      port;             /* listen port, default 8080; 0 = any */
  char    *policy;           /* path of the .lanec or bundle, or its URL */
  char    *policy_key;       /* a public key file: only bundles it signed load */
  long     poll_s;           /* reload.poll_s: check the policy this often; 0 never */
  long     fetch_timeout_ms; /* reload.timeout_ms: one fetch of a policy URL */
  long     max_policy_bytes; /* reload.max_bytes: largest policy accepted */
  int      allow_rollback;   /* reload.allow_rollback: serve a signed bundle
                                built before the one served */
  char    *route;            /* default route (x-lane-route overrides) */
  char    *state_file;       /* budget spend kept across restarts, or NULL */
  long     deadline_ms;      /* whole request, all attempts (default 60000) */
  long     max_deadline_ms;  /* cap on x-lane-deadline-ms (default 600000) */
  long     attempt_timeout_ms; /* one upstream attempt until its answer (or
                                  first byte when streaming); 0 = deadline */
  long     connect_timeout_ms; /* TCP/TLS connect (default 5000) */
  long     stream_idle_ms;   /* streaming: longest silence once started */
  long     default_max_tokens; /* OpenAI -> Anthropic without max_tokens */
  long     max_body_bytes;   /* limits.body_bytes: one request body (16 MiB) */
  long     max_bodies_bytes; /* limits.bodies_bytes: bodies held at once (256 MiB) */
  long     max_connections;  /* limits.connections: client connections (4096) */
  long     max_per_ip;       /* limits.connections_per_ip: 0 = no limit */
  long     idle_timeout_s;   /* limits.idle_timeout_s: a silent client is closed (120) */
  long     header_timeout_ms; /* limits.header_timeout_ms: first line to headers in (10000) */
  long     body_timeout_ms;  /* limits.body_timeout_ms: headers to body in (60000) */
  long     threads;          /* limits.threads: workers (default the CPUs, at most 64) */
  gw_retry retry;            /* "retry" (default: none) */
  long     shadow_concurrency; /* shadow.concurrency: threads sending shadows (4; 0 off) */
  long     shadow_queue;     /* shadow.queue: shadows waiting at most (1024) */
  long     shadow_timeout_ms; /* shadow.timeout_ms: one shadow call (60000) */
  json_t  *defaults;         /* request field defaults (object), or NULL */
  int      nproviders;       /* entries in providers */
  gw_provider providers[GW_MAX_PROVIDERS]; /* from "providers" */
  json_t  *root;             /* the parsed file, owns defaults */
} gw_config;

/* ---- metrics (metrics.c) ---- */
typedef struct gw_metrics gw_metrics;
gw_metrics *gw_metrics_new(void);
void gw_metrics_free(gw_metrics *m);
/* Adds v to series name{labels}; labels is the text between the braces,
 * already escaped (gw_label). Unknown names and a full table are ignored. */
void gw_metrics_add(gw_metrics *m, const char *name, const char *labels, double v);
/* Sets a gauge's series to v; zeroes every series of a family. */
void gw_metrics_set(gw_metrics *m, const char *name, const char *labels, double v);
void gw_metrics_zero(gw_metrics *m, const char *name);
/* The whole exposition, malloc'ed; NULL when out of memory. */
char *gw_metrics_text(gw_metrics *m, size_t *len);
/* Adds one request's own time (ns) to lane_gateway_overhead_seconds. */
void gw_metrics_overhead(gw_metrics *m, uint64_t ns);
/* Sets the lane_gateway_redis_* series from the adapter's figures. */
void gw_metrics_redis(gw_metrics *m, lane_redis *rs);
/* Appends key="value" (escaped, comma-separated) to a label buffer. */
void gw_label(char *buf, size_t cap, const char *key, const char *value);

/* ---- the decision log (log.c) ---- */
typedef struct gw_log gw_log;
/* Opens path for appending and starts the writer. NULL with why set. */
gw_log *gw_log_open(const char *path, long max_bytes, long max_age_s, int queue, gw_metrics *m,
                    char *why, size_t cap);
/* Queues one record (a malloc'd line, taken over): 0, or -1 dropped. */
int  gw_log_put(gw_log *l, char *line, size_t n);
/* Writes what is queued, syncs and closes. */
void gw_log_close(gw_log *l);

/* ---- the policy being served (policy.c) ---- */
/* One program the gateway serves or served, with what requests need of
 * it. A request holds one (gw_policy_get) from its decision to its last
 * charge, so a reload never changes the program under it. */
typedef struct gw_policy {
  atomic_int          refs;    /* the gateway while current, + each request */
  lane_runtime       *rt;      /* a view of the runtime pinned for its life */
  const lane_program *prog;    /* the view's program */
  int                *model_provider; /* per model: index into cfg.providers or -1 */
  int                 f_input, f_output, f_cached; /* token fields for costs */
  uint64_t            generation; /* lane_runtime_generation of the view */
  uint64_t            digest;  /* FNV-1a 64 of the bytes it was loaded from */
  char                built_at[40]; /* a bundle's build time (ISO 8601 UTC), or "" */
  char                revision[160]; /* a bundle's revision (at most 128 bytes), or "lanec-" and
                                       the program's checksum */
} gw_policy;

struct gw;
/* The policy served now, held until gw_policy_put. */
gw_policy *gw_policy_get(struct gw *g);
void gw_policy_put(gw_policy *p);
/* Loads the policy at start: 0, or -1 with why set. */
int gw_policy_start(struct gw *g, char *why, size_t cap);
/* Loads the policy again (cause: "SIGHUP", "poll") and swaps it in if it
 * changed and passes every check. 1 swapped, 0 unchanged, -1 refused
 * (the gateway keeps serving the old one; the reason is in last_reload).
 * A poll that finds the bytes refused last time refuses them again
 * without testing or counting them; a SIGHUP checks them anew. */
int gw_reload(struct gw *g, const char *cause);
/* The thread that polls the policy every poll_s (none when 0). */
int gw_poller_start(struct gw *g);
void gw_poller_stop(struct gw *g);
/* GET /healthz: the served revision and the last reload, as JSON. */
char *gw_health_json(struct gw *g);
/* Frees what policy.c holds (the served policy included). */
void gw_policy_stop(struct gw *g);

/* ---- the gateway ---- */
typedef struct gw {
  gw_config     cfg;         /* as loaded */
  lane_runtime *rt;          /* the runtime: live state of every program served */
  lane_program *first;       /* the program it was made with (the gateway's) */
  pthread_mutex_t pol_lock;  /* guards pol's pointer (not the policy) */
  gw_policy    *pol;         /* the policy served now */
  pthread_mutex_t reload_lock; /* one reload at a time */
  char          etag[256];   /* the policy URL's last ETag */
  unsigned char pubkey[32];  /* policy_key's public key */
  int           key_set;     /* 1: only bundles it signed are served */
  char          last_reload[900]; /* the last reload's result, for /healthz */
  uint64_t      last_reload_ms; /* when (wall clock ms), 0 never */
  uint64_t      refused_digest; /* the bytes last refused: polling does not
                                   fetch-and-test them again (SIGHUP does) */
  atomic_uint_least64_t reloads, reload_failures;
  pthread_t     poller;      /* polls the policy (poll_s > 0) */
  int           poller_on;
  pthread_mutex_t poll_lock; /* with poll_cv: wakes the poller to stop */
  pthread_cond_t  poll_cv;
  int           stopping;
  gw_metrics   *metrics;     /* counters */
  gw_log       *log;         /* decision_log, or NULL */
  unsigned char log_key[16]; /* decision_log.key_file: sensitive fields' key */
  int           log_key_set;
  atomic_uint_least64_t seq; /* decision ids */
  lane_redis   *redis;       /* fleet state ("redis" in the config), or NULL */
  atomic_uint_least64_t bodies; /* request body bytes held (limits.bodies_bytes) */
  /* upstream.c: idle upstream slots (a multi and an easy handle each,
   * with the connections they keep), and what they all share */
  pthread_mutex_t slot_lock;
  struct gw_slot *idle;
  int           nidle;
  void         *share;       /* CURLSH: DNS answers and TLS sessions */
  struct gw_shadows *shadows; /* shadow.c: the queue and its workers, or NULL */
  atomic_int    shadows_stopping; /* 1: shadow calls in flight stop waiting */
  /* clients.c: a watch per client connection, and the reaper */
  pthread_mutex_t watch_lock;
  struct gw_watch *watches;
  struct gw_ip **ips;        /* connections per client address (clients.c) */
  long          nconns;      /* connections open */
  pthread_t     watch_thread;
  int           watch_on, watch_stop;
  pthread_mutex_t share_locks[GW_SHARE_LOCKS];
  struct gw_fwd **fwd;       /* upstream.c: the workers (a thread, a server, a multi handle) */
  int           nfwd;
} gw;

/* One client request on its way upstream. Owned by main.c's connection
 * context; upstream.c reads it and, for streams, keeps it alive until the
 * stream ends (refs). */
typedef struct gw_call {
  gw           *g;           /* the gateway */
  gw_policy    *pol;         /* the policy that decided it, held */
  int           format;      /* the client's API format */
  const char   *raw;         /* the client's body, while the request is decided and
                                forwarded (the connection's buffer) */
  size_t        nraw;
  json_t       *body;        /* the body parsed, only when needed: to translate it
                                (gw_call_body), or to read stream_options */
  int           stream;      /* "stream": true */
  int           want_usage;  /* OpenAI client asked stream_options.include_usage */
  const char   *anthropic_version; /* client's header, or NULL */
  const char   *anthropic_beta;    /* client's header, or NULL */
  uint64_t      t_in;        /* gw_now_ns when its body was in */
  uint64_t      t_up;        /* ns spent waiting on providers, every attempt */
  int           retries_of_model; /* retries made of the model being tried */
  char          hdr_version[64], hdr_beta[256]; /* a shadow's copies of the headers */
  lane_request *req;         /* the decision's request (charged later): a compact
                                request in req_buf, its room sized for the body's
                                and the headers' strings */
  void         *req_buf;
  lane_decision d;           /* the decision */
  uint64_t      deadline;    /* gw_now_ms() value the answer is due by */
  int           tried;       /* candidates given up on before the answer */
  int           calls;       /* upstream calls made */
  char          id[40];      /* decision id (x-lane-decision-id, the log's) */
  int           served;      /* model that answered, or -1 */
  double        cost;        /* what was charged (or expected, streams) */
  const char   *cost_basis;  /* "usage" or "expected" */
  atomic_int    refs;        /* holders: the connection, a live stream */
  char          log[512];    /* what each failed attempt did, for the log
                                and the final error */
  char          attempts[256]; /* the same as model=kind, comma-separated,
                                  for the x-lane-attempts header */
  /* forwarding (upstream.c): the client's connection, suspended from the
   * hand-over until the answer is set; then resp and status */
  struct MHD_Connection *con;
  struct MHD_Response *resp;   /* the answer (NULL: out of memory) */
  unsigned      status;
  uint64_t      t_done;      /* gw_now_ns when the answer was set */
  /* its worker's forwarder's own: its lists, the walk along the chain */
  struct gw_call *next;
  int           ci;          /* candidate being tried */
  int           attempted, untranslatable, late;
  int           before;      /* strlen(attempts) when the candidate began */
  int           model, tries;
  const gw_provider *prov;
  char         *text;        /* the body for the model's next call (retries) */
  uint64_t      until;       /* gw_now_ms the candidate's calls must end by */
  uint64_t      due;         /* a retry's: gw_now_ms when its backoff ends */
} gw_call;

/* The workers: a thread each, running one of the n servers (started
 * without a thread of their own, epoll, on one shared port) and driving
 * the upstream transfers of the requests it reads with a libcurl multi
 * handle of its own. The daemons become the workers'. 0, or -1. */
int  gw_forward_start(struct gw *g, struct MHD_Daemon **daemons, int n);
/* Each worker ends what it holds (a 503 lane_stopping is set and logged,
 * streams are cut), stops its server -- which closes the connections,
 * so those answers seldom leave -- and ends. */
void gw_forward_stop(struct gw *g);
/* From a server's handler: hands call, its connection suspended, to the
 * worker running that server, which walks its candidates once the
 * handler returns, sets resp and status (a stream's response reads on as
 * the provider sends), and resumes the connection; the caller's reference
 * stays the caller's. */
void gw_forward(gw_call *call);
/* The client's body parsed (once, on first use): NULL out of memory. */
json_t *gw_call_body(gw_call *call);

/* ---- client deadlines (clients.c) ---- */
typedef struct gw_watch gw_watch;
int  gw_clients_start(struct gw *g);     /* the reaper: 0, or -1 */
void gw_clients_stop(struct gw *g);
#ifdef MHD_VERSION   /* files that include microhttpd.h */
/* MHD_OPTION_NOTIFY_CONNECTION and MHD_OPTION_URI_LOG_CALLBACK (cls: g). */
void  gw_clients_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                        enum MHD_ConnectionNotificationCode code);
void *gw_clients_first_line(void *cls, const char *uri, struct MHD_Connection *con);
/* MHD_OPTION_ACCEPT_POLICY_CALLBACK (cls: g): limits.connections and
 * limits.connections_per_ip, over every worker's server. */
enum MHD_Result gw_clients_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
/* The request's headers are in; its body is in; it is answered. */
void gw_clients_headers_in(struct gw *g, struct MHD_Connection *con);
void gw_clients_body_in(struct gw *g, struct MHD_Connection *con);
void gw_clients_done(struct gw *g, struct MHD_Connection *con);
#endif

/* ---- shadows (shadow.c) ---- */
typedef struct gw_shadows gw_shadows;
/* Starts shadow.concurrency workers (none when 0): 0, or -1 with why set. */
int  gw_shadows_start(struct gw *g, char *why, size_t cap);
/* Queues a copy of c for each of its decision's shadows (never blocks:
 * a full queue drops and counts). */
void gw_shadows_submit(struct gw *g, const gw_call *c);
/* Stops the workers once their calls end; what is still queued is dropped
 * and said. */
void gw_shadows_stop(struct gw *g);
/* Counts n shadows not sent, by reason (lane_gateway_shadows_dropped_total). */
void gw_shadows_dropped(struct gw *g, const char *reason, long n);
/* One shadow call of model for c (upstream.c): sent, timed, recorded. */
void gw_shadow_call(gw_call *c, int model);
/* The pool of upstream slots and the share handle: 0, or -1 out of memory.
 * Stop only once no transfer is running. */
int  gw_upstream_start(struct gw *g);
void gw_upstream_stop(struct gw *g);
/* Releases one holder of call (main.c frees it on the last). */
void gw_call_release(gw_call *call);

/* The decision record of call (log.c; nothing without a log). */
void gw_log_decision(gw_call *c, int route, int status);
/* An outcome record of call: one per upstream attempt, final on the last
 * (model -1 when none answered). */
void gw_log_outcome(gw_call *c, int model, double latency_ms, int http, const char *error,
                    int final, long in, long out, double cost);
/* The outcome record of a shadow's call ("shadow": true, never final). */
void gw_log_shadow(gw_call *c, int model, double latency_ms, int http, const char *error, long in,
                   long out, double cost);

/* Cost of actual usage on model m (tokens in, cached of them, out). */
double gw_usage_cost(const gw_policy *p, int model, long in, long cached, long out);

/* ---- translation (translate.c) ---- */
/* The body to send to a provider of format `to` for a client body of format
 * `from`, with "model" set to model_id. NULL with *why set when the body
 * uses something not translated (tools, images, ...). New reference. */
json_t *gw_translate_request(const json_t *body, int from, int to, const char *model_id,
                             const gw_provider *prov, long default_max_tokens,
                             const char **why);
/* A non-streaming success body of format `from` as format `to`. New ref,
 * NULL if the body lacks what is needed. */
json_t *gw_translate_response(const json_t *resp, int from, int to);
/* In a body already known to be valid JSON: the value of top-level member
 * key, as its offset and length in the bytes. 1 found, 0 absent, -1 cannot
 * tell without parsing (not an object, or a key written with escapes). */
int gw_json_member(const char *body, size_t n, const char *key, size_t *off, size_t *len);
/* The body with its top-level "model" set to model_id (added first if
 * absent), every other byte as it was: malloc'd and NUL-terminated, its
 * length in *outlen. NULL when gw_json_member cannot tell, or out of
 * memory: then parse and rewrite (gw_translate_request). */
char *gw_splice_model(const char *body, size_t n, const char *model_id, size_t *outlen);
/* Whether a 2xx body is a chat answer of format fmt: an OpenAI object with
 * a first choice holding a message, an Anthropic "message" with a content
 * array. 0, or -1 with *why naming what is missing. */
int gw_answer_shape(const json_t *resp, int fmt, const char **why);
/* Token usage of a response body of format fmt: 0 ok, -1 none. */
int gw_usage(const json_t *resp, int fmt, long *in, long *cached, long *out);
/* An error body in the client's format, malloc'ed JSON text. */
char *gw_error_body(int format, unsigned status, const char *code, const char *message);
/* The message of an upstream error body of format fmt, or NULL (borrowed). */
const char *gw_error_message(const json_t *resp, int fmt);

/* Server-sent events, passed through or translated, usage collected. */
typedef struct gw_sse {
  int    from, to;       /* upstream and client formats */
  int    want_usage;     /* OpenAI client: send a usage chunk at the end */
  gw_buf pending;        /* bytes of an incomplete event */
  gw_buf out;            /* bytes ready for the client */
  size_t out_pos;        /* of out, already handed to the client */
  int    started;        /* translated: opening events written */
  int    finished;       /* translated: closing events written */
  long   in, cached, outtok; /* usage seen so far */
  int    have_usage;     /* some usage was seen */
  char   id[96];         /* message id, for translated events */
  char   model[128];     /* model named by the upstream */
  char   stop[32];       /* stop / finish reason, client's vocabulary */
  /* translated tool calls: an Anthropic client's open content block (-1
   * none) and its kind, the OpenAI call it carries; an OpenAI client's
   * call index for the Anthropic tool_use block open (-1 none) */
  int    block, block_tool, block_call;
  int    ncalls, call_open;
} gw_sse;

void gw_sse_init(gw_sse *s, int from, int to, int want_usage);
/* Feeds upstream bytes; output accumulates in s->out. */
void gw_sse_feed(gw_sse *s, const char *p, size_t n);
/* The upstream ended cleanly: flush and close a translated stream. */
void gw_sse_end(gw_sse *s);
void gw_sse_free(gw_sse *s);

#endif
