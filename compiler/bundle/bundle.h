/*
 * bundle.h -- liblane-bundle's insides, for the lane command and the
 * tests: the container (format.c), making a bundle from a compile
 * (build.c) and key files (keys.c). Hosts use lane_bundle.h alone. The
 * format is documented in README.md beside this file.
 */
#ifndef LANE_BUNDLE_INT_H
#define LANE_BUNDLE_INT_H

#include <stdarg.h>
#include <stdint.h>

#include "lane_bundle.h"
#include "lanec.h"

/* ---- the container (format.c) ---- */
#define BUNDLE_MAGIC        "LANEBNDL"   /* 8 bytes, no NUL */
#define BUNDLE_HEADER       16           /* magic, u32 version, u32 entry count */
#define BUNDLE_ENTRY_HEAD   8            /* u8 kind, u8 0, u16 name bytes, u32 data bytes */
#define BUNDLE_TRAILER      32           /* SHA-256 of every byte before it */
#define BUNDLE_MAX_FILES    4096         /* SOURCE entries */
#define BUNDLE_MAX_NAME     4096         /* bytes of a SOURCE entry's name */
#define BUNDLE_MAX_MANIFEST (1u << 20)   /* bytes of the MANIFEST */
#define BUNDLE_SIG_BYTES    64           /* an Ed25519 signature */
#define BUNDLE_MAX_REVISION 128          /* bytes of a revision */
/* A revision: 1 to 128 letters, digits and . _ - + : / @ (so it can be
 * shown anywhere as it is); checked when a bundle is built and opened. */
int bundle_revision_ok(const char *r);

/* Entry kinds, in the order a bundle holds them. */
enum bundle_kind {
  BK_MANIFEST = 1,   /* the manifest, JSON; no name */
  BK_PROGRAM  = 2,   /* the .lanec bytes; no name */
  BK_SOURCE   = 3,   /* a file the compiler read; named by its path */
  BK_SIG      = 4    /* Ed25519 over every byte before it; named by the key id */
};
const char *bundle_kind_name(int kind);

/* One entry, pointing into the bundle's bytes. */
typedef struct bundle_entry {
  int                  kind;    /* a bundle_kind */
  const char          *name;    /* nname bytes, not NUL-ended */
  size_t               nname;
  const unsigned char *data;    /* n bytes */
  size_t               n;
  size_t               off;     /* where the entry's header starts */
} bundle_entry;

/* Checks the container: magic, version, bounds, entry kinds and order,
 * names, the trailing digest. LANE_OK with *out (malloc'd, *count
 * entries: MANIFEST, PROGRAM, SOURCE..., then SIG if signed), or a status
 * with err's reason. Reads nothing outside [b, b + n). */
int bundle_parse(const unsigned char *b, size_t n, bundle_entry **out, int *count,
                 lane_error *err);

/* A bundle being written: bytes grow as entries are added. */
typedef struct bundle_writer {
  unsigned char *b;       /* the bytes so far (malloc'd) */
  size_t         n, cap;  /* used and allocated */
  uint32_t       count;   /* entries announced in the header */
  int            nomem;   /* an allocation failed: finish says so */
} bundle_writer;
/* Starts a bundle of count entries (the SIG included, if there is to be one). */
void bundle_w_start(bundle_writer *w, uint32_t count);
void bundle_w_entry(bundle_writer *w, int kind, const char *name, const void *data, size_t n);
/* Signs every byte so far with sk (libsodium's 64-byte secret key) and
 * adds the SIG entry, named by the key id. */
void bundle_w_sign(bundle_writer *w, const unsigned char sk[64]);
/* Appends the digest. LANE_OK with w->b and w->n the bundle (the caller
 * frees w->b), else the writer is freed and err says why. */
int bundle_w_finish(bundle_writer *w, lane_error *err);

/* "sha256:" and 64 hex digits over files, which the caller holds sorted
 * by path (strcmp), as a bundle does -- only those under "std/" when
 * stdlib_only -- as the README defines it. */
void bundle_digest(const lanec_file *files, int n, int stdlib_only, char out[72]);
/* The id of a public key: LANE_BUNDLE_KEY_ID hex digits of its SHA-256. */
void bundle_key_id(const unsigned char pk[32], char id[LANE_BUNDLE_KEY_ID + 1]);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void bundle_hex(const unsigned char *b, size_t n, char *out);
/* Fills err with code and a message; a message cut at the end of
 * err->message ends in "...". Always returns code. */
int bundle_err(lane_error *err, int code, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
int bundle_verr(lane_error *err, int code, const char *fmt, va_list ap)
  __attribute__((format(printf, 3, 0)));
/* s (n bytes) quoted for a message: control characters and bytes that
 * are not UTF-8 as '?', at most about 60 bytes, then "..." when cut. */
const char *bundle_quote(const char *s, size_t n, char buf[72]);
/* Whether a path may name a SOURCE entry: 1 to BUNDLE_MAX_NAME bytes of
 * UTF-8 without control characters. */
int bundle_name_ok(const char *s, size_t n);
/* libsodium's sodium_init: LANE_OK, or LANE_ENOMEM with err when it fails. */
int bundle_sodium(lane_error *err);

/* ---- making a bundle (build.c) ---- */
typedef struct bundle_build_opts {
  const char          *revision;   /* --revision, or NULL: 12 hex digits of the source digest */
  const unsigned char *sk;         /* a secret key (64 bytes) to sign with, or NULL */
  long long            built_at;   /* seconds since 1970 (UTC), for built_at */
} bundle_build_opts;

/* Makes a bundle of r, the successful compile of the policy at r's root
 * with options co (its -I directories, -O0 and tests file are recorded so
 * that the bundle compiles again the same way): the program, every file
 * the compile read, stdlib modules named "std/PATH.lane", and the
 * snapshots its tests name, read from disk now. LANE_OK with *out
 * (malloc'd) and *n, else a status and err's reason (a snapshot cannot
 * be read, a limit is passed). The result is not tested: lane build opens
 * it and runs lane_bundle_test before writing it. */
int bundle_make(const lanec_result *r, const lanec_opts *co, const bundle_build_opts *o,
                unsigned char **out, size_t *n, lane_error *err);

/* ---- keys (keys.c) ---- */
/* Writes a new key pair: NAME.key (the secret key, created with mode
 * 0600) and NAME.pub; refuses to replace either. LANE_OK with the key id
 * in id, else a status and err's reason (nothing is left behind). */
int bundle_keygen(const char *name, char id[LANE_BUNDLE_KEY_ID + 1], lane_error *err);
/* Reads a secret key file: one line, "lane-ed25519-secret " and 128 hex
 * digits, readable by its owner alone, whose public half matches its
 * seed. LANE_OK with libsodium's 64-byte key in sk, else LANE_EARG
 * (unreadable, too open) or LANE_EFORMAT with the reason. */
int bundle_key_load_secret(const char *path, unsigned char sk[64], lane_error *err);

#endif /* LANE_BUNDLE_INT_H */
