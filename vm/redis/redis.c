/*
 * redis.c -- liblane-redis: a fleet's budgets and model health on Redis.
 *
 * liblane calls two hooks (lane_runtime_set_fleet): `charged` after each
 * charge and `observed` after each call. They record this process's own
 * figures in the adapter's tables, under its mutex, and never touch the
 * network. A thread wakes every sync_ms (or at once when a key's slice
 * runs low) and, with the mutex released for the I/O:
 *
 *   budgets  for each (budget, key) this process has charged in the
 *            window, one script call (SYNC_LUA) that pushes the process's
 *            own total of each period -- an absolute figure per instance,
 *            so a retry after a lost reply, or a Redis that came back
 *            empty, counts each charge exactly once -- adds the difference
 *            to the period's spend with INCRBY, reads the window's spend,
 *            and grants a slice of what is left (the lease) when asked.
 *            The thread then adds what the rest of the fleet spent to the
 *            local runtime (lane_runtime_add_fleet_spend) and holds or
 *            frees the key (lane_runtime_hold_key) by its slice.
 *   feed     each pushed key also goes, with the time, into its budget's
 *            sorted set; each round reads the keys pushed lately to the
 *            budgets of the program served, and a key this process never
 *            charged is synced (read only) in the next round.
 *   health   this process's calls since the last round (calls, failures,
 *            latency buckets) with HINCRBY into the model's key for this
 *            second, then the other processes' new calls replayed into the
 *            local window (lane_runtime_observe_fleet): a breaker opened by
 *            failures elsewhere opens here within a round.
 *
 * Redis away: the round fails, the runtime runs on what it knows (last
 * fleet figures plus its own charges), holds are lifted (a lease cannot
 * be renewed), and the own totals not yet acknowledged stay in the tables
 * -- the journal -- until a round reaches Redis again. vm/redis/README.md
 * has the guarantees and the key layout.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lane_redis.h"

#define HP_MS      1000u     /* one health key per model per second */
#define HRECS      4         /* health seconds a model remembers */
#define HPULL      3         /* health seconds pulled each round */
#define OWN_SLOTS  6         /* the own view: six slots of 10 s */
#define OWN_MS     10000u
#define NF         (2 + LANE_LATENCY_BUCKETS)  /* calls, failures, buckets */
#define EXACT_MAX  (INT64_C(1) << 53)  /* Lua numbers are doubles */
#define SLICE_DIV  256       /* smallest slice: limit / 256 */
#define LEASE_TTL_ROUNDS 20  /* a silent process's slice lapses after this */

typedef struct rper {        /* one period of a key */
  uint64_t p;
  int      used;
  int64_t  own, acked;       /* this process's spend; what Redis holds of it */
  int64_t  applied;          /* the rest of the fleet's, added locally */
  int64_t  allow;            /* this process's slice, all it may spend */
} rper;

typedef struct rbud {
  char    *name;
  uint64_t period_ms, window_ms;
  uint32_t span;
  int      key_type;
  int64_t  limit;            /* nano-dollars, the program's last seen */
} rbud;

typedef struct rkey {
  uint32_t     bud;
  uint64_t     h;
  int          held;
  uint64_t     held_p;
  double       rate;         /* own spend per round, smoothed */
  int64_t      seen_own;     /* own total at the last round */
  uint8_t      pull_only;    /* never charged here: known from the feed */
  uint8_t      dirty;        /* pull_only: changed in the fleet, sync it */
  rper        *ring;         /* span entries */
  struct rkey *next;
} rkey;

typedef struct rorphan { uint32_t bud; uint64_t h, p; int64_t own, acked; } rorphan;

typedef struct hrec { uint64_t q; uint32_t pushed[NF], applied[NF]; } hrec;

typedef struct rmodel {
  char    *name;
  uint32_t delta[NF];        /* own calls not pushed yet */
  hrec     rec[HRECS];
  struct { uint64_t s; uint32_t v[NF]; } own[OWN_SLOTS];
} rmodel;

typedef struct job {         /* one key's script call */
  rkey    *k;
  int      pushes;           /* sends own spend Redis has not acknowledged */
  uint32_t bud;
  uint64_t h, P;
  int64_t  want;
  int      orphan;           /* index into the orphan copy, or -1 */
} job;

struct lane_redis {
  lane_runtime   *rt;
  char           *host, *user, *pass, *prefix, *inst;
  int             port, db;
  uint32_t        sync_ms, timeout_ms;
  int             leases;
  void          (*warn)(void *, const char *);
  void           *warn_ctx;

  pthread_t       thr;
  pthread_mutex_t mu;
  pthread_cond_t  cv, done;
  int             stop, wake;
  uint64_t        req_seq, served_seq;
  int             served_ok;

  redisContext   *c;         /* the thread's own */
  char            sha[48];
  int             connected; /* Redis answered the last command */
  int             enforce;   /* slices are held to: a round has run since
                                Redis (re)connected (read by hooks, mu) */
  uint64_t        next_try;  /* monotonic us: the next connect attempt */
  uint64_t        feed_since; /* keys changed since then are pulled */

  rbud           *buds;
  uint32_t        nbuds;
  rkey          **tab;
  uint32_t        tcap, nkeys;
  rorphan        *orph;
  uint32_t        norph, corph;
  rmodel        **models;
  uint32_t        nmodels;
  /* the last program observed (and its checksum, should its address be
   * reused): its model indexes to their tables, found by name once */
  const lane_program *mprog;
  uint64_t        msum;
  rmodel        **mmap;

  lane_redis_stats st;
};

static const char SYNC_LUA[] =
  "local inst, n = ARGV[1], tonumber(ARGV[2])\n"
  "local limit, want, now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
  "local res, total = {}, 0\n"
  "for i = 1, n do\n"
  "  local sk, xk = KEYS[2*i-1], KEYS[2*i]\n"
  "  local own = ARGV[6+n+i]\n"
  "  local mine = tonumber(redis.call('HGET', xk, 'o:'..inst) or '0')\n"
  "  if own ~= '-1' and tonumber(own) > mine then\n"
  "    redis.call('INCRBY', sk, string.format('%.0f', tonumber(own) - mine))\n"
  "    redis.call('HSET', xk, 'o:'..inst, own)\n"
  "    mine = tonumber(own)\n"
  "    redis.call('PEXPIRE', sk, ARGV[6+i])\n"
  "    redis.call('PEXPIRE', xk, ARGV[6+i])\n"
  "  end\n"
  "  local s = tonumber(redis.call('GET', sk) or '0')\n"
  "  res[2*i-1], res[2*i] = s, mine\n"
  "  total = total + s\n"
  "end\n"
  "local xk = KEYS[2*n]\n"
  "local a = tonumber(redis.call('HGET', xk, 'a:'..inst) or '0')\n"
  "local granted = 0\n"
  "if want > 0 then\n"
  "  local f, out = {}, 0\n"
  "  local h = redis.call('HGETALL', xk)\n"
  "  for j = 1, #h, 2 do f[h[j]] = h[j+1] end\n"
  "  for k, v in pairs(f) do\n"
  "    if string.sub(k, 1, 2) == 'a:' then\n"
  "      local id = string.sub(k, 3)\n"
  "      local o, t, av = tonumber(f['o:'..id] or '0'), tonumber(f['t:'..id] or '0'), tonumber(v)\n"
  "      if (id == inst or now - t < ttl) and av > o then out = out + av - o end\n"
  "    end\n"
  "  end\n"
  "  local rem = limit - total - out\n"
  "  if rem > 0 then\n"
  "    granted = math.min(want, rem)\n"
  "    if a < res[2*n] then a = res[2*n] end\n"
  "    a = a + granted\n"
  "    redis.call('HSET', xk, 'a:'..inst, string.format('%.0f', a))\n"
  "  end\n"
  "end\n"
  "if want > 0 or a > 0 then\n"
  "  redis.call('HSET', xk, 't:'..inst, ARGV[5])\n"
  "  redis.call('PEXPIRE', xk, ARGV[6+n])\n"
  "end\n"
  "res[2*n+1], res[2*n+2] = a, granted\n"
  "return res\n";

/* ---------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------- */
static int fail(lane_error *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->line = 0;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

static void warnf(lane_redis *rs, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (rs->warn) rs->warn(rs->warn_ctx, line);
  else fprintf(stderr, "lane-redis: %s\n", line);
}

static uint64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char *dupn(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = 0;
  }
  return d;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(lane_redis *rs, const char *url, lane_error *err) {
  const char *s = url;
  if (!s || strncmp(s, "redis://", 8)) return fail(err, LANE_EARG, "redis url '%s': must start with redis://", s ? s : "");
  s += 8;
  const char *at = strchr(s, '@'), *end = s + strcspn(s, "/");
  if (at && at < end) {
    const char *colon = memchr(s, ':', (size_t)(at - s));
    if (!colon) return fail(err, LANE_EARG, "redis url '%s': credentials are [user]:password@", url);
    if (colon > s) rs->user = dupn(s, (size_t)(colon - s));
    rs->pass = dupn(colon + 1, (size_t)(at - colon - 1));
    s = at + 1;
  }
  const char *hend = s + strcspn(s, ":/");
  if (hend == s) return fail(err, LANE_EARG, "redis url '%s': no host", url);
  rs->host = dupn(s, (size_t)(hend - s));
  rs->port = 6379;
  s = hend;
  if (*s == ':') {
    char *e;
    long v = strtol(s + 1, &e, 10);
    if (e == s + 1 || v < 1 || v > 65535 || (*e && *e != '/'))
      return fail(err, LANE_EARG, "redis url '%s': port must be 1..65535", url);
    rs->port = (int)v;
    s = e;
  }
  if (*s == '/' && s[1]) {
    char *e;
    long v = strtol(s + 1, &e, 10);
    if (e == s + 1 || *e || v < 0 || v > 1000000)
      return fail(err, LANE_EARG, "redis url '%s': the database is a number", url);
    rs->db = (int)v;
  } else if (*s && strcmp(s, "/")) {
    return fail(err, LANE_EARG, "redis url '%s': unexpected '%s'", url, s);
  }
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Tables (under mu)
 * ------------------------------------------------------------------- */
static int bud_of(lane_redis *rs, const lane_program *p, int budget) {
  lane_budget_info bi;
  if (lane_budget_describe(p, budget, &bi) != LANE_OK) return -1;
  double lim = bi.limit * 1e9 + 0.5;
  int64_t limit = lim < 9.2e18 ? (int64_t)lim : INT64_MAX;
  for (uint32_t i = 0; i < rs->nbuds; i++) {
    rbud *b = &rs->buds[i];
    if (b->period_ms == bi.period_ms && b->span == bi.periods && b->key_type == bi.key_type &&
        !strcmp(b->name, bi.name)) {
      b->limit = limit;
      return (int)i;
    }
  }
  rbud *nb = realloc(rs->buds, (rs->nbuds + 1) * sizeof *nb);
  if (!nb) return -1;
  rs->buds = nb;
  rbud *b = &nb[rs->nbuds];
  if (!(b->name = dupn(bi.name, strlen(bi.name)))) return -1;
  b->period_ms = bi.period_ms;
  b->window_ms = bi.window_ms;
  b->span = bi.periods;
  b->key_type = bi.key_type;
  b->limit = limit;
  return (int)rs->nbuds++;
}

/* The budget's index in p, or -1 when p has no budget that means it. */
static int bud_index(const rbud *b, const lane_program *p) {
  int i = lane_budget(p, b->name);
  lane_budget_info bi;
  if (i < 0 || lane_budget_describe(p, i, &bi) != LANE_OK) return -1;
  return bi.period_ms == b->period_ms && bi.periods == b->span && bi.key_type == b->key_type ? i : -1;
}

static uint32_t slot_of(lane_redis *rs, uint32_t bud, uint64_t h) {
  uint64_t x = (h ^ ((uint64_t)bud * 0x9e3779b97f4a7c15ull)) * 0xbf58476d1ce4e5b9ull;
  return (uint32_t)(x >> 32) & (rs->tcap - 1);
}

static rkey *key_find(lane_redis *rs, uint32_t bud, uint64_t h) {
  for (rkey *k = rs->tab[slot_of(rs, bud, h)]; k; k = k->next)
    if (k->bud == bud && k->h == h) return k;
  return NULL;
}

static rkey *key_get(lane_redis *rs, uint32_t bud, uint64_t h) {
  rkey *k = key_find(rs, bud, h);
  if (k) return k;
  if (rs->nkeys >= rs->tcap) {   /* grow: load factor 1 */
    uint32_t ncap = rs->tcap * 2;
    rkey **nt = calloc(ncap, sizeof *nt);
    if (nt) {
      rkey **old = rs->tab;
      uint32_t ocap = rs->tcap;
      rs->tab = nt;
      rs->tcap = ncap;
      for (uint32_t i = 0; i < ocap; i++)
        for (rkey *e = old[i], *n; e; e = n) {
          n = e->next;
          uint32_t s = slot_of(rs, e->bud, e->h);
          e->next = nt[s];
          nt[s] = e;
        }
      free(old);
    }
  }
  k = calloc(1, sizeof *k);
  if (!k) return NULL;
  k->ring = calloc(rs->buds[bud].span, sizeof *k->ring);
  if (!k->ring) {
    free(k);
    return NULL;
  }
  k->bud = bud;
  k->h = h;
  uint32_t s = slot_of(rs, bud, h);
  k->next = rs->tab[s];
  rs->tab[s] = k;
  rs->nkeys++;
  return k;
}

static void orphan(lane_redis *rs, uint32_t bud, uint64_t h, const rper *e) {
  if (e->own <= e->acked) return;
  if (rs->norph == rs->corph) {
    uint32_t n = rs->corph ? rs->corph * 2 : 16;
    rorphan *o = realloc(rs->orph, n * sizeof *o);
    if (!o) {
      warnf(rs, "no memory to journal %" PRId64 " nano-dollars of budget %s: they are lost to the fleet",
            e->own - e->acked, rs->buds[bud].name);
      return;
    }
    rs->orph = o;
    rs->corph = n;
  }
  rs->orph[rs->norph++] = (rorphan){bud, h, e->p, e->own, e->acked};
}

/* The entry of period p in k's ring, started afresh if it held an older
 * period (whose unacknowledged spend goes to the journal); NULL when the
 * ring holds a later period there (p is out of the window). */
static rper *per_get(lane_redis *rs, rkey *k, uint64_t p) {
  rper *e = &k->ring[p % rs->buds[k->bud].span];
  if (e->used && e->p == p) return e;
  if (e->used && e->p > p) return NULL;
  if (e->used) orphan(rs, k->bud, k->h, e);
  memset(e, 0, sizeof *e);
  e->used = 1;
  e->p = p;
  return e;
}

static int64_t slice_of(const lane_redis *rs, const rkey *k) {
  int64_t lim = rs->buds[k->bud].limit, s = lim / SLICE_DIV, r = (int64_t)(4 * k->rate);
  if (r > s) s = r;
  return s > 0 ? s : 1;
}

static rmodel *model_get(lane_redis *rs, const char *name) {
  for (uint32_t i = 0; i < rs->nmodels; i++)
    if (!strcmp(rs->models[i]->name, name)) return rs->models[i];
  rmodel **nm = realloc(rs->models, (rs->nmodels + 1) * sizeof *nm);
  if (!nm) return NULL;
  rs->models = nm;
  rmodel *m = calloc(1, sizeof *m);
  if (!m || !(m->name = dupn(name, strlen(name)))) {
    free(m);
    return NULL;
  }
  return nm[rs->nmodels++] = m;
}

/* Model `model` of program p's table: by index once p's map is built,
 * so an observation does not compare names. */
static rmodel *model_of(lane_redis *rs, const lane_program *p, int model) {
  int n = lane_model_count(p);
  if (model < 0 || model >= n) return NULL;
  if (rs->mprog != p || rs->msum != lane_program_checksum(p)) {
    free(rs->mmap);
    rs->mmap = calloc((size_t)n, sizeof *rs->mmap);
    rs->mprog = rs->mmap ? p : NULL;
    rs->msum = lane_program_checksum(p);
  }
  if (!rs->mmap) return model_get(rs, lane_model_name(p, model));
  if (!rs->mmap[model]) rs->mmap[model] = model_get(rs, lane_model_name(p, model));
  return rs->mmap[model];
}

static int model_index(const lane_program *p, const char *name) {
  int n = lane_model_count(p);
  for (int i = 0; i < n; i++)
    if (!strcmp(lane_model_name(p, i), name)) return i;
  return -1;
}

/* ---------------------------------------------------------------------
 * Hooks: on the charging or observing thread
 * ------------------------------------------------------------------- */
static void on_charged(void *ctx, lane_runtime *view, int budget, uint64_t h, uint64_t period,
                       int64_t nanos) {
  lane_redis *rs = ctx;
  pthread_mutex_lock(&rs->mu);
  int bi = bud_of(rs, lane_runtime_program(view), budget);
  rkey *k = bi < 0 ? NULL : key_get(rs, (uint32_t)bi, h);
  if (k) k->pull_only = 0;
  rper *e = k ? per_get(rs, k, period) : NULL;
  if (!e) {
    if (k) {   /* a period before the ring's: add to its journal record */
      uint32_t i = 0;
      while (i < rs->norph && !(rs->orph[i].bud == k->bud && rs->orph[i].h == h && rs->orph[i].p == period)) i++;
      if (i < rs->norph) {
        rs->orph[i].own += nanos;
      } else {
        rper tmp = {.p = period, .used = 1, .own = nanos};
        orphan(rs, k->bud, h, &tmp);
      }
    } else {
      warnf(rs, "no memory for a budget key: %" PRId64 " nano-dollars stay local", nanos);
    }
  } else {
    e->own = e->own > INT64_MAX - nanos ? INT64_MAX : e->own + nanos;
    if (rs->leases && rs->enforce) {
      if (e->own >= e->allow) {
        if (!k->held || k->held_p != period) {
          lane_runtime_hold_key(view, budget, h, period, 1);
          k->held = 1;
          k->held_p = period;
        }
        rs->wake = 1;
        pthread_cond_signal(&rs->cv);
      } else if (e->allow - e->own < slice_of(rs, k) / 2) {
        rs->wake = 1;
        pthread_cond_signal(&rs->cv);
      }
    }
  }
  pthread_mutex_unlock(&rs->mu);
}

static void on_observed(void *ctx, lane_runtime *view, int model, double ms, int status) {
  lane_redis *rs = ctx;
  int fail = status != LANE_CALL_OK && status != LANE_CALL_CLIENT_ERROR;
  uint64_t s = lane_runtime_now(view) / OWN_MS;
  pthread_mutex_lock(&rs->mu);
  rmodel *m = model_of(rs, lane_runtime_program(view), model);
  if (m) {
    int f = status == LANE_CALL_OK ? 2 + lane_latency_bucket(ms) : -1;
    m->delta[0]++;
    if (fail) m->delta[1]++;
    if (f >= 0) m->delta[f]++;
    __typeof__(m->own[0]) *o = &m->own[s % OWN_SLOTS];
    if (o->s != s + 1) {
      memset(o, 0, sizeof *o);
      o->s = s + 1;
    }
    o->v[0]++;
    if (fail) o->v[1]++;
    if (f >= 0) o->v[f]++;
  }
  pthread_mutex_unlock(&rs->mu);
}

/* ---------------------------------------------------------------------
 * The connection (the thread's)
 * ------------------------------------------------------------------- */
static void set_error(lane_redis *rs, const char *what) {
  pthread_mutex_lock(&rs->mu);
  snprintf(rs->st.last_error, sizeof rs->st.last_error, "%s", what);
  pthread_mutex_unlock(&rs->mu);
}

static void unhold_all(lane_redis *rs, lane_runtime *v) {
  const lane_program *p = lane_runtime_program(v);
  for (uint32_t i = 0; i < rs->tcap; i++)
    for (rkey *k = rs->tab[i]; k; k = k->next)
      if (k->held) {
        int b = bud_index(&rs->buds[k->bud], p);
        if (b >= 0) lane_runtime_hold_key(v, b, k->h, k->held_p, 0);
        k->held = 0;
      }
}

static void disconnect(lane_redis *rs, const char *why) {
  if (rs->c) redisFree(rs->c);
  rs->c = NULL;
  set_error(rs, why);
  lane_runtime *v = lane_runtime_acquire(rs->rt);
  pthread_mutex_lock(&rs->mu);
  int was = rs->connected;
  rs->connected = 0;
  rs->enforce = 0;
  rs->st.connected = 0;
  rs->st.failures++;
  if (was) rs->st.disconnects++;
  unhold_all(rs, v);
  pthread_mutex_unlock(&rs->mu);
  lane_runtime_release(v);
  if (was)
    warnf(rs, "lost Redis at %s:%d (%s): running local-only, journaling charges until it is back",
          rs->host, rs->port, why);
}

static redisReply *cmd(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  return r;
}

static int try_connect(lane_redis *rs) {
  char why[160];
  struct timeval tv = {rs->timeout_ms / 1000, (rs->timeout_ms % 1000) * 1000};
  redisContext *c = redisConnectWithTimeout(rs->host, rs->port, tv);
  if (!c || c->err) {
    snprintf(why, sizeof why, "connect: %s", c ? c->errstr : "no memory");
    if (c) redisFree(c);
    set_error(rs, why);
    return 0;
  }
  redisSetTimeout(c, tv);
  redisReply *r = NULL;
  const char *step = "AUTH";
  if (rs->pass) {
    r = rs->user ? cmd(c, "AUTH %s %s", rs->user, rs->pass) : cmd(c, "AUTH %s", rs->pass);
    if (!r || r->type == REDIS_REPLY_ERROR) goto bad;
    freeReplyObject(r);
  }
  step = "SELECT";
  if (rs->db) {
    r = cmd(c, "SELECT %d", rs->db);
    if (!r || r->type == REDIS_REPLY_ERROR) goto bad;
    freeReplyObject(r);
  }
  step = "SCRIPT LOAD";
  r = cmd(c, "SCRIPT LOAD %s", SYNC_LUA);
  if (!r || r->type != REDIS_REPLY_STRING || r->len >= sizeof rs->sha) goto bad;
  memcpy(rs->sha, r->str, r->len);
  rs->sha[r->len] = 0;
  freeReplyObject(r);
  rs->c = c;
  pthread_mutex_lock(&rs->mu);
  int again = rs->st.disconnects > 0 || rs->st.failures > 0;
  if (rs->st.disconnects > 0) rs->st.reconnects++;
  rs->connected = 1;
  rs->st.connected = 1;
  rs->st.last_error[0] = 0;
  pthread_mutex_unlock(&rs->mu);
  if (again) warnf(rs, "Redis at %s:%d answers again: reconciling the journal", rs->host, rs->port);
  return 1;
bad:
  snprintf(why, sizeof why, "%s: %s", step,
           r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") : c->errstr);
  if (r) freeReplyObject(r);
  redisFree(c);
  set_error(rs, why);
  return 0;
}

/* ---------------------------------------------------------------------
 * A round
 * ------------------------------------------------------------------- */
typedef struct hpush { rmodel *m; uint64_t q; uint32_t v[NF]; } hpush;

/* A key of (budget b, key h, period p): the spend (x 0) or its
 * instances' hash (x 1), malloc'd. The braces are Redis Cluster's hash
 * tag: every period of one budget key lives in one slot. */
static char *key_name(const lane_redis *rs, const rbud *b, uint64_t h, uint64_t p, int x) {
  size_t n = strlen(rs->prefix) + strlen(b->name) + 80;
  char *k = malloc(n);
  if (k)
    snprintf(k, n, "%sb:{%s:%016" PRIx64 "}:%" PRIu64 ":%" PRIu64 "%s", rs->prefix, b->name, h,
             b->period_ms, p, x ? ":x" : "");
  return k;
}

/* Appends one script call: periods P-span+1 .. P of (bud, h), own[i] the
 * own total to push for each (-1 none). 0 when out of memory. */
static int append_sync(lane_redis *rs, const rbud *b, uint64_t h, uint64_t P, uint32_t span,
                       const int64_t *own, int64_t want, uint64_t now) {
  enum { MAXA = 3 + 2 * 12 + 6 + 2 * 12 };
  char num[MAXA][32];
  char *keys[2 * 12] = {0};
  const char *argv[MAXA];
  size_t lens[MAXA];
  int n = 0, nk = 0, ok = 1;
#define ARG(...) (snprintf(num[n], sizeof num[n], __VA_ARGS__), argv[n] = num[n], lens[n] = strlen(num[n]), n++)
  argv[n] = "EVALSHA", lens[n] = 7, n++;
  argv[n] = rs->sha, lens[n] = strlen(rs->sha), n++;
  ARG("%u", 2 * span);
  for (uint32_t i = 0; i < span; i++)
    for (int x = 0; x < 2; x++) {
      char *k = keys[nk++] = key_name(rs, b, h, P + 1 - span + i, x);
      if (!k) ok = 0;
      argv[n] = k ? k : "", lens[n] = k ? strlen(k) : 0, n++;
    }
  argv[n] = rs->inst, lens[n] = strlen(rs->inst), n++;
  ARG("%u", span);
  ARG("%" PRId64, b->limit);
  ARG("%" PRId64, want);
  ARG("%" PRIu64, now);
  ARG("%" PRIu64, (uint64_t)rs->sync_ms * LEASE_TTL_ROUNDS);
  for (uint32_t i = 0; i < span; i++) {
    /* kept until the period leaves the window, and a minute more: a
     * relative time, so hosts with their own clocks still agree */
    uint64_t p = P + 1 - span + i, end = (p + 1) * b->period_ms + b->window_ms;
    ARG("%" PRIu64, (end > now ? end - now : 0) + 60000);
  }
  for (uint32_t i = 0; i < span; i++) ARG("%" PRId64, own[i]);
#undef ARG
  if (ok) ok = redisAppendCommandArgv(rs->c, n, argv, lens) == REDIS_OK;
  for (int i = 0; i < nk; i++) free(keys[i]);
  return ok;
}

/* One round: 1 when Redis answered all of it. */
static int round_once(lane_redis *rs) {
  uint64_t t0 = mono_us(), now = lane_runtime_now(rs->rt);
  if (!rs->c) {
    /* paced by the monotonic clock: the runtime's may be a host's own,
     * frozen or stepping (a round's `now` is only for periods) */
    if (t0 < rs->next_try) return 0;
    rs->next_try = t0 + 1000u * (rs->sync_ms > 250 ? rs->sync_ms : 250);
    if (!try_connect(rs)) {
      pthread_mutex_lock(&rs->mu);
      rs->st.failures++;
      pthread_mutex_unlock(&rs->mu);
      return 0;
    }
  }
  lane_runtime *v = lane_runtime_acquire(rs->rt);
  const lane_program *prog = lane_runtime_program(v);
  job *jobs = NULL;
  hpush *hp = NULL;
  rorphan *oc = NULL;
  uint32_t nj = 0, nh = 0, no = 0, nfb = 0, nfeed = 0, feed_at = 0;
  uint32_t *pbud = NULL;     /* the served program's budgets (their feeds) */
  char fault[160] = "";      /* why Redis failed this round */
  int answered = 0;          /* 1: Redis answered all of it */
  uint64_t q = now / HP_MS;
  const char *why = NULL;

  /* 1. What to send, copied under the lock. */
  pthread_mutex_lock(&rs->mu);
  for (uint32_t i = 0; i < rs->tcap; i++) {
    for (rkey **pk = &rs->tab[i], *k; (k = *pk);) {
      rbud *b = &rs->buds[k->bud];
      uint64_t P = now / b->period_ms;
      int live = k->dirty;   /* a key the feed named is read first */
      for (uint32_t j = 0; j < b->span; j++)
        if (k->ring[j].used && k->ring[j].p + b->span > P) live = 1;
      if (!live) {   /* out of the window: journal what is unsent, forget it */
        for (uint32_t j = 0; j < b->span; j++)
          if (k->ring[j].used) orphan(rs, k->bud, k->h, &k->ring[j]);
        *pk = k->next;
        free(k->ring);
        free(k);
        rs->nkeys--;
        continue;
      }
      pk = &k->next;
    }
  }
  uint32_t cj = rs->nkeys + rs->norph;
  jobs = calloc(cj ? cj : 1, sizeof *jobs);
  oc = rs->norph ? malloc(rs->norph * sizeof *oc) : NULL;
  if (!jobs || (rs->norph && !oc)) {
    pthread_mutex_unlock(&rs->mu);
    why = "no memory for a round";
    goto out;
  }
  for (uint32_t i = 0; i < rs->tcap; i++)
    for (rkey *k = rs->tab[i]; k; k = k->next) {
      if (k->pull_only && !k->dirty) continue;   /* nothing new in the fleet */
      k->dirty = 0;
      rbud *b = &rs->buds[k->bud];
      uint64_t P = now / b->period_ms;
      rper *e = &k->ring[P % b->span];
      int64_t own = e->used && e->p == P ? e->own : 0, allow = e->used && e->p == P ? e->allow : 0;
      int64_t want = 0;
      if (rs->leases && !k->pull_only && allow - own < slice_of(rs, k) / 2) want = slice_of(rs, k);
      jobs[nj++] = (job){k, 0, k->bud, k->h, P, want, -1};
    }
  no = rs->norph;
  if (no) memcpy(oc, rs->orph, no * sizeof *oc);
  for (uint32_t i = 0; i < no; i++) jobs[nj++] = (job){NULL, 0, oc[i].bud, oc[i].h, oc[i].p, 0, (int)i};
  /* The budgets of the program served now, whose feeds are read. */
  int npb = lane_budget_count(prog);
  pbud = calloc(npb > 0 ? (size_t)npb : 1, sizeof *pbud);
  for (int i = 0; pbud && i < npb; i++) {
    int bi = bud_of(rs, prog, i);
    if (bi >= 0) pbud[nfb++] = (uint32_t)bi;
  }
  hp = calloc(rs->nmodels ? rs->nmodels : 1, sizeof *hp);
  for (uint32_t i = 0; hp && i < rs->nmodels; i++) {
    rmodel *m = rs->models[i];
    if (!m->delta[0]) continue;
    hp[nh].m = m;
    hp[nh].q = q;
    memcpy(hp[nh].v, m->delta, sizeof m->delta);
    memset(m->delta, 0, sizeof m->delta);
    nh++;
  }
  /* 2. Send: the script calls, with each key's own totals. */
  for (uint32_t i = 0; i < nj; i++) {
    job *j = &jobs[i];
    rbud *b = &rs->buds[j->bud];
    int64_t own[12];
    uint32_t span = b->span;
    if (j->k) {
      for (uint32_t x = 0; x < span; x++) {
        uint64_t p = j->P + 1 - span + x;
        rper *e = &j->k->ring[p % span];
        own[x] = e->used && e->p == p ? e->own : -1;
        if (own[x] > e->acked) j->pushes = 1;
        if (own[x] >= EXACT_MAX) {
          warnf(rs, "budget %s key %016" PRIx64 ": this process's spend passed 2^53 nano-dollars in one period, "
                "the most the fleet script counts exactly; it is no longer pushed", b->name, j->h);
          own[x] = -1;
        }
      }
    } else {
      span = 1;
      own[0] = oc[j->orphan].own < EXACT_MAX ? oc[j->orphan].own : -1;
    }
    if (!append_sync(rs, b, j->h, j->P, span, own, j->want, now) && !why) why = "no memory for a round";
  }
  pthread_mutex_unlock(&rs->mu);
  if (why) goto restore;   /* the buffer may hold part of the round: start afresh */
  for (uint32_t i = 0; i < nh; i++) {
    const char *m = hp[i].m->name;
    uint64_t hq = hp[i].q;
    for (int f = 0; f < NF; f++) {
      if (!hp[i].v[f]) continue;
      char field[16];
      snprintf(field, sizeof field, f == 0 ? "c" : f == 1 ? "f" : "b%d", f - 2);
      redisAppendCommand(rs->c, "HINCRBY %sm:{%s}:%" PRIu64 " %s %u", rs->prefix, m, hq, field, hp[i].v[f]);
    }
    redisAppendCommand(rs->c, "PEXPIRE %sm:{%s}:%" PRIu64 " 120000", rs->prefix, m, hq);
    redisAppendCommand(rs->c, "SADD %sm:active:%" PRIu64 " %s", rs->prefix, hq, m);
    redisAppendCommand(rs->c, "PEXPIRE %sm:active:%" PRIu64 " 120000", rs->prefix, hq);
  }
  for (uint32_t d = 0; d < HPULL; d++)
    redisAppendCommand(rs->c, "SMEMBERS %sm:active:%" PRIu64, rs->prefix, q - d);
  /* The feed: each budget's keys by the time this process last pushed them,
   * so that processes which never charged a key still learn its spend. */
  pthread_mutex_lock(&rs->mu);
  uint8_t *pushed_bud = calloc(rs->nbuds ? rs->nbuds : 1, 1);
  for (uint32_t i = 0; i < nj; i++) {
    const job *j = &jobs[i];
    if (!j->k || !j->pushes) continue;
    const rbud *b = &rs->buds[j->bud];
    redisAppendCommand(rs->c, "ZADD %sbf:{%s}:%" PRIu64 " %" PRIu64 " %016" PRIx64, rs->prefix,
                       b->name, b->period_ms, now, j->h);
    nfeed++;
    if (pushed_bud) pushed_bud[j->bud] = 1;
  }
  for (uint32_t i = 0; pushed_bud && i < rs->nbuds; i++) {
    if (!pushed_bud[i]) continue;
    const rbud *b = &rs->buds[i];
    uint64_t keep = b->window_ms + 60000, old = now > keep ? now - keep : 0;
    redisAppendCommand(rs->c, "ZREMRANGEBYSCORE %sbf:{%s}:%" PRIu64 " -inf %" PRIu64, rs->prefix,
                       b->name, b->period_ms, old);
    redisAppendCommand(rs->c, "PEXPIRE %sbf:{%s}:%" PRIu64 " %" PRIu64, rs->prefix, b->name,
                       b->period_ms, keep);
    nfeed += 2;
  }
  for (uint32_t i = 0; i < nfb; i++) {
    const rbud *b = &rs->buds[pbud[i]];
    redisAppendCommand(rs->c, "ZRANGEBYSCORE %sbf:{%s}:%" PRIu64 " %" PRIu64 " +inf", rs->prefix,
                       b->name, b->period_ms, rs->feed_since);
  }
  pthread_mutex_unlock(&rs->mu);
  free(pushed_bud);

  /* 3. Read every reply before changing anything. */
  uint32_t nrep = nj;
  for (uint32_t i = 0; i < nh; i++) {
    for (int f = 0; f < NF; f++) nrep += hp[i].v[f] != 0;
    nrep += 3;
  }
  nrep += HPULL;
  feed_at = nrep;   /* the feed's replies: nfeed, then nfb reads */
  nrep += nfeed + nfb;
  redisReply **rep = calloc(nrep, sizeof *rep);
  if (!rep) { why = "no memory for a round"; goto restore; }
  for (uint32_t i = 0; i < nrep; i++) {
    void *r = NULL;
    if (redisGetReply(rs->c, &r) != REDIS_OK || !r) {
      why = rs->c->errstr[0] ? rs->c->errstr : "no reply";
      for (uint32_t x = 0; x < i; x++) freeReplyObject(rep[x]);
      free(rep);
      goto restore;
    }
    rep[i] = r;
    if (rep[i]->type == REDIS_REPLY_ERROR && !why) why = rep[i]->str;
  }
  if (why) {   /* an error reply: its text outlives the replies */
    snprintf(fault, sizeof fault, "%s", why);
    for (uint32_t x = 0; x < nrep; x++) freeReplyObject(rep[x]);
    free(rep);
    why = fault;
    goto restore;
  }

  /* 4. Apply: acknowledgements, the fleet's spend, slices and holds. */
  pthread_mutex_lock(&rs->mu);
  for (uint32_t i = 0; i < nj; i++) {
    job *j = &jobs[i];
    redisReply *r = rep[i];
    rbud *b = &rs->buds[j->bud];
    uint32_t span = j->k ? b->span : 1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * span + 2) continue;
    if (!j->k) {   /* a journal record: acknowledged or not */
      long long mine = r->element[1]->integer;
      if (mine >= oc[j->orphan].own) {
        rs->st.pushed_nanos += (uint64_t)(oc[j->orphan].own - oc[j->orphan].acked);
        oc[j->orphan].own = -1;   /* done */
      }
      continue;
    }
    rkey *k = key_find(rs, j->bud, j->h);
    if (!k) continue;
    int bidx = bud_index(b, prog);
    for (uint32_t x = 0; x < span; x++) {
      uint64_t p = j->P + 1 - span + x;
      long long s = r->element[2 * x]->integer, mine = r->element[2 * x + 1]->integer;
      rper *e = &k->ring[p % span];
      if (!(e->used && e->p == p)) {
        if (s - mine <= 0) continue;
        if (!(e = per_get(rs, k, p))) continue;
      }
      if (mine > e->acked) {
        int64_t got = (mine < e->own ? mine : e->own) - e->acked;
        if (got > 0) rs->st.pushed_nanos += (uint64_t)got;
        e->acked = mine;
      }
      int64_t others = s - mine;
      if (others > e->applied) {
        if (bidx >= 0) lane_runtime_add_fleet_spend(v, bidx, k->h, p, others - e->applied);
        e->applied = others;
      }
    }
    rper *e = per_get(rs, k, j->P);
    if (!e) continue;
    long long allow = r->element[2 * span]->integer, granted = r->element[2 * span + 1]->integer;
    e->allow = allow;   /* Redis's word: it only grows, unless Redis lost it */
    if (granted > 0) rs->st.leases++;
    int64_t tot = 0;
    for (uint32_t x = 0; x < b->span; x++)
      if (k->ring[x].used) tot += k->ring[x].own;
    k->rate = 0.7 * k->rate + 0.3 * (double)(tot > k->seen_own ? tot - k->seen_own : 0);
    k->seen_own = tot;
    if (!rs->leases || bidx < 0) continue;
    int hold = e->own >= e->allow && (e->own > 0 || (j->want > 0 && granted == 0));
    if (hold && j->want == 0 && !(k->held && k->held_p == j->P)) {
      /* No slice was asked for, yet none is left: Redis lost it (it came
       * back empty). Ask in the next round, now, rather than hold. */
      hold = 0;
      rs->wake = 1;
    }
    if (hold && (!k->held || k->held_p != j->P)) {
      lane_runtime_hold_key(v, bidx, k->h, j->P, 1);
      k->held = 1;
      k->held_p = j->P;
    } else if (!hold && k->held) {
      lane_runtime_hold_key(v, bidx, k->h, k->held_p, 0);
      k->held = 0;
    }
  }
  rs->enforce = 1;   /* every key has had its slice asked for */
  for (uint32_t i = 0; i < nfb; i++) {   /* keys the fleet changed */
    const redisReply *r = rep[feed_at + nfeed + i];
    if (r->type != REDIS_REPLY_ARRAY) continue;
    for (size_t e = 0; e < r->elements; e++) {
      if (r->element[e]->type != REDIS_REPLY_STRING) continue;
      char *end;
      uint64_t h = strtoull(r->element[e]->str, &end, 16);
      if (*end || !h) continue;
      rkey *k = key_find(rs, pbud[i], h);
      if (!k) {
        if (!(k = key_get(rs, pbud[i], h))) continue;
        k->pull_only = 1;
      }
      if (k->pull_only && !k->dirty) {
        k->dirty = 1;
        rs->wake = 1;   /* the next round reads it at once */
      }
    }
  }
  rs->feed_since = now > 2000 ? now - 2000 : 0;   /* a margin for skewed clocks */
  if (no) {   /* drop the journal records Redis took; keep the rest and new ones */
    uint32_t w = 0;
    for (uint32_t i = 0; i < no; i++)
      if (oc[i].own >= 0) rs->orph[w++] = rs->orph[i];
    memmove(rs->orph + w, rs->orph + no, (rs->norph - no) * sizeof *rs->orph);
    rs->norph = w + rs->norph - no;
  }
  for (uint32_t i = 0; i < nh; i++) {   /* what was pushed, by second */
    rmodel *m = hp[i].m;
    hrec *h = &m->rec[hp[i].q % HRECS];
    if (h->q != hp[i].q + 1) {
      memset(h, 0, sizeof *h);
      h->q = hp[i].q + 1;
    }
    for (int f = 0; f < NF; f++) h->pushed[f] += hp[i].v[f];
  }
  pthread_mutex_unlock(&rs->mu);

  /* 5. The fleet's calls: the models active in the last seconds. */
  uint32_t base = feed_at - HPULL;
  for (uint32_t d = 0; d < HPULL; d++) {
    redisReply *r = rep[base + d];
    if (r->type != REDIS_REPLY_ARRAY) continue;
    for (size_t e = 0; e < r->elements; e++)
      redisAppendCommand(rs->c, "HGETALL %sm:{%s}:%" PRIu64, rs->prefix, r->element[e]->str, q - d);
  }
  for (uint32_t d = 0; d < HPULL; d++) {
    redisReply *r = rep[base + d];
    if (r->type != REDIS_REPLY_ARRAY) continue;
    for (size_t e = 0; e < r->elements; e++) {
      void *hr = NULL;
      if (redisGetReply(rs->c, &hr) != REDIS_OK || !hr) {
        snprintf(fault, sizeof fault, "%s", rs->c->errstr[0] ? rs->c->errstr : "no reply");
        for (uint32_t x = 0; x < nrep; x++) freeReplyObject(rep[x]);
        free(rep);
        disconnect(rs, fault);   /* the health pushed stays pushed */
        goto out;
      }
      redisReply *h = hr;
      uint32_t fleet[NF] = {0};
      if (h->type == REDIS_REPLY_ARRAY)
        for (size_t f = 0; f + 1 < h->elements; f += 2) {
          const char *name = h->element[f]->str;
          long long val = atoll(h->element[f + 1]->str);
          int idx = !strcmp(name, "c") ? 0 : !strcmp(name, "f") ? 1 : name[0] == 'b' ? 2 + atoi(name + 1) : -1;
          if (idx >= 0 && idx < NF && val > 0) fleet[idx] = (uint32_t)val;
        }
      freeReplyObject(h);
      const char *mname = r->element[e]->str;
      int mi = model_index(prog, mname);
      pthread_mutex_lock(&rs->mu);
      rmodel *m = mi >= 0 ? model_get(rs, mname) : NULL;
      if (m) {
        uint64_t hq = q - d;
        hrec *hc = &m->rec[hq % HRECS];
        if (hc->q != hq + 1) {
          memset(hc, 0, sizeof *hc);
          hc->q = hq + 1;
        }
        uint32_t add[NF];
        for (int f = 0; f < NF; f++) {
          int64_t others = (int64_t)fleet[f] - hc->pushed[f];
          add[f] = others > hc->applied[f] ? (uint32_t)(others - hc->applied[f]) : 0;
          hc->applied[f] += add[f];
        }
        uint32_t ok = 0;
        for (int f = 2; f < NF; f++) {
          if (add[f]) lane_runtime_observe_fleet(v, mi, lane_latency_bucket_ms(f - 2), LANE_CALL_OK, add[f]);
          ok += add[f];
        }
        uint32_t other = add[0] > ok + add[1] ? add[0] - ok - add[1] : 0;
        if (other) lane_runtime_observe_fleet(v, mi, 0, LANE_CALL_CLIENT_ERROR, other);
        if (add[1]) lane_runtime_observe_fleet(v, mi, 0, LANE_CALL_SERVER_ERROR, add[1]);
      }
      pthread_mutex_unlock(&rs->mu);
    }
  }
  for (uint32_t x = 0; x < nrep; x++) freeReplyObject(rep[x]);
  free(rep);
  {
    uint64_t took = mono_us() - t0;
    pthread_mutex_lock(&rs->mu);
    rs->st.rounds++;
    rs->st.last_round_ms = now;
    if (took > rs->st.worst_round_us) rs->st.worst_round_us = took;
    pthread_mutex_unlock(&rs->mu);
  }
  answered = 1;
  goto done;

restore:   /* Redis took none of this round: its health counts go back */
  pthread_mutex_lock(&rs->mu);
  for (uint32_t i = 0; i < nh; i++)
    for (int f = 0; f < NF; f++) hp[i].m->delta[f] += hp[i].v[f];
  pthread_mutex_unlock(&rs->mu);
  if (why != fault) snprintf(fault, sizeof fault, "%s", why);
  why = NULL;
  disconnect(rs, fault);
out:
  if (why) {
    set_error(rs, why);
    pthread_mutex_lock(&rs->mu);
    rs->st.failures++;
    pthread_mutex_unlock(&rs->mu);
  }
done:
  free(jobs);
  free(hp);
  free(oc);
  free(pbud);
  lane_runtime_release(v);
  return answered;
}

static void *thread_main(void *arg) {
  lane_redis *rs = arg;
  pthread_mutex_lock(&rs->mu);
  while (!rs->stop) {
    uint64_t req = rs->req_seq;
    rs->wake = 0;
    pthread_mutex_unlock(&rs->mu);
    int ok = round_once(rs);
    pthread_mutex_lock(&rs->mu);
    rs->served_seq = req;
    rs->served_ok = ok;
    pthread_cond_broadcast(&rs->done);
    if (rs->stop || rs->wake || rs->req_seq != req) continue;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)rs->sync_ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    while (!rs->stop && !rs->wake && rs->req_seq == req &&
           pthread_cond_timedwait(&rs->cv, &rs->mu, &ts) != ETIMEDOUT) {
    }
  }
  pthread_mutex_unlock(&rs->mu);
  return NULL;
}

/* ---------------------------------------------------------------------
 * The API
 * ------------------------------------------------------------------- */
static void free_all(lane_redis *rs) {
  if (rs->c) redisFree(rs->c);
  for (uint32_t i = 0; rs->tab && i < rs->tcap; i++)
    for (rkey *k = rs->tab[i], *n; k; k = n) {
      n = k->next;
      free(k->ring);
      free(k);
    }
  free(rs->tab);
  for (uint32_t i = 0; i < rs->nbuds; i++) free(rs->buds[i].name);
  free(rs->buds);
  for (uint32_t i = 0; i < rs->nmodels; i++) {
    free(rs->models[i]->name);
    free(rs->models[i]);
  }
  free(rs->models);
  free(rs->mmap);
  free(rs->orph);
  free(rs->host);
  free(rs->user);
  free(rs->pass);
  free(rs->prefix);
  free(rs->inst);
  free(rs);
}

lane_redis *lane_redis_attach(lane_runtime *rt, const lane_redis_options *opt, lane_error *err) {
  if (!rt || !opt) {
    fail(err, LANE_EARG, "lane_redis_attach: no runtime or options");
    return NULL;
  }
  lane_redis *rs = calloc(1, sizeof *rs);
  if (!rs) {
    fail(err, LANE_ENOMEM, "lane_redis_attach: out of memory");
    return NULL;
  }
  if (parse_url(rs, opt->url, err) != LANE_OK) {
    free_all(rs);
    return NULL;
  }
  const char *prefix = opt->prefix ? opt->prefix : "lane:";
  if (strlen(prefix) > 128 || strchr(prefix, '{') || strchr(prefix, '}')) {
    fail(err, LANE_EARG, "redis prefix '%s': at most 128 bytes, without { or }", prefix);
    free_all(rs);
    return NULL;
  }
  char inst[128];
  if (opt->instance) {
    if (!*opt->instance || strlen(opt->instance) > 64 || strpbrk(opt->instance, " {}:")) {
      fail(err, LANE_EARG, "redis instance '%s': 1 to 64 bytes, without spaces, { } or :", opt->instance);
      free_all(rs);
      return NULL;
    }
    snprintf(inst, sizeof inst, "%s", opt->instance);
  } else {
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    host[strcspn(host, " {}:")] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(inst, sizeof inst, "%.40s-%ld-%04lx", host, (long)getpid(),
             (unsigned long)((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)rs) & 0xffff);
  }
  rs->rt = rt;
  rs->prefix = dupn(prefix, strlen(prefix));
  rs->inst = dupn(inst, strlen(inst));
  rs->sync_ms = opt->sync_ms ? opt->sync_ms : 100;
  rs->timeout_ms = opt->timeout_ms ? opt->timeout_ms : 200;
  rs->leases = !opt->no_leases;
  rs->warn = opt->warn;
  rs->warn_ctx = opt->warn_ctx;
  rs->tcap = 64;
  rs->tab = calloc(rs->tcap, sizeof *rs->tab);
  if (!rs->prefix || !rs->inst || !rs->tab) {
    fail(err, LANE_ENOMEM, "lane_redis_attach: out of memory");
    free_all(rs);
    return NULL;
  }
  pthread_mutex_init(&rs->mu, NULL);
  pthread_cond_init(&rs->cv, NULL);
  pthread_cond_init(&rs->done, NULL);
  if (try_connect(rs)) {
    rs->enforce = 1;   /* no key has a slice to take back yet */
  } else {
    rs->st.failures++;
    warnf(rs, "Redis at %s:%d is not answering (%s): running local-only until it does", rs->host,
          rs->port, rs->st.last_error);
  }
  lane_fleet_hooks hooks = {rs, on_charged, on_observed};
  if (lane_runtime_set_fleet(rt, &hooks) != LANE_OK) {
    fail(err, LANE_EARG, "lane_redis_attach: rt must be a runtime handle (not a view) with no "
         "store attached yet");
    free_all(rs);
    return NULL;
  }
  if (pthread_create(&rs->thr, NULL, thread_main, rs)) {
    lane_runtime_set_fleet(rt, NULL);
    fail(err, LANE_ENOMEM, "lane_redis_attach: cannot start the sync thread");
    free_all(rs);
    return NULL;
  }
  return rs;
}

int lane_redis_sync(lane_redis *rs) {
  if (!rs) return LANE_EARG;
  pthread_mutex_lock(&rs->mu);
  uint64_t want = ++rs->req_seq;
  pthread_cond_signal(&rs->cv);
  while (rs->served_seq < want) pthread_cond_wait(&rs->done, &rs->mu);
  int ok = rs->served_ok;
  pthread_mutex_unlock(&rs->mu);
  return ok ? LANE_OK : LANE_EARG;
}

static int64_t pending(const lane_redis *rs, uint64_t *entries) {
  int64_t sum = 0;
  uint64_t n = 0;
  for (uint32_t i = 0; i < rs->tcap; i++)
    for (rkey *k = rs->tab[i]; k; k = k->next)
      for (uint32_t j = 0; j < rs->buds[k->bud].span; j++)
        if (k->ring[j].used && k->ring[j].own > k->ring[j].acked) {
          sum += k->ring[j].own - k->ring[j].acked;
          n++;
        }
  for (uint32_t i = 0; i < rs->norph; i++) {
    sum += rs->orph[i].own - rs->orph[i].acked;
    n++;
  }
  if (entries) *entries = n;
  return sum;
}

int64_t lane_redis_detach(lane_redis *rs) {
  if (!rs) return 0;
  pthread_mutex_lock(&rs->mu);
  rs->stop = 1;
  pthread_cond_signal(&rs->cv);
  pthread_mutex_unlock(&rs->mu);
  pthread_join(rs->thr, NULL);
  rs->next_try = 0;
  round_once(rs);   /* the last push; nothing else runs now */
  lane_runtime_set_fleet(rs->rt, NULL);
  lane_runtime *v = lane_runtime_acquire(rs->rt);
  unhold_all(rs, v);
  lane_runtime_release(v);
  int64_t left = pending(rs, NULL);
  if (left > 0)
    warnf(rs, "detaching with %" PRId64 " nano-dollars of charges Redis never acknowledged", left);
  pthread_mutex_destroy(&rs->mu);
  pthread_cond_destroy(&rs->cv);
  pthread_cond_destroy(&rs->done);
  free_all(rs);
  return left;
}

int lane_redis_get_stats(lane_redis *rs, lane_redis_stats *out) {
  if (!rs || !out) return LANE_EARG;
  pthread_mutex_lock(&rs->mu);
  *out = rs->st;
  out->keys = rs->nkeys;
  out->pending_nanos = (uint64_t)pending(rs, &out->journal_entries);
  uint64_t holds = 0;
  for (uint32_t i = 0; i < rs->tcap; i++)
    for (rkey *k = rs->tab[i]; k; k = k->next) holds += k->held != 0;
  out->holds = holds;
  pthread_mutex_unlock(&rs->mu);
  return LANE_OK;
}

int lane_redis_model_own(lane_redis *rs, const char *name, lane_redis_model_view *out) {
  if (!rs || !name || !out) return LANE_EARG;
  uint64_t s = lane_runtime_now(rs->rt) / OWN_MS;
  uint64_t v[NF] = {0};
  int found = 0;
  pthread_mutex_lock(&rs->mu);
  for (uint32_t i = 0; i < rs->nmodels; i++) {
    rmodel *m = rs->models[i];
    if (strcmp(m->name, name)) continue;
    found = 1;
    for (int j = 0; j < OWN_SLOTS; j++)
      if (m->own[j].s && m->own[j].s - 1 + OWN_SLOTS > s)
        for (int f = 0; f < NF; f++) v[f] += m->own[j].v[f];
  }
  pthread_mutex_unlock(&rs->mu);
  if (!found) return LANE_EARG;
  memset(out, 0, sizeof *out);
  out->calls = v[0];
  out->failures = v[1];
  uint64_t ok = 0;
  for (int f = 2; f < NF; f++) ok += v[f];
  for (int pass = 0; pass < 2 && ok; pass++) {
    double rank = (pass ? 0.95 : 0.50) * (double)ok, cum = 0;
    for (int f = 2; f < NF; f++) {
      cum += (double)v[f];
      if (v[f] && cum >= rank) {
        double lo = lane_latency_bucket_ms(f - 2),
               hi = f - 1 < LANE_LATENCY_BUCKETS ? lane_latency_bucket_ms(f - 1) : lo * 2;
        *(pass ? &out->p95_ms : &out->p50_ms) = (lo + hi) / 2;
        break;
      }
    }
  }
  return LANE_OK;
}
