/*
 * format.c -- the bundle container: reading it strictly (every length
 * bounded by what is left, every rule of README.md checked, the trailing
 * digest), writing it, the digests over its sources and key ids.
 */
#include "bundle.h"
#include "sema.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

static const char *const kind_names[] = {"?", "MANIFEST", "PROGRAM", "SOURCE", "SIG"};

const char *bundle_kind_name(int kind) {
  return kind >= BK_MANIFEST && kind <= BK_SIG ? kind_names[kind] : kind_names[0];
}

int bundle_err(lane_error *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bundle_verr(err, code, fmt, ap);
  va_end(ap);
  return code;
}

int bundle_verr(lane_error *err, int code, const char *fmt, va_list ap) {
  if (!err) return code;
  int k = vsnprintf(err->message, sizeof err->message, fmt, ap);
  if (k < 0) snprintf(err->message, sizeof err->message, "(no message)");
  else if ((size_t)k >= sizeof err->message)   /* cut: say so */
    memcpy(err->message + sizeof err->message - 4, "...", 4);
  err->code = code;
  err->line = 0;
  return code;
}

const char *bundle_quote(const char *s, size_t n, char buf[72]) {
  size_t k = 0, i = 0;
  while (i < n && k < 60) {
    int esc;
    size_t u = text_unit(s + i, n - i, &esc);
    if (esc || s[i] == '\t') buf[k++] = '?';
    else { memcpy(buf + k, s + i, u); k += u; }
    i += u;
  }
  if (i < n) { memcpy(buf + k, "...", 3); k += 3; }
  buf[k] = 0;
  return buf;
}

int bundle_name_ok(const char *s, size_t n) {
  if (n == 0 || n > BUNDLE_MAX_NAME) return 0;
  for (size_t i = 0; i < n;) {
    int esc;
    size_t k = text_unit(s + i, n - i, &esc);
    if (esc || s[i] == '\t') return 0;
    i += k;
  }
  return 1;
}

int bundle_sodium(lane_error *err) {
  if (sodium_init() < 0) return bundle_err(err, LANE_ENOMEM, "libsodium could not be initialised");
  return LANE_OK;
}

void bundle_hex(const unsigned char *b, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[2 * n] = 0;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le(unsigned char *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- reading ---- */

/* The rules one entry breaks given its place, or NULL. */
static const char *entry_rule(const bundle_entry *e, int i, int count) {
  if (i == 0 && e->kind != BK_MANIFEST) return "a bundle starts with its MANIFEST";
  if (i == 1 && e->kind != BK_PROGRAM) return "the second entry must be the PROGRAM";
  if (i >= 2 && (e->kind == BK_MANIFEST || e->kind == BK_PROGRAM))
    return "a bundle holds one MANIFEST and one PROGRAM, first";
  if (e->kind == BK_SIG && i != count - 1) return "a SIG must be the last entry";
  if ((e->kind == BK_MANIFEST || e->kind == BK_PROGRAM) && e->nname)
    return "the MANIFEST and the PROGRAM have no name";
  if (e->kind == BK_MANIFEST && e->n > BUNDLE_MAX_MANIFEST) return "a MANIFEST is at most 1 MiB";
  if (e->kind == BK_SIG) {
    if (e->nname != LANE_BUNDLE_KEY_ID) return "a SIG is named by a key id of 16 hex digits";
    for (size_t k = 0; k < e->nname; k++)
      if (!strchr("0123456789abcdef", e->name[k]) || !e->name[k])
        return "a SIG is named by a key id of 16 hex digits";
  }
  if (e->kind == BK_SIG && e->n != BUNDLE_SIG_BYTES) return "a SIG holds 64 bytes";
  if (e->kind == BK_SOURCE && !bundle_name_ok(e->name, e->nname))
    return "a SOURCE is named by a path of 1 to 4096 bytes of UTF-8 without control characters";
  if (e->kind == BK_SOURCE) {   /* in normal form, so that no two names mean one file */
    char name[BUNDLE_MAX_NAME + 1], norm[BUNDLE_MAX_NAME + 2];
    memcpy(name, e->name, e->nname);
    name[e->nname] = 0;
    if (sema_path_norm(name, norm, sizeof norm) != 0 || strcmp(name, norm))
      return "a SOURCE's path is in normal form (no empty, '.' or removable '..' parts)";
  }
  return NULL;
}

/* Byte order of two names; the shorter first on a tie. */
static int name_cmp(const char *a, size_t na, const char *b, size_t nb) {
  int c = memcmp(a, b, na < nb ? na : nb);
  return c ? c : na < nb ? -1 : na > nb;
}

/* Reads entry i at *pos (before end); LANE_OK or a status. */
static int read_entry(const unsigned char *b, size_t *pos, size_t end, int i, int count,
                      bundle_entry *e, lane_error *err) {
  char q[72];
  if (end - *pos < BUNDLE_ENTRY_HEAD)
    return bundle_err(err, LANE_EFORMAT, "truncated: entry %d of %d is cut off", i + 1, count);
  const unsigned char *h = b + *pos;
  e->off = *pos;
  e->kind = h[0];
  e->nname = (size_t)h[2] | (size_t)h[3] << 8;
  e->n = get32(h + 4);
  if (e->kind < BK_MANIFEST || e->kind > BK_SIG)
    return bundle_err(err, LANE_EFORMAT, "entry %d of %d has an unknown kind (%d)", i + 1, count,
                      e->kind);
  if (h[1])
    return bundle_err(err, LANE_EFORMAT, "entry %d of %d: its reserved byte is %d, not 0", i + 1,
                      count, h[1]);
  size_t left = end - *pos - BUNDLE_ENTRY_HEAD;
  if (e->nname > left || e->n > left - e->nname)
    return bundle_err(err, LANE_EFORMAT, "truncated: entry %d of %d (%s) needs %zu bytes, %zu are "
                      "left", i + 1, count, bundle_kind_name(e->kind), e->nname + e->n, left);
  e->name = (const char *)h + BUNDLE_ENTRY_HEAD;
  e->data = h + BUNDLE_ENTRY_HEAD + e->nname;
  const char *why = entry_rule(e, i, count);
  if (why)
    return bundle_err(err, LANE_EFORMAT, "entry %d of %d (%s%s%s%s): %s", i + 1, count,
                      bundle_kind_name(e->kind), e->nname ? " '" : "",
                      e->nname ? bundle_quote(e->name, e->nname, q) : "", e->nname ? "'" : "", why);
  *pos += BUNDLE_ENTRY_HEAD + e->nname + e->n;
  return LANE_OK;
}

int bundle_parse(const unsigned char *b, size_t n, bundle_entry **out, int *count,
                 lane_error *err) {
  *out = NULL;
  *count = 0;
  if (!b) return bundle_err(err, LANE_EARG, "no bytes given");
  if (n < 8 ? memcmp(b, BUNDLE_MAGIC, n) != 0 : memcmp(b, BUNDLE_MAGIC, 8) != 0)
    return bundle_err(err, LANE_EFORMAT, "not a lane bundle (it does not start with %s)",
                      BUNDLE_MAGIC);
  if (n < BUNDLE_HEADER + BUNDLE_TRAILER)
    return bundle_err(err, LANE_EFORMAT, "truncated: %zu bytes, and a bundle has at least %d", n,
                      BUNDLE_HEADER + BUNDLE_TRAILER);
  if (n > LANE_BUNDLE_MAX_BYTES)
    return bundle_err(err, LANE_EFORMAT, "%zu bytes; a bundle is at most %u MiB", n,
                      LANE_BUNDLE_MAX_BYTES >> 20);
  uint32_t version = get32(b + 8), want = BUNDLE_MAX_FILES + 3;
  if (version != LANE_BUNDLE_VERSION)
    return bundle_err(err, LANE_EVERSION, "bundle format version %u; this lane reads version %d",
                      version, LANE_BUNDLE_VERSION);
  uint32_t c = get32(b + 12);
  if (c < 2 || c > want)
    return bundle_err(err, LANE_EFORMAT, "the header announces %u entries; a bundle has 2 (a "
                      "manifest and a program) to %u", c, want);
  bundle_entry *e = calloc(c, sizeof *e);
  if (!e) return bundle_err(err, LANE_ENOMEM, "out of memory reading %u entries", c);
  size_t pos = BUNDLE_HEADER, end = n - BUNDLE_TRAILER;
  int rc = LANE_OK;
  for (uint32_t i = 0; i < c && rc == LANE_OK; i++) {
    rc = read_entry(b, &pos, end, (int)i, (int)c, &e[i], err);
    if (rc == LANE_OK && i > 2 && e[i].kind == BK_SOURCE && e[i - 1].kind == BK_SOURCE &&
        name_cmp(e[i - 1].name, e[i - 1].nname, e[i].name, e[i].nname) >= 0) {
      char q[72];
      rc = bundle_err(err, LANE_EFORMAT, "entry %u of %u (SOURCE '%s') is out of order or repeated: "
                      "sources are sorted by name, each once", i + 1, c,
                      bundle_quote(e[i].name, e[i].nname, q));
    }
  }
  if (rc == LANE_OK && pos != end)
    rc = bundle_err(err, LANE_EFORMAT, "%zu bytes between the last of %u entries and the digest "
                    "(damaged, or more entries than the header says)", end - pos, c);
  uint32_t nsrc = 0;
  for (uint32_t i = 0; rc == LANE_OK && i < c; i++) nsrc += e[i].kind == BK_SOURCE;
  if (rc == LANE_OK && nsrc > BUNDLE_MAX_FILES)
    rc = bundle_err(err, LANE_EFORMAT, "%u SOURCE entries; a bundle holds at most %d files", nsrc,
                    BUNDLE_MAX_FILES);
  unsigned char h[crypto_hash_sha256_BYTES];
  if (rc == LANE_OK) {
    crypto_hash_sha256(h, b, end);
    if (sodium_memcmp(h, b + end, sizeof h) != 0)
      rc = bundle_err(err, LANE_EFORMAT, "the bundle's bytes do not match its digest: it was "
                      "corrupted or altered after it was written");
  }
  if (rc != LANE_OK) { free(e); return rc; }
  *out = e;
  *count = (int)c;
  return LANE_OK;
}

/* ---- writing ---- */

static void grow(bundle_writer *w, size_t more) {
  if (w->nomem) return;
  if (more > LANE_BUNDLE_MAX_BYTES || w->n + more > LANE_BUNDLE_MAX_BYTES) {
    w->nomem = 2;   /* past the limit, said by finish */
    return;
  }
  if (w->n + more <= w->cap) return;
  size_t cap = w->cap ? w->cap : 4096;
  while (cap < w->n + more) cap *= 2;
  unsigned char *nb = realloc(w->b, cap);
  if (!nb) { w->nomem = 1; return; }
  w->b = nb;
  w->cap = cap;
}

static void put(bundle_writer *w, const void *p, size_t n) {
  grow(w, n);
  if (w->nomem) return;
  if (n) memcpy(w->b + w->n, p, n);
  w->n += n;
}

void bundle_w_start(bundle_writer *w, uint32_t count) {
  memset(w, 0, sizeof *w);
  unsigned char h[BUNDLE_HEADER];
  memcpy(h, BUNDLE_MAGIC, 8);
  put_le(h + 8, LANE_BUNDLE_VERSION, 4);
  put_le(h + 12, count, 4);
  w->count = count;
  put(w, h, sizeof h);
}

void bundle_w_entry(bundle_writer *w, int kind, const char *name, const void *data, size_t n) {
  size_t nname = name ? strlen(name) : 0;
  if (nname > 0xFFFF || n > 0xFFFFFFFFu) { w->nomem = 2; return; }
  unsigned char h[BUNDLE_ENTRY_HEAD];
  h[0] = (unsigned char)kind;
  h[1] = 0;
  put_le(h + 2, nname, 2);
  put_le(h + 4, n, 4);
  put(w, h, sizeof h);
  put(w, name, nname);
  put(w, data, n);
}

void bundle_w_sign(bundle_writer *w, const unsigned char sk[64]) {
  unsigned char sig[BUNDLE_SIG_BYTES];
  char id[LANE_BUNDLE_KEY_ID + 1];
  if (w->nomem) return;
  crypto_sign_detached(sig, NULL, w->b, w->n, sk);
  bundle_key_id(sk + 32, id);   /* libsodium's secret key ends in the public key */
  bundle_w_entry(w, BK_SIG, id, sig, sizeof sig);
}

int bundle_w_finish(bundle_writer *w, lane_error *err) {
  unsigned char h[crypto_hash_sha256_BYTES];
  if (!w->nomem) {
    crypto_hash_sha256(h, w->b, w->n);
    put(w, h, sizeof h);
  }
  if (!w->nomem) return LANE_OK;
  int over = w->nomem == 2;
  free(w->b);
  memset(w, 0, sizeof *w);
  return over ? bundle_err(err, LANE_EFORMAT, "the bundle would pass %u MiB, the most a bundle holds",
                           LANE_BUNDLE_MAX_BYTES >> 20)
              : bundle_err(err, LANE_ENOMEM, "out of memory writing the bundle");
}

/* ---- digests ---- */

void bundle_digest(const lanec_file *files, int n, int stdlib_only, char out[72]) {
  crypto_hash_sha256_state st;
  unsigned char h[crypto_hash_sha256_BYTES], len[8];
  crypto_hash_sha256_init(&st);
  for (int i = 0; i < n; i++) {
    const lanec_file *f = &files[i];
    if (stdlib_only && strncmp(f->path, "std/", 4) != 0) continue;
    size_t pn = strlen(f->path);
    put_le(len, pn, 4);
    crypto_hash_sha256_update(&st, len, 4);
    crypto_hash_sha256_update(&st, (const unsigned char *)f->path, pn);
    put_le(len, f->n, 8);
    crypto_hash_sha256_update(&st, len, 8);
    crypto_hash_sha256_update(&st, (const unsigned char *)f->bytes, f->n);
  }
  crypto_hash_sha256_final(&st, h);
  memcpy(out, "sha256:", 7);
  bundle_hex(h, sizeof h, out + 7);
}

void bundle_key_id(const unsigned char pk[32], char id[LANE_BUNDLE_KEY_ID + 1]) {
  unsigned char h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, pk, 32);
  bundle_hex(h, LANE_BUNDLE_KEY_ID / 2, id);
}
