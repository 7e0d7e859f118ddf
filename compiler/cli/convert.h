/*
 * convert.h -- `lane convert`: traces and request bodies as request
 * records (convert.c).
 */
#ifndef LANE_CONVERT_H
#define LANE_CONVERT_H

#include <stdio.h>

#include "lane.h"

typedef struct convert_opts {
  const char *const *sets;  /* trace: "FIELD=VALUE" for every record */
  int         nsets;
  long        users;        /* trace: > 0: a user id per row, of this many */
  FILE       *out, *err;
} convert_opts;

/* Converts a trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens); rows it
 * cannot read are named and skipped. 0, or 2 when the file is not a trace
 * or cannot be read or written. */
int convert_trace(const convert_opts *o, const char *path);

/* Converts one OpenAI or Anthropic request body (text, len bytes, from
 * path) into a record of p's request fields; a sensitive field is written
 * as "redacted". 0; 1 when the body is refused (named, skipped); 2 when
 * writing fails. */
int convert_body(const convert_opts *o, const lane_program *p, const char *path,
                 const char *text, size_t len);

#endif
