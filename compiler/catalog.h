/*
 * catalog.h -- price catalogs in the LiteLLM model_prices_and_context_window
 * JSON format: import into lane modules, fetch over HTTP, diff.
 *
 * Each entry point is a whole `lane catalog` subcommand: it prints its
 * report to out, its errors to err, and returns the command's exit code
 * (0 ok, 1 findings, 2 usage or input error).
 */
#ifndef LANE_CATALOG_H
#define LANE_CATALOG_H

#include <stdio.h>

/* lane catalog import FILE.json -o DIR [--provider P]... : writes one
 * DIR/<provider>.lane per provider (all providers when none is named). */
int catalog_import(const char *json_path, const char *out_dir,
                   const char *const *providers, int nproviders,
                   FILE *out, FILE *err);

/* Options of lane catalog fetch. Zero values mean the defaults. */
typedef struct catalog_fetch_opts {
  long        timeout_ms;     /* whole transfer (default 30000) */
  long        connect_ms;     /* connection (default 10000) */
  long        max_redirects;  /* default 3 */
  long        max_bytes;      /* body size cap (default 64 MiB) */
  const char *ca_file;        /* extra CA bundle (tests), or NULL */
} catalog_fetch_opts;

/* lane catalog fetch URL -o FILE: downloads with libcurl (TLS verified),
 * sends If-None-Match with the ETag saved beside FILE (FILE.etag), and
 * replaces FILE atomically only once the new body parses as a catalog. */
int catalog_fetch(const char *url, const char *out_path,
                  const catalog_fetch_opts *opts, FILE *out, FILE *err);

/* lane catalog diff OLD.json NEW.json: added and removed models and every
 * price change. Returns 0 when identical, 1 when there are differences. */
int catalog_diff(const char *old_path, const char *new_path, FILE *out, FILE *err);

#endif /* LANE_CATALOG_H */
