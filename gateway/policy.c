/*
 * policy.c -- the policy lane-gateway serves, and reloading it.
 *
 * The policy is a compiled `.lanec` or a bundle (`lane build`), at a path
 * or an http(s) URL. At start it is read, checked and served; afterwards
 * it is read again on SIGHUP and, with reload.poll_s, every poll_s
 * seconds (a file: when its bytes change; a URL: with If-None-Match on
 * its ETag, so an unchanged policy costs a 304). A new policy is served
 * only once every check passes:
 *
 *   - it is not larger than reload.max_bytes, and a URL answers in
 *     reload.timeout_ms;
 *   - with policy_key, it is a bundle signed by that key (a bare .lanec
 *     is refused: it carries no signature);
 *   - a bundle's tests pass against its program;
 *   - the program loads and verifies (lane_load), and has the gateway's
 *     default route;
 *   - lane_runtime_swap takes it: live state carries over by meaning.
 * Otherwise the gateway keeps serving the policy it has, counts the
 * failure and says why on stderr, in /healthz and in /metrics.
 *
 * Requests never wait for a reload: each takes the served policy with
 * gw_policy_get (a pointer read under a mutex held for a few
 * instructions) and keeps it to its last charge, through its own pinned
 * view of the runtime; the last request of an old policy frees it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <curl/curl.h>
#include "gateway.h"
#include "lane_bundle.h"

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t fnv1a(const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

static int is_url(const char *s) {
  return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

/* ---------------------------------------------------------------------
 * Reading the policy's bytes
 * ------------------------------------------------------------------- */
typedef struct fetch {
  gw_buf body;
  size_t max;
  int    too_big;
  char   etag[256];
} fetch;

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  fetch *f = ctx;
  size_t k = size * n;
  if (f->body.n + k > f->max) { f->too_big = 1; return 0; }
  return gw_buf_add(&f->body, p, k) ? 0 : k;
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
  fetch *f = ctx;
  size_t k = size * n;
  if (k > 5 && !strncmp(p, "HTTP/", 5)) f->etag[0] = 0;   /* a new response (a redirect's next) */
  if (k > 5 && !strncasecmp(p, "etag:", 5)) {
    const char *v = p + 5;
    size_t len = k - 5;
    while (len && (*v == ' ' || *v == '\t')) v++, len--;
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ')) len--;
    if (len < sizeof f->etag) {
      memcpy(f->etag, v, len);
      f->etag[len] = 0;
    }
  }
  return k;
}

/* GETs the policy URL: 1 with the body, 0 unchanged (304), -1 with why. */
static int get_url(gw *g, fetch *f, char *why, size_t cap) {
  CURL *e = curl_easy_init();
  if (!e) return snprintf(why, cap, "out of memory"), -1;
  struct curl_slist *h = NULL;
  char inm[300];
  if (g->etag[0]) {
    snprintf(inm, sizeof inm, "If-None-Match: %s", g->etag);
    h = curl_slist_append(h, inm);
  }
  char err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_URL, g->cfg.policy);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, g->cfg.fetch_timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, g->cfg.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  /* http or https only, and an https policy is never redirected to
   * anything but https. */
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR,
                   strncmp(g->cfg.policy, "https:", 6) ? "http,https" : "https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "lane-gateway/" LANE_VERSION_STRING);
  CURLcode rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(e);
  if (f->too_big)
    return snprintf(why, cap, "%s: larger than reload.max_bytes (%ld bytes)", g->cfg.policy,
                    g->cfg.max_policy_bytes), -1;
  if (rc != CURLE_OK)
    return snprintf(why, cap, "%s: %s", g->cfg.policy, err[0] ? err : curl_easy_strerror(rc)), -1;
  if (status == 304) return 0;
  if (status != 200) return snprintf(why, cap, "%s: HTTP %ld", g->cfg.policy, status), -1;
  return 1;
}

/* Reads the policy file whole: 1, or -1 with why. */
static int get_file(gw *g, fetch *f, char *why, size_t cap) {
  FILE *fp = fopen(g->cfg.policy, "rb");
  if (!fp) return snprintf(why, cap, "%s: %s", g->cfg.policy, strerror(errno)), -1;
  char chunk[65536];
  size_t k;
  int short_ = 0;
  while ((k = fread(chunk, 1, sizeof chunk, fp)) > 0)
    if (on_body(chunk, 1, k, f) != k) { short_ = 1; break; }
  int bad = ferror(fp);
  fclose(fp);
  if (f->too_big)
    return snprintf(why, cap, "%s: larger than reload.max_bytes (%ld bytes)", g->cfg.policy,
                    g->cfg.max_policy_bytes), -1;
  if (short_) return snprintf(why, cap, "%s: out of memory reading it", g->cfg.policy), -1;
  if (bad) return snprintf(why, cap, "%s: cannot be read", g->cfg.policy), -1;
  return 1;
}

/* ---------------------------------------------------------------------
 * Bytes to a program
 * ------------------------------------------------------------------- */
/* The first lines of a bundle's test report that say what failed, for
 * one line of /healthz (the whole report goes to stderr). */
static void failures_of(const char *report, char *out, size_t cap) {
  out[0] = 0;
  for (const char *l = report; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
    int n = (int)strcspn(l, "\n");
    if (strncmp(l, "not ok", 6) && strncmp(l, "FAIL", 4)) continue;
    size_t used = strlen(out);
    snprintf(out + used, cap - used, "%s%.*s", used ? "; " : "", n, l);
  }
}

/* The program in a bundle: opened (with policy_key, its signature
 * verified), its tests run, its program taken. NULL with why. */
static lane_program *bundle_program(gw *g, const fetch *f, char *rev, size_t rcap, char *built,
                                    char *why, size_t cap) {
  lane_error err;
  lane_bundle *b = NULL;
  if (lane_bundle_open(f->body.p, f->body.n, g->key_set ? g->pubkey : NULL, &b, &err) != LANE_OK)
    return snprintf(why, cap, "%s: %s", g->cfg.policy, err.message), NULL;
  enum { REPORT = 64 << 10 };
  char *report = malloc(REPORT);
  int failed = report ? lane_bundle_test(b, report, REPORT, &err) : -1;
  lane_program *p = NULL;
  if (!report) {
    snprintf(why, cap, "out of memory running the bundle's tests");
  } else if (failed < 0) {
    snprintf(why, cap, "%s: revision %s: its tests cannot run: %s", g->cfg.policy,
             lane_bundle_revision(b), err.message);
  } else if (failed > 0) {
    char what[300];
    failures_of(report, what, sizeof what);
    snprintf(why, cap, "%s: revision %s: %d of its tests failed: %s", g->cfg.policy,
             lane_bundle_revision(b), failed, what);
    for (char *c = report; *c; c++)   /* test names are the bundle's text */
      if (((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f) *c = '?';
    fprintf(stderr, "lane-gateway: the tests of %s, revision %s:\n%s", g->cfg.policy,
            lane_bundle_revision(b), report);
  } else {
    snprintf(rev, rcap, "%s", lane_bundle_revision(b));
    json_t *m = json_loads(lane_bundle_manifest(b), 0, NULL);
    const char *at = json_string_value(json_object_get(m, "built_at"));
    snprintf(built, sizeof ((gw_policy *)0)->built_at, "%s", at ? at : "");
    json_decref(m);
    p = lane_bundle_take_program(b);
  }
  free(report);
  lane_bundle_free(b);
  return p;
}

/* The program in bytes (a bare .lanec or a bundle), its revision into
 * rev: NULL with why. */
static lane_program *program_of(gw *g, const fetch *f, char *rev, size_t rcap, char *built,
                                char *why, size_t cap) {
  lane_error err;
  built[0] = 0;
  static const char lanec_magic[8] = {(char)0x89, 'L', 'N', 'C', 0x0d, 0x0a, 0x1a, 0x0a};
  if (f->body.n < 8 || memcmp(f->body.p, lanec_magic, 8))
    return bundle_program(g, f, rev, rcap, built, why, cap);
  if (g->key_set)
    return snprintf(why, cap, "%s: policy_key is set, so only a signed bundle is accepted, and "
                    "this is a bare .lanec (make one with `lane build --sign`)", g->cfg.policy),
           NULL;
  lane_program *p = lane_load(f->body.p, f->body.n, &err);
  if (!p) return snprintf(why, cap, "%s: %s", g->cfg.policy, err.message), NULL;
  snprintf(rev, rcap, "lanec-%016llx", (unsigned long long)lane_program_checksum(p));
  return p;
}

/* The checks a program passes before the gateway serves it. */
static int servable(gw *g, const lane_program *p, char *why, size_t cap) {
  if (lane_route(p, g->cfg.route) < 0)
    return snprintf(why, cap, "%s: the policy has no route '%s' (the gateway's \"route\")",
                    g->cfg.policy, g->cfg.route), -1;
  return 0;
}

/* With policy_key, a signed bundle built before the one served is an
 * old release: someone who controls the source could roll the gateway
 * back with it. Refused unless reload.allow_rollback; 1 when servable. */
static int not_older(gw *g, const char *rev, const char *built, char *why, size_t cap) {
  const gw_policy *cur = g->pol;
  if (!g->key_set || g->cfg.allow_rollback || !built[0] || !cur->built_at[0] ||
      strcmp(built, cur->built_at) >= 0)
    return 1;
  snprintf(why, cap, "%s: revision %s was built at %s, before the revision served (%s, built at "
           "%s): a rollback (set reload.allow_rollback to allow it)", g->cfg.policy, rev, built,
           cur->revision, cur->built_at);
  return 0;
}

/* ---------------------------------------------------------------------
 * Policies served
 * ------------------------------------------------------------------- */
static void policy_free(gw_policy *p) {
  lane_runtime_release(p->rt);
  free(p->model_provider);
  free(p);
}

void gw_policy_put(gw_policy *p) {
  if (p && atomic_fetch_sub(&p->refs, 1) == 1) policy_free(p);
}

gw_policy *gw_policy_get(gw *g) {
  pthread_mutex_lock(&g->pol_lock);
  gw_policy *p = g->pol;
  atomic_fetch_add(&p->refs, 1);
  pthread_mutex_unlock(&g->pol_lock);
  return p;
}

/* The policy of the view active now (the caller holds reload_lock, so it
 * is the program just swapped in); says which providers it lacks. */
static gw_policy *policy_new(gw *g, const char *rev, const char *built, uint64_t digest) {
  gw_policy *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  atomic_init(&p->refs, 1);
  p->rt = lane_runtime_acquire(g->rt);
  p->prog = lane_runtime_program(p->rt);
  p->generation = lane_runtime_generation(p->rt);
  p->digest = digest;
  snprintf(p->revision, sizeof p->revision, "%s", rev);
  snprintf(p->built_at, sizeof p->built_at, "%s", built);
  int n = lane_model_count(p->prog);
  p->model_provider = malloc(sizeof(int) * (size_t)(n ? n : 1));
  if (!p->model_provider) { policy_free(p); return NULL; }
  const char *warned[64];
  int nwarned = 0;
  for (int m = 0; m < n; m++) {
    const char *prov = lane_model_provider(p->prog, m);
    p->model_provider[m] = -1;
    for (int i = 0; i < g->cfg.nproviders; i++)
      if (!strcmp(g->cfg.providers[i].name, prov)) p->model_provider[m] = i;
    int seen = 0;
    for (int i = 0; i < nwarned; i++) seen |= !strcmp(warned[i], prov);
    if (p->model_provider[m] < 0 && !seen && nwarned < 64) {
      warned[nwarned++] = prov;
      fprintf(stderr, "lane-gateway: note: no provider \"%s\" in the config; its models are "
              "skipped\n", prov);
    }
  }
  p->f_input = lane_field(p->prog, "input_tokens");
  p->f_output = lane_field(p->prog, "max_output_tokens");
  p->f_cached = lane_field(p->prog, "cached_tokens");
  return p;
}

static void publish(gw *g, gw_policy *p) {
  pthread_mutex_lock(&g->pol_lock);
  gw_policy *old = g->pol;
  g->pol = p;
  pthread_mutex_unlock(&g->pol_lock);
  gw_policy_put(old);   /* freed by the last request that holds it */
  char labels[240] = "", gen[32];
  snprintf(gen, sizeof gen, "%llu", (unsigned long long)p->generation);
  gw_label(labels, sizeof labels, "revision", p->revision);
  gw_label(labels, sizeof labels, "generation", gen);
  gw_metrics_zero(g->metrics, "lane_gateway_policy_info");
  gw_metrics_set(g->metrics, "lane_gateway_policy_info", labels, 1);
  gw_metrics_set(g->metrics, "lane_gateway_policy_generation", "", (double)p->generation);
}

static void record(gw *g, const char *cause, const char *result, const char *text) {
  char labels[240] = "";
  gw_label(labels, sizeof labels, "cause", cause);
  gw_label(labels, sizeof labels, "result", result);
  gw_metrics_add(g->metrics, "lane_gateway_reloads_total", labels, 1);
  int failed = !strcmp(result, "failed");
  if (failed) gw_metrics_add(g->metrics, "lane_gateway_reload_failures_total", "", 1);
  /* The count and the result change together: /healthz reads both under
   * pol_lock, so it never shows a reload counted with the result before. */
  pthread_mutex_lock(&g->pol_lock);
  atomic_fetch_add(failed ? &g->reload_failures : &g->reloads, 1);
  snprintf(g->last_reload, sizeof g->last_reload, "%s", text);
  g->last_reload_ms = wall_ms();
  pthread_mutex_unlock(&g->pol_lock);
  fprintf(stderr, "lane-gateway: reload (%s): %s\n", cause, text);
}

int gw_policy_start(gw *g, char *why, size_t cap) {
  pthread_mutex_init(&g->pol_lock, NULL);
  pthread_mutex_init(&g->reload_lock, NULL);
  pthread_mutex_init(&g->poll_lock, NULL);
  pthread_cond_init(&g->poll_cv, NULL);
  if (g->cfg.policy_key) {
    lane_error kerr;
    if (lane_key_load_public(g->cfg.policy_key, g->pubkey, &kerr) != LANE_OK)
      return snprintf(why, cap, "policy_key %s", kerr.message), -1;
    g->key_set = 1;
  }
  fetch f = {{0}, (size_t)g->cfg.max_policy_bytes, 0, ""};
  char rev[160], built[40];
  int got = is_url(g->cfg.policy) ? get_url(g, &f, why, cap) : get_file(g, &f, why, cap);
  if (got == 0) snprintf(why, cap, "%s: 304 Not Modified to a first request", g->cfg.policy);
  lane_program *p = got > 0 ? program_of(g, &f, rev, sizeof rev, built, why, cap) : NULL;
  uint64_t digest = fnv1a(f.body.p ? f.body.p : "", f.body.n);
  gw_buf_free(&f.body);
  if (!p) return -1;
  if (!g->cfg.route && lane_route_name(p, 0)) g->cfg.route = strdup(lane_route_name(p, 0));
  lane_error err;
  /* The coarse clock: a decision reads it once, for a few ns instead of a
   * system call's tens; it moves by the kernel tick (1-4 ms). */
  lane_runtime_options ro;
  memset(&ro, 0, sizeof ro);
  ro.clock = lane_clock_coarse;
  if (!g->cfg.route) {
    snprintf(why, cap, "%s: the policy has no route", g->cfg.policy);
  } else if (servable(g, p, why, cap) == 0 && (g->rt = lane_runtime_new_with(p, &ro, &err)) == NULL) {
    snprintf(why, cap, "%s", err.message);
  }
  if (!g->rt) { lane_program_free(p); return -1; }
  /* The first program stays the gateway's (lane_runtime_new does not take
   * it; lane_runtime_swap takes the later ones): gw_policy_stop frees it
   * after the runtime. */
  g->first = p;
  gw_policy *pol = policy_new(g, rev, built, digest);
  if (!pol) return snprintf(why, cap, "out of memory"), -1;
  snprintf(g->etag, sizeof g->etag, "%s", f.etag);
  publish(g, pol);
  record(g, "start", "ok", pol->revision);
  return 0;
}

void gw_policy_stop(gw *g) {
  if (g->pol) {
    gw_policy_put(g->pol);
    g->pol = NULL;
  }
  lane_runtime_free(g->rt);
  g->rt = NULL;
  lane_program_free(g->first);
  g->first = NULL;
}

int gw_reload(gw *g, const char *cause) {
  char why[640], rev[160], text[900], built[40];
  pthread_mutex_lock(&g->reload_lock);
  fetch f = {{0}, (size_t)g->cfg.max_policy_bytes, 0, ""};
  int got = is_url(g->cfg.policy) ? get_url(g, &f, why, sizeof why)
                                  : get_file(g, &f, why, sizeof why);
  uint64_t digest = fnv1a(f.body.p ? f.body.p : "", f.body.n);
  int rc = -1;
  lane_program *p = NULL;
  if (got > 0 && g->refused_digest == digest && digest != g->pol->digest &&
      !strcmp(cause, "poll")) {
    rc = -2;   /* refused already, bytes unchanged: not tested again until they change */
  } else if (got == 0 || (got > 0 && digest == g->pol->digest)) {
    snprintf(text, sizeof text, "unchanged: still %s", g->pol->revision);
    record(g, cause, "unchanged", text);
    rc = 0;
  } else if (got > 0 && (p = program_of(g, &f, rev, sizeof rev, built, why, sizeof why)) != NULL &&
             servable(g, p, why, sizeof why) == 0 && not_older(g, rev, built, why, sizeof why)) {
    lane_state_report rep;
    lane_error err;
    memset(&rep, 0, sizeof rep);
    if (lane_runtime_swap(g->rt, p, &rep, &err) != LANE_OK) {
      snprintf(why, sizeof why, "%s: %s", g->cfg.policy, err.message);
    } else {
      p = NULL;   /* the runtime's now */
      gw_policy *pol = policy_new(g, rev, built, digest);
      if (!pol) {
        snprintf(why, sizeof why, "out of memory");
      } else {
        publish(g, pol);
        if (f.etag[0]) snprintf(g->etag, sizeof g->etag, "%s", f.etag);
        snprintf(text, sizeof text, "now serving %s (generation %llu): %u budgets kept, %u "
                 "dropped, %u new; %u models kept, %u dropped%s%.*s", pol->revision,
                 (unsigned long long)pol->generation, rep.budgets_kept, rep.budgets_dropped,
                 rep.budgets_new, rep.models_kept, rep.models_dropped, rep.notes[0] ? "; " : "",
                 (int)strcspn(rep.notes, "\n"), rep.notes);
        record(g, cause, "ok", text);
        rc = 1;
      }
    }
  }
  if (rc == -2) {
    rc = -1;
  } else if (rc < 0) {
    snprintf(text, sizeof text, "refused, still serving %s: %s", g->pol->revision, why);
    record(g, cause, "failed", text);
    if (got > 0) g->refused_digest = digest;
  }
  lane_program_free(p);
  gw_buf_free(&f.body);
  pthread_mutex_unlock(&g->reload_lock);
  return rc;
}

/* ---------------------------------------------------------------------
 * The poller and /healthz
 * ------------------------------------------------------------------- */
static void *poll_loop(void *arg) {
  gw *g = arg;
  pthread_mutex_lock(&g->poll_lock);
  while (!g->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += g->cfg.poll_s;
    while (!g->stopping && pthread_cond_timedwait(&g->poll_cv, &g->poll_lock, &until) == 0) {
    }
    if (g->stopping) break;
    pthread_mutex_unlock(&g->poll_lock);
    gw_reload(g, "poll");
    pthread_mutex_lock(&g->poll_lock);
  }
  pthread_mutex_unlock(&g->poll_lock);
  return NULL;
}

int gw_poller_start(gw *g) {
  if (g->cfg.poll_s <= 0) return 0;
  if (pthread_create(&g->poller, NULL, poll_loop, g)) return -1;
  g->poller_on = 1;
  return 0;
}

void gw_poller_stop(gw *g) {
  if (!g->poller_on) return;
  pthread_mutex_lock(&g->poll_lock);
  g->stopping = 1;
  pthread_cond_signal(&g->poll_cv);
  pthread_mutex_unlock(&g->poll_lock);
  pthread_join(g->poller, NULL);
  g->poller_on = 0;
}

char *gw_health_json(gw *g) {
  gw_policy *p = gw_policy_get(g);
  pthread_mutex_lock(&g->pol_lock);
  json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:{s:s, s:I}, s:I, s:I}", "status", "ok",
                        "revision", p->revision, "generation", (json_int_t)p->generation,
                        "policy", g->cfg.policy, "last_reload", "result", g->last_reload,
                        "at_ms", (json_int_t)g->last_reload_ms, "reloads",
                        (json_int_t)atomic_load(&g->reloads), "reload_failures",
                        (json_int_t)atomic_load(&g->reload_failures));
  pthread_mutex_unlock(&g->pol_lock);
  gw_policy_put(p);
  lane_redis_stats st;
  if (o && g->redis && lane_redis_get_stats(g->redis, &st) == LANE_OK)
    json_object_set_new(o, "redis", json_pack("{s:b, s:I, s:I, s:I, s:s}", "connected", st.connected,
                                              "journal_nanos", (json_int_t)st.pending_nanos,
                                              "held_keys", (json_int_t)st.holds, "rounds",
                                              (json_int_t)st.rounds, "last_error", st.last_error));
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (s) {
    size_t n = strlen(s);
    char *nl = realloc(s, n + 2);
    if (nl) {
      memcpy(nl + n, "\n", 2);
      s = nl;
    }
  }
  return s;
}
