/*
 * lane_redis.h -- liblane-redis: budgets and model health shared by a
 * fleet of processes through Redis (hiredis). A library of its own, so
 * liblane stays libc-only; vm/redis/README.md says how it works and what
 * it guarantees.
 *
 *   lane_redis *rs = lane_redis_attach(rt, &opt, &err);  // starts the sync thread
 *   ... decide, charge, observe on rt as always ...
 *   lane_redis_detach(rs);                                // last push, stops it
 *
 * Decisions never wait for Redis: they read the local runtime, which a
 * background thread keeps within one sync interval of the fleet.
 */
#ifndef LANE_REDIS_H
#define LANE_REDIS_H

#include "lane.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lane_redis_options {
  const char *url;          /* redis://[:password@]host[:port][/db]
                               (default port 6379, db 0) */
  const char *prefix;       /* key prefix (default "lane:") */
  const char *instance;     /* this process's id in the fleet (default
                               host-pid-random); unique per process */
  uint32_t    sync_ms;      /* push and pull every this many ms
                               (default 100): the staleness bound */
  uint32_t    timeout_ms;   /* connect and command timeout (default 200) */
  int         no_leases;    /* 1: share spend but do not lease slices
                               (fleet overspend then bounded by what the
                               fleet spends in one sync interval) */
  /* Warnings (Redis lost, back, a key past the exact range), one line
   * each; NULL writes them to stderr as "lane-redis: ...". */
  void      (*warn)(void *ctx, const char *line);
  void       *warn_ctx;
} lane_redis_options;

typedef struct lane_redis lane_redis;

/* Connects (once, without failing if Redis is away: the runtime then runs
 * local-only and the thread keeps trying), sets rt's fleet hooks and
 * starts the sync thread. rt must be a runtime handle (lane_runtime_new)
 * with no fleet hooks yet, and not be shared yet. NULL with err filled
 * for a bad url or option (LANE_EARG) or no memory/thread. */
LANE_API lane_redis *lane_redis_attach(lane_runtime *rt, const lane_redis_options *opt,
                                       lane_error *err);
/* Stops the thread after one last sync (pushing what it can), removes the
 * hooks and frees the adapter. Call when no call runs on the runtime;
 * free the runtime after. Returns the nano-dollars of this process's
 * charges Redis never acknowledged (0: nothing was lost to the fleet). */
LANE_API int64_t lane_redis_detach(lane_redis *rs);
/* Runs one sync round now on the calling thread's behalf and waits for it
 * (tests, and hosts that want a push before a save). LANE_OK when Redis
 * answered, LANE_EARG when it is away. */
LANE_API int lane_redis_sync(lane_redis *rs);

typedef struct lane_redis_stats {
  int      connected;        /* 1 while Redis answers */
  uint64_t rounds;           /* sync rounds that reached Redis */
  uint64_t failures;         /* rounds that found Redis away or failing */
  uint64_t disconnects;      /* times Redis was lost */
  uint64_t reconnects;       /* times it answered again after that */
  uint64_t keys;             /* budget keys this process syncs */
  uint64_t pending_nanos;    /* own charges Redis has not acknowledged:
                                the journal */
  uint64_t journal_entries;  /* (key, period) records with such charges */
  uint64_t pushed_nanos;     /* own charges acknowledged, ever */
  uint64_t holds;            /* keys held now: this process spent its
                                slice and waits for another */
  uint64_t leases;           /* slices granted, ever */
  uint64_t last_round_ms;    /* clock ms of the last round that reached
                                Redis (0 never) */
  uint64_t worst_round_us;   /* slowest round that reached Redis */
  char     last_error[160];  /* why Redis was last away ("" none): its
                                first 159 bytes (a warning line carries
                                up to 511) */
} lane_redis_stats;
LANE_API int lane_redis_get_stats(lane_redis *rs, lane_redis_stats *out);

/* This process's own view of a model over the last minute -- the calls
 * it observed itself, not the fleet's (lane_model_stats reads the fleet's).
 * LANE_EARG for an unknown model name or NULL. */
typedef struct lane_redis_model_view {
  uint64_t calls, failures;
  double   p50_ms, p95_ms;   /* 0 without answered calls */
} lane_redis_model_view;
LANE_API int lane_redis_model_own(lane_redis *rs, const char *model, lane_redis_model_view *out);

#ifdef __cplusplus
}
#endif
#endif /* LANE_REDIS_H */
