/*
 * builtins.h -- the one table of builtin functions. The checker picks an
 * overload by name, call style and argument types; the evaluator and the
 * emitter use the same row (ast_node.ref of the N_CALL).
 */
#ifndef LANE_BUILTINS_H
#define LANE_BUILTINS_H

typedef enum sema_bfn {
  BF_SIZE, BF_STARTS, BF_ENDS, BF_CONTAINS, BF_BUCKET, BF_INT, BF_UINT,
  BF_DOUBLE, BF_STRING, BF_HAS, BF_CHARAT, BF_SUBSTR, BF_INDEX, BF_LASTINDEX, BF_TRIM, BF_BOOL, BF_DYN,
  BF_MATH, BF_GREATEST, BF_LEAST, BF_ALL, BF_EXISTS, BF_EXISTS_ONE, BF_MAP, BF_FILTER,
  BF_TLIST, BF_TMAP, BF_LOWER, BF_UPPER, BF_REPLACE, BF_SPLIT, BF_JOIN
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

#endif
