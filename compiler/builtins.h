/*
 * builtins.h -- the one table of builtin functions. The checker picks an
 * overload by name, call style and argument types; the evaluator and the
 * emitter use the same row (ast_node.ref of the N_CALL).
 */
#ifndef LANE_BUILTINS_H
#define LANE_BUILTINS_H

#include <stddef.h>

typedef enum sema_bfn {
  BF_SIZE, BF_STARTS, BF_ENDS, BF_CONTAINS, BF_BUCKET, BF_INT, BF_UINT,
  BF_DOUBLE, BF_STRING, BF_HAS, BF_CHARAT, BF_SUBSTR, BF_INDEX, BF_LASTINDEX, BF_TRIM, BF_BOOL, BF_DYN,
  BF_MATH, BF_GREATEST, BF_LEAST, BF_ALL, BF_EXISTS, BF_EXISTS_ONE, BF_MAP, BF_FILTER,
  BF_TLIST, BF_TMAP, BF_LOWER, BF_UPPER, BF_REPLACE, BF_SPLIT, BF_JOIN, BF_TIME, BF_TSPART,
  BF_DURPART, BF_TYPE, BF_MATCHES
} sema_bfn;

typedef struct sema_builtin {
  const char *name;     /* as written; "math.ceil" for math.ceil(x) */
  int         method;   /* 1: called as recv.name(args), recv is args[0] */
  int         nargs;    /* arguments, the receiver included */
  int         args[4];  /* argument types (TY_LIST: any list; has() takes a
                           request field of any type, dyn() a value of any
                           type and greatest/least one or more numbers:
                           args[0] unused) */
  int         result;   /* result type */
  int         fn;       /* sema_bfn: what the evaluator computes (BF_MATH:
                           the opcode's operation) */
  int         op;       /* opcode the emitter writes, -2 none (identity),
                           -1 constants only */
  const char *doc;      /* one line for the language reference */
} sema_builtin;

extern const sema_builtin sema_builtins[];
extern const int sema_nbuiltins;

/* The part (SEM_TS_*) accessor `name` reads (getHours: SEM_TS_HOURS), or -1. */
int sema_ts_part(const char *name);
/* The POSIX TZ rule of time zone `name` (n bytes): an IANA name, read from
 * the TZif file under $TZDIR or /usr/share/zoneinfo (its footer: the
 * zone's current rule), "UTC", or a fixed offset "+05:30", "-02:30",
 * "02:00". 0 with the rule in out, -1 with why, or -2 when memory ran out. */
int sema_tz_rule(const char *name, size_t n, char *out, size_t cap, char *why, size_t whyn);

#endif
