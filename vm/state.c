/*
 * state.c -- a runtime's state beyond one process: saving budget spend to
 * a file and loading it back (into the same program or, matched by budget
 * name and key text, into an edited one), carrying it to another runtime,
 * and the JSON snapshot of everything decisions read. The live tables it
 * reads and fills are runtime.c's (runtime.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

/* ---------------------------------------------------------------------
 * Saved state: the file
 *
 * Version 2, little-endian throughout:
 *   "LANERT\r\n", u32 version 2, u64 clock ms at saving, u32 budgets;
 *   per budget: u32 length + name, u32 length + key field name, u32 key
 *   type (lane_type), u32 kind (0 fixed, 1 rolling), u64 window ms, u64
 *   current period (the budget's, a window of ring periods ends there),
 *   the overflow account's entries, u32 keys, and per key: u64 key hash
 *   and its entries; entries are u32 count (at most ring: 1 fixed, 12
 *   rolling), then count x { u64 period, i64 nano-dollars } with period
 *   <= the current one;
 *   last, u64 FNV-1a 64 of every byte before it.
 * Only entries with spend in the window are written, so an idle key costs
 * nothing. Version 1 (no key fields or kinds, entries as ring x { u64
 * period + 1, i64 }, the program's checksum in the header) is still read,
 * into the program that saved it only.
 * ------------------------------------------------------------------- */
#define RT_MAGIC "LANERT\r\n"
#define RT_VERSION 2u

typedef struct wbuf { unsigned char *p; size_t n, cap; int oom; } wbuf;

static void wput(wbuf *w, const void *src, size_t n) {
  if (w->oom) return;
  if (w->n + n > w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 4096;
    while (cap < w->n + n) cap *= 2;
    unsigned char *p = realloc(w->p, cap);
    if (!p) { w->oom = 1; return; }
    w->p = p;
    w->cap = cap;
  }
  memcpy(w->p + w->n, src, n);
  w->n += n;
}

static void le32(unsigned char *b, uint32_t v) {
  for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static void w32(wbuf *w, uint32_t v) {
  unsigned char b[4];
  le32(b, v);
  wput(w, b, 4);
}

static void w64(wbuf *w, uint64_t v) { w32(w, (uint32_t)v); w32(w, (uint32_t)(v >> 32)); }

/* Rewrites a u32 or u64 written at `at` (counts known only afterwards). */
static void patch(wbuf *w, size_t at, uint64_t v, int bytes) {
  if (w->oom) return;
  for (int i = 0; i < bytes; i++) w->p[at + i] = (unsigned char)(v >> (8 * i));
}

/* Writes the entries of ring with spend in the window ending at cur; the
 * count of them, and the newest period in *newest. */
static uint32_t put_entries(wbuf *w, const vm_budget_rt *b, const vm_entry *ring, uint64_t cur,
                            uint64_t *newest) {
  size_t at = w->n;
  uint32_t n = 0;
  w32(w, 0);
  for (uint32_t i = 0; i < b->ring; i++) {
    uint64_t t = LDA(&ring[i].tag);
    int64_t v = LDA(&ring[i].nanos);
    if (!t || (t & BUSY) || t - 1 + b->span <= cur || v <= 0) continue;
    w64(w, t - 1);
    w64(w, (uint64_t)v);
    if (t - 1 > *newest) *newest = t - 1;
    n++;
  }
  patch(w, at, n, 4);
  return n;
}

/* One budget, in one pass: counts and the current period are written as
 * found and patched in, so they always agree with what follows. */
static void save_budget(wbuf *w, const lane_runtime *rt, uint32_t i, uint64_t now) {
  const bc_image *im = &rt->prog->im;
  const vm_budget_rt *b = rt->b[i];
  const bc_budget *bb = &im->budgets[i];
  const bc_str *name = &im->str[bb->name];
  bc_str key;
  uint32_t ktype = vm_budget_key(im, i, &key);
  uint64_t cur = vm_bud_cur(b, now), newest = cur;
  w32(w, name->len);
  wput(w, name->p, name->len);
  w32(w, key.len);
  wput(w, key.p, key.len);
  w32(w, ktype);
  w32(w, b->span > 1);
  w64(w, b->window_ms);
  size_t at_cur = w->n, at_keys;
  w64(w, cur);
  put_entries(w, b, b->ovf, cur, &newest);
  at_keys = w->n;
  w32(w, 0);
  uint32_t nkeys = 0;
  for (uint32_t l = 0; l < b->nlevels; l++) {
    unsigned char *blk = vm_level_get(b, l);
    for (uint32_t s = 0, n = vm_level_slots(b, l); blk && s < n; s++) {
      vm_ref r = vm_slot_ref(b, blk, n, s);
      uint64_t h = LDA(r.h);
      if (!h || h == VM_TOMB) continue;
      size_t mark = w->n;
      w64(w, h);
      uint32_t got = put_entries(w, b, r.e, cur, &newest);
      if (!got || LDA(r.h) != h) { w->n = w->oom ? w->n : mark; continue; }
      nkeys++;
    }
  }
  patch(w, at_keys, nkeys, 4);
  patch(w, at_cur, newest, 8);
}

/* The whole file in memory; *oom on failure. */
static void save_bytes(const lane_runtime *rt, wbuf *w) {
  uint64_t now = vm_now(rt);
  memset(w, 0, sizeof *w);
  wput(w, RT_MAGIC, 8);
  w32(w, RT_VERSION);
  w64(w, now);
  w32(w, rt->nbudgets);
  for (uint32_t i = 0; i < rt->nbudgets; i++) save_budget(w, rt, i, now);
  w64(w, bc_fnv1a64(w->p, w->n, BC_FNV_OFFSET));
}

/* ---------------------------------------------------------------------
 * Saved state: reading
 * ------------------------------------------------------------------- */
typedef struct rbuf { const unsigned char *p; size_t n, at; int bad; } rbuf;

static uint64_t r64n(rbuf *r, size_t n) {
  uint64_t v = 0;
  if (r->bad || r->n - r->at < n) { r->bad = 1; return 0; }
  for (size_t i = 0; i < n; i++) v |= (uint64_t)r->p[r->at + i] << (8 * i);
  r->at += n;
  return v;
}

static uint32_t r32(rbuf *r) { return (uint32_t)r64n(r, 4); }
static uint64_t r64(rbuf *r) { return r64n(r, 8); }

/* A length-prefixed string of the file; NULL past its end. */
static const char *rstr(rbuf *r, uint32_t *len) {
  *len = r32(r);
  if (r->bad || r->n - r->at < *len) { r->bad = 1; return NULL; }
  const char *s = (const char *)r->p + r->at;
  r->at += *len;
  return s;
}

/* What a file holds, read and checked before anything is applied. */
typedef struct st_budget {
  const char *name, *key;   /* in the file's bytes, or the program's strings */
  uint32_t nlen, klen;      /* their lengths */
  uint32_t ktype, rolling;  /* key field's lane_type; 1 for a rolling window */
  uint64_t window_ms, cur;  /* window length; current period when saved */
  uint32_t key0, nkeys;     /* its keys in st_file.k: the overflow account
                               first (hash 0), then the keys */
  int      dst;             /* budget it applies to; -1 dropped */
} st_budget;

typedef struct st_key { uint64_t hash; uint32_t ent0, nent; } st_key;       /* entries in e */
typedef struct st_ent { uint64_t period; int64_t nanos; } st_ent;

typedef struct st_file {
  uint32_t   nb;                 /* budgets */
  st_budget *b;
  uint32_t   nk, capk;           /* keys */
  st_key    *k;
  uint32_t   ne, cape;           /* entries */
  st_ent    *e;
  int        oom;                /* an allocation failed */
} st_file;

static void st_free(st_file *f) { free(f->b); free(f->k); free(f->e); }

static int grow(void **p, uint32_t *cap, uint32_t n, size_t size) {
  if (n < *cap) return 0;
  uint32_t c = *cap ? *cap * 2 : 256;
  void *q = realloc(*p, (size_t)c * size);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

static int st_key_add(st_file *f, uint64_t hash) {
  if (grow((void **)&f->k, &f->capk, f->nk, sizeof *f->k)) return f->oom = 1, -1;
  f->k[f->nk++] = (st_key){hash, f->ne, 0};
  return 0;
}

static int st_ent_add(st_file *f, uint64_t period, int64_t nanos) {
  if (grow((void **)&f->e, &f->cape, f->ne, sizeof *f->e)) return f->oom = 1, -1;
  f->e[f->ne++] = (st_ent){period, nanos};
  f->k[f->nk - 1].nent++;
  return 0;
}

/* Refuses a file: -1, with err saying where (through errf, the layer's
 * one printf-checked error helper; the reason must be a literal). */
static int refused(int code) { (void)code; return -1; }
#define CORRUPT(fmt, ...) \
  refused(errf(err, LANE_EFORMAT, "truncated or corrupt runtime file: " fmt, __VA_ARGS__))

/* Version 2 entries of one key (or account) of budget sb. */
static int read_entries(rbuf *r, st_file *f, const st_budget *sb, lane_error *err) {
  uint32_t n = r32(r), span = sb->rolling ? VM_ROLLING : 1;
  if (r->bad) return CORRUPT("budget '%.*s' ends early", (int)sb->nlen, sb->name);
  if (n > span) return CORRUPT("budget '%.*s': %u entries for a key, at most %u", (int)sb->nlen,
                               sb->name, n, span);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t p = r64(r);
    int64_t v = (int64_t)r64(r);
    if (r->bad) return CORRUPT("budget '%.*s' ends early", (int)sb->nlen, sb->name);
    if (v < 0 || p > sb->cur)
      return CORRUPT("budget '%.*s': an entry of %s", (int)sb->nlen, sb->name,
                     v < 0 ? "negative spend" : "a period after the budget's current one");
    if (st_ent_add(f, p, v)) return -1;
  }
  return 0;
}

/* f owns what is read into it, and every caller of st_read frees it with
 * st_free, on failure too; clang's analyzer does not follow f->b out of
 * this function and calls each early return a leak. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)
static int read_v2(rbuf *r, st_file *f, lane_error *err) {
  r64(r);   /* the clock when saved: for people reading dumps */
  f->nb = r32(r);
  if (r->bad || f->nb > (r->n - r->at) / 44)   /* the smallest budget takes 44 bytes */
    return CORRUPT("%u budgets in %zu bytes", f->nb, r->n);
  if (f->nb && !(f->b = calloc(f->nb, sizeof *f->b))) return f->oom = 1, -1;
  for (uint32_t i = 0; i < f->nb; i++) {
    st_budget *sb = &f->b[i];
    sb->name = rstr(r, &sb->nlen);
    sb->key = rstr(r, &sb->klen);
    sb->ktype = r32(r);
    sb->rolling = r32(r);
    sb->window_ms = r64(r);
    sb->cur = r64(r);
    if (r->bad) return CORRUPT("budget %u ends early", i);
    /* key type 0: a budget without a key field (then its key name is "") */
    if (sb->ktype > LANE_T_STRING || (sb->ktype == 0 && sb->klen) || sb->rolling > 1)
      return CORRUPT("budget '%.*s': key type %u, kind %u", (int)sb->nlen, sb->name, sb->ktype,
                     sb->rolling);
    sb->key0 = f->nk;
    if (st_key_add(f, 0) || read_entries(r, f, sb, err)) return -1;
    uint32_t nkeys = r32(r);
    if (r->bad || nkeys > (r->n - r->at) / 12)
      return CORRUPT("budget '%.*s': %u keys in what is left of the file", (int)sb->nlen,
                     sb->name, nkeys);
    for (uint32_t k = 0; k < nkeys; k++) {
      uint64_t h = r64(r);
      if (r->bad) return CORRUPT("budget '%.*s' ends early", (int)sb->nlen, sb->name);
      if (h == 0 || h == VM_TOMB) return CORRUPT("budget '%.*s': key hash %016llx",
                                                 (int)sb->nlen, sb->name, (unsigned long long)h);
      if (st_key_add(f, h) || read_entries(r, f, sb, err)) return -1;
    }
    sb->nkeys = f->nk - sb->key0;
  }
  return 0;
}
// NOLINTEND(clang-analyzer-unix.Malloc)

/* Version 1: only for the program that saved it (its checksum is in the
 * file); budgets in the program's order, entries tagged period + 1. */
static int read_v1(rbuf *r, st_file *f, const lane_runtime *rt, lane_error *err) {
  const bc_image *im = &rt->prog->im;
  f->nb = r32(r);
  if (r64(r) != rt->prog->checksum)
    return errf(err, LANE_EFORMAT, "a version-1 runtime file saved for another program "
                "(checksum differs): version 1 does not record key fields, so its spend "
                "cannot be matched; load it with the program that saved it and save again"), -1;
  if (r->bad || f->nb != rt->nbudgets)
    return errf(err, LANE_EFORMAT, "%u budgets in the file, %u in the program", f->nb,
                rt->nbudgets), -1;
  if (f->nb && !(f->b = calloc(f->nb, sizeof *f->b))) return f->oom = 1, -1;
  for (uint32_t i = 0; i < f->nb; i++) {
    st_budget *sb = &f->b[i];
    const vm_budget_rt *b = rt->b[i];
    const bc_budget *bb = &im->budgets[i];
    const bc_str *name = &im->str[bb->name], *key = &im->str[im->fields[bb->key_field].name];
    uint32_t len = r32(r);
    if (r->bad || len != name->len || r->n - r->at < len || memcmp(r->p + r->at, name->p, len))
      return errf(err, LANE_EFORMAT, "budget '%s' is not where the file has it", name->p), -1;
    r->at += len;
    uint32_t ring = r32(r);
    if (ring != (b->span > 1 ? VM_ROLLING : 2) || r64(r) != b->sub_ms)
      return errf(err, LANE_EFORMAT, "budget '%s' has another window in the file", name->p), -1;
    *sb = (st_budget){name->p, key->p, name->len, key->len, im->fields[bb->key_field].type,
                      b->span > 1, b->window_ms, 0, f->nk, 0, -1};
    uint32_t nkeys = r32(r);
    if (r->bad || (uint64_t)nkeys * (8 + 16ull * ring) > r->n - r->at)
      return CORRUPT("budget '%s': %u keys in what is left of the file", name->p, nkeys);
    for (uint32_t k = 0; k < nkeys; k++) {
      uint64_t h = r64(r);   /* 0: the overflow account */
      if (st_key_add(f, h ? vm_key_norm(h) : 0)) return -1;
      for (uint32_t e = 0; e < ring; e++) {
        uint64_t tag = r64(r);
        int64_t nanos = (int64_t)r64(r);
        if (tag & BUSY || nanos < 0) return CORRUPT("budget '%s': a bad entry", name->p);
        if (!tag || !nanos) continue;
        if (st_ent_add(f, tag - 1, nanos)) return -1;
        if (tag - 1 > sb->cur) sb->cur = tag - 1;
      }
    }
    sb->nkeys = f->nk - sb->key0;
  }
  return 0;
}

/* Reads a whole file image (r->p, r->n bytes; its checksum already
 * checked) into f. */
static int st_read(rbuf *rb, const lane_runtime *rt, st_file *f, lane_error *err) {
  rbuf r = {rb->p, rb->n - 8, 8, 0};
  uint32_t version = r32(&r);
  int rc;
  memset(f, 0, sizeof *f);
  if (version == 1) rc = read_v1(&r, f, rt, err);
  else if (version == RT_VERSION) rc = read_v2(&r, f, err);
  else return errf(err, LANE_EVERSION, "unsupported runtime file version %u (this runtime "
                   "reads versions 1 and 2)", version);
  if (f->oom) return errf(err, LANE_ENOMEM, "out of memory reading a runtime file");
  if (rc) return err ? err->code : LANE_EFORMAT;
  if (r.at != r.n) {
    CORRUPT("%zu bytes after the last budget", r.n - r.at);
    return LANE_EFORMAT;
  }
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Saved state: matching and applying
 * ------------------------------------------------------------------- */
void vm_note(lane_state_report *rep, const char *fmt, ...) {
  char line[320];
  va_list ap;
  if (!rep) return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  rep->nnotes++;
  if (rep->note) rep->note(rep->note_ctx, line);
  size_t used = strlen(rep->notes), len = strlen(line);
  if (used + len + 2 <= sizeof rep->notes) {
    memcpy(rep->notes + used, line, len);
    memcpy(rep->notes + used + len, "\n", 2);
  }
}

void vm_report_reset(lane_state_report *rep) {
  if (!rep) return;
  lane_note_fn fn = rep->note;
  void *ctx = rep->note_ctx;
  memset(rep, 0, sizeof *rep);
  rep->note = fn;
  rep->note_ctx = ctx;
}

static const char *type_name(uint32_t t) {
  static const char *const names[] = {"?", "int", "uint", "double", "bool", "string"};
  return t <= LANE_T_STRING ? names[t] : "?";
}

/* "req.tenant (string)", or "none" for a budget without a key. */
static void key_text(char *buf, size_t cap, const char *key, uint32_t klen, uint32_t ktype) {
  if (!ktype) snprintf(buf, cap, "none");
  else snprintf(buf, cap, "req.%.*s (%s)", (int)klen, key, type_name(ktype));
}

uint32_t vm_budget_key(const bc_image *im, uint32_t i, bc_str *name) {
  uint32_t f = im->budgets[i].key_field;
  if (f == BC_NONE) {   /* the verifier allows a budget without a key */
    name->p = "";
    name->len = 0;
    return 0;
  }
  *name = im->str[im->fields[f].name];
  return im->fields[f].type;
}

int vm_budget_same(lane_state_report *rep, const char *name, uint32_t nlen, const char *key,
                   uint32_t klen, uint32_t ktype, int rolling, uint64_t window_ms,
                   const char *nkey, uint32_t nklen, uint32_t nktype, int nrolling,
                   uint64_t nwindow_ms) {
  int n = (int)nlen;
  if (klen != nklen || memcmp(key, nkey, nklen) || ktype != nktype) {
    char was[300], now[300];
    key_text(was, sizeof was, key, klen, ktype);
    key_text(now, sizeof now, nkey, nklen, nktype);
    vm_note(rep, "budget '%.*s': its key was %s and is %s now: its spend is dropped", n, name, was,
            now);
  }
  else if (!rolling != !nrolling)
    vm_note(rep, "budget '%.*s': its window was %s and is %s now: its spend is dropped", n,
            name, rolling ? "rolling" : "fixed", rolling ? "fixed" : "rolling");
  else if (window_ms != nwindow_ms)
    vm_note(rep, "budget '%.*s': its window was %llu ms and is %llu ms now: its spend is dropped",
            n, name, (unsigned long long)window_ms, (unsigned long long)nwindow_ms);
  else
    return 1;
  return 0;
}

/* Budget indexes sorted by name, to match a file's budgets by name. */
int vm_byname_cmp(const void *a, const void *b) {
  const vm_byname *x = a, *y = b;
  return sem_bytes_cmp(x->p, x->len, y->p, y->len);
}

vm_byname *vm_byname_find(vm_byname *v, uint32_t n, const char *p, uint32_t len) {
  vm_byname want = {p, len, 0};
  return n ? bsearch(&want, v, n, sizeof *v, vm_byname_cmp) : NULL;
}

/* Sets each saved budget's dst: the budget of rt's program that still
 * means the same, or -1 with a note saying why not. */
static int st_match(st_file *f, const lane_runtime *rt, lane_state_report *rep, lane_error *err) {
  const bc_image *im = &rt->prog->im;
  vm_byname *prog = calloc(im->nbudgets + 1, sizeof *prog), *saved = calloc(f->nb + 1, sizeof *saved);
  unsigned char *used = calloc(im->nbudgets + 1, 1);
  if (!prog || !saved || !used) {
    free(prog); free(saved); free(used);
    return errf(err, LANE_ENOMEM, "out of memory matching saved budgets");
  }
  for (uint32_t i = 0; i < im->nbudgets; i++)
    prog[i] = (vm_byname){im->str[im->budgets[i].name].p, im->str[im->budgets[i].name].len, (int)i};
  for (uint32_t i = 0; i < f->nb; i++) saved[i] = (vm_byname){f->b[i].name, f->b[i].nlen, (int)i};
  qsort(prog, im->nbudgets, sizeof *prog, vm_byname_cmp);
  qsort(saved, f->nb, sizeof *saved, vm_byname_cmp);
  int rc = LANE_OK;
  for (uint32_t i = 1; i < f->nb && rc == LANE_OK; i++)
    if (!vm_byname_cmp(&saved[i - 1], &saved[i])) {
      CORRUPT("budget '%.*s' appears twice", (int)saved[i].len, saved[i].p);
      rc = LANE_EFORMAT;
    }
  for (uint32_t i = 0; i < f->nb && rc == LANE_OK; i++) {
    st_budget *sb = &f->b[i];
    vm_byname *hit = vm_byname_find(prog, im->nbudgets, sb->name, sb->nlen);
    int n = (int)sb->nlen;
    sb->dst = -1;
    if (!hit) {
      vm_note(rep, "budget '%.*s' is not in the program: its spend is dropped", n, sb->name);
      continue;
    }
    used[hit->i] = 1;
    bc_str kn;
    uint32_t ktype = vm_budget_key(im, (uint32_t)hit->i, &kn);
    const vm_budget_rt *b = rt->b[hit->i];
    if (vm_budget_same(rep, sb->name, sb->nlen, sb->key, sb->klen, sb->ktype, sb->rolling,
                       sb->window_ms, kn.p, kn.len, ktype, b->span > 1, b->window_ms))
      sb->dst = hit->i;
  }
  if (rep && rc == LANE_OK) {
    for (uint32_t i = 0; i < f->nb; i++) {
      if (f->b[i].dst >= 0) rep->budgets_kept++;
      else rep->budgets_dropped++;
    }
    for (uint32_t i = 0; i < im->nbudgets; i++) rep->budgets_new += !used[i];
  }
  free(prog);
  free(saved);
  free(used);
  return rc;
}

/* Applies every kept budget: first each saved key's spend is emptied (its
 * spend is replaced, so loading twice is loading once), then the saved
 * entries that are still in the window are recorded, shifted back when
 * the file is ahead of this runtime's clock. Cannot fail: a key that finds
 * no slot goes to the overflow account. */
static void st_apply(lane_runtime *rt, const st_file *f, lane_state_report *rep, uint64_t now) {
  for (uint32_t i = 0; i < f->nb; i++) {
    const st_budget *sb = &f->b[i];
    if (sb->dst < 0) continue;
    vm_budget_rt *b = rt->b[sb->dst];
    uint64_t cur = vm_bud_cur(b, now);
    for (uint32_t k = sb->key0; k < sb->key0 + sb->nkeys; k++)
      if (f->k[k].hash) vm_clear_key(b, f->k[k].hash, cur);
  }
  for (uint32_t i = 0; i < f->nb; i++) {
    const st_budget *sb = &f->b[i];
    if (sb->dst < 0) continue;
    vm_budget_rt *b = rt->b[sb->dst];
    uint64_t cur = vm_bud_cur(b, now), shift = sb->cur > cur ? sb->cur - cur : 0;
    if (shift && rep) rep->budgets_shifted++;
    for (uint32_t k = sb->key0; k < sb->key0 + sb->nkeys; k++) {
      const st_key *sk = &f->k[k];
      int any = 0, own = 1;
      for (uint32_t e = sk->ent0; e < sk->ent0 + sk->nent; e++) {
        uint64_t p = f->e[e].period;
        if (p < shift || p - shift + b->span <= cur || !f->e[e].nanos) continue;
        any = 1;
        if (!sk->hash) vm_to_overflow(rt, b, 0, p - shift, f->e[e].nanos);
        else own &= vm_record(rt, b, sk->hash, cur, p - shift, f->e[e].nanos);
      }
      if (!rep || !sk->hash) continue;
      if (!any) rep->keys_expired++;
      else if (own) rep->keys_kept++;
      else rep->keys_overflowed++;
    }
  }
}

/* Loads a file image (p, n) into rt: checked whole first, then matched and
 * applied; nothing changes unless it all reads right. */
static int load_image(lane_runtime *rt, const unsigned char *p, size_t n, const char *what,
                      lane_state_report *rep, lane_error *err) {
  rbuf r = {p, n, 0, 0};
  st_file f;
  lane_state_report local;   /* without a report, err still gets its summary */
  int rc;
  if (!rep && err) {
    memset(&local, 0, sizeof local);
    rep = &local;
  }
  vm_report_reset(rep);
  if (n < 8 + 4 + 8 || memcmp(p, RT_MAGIC, 8) != 0)
    return errf(err, LANE_EFORMAT, "'%s' is not a lane runtime file", what);
  else if (bc_fnv1a64(p, n - 8, BC_FNV_OFFSET) != (r.at = n - 8, r64(&r)))
    return errf(err, LANE_EFORMAT, "checksum mismatch: '%s' is corrupted", what);
  r.n = n;
  if ((rc = st_read(&r, rt, &f, err)) == LANE_OK && (rc = st_match(&f, rt, rep, err)) == LANE_OK) {
    st_apply(rt, &f, rep, vm_now(rt));
    if (err) {
      err->code = LANE_OK;
      err->line = 0;
      int k = snprintf(err->message, sizeof err->message, "loaded %u budgets, dropped %u",
                       rep->budgets_kept, rep->budgets_dropped);
      for (const char *c = rep->notes; *c && k + 3 < (int)sizeof err->message; c++) {
        if (c == rep->notes) err->message[k++] = ':', err->message[k++] = ' ';
        if (*c != '\n') err->message[k++] = *c;
        else if (c[1]) err->message[k++] = ';', err->message[k++] = ' ';
      }
      err->message[k < (int)sizeof err->message ? k : (int)sizeof err->message - 1] = 0;
    }
  }
  st_free(&f);
  return rc;
}

static int runtime_load_mem_in(lane_runtime *rt, const void *bytes, size_t n,
                          lane_state_report *report, lane_error *err) {
  if (!rt || (!bytes && n)) return errf(err, LANE_EARG, "no runtime or bytes");
  return load_image(rt, bytes ? bytes : "", n, "(memory)", report, err);
}

int lane_runtime_load_mem(lane_runtime *rt, const void *bytes, size_t n,
                          lane_state_report *report, lane_error *err) {
  vm_pin pin;
  int rc = runtime_load_mem_in(vm_enter(rt, &pin), bytes, n, report, err);
  vm_leave(&pin);
  return rc;
}

static int runtime_load_ex_in(lane_runtime *rt, const char *path, lane_state_report *report,
                         lane_error *err) {
  if (!rt || !path) { errf(err, LANE_EARG, "no runtime or path"); return LANE_EARG; }
  FILE *f = fopen(path, "rb");
  if (!f) return errf(err, LANE_EARG, "cannot read '%s': %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  unsigned char *p = malloc(cap);
  while (p) {
    n += fread(p + n, 1, cap - n, f);
    if (n < cap) break;
    unsigned char *q = cap < ((size_t)1 << 31) ? realloc(p, cap * 2) : NULL;
    if (!q) { free(p); p = NULL; break; }
    p = q;
    cap *= 2;
  }
  int rerr = ferror(f);
  fclose(f);
  if (!p && cap >= ((size_t)1 << 31))
    return errf(err, LANE_EFORMAT, "'%s' is larger than 2 GiB, the limit of a runtime file", path);
  if (!p) return errf(err, LANE_ENOMEM, "out of memory reading '%s'", path);
  if (rerr) { free(p); return errf(err, LANE_EARG, "cannot read '%s'", path); }
  int rc = load_image(rt, p, n, path, report, err);
  free(p);
  return rc;
}

int lane_runtime_load_ex(lane_runtime *rt, const char *path, lane_state_report *report,
                         lane_error *err) {
  vm_pin pin;
  int rc = runtime_load_ex_in(vm_enter(rt, &pin), path, report, err);
  vm_leave(&pin);
  return rc;
}

int lane_runtime_load(lane_runtime *rt, const char *path, lane_error *err) {
  return lane_runtime_load_ex(rt, path, NULL, err);
}

/* ---------------------------------------------------------------------
 * Saved state: writing a file that is complete or not there
 * ------------------------------------------------------------------- */
static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Whether fd holds exactly p[0..n). */
static int reads_back(int fd, const unsigned char *p, size_t n) {
  unsigned char buf[1 << 14];
  size_t at = 0;
  for (;;) {
    ssize_t k = pread(fd, buf, sizeof buf, (off_t)at);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return 0;
    if (k == 0) return at == n;
    if (at + (size_t)k > n || memcmp(buf, p + at, (size_t)k)) return 0;
    at += (size_t)k;
  }
}

/* Syncs the directory holding path, so the rename is durable. */
static int sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return -1;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = fd < 0 ? -1 : 0;
  free(dir);
  if (fd >= 0 && fsync(fd) != 0 && errno != EINVAL) rc = -1;   /* EINVAL: no sync for it */
  if (fd >= 0) close(fd);
  return rc;
}

static int write_file(const lane_runtime *rt, const char *path, const unsigned char *p, size_t n,
                      lane_error *err) {
  size_t len = strlen(path) + 64;
  char *tmp = malloc(len);
  if (!tmp) return errf(err, LANE_ENOMEM, "out of memory saving");
  int fd = -1;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  for (int tries = 0; fd < 0 && tries < 100; tries++) {
    uint64_t seq = vm_next_save(rt);
    snprintf(tmp, len, "%s.tmp.%ld.%llx", path, (long)getpid(),
             (unsigned long long)(seq ^ ((uint64_t)ts.tv_nsec << 20) ^ (uintptr_t)rt));
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    errf(err, LANE_EARG, "cannot write '%s': %s", tmp, strerror(errno));
    free(tmp);
    return LANE_EARG;
  }
  const char *why = NULL;
  if (write_all(fd, p, n)) why = "write";
  else if (fsync(fd)) why = "fsync";
  else if (!reads_back(fd, p, n)) why = "read back";
  int e = errno;
  if (close(fd) && !why) why = "close", e = errno;
  if (!why && rename(tmp, path)) why = "rename", e = errno;
  if (why) {
    unlink(tmp);
    errf(err, LANE_EARG, "cannot write '%s' (%s): %s", path, why,
         !strcmp(why, "read back") ? "the file read back differs" : strerror(e));
    free(tmp);
    return LANE_EARG;
  }
  free(tmp);
  if (sync_dir(path))
    return errf(err, LANE_EARG, "saved '%s', but its directory could not be synced: %s", path,
                strerror(errno));
  return LANE_OK;
}

static int runtime_save_in(const lane_runtime *rt, const char *path, lane_error *err) {
  if (!rt || !path) { errf(err, LANE_EARG, "no runtime or path"); return LANE_EARG; }
  wbuf w;
  st_file f;
  save_bytes(rt, &w);
  if (w.oom) { free(w.p); errf(err, LANE_ENOMEM, "out of memory saving"); return LANE_ENOMEM; }
  /* What is written must read back: checked on the bytes before they go. */
  rbuf r = {w.p, w.n, 0, 0};
  int rc = st_read(&r, rt, &f, err);
  st_free(&f);
  if (rc == LANE_OK) rc = write_file(rt, path, w.p, w.n, err);
  free(w.p);
  return rc;
}

int lane_runtime_save(const lane_runtime *rt, const char *path, lane_error *err) {
  vm_pin pin;
  int rc = runtime_save_in(vm_enter(rt, &pin), path, err);
  vm_leave(&pin);
  return rc;
}

/* ---------------------------------------------------------------------
 * Carrying state to another runtime
 * ------------------------------------------------------------------- */
static void copy_model(vm_model *d, const vm_model *s, int stats) {
  if (stats) {
    for (int i = 0; i < VM_SLOTS; i++) {
      const vm_slot *ss = &s->slot[i];
      vm_slot *ds = &d->slot[i];
      uint64_t tag = LDA(&ss->tag) & ~BUSY;
      ST(&ds->calls, LD(&ss->calls));
      ST(&ds->fails, LD(&ss->fails));
      for (int b = 0; b < VM_HBUCKETS; b++) ST(&ds->hist[b], LD(&ss->hist[b]));
      STR(&ds->tag, tag);
    }
    ST(&d->p50, LD(&s->p50));
    ST(&d->p95, LD(&s->p95));
    ST(&d->err, LD(&s->err));
    ST(&d->samples, LD(&s->samples));
    ST(&d->lat_samples, LD(&s->lat_samples));
    ST(&d->valid_until, LD(&s->valid_until));
    STR(&d->cached_at, LDA(&s->cached_at));
  }
  ST(&d->until, LD(&s->until));
  STR(&d->state, LDA(&s->state));
}

/* Each model of dst takes the live state of src's model of the same name. */
static int carry_models(lane_runtime *dst, const lane_runtime *src, lane_state_report *rep,
                        lane_error *err) {
  const bc_image *di = &dst->prog->im, *si = &src->prog->im;
  vm_byname *names = calloc(si->nmodels + 1, sizeof *names);
  unsigned char *used = calloc(si->nmodels + 1, 1);
  if (!names || !used) {
    free(names);
    free(used);
    return errf(err, LANE_ENOMEM, "out of memory carrying model state");
  }
  for (uint32_t i = 0; i < si->nmodels; i++)
    names[i] = (vm_byname){si->str[si->models[i].name].p, si->str[si->models[i].name].len, (int)i};
  qsort(names, si->nmodels, sizeof *names, vm_byname_cmp);
  int stats = dst->slot_ms == src->slot_ms;
  for (uint32_t i = 0; i < di->nmodels; i++) {
    const bc_str *n = &di->str[di->models[i].name];
    vm_byname *hit = vm_byname_find(names, si->nmodels, n->p, n->len);
    if (!hit) continue;
    copy_model(dst->m[i], src->m[hit->i], stats);
    used[hit->i] = 1;
    if (rep) rep->models_kept++;
  }
  vm_breaker_moved(dst);   /* breakers copied in */
  if (!stats)
    vm_note(rep, "live latency and error rates not carried: the window is %u ms here and %u ms "
         "there (breakers are)", dst->opt.window_ms, src->opt.window_ms);
  for (uint32_t i = 0; i < si->nmodels; i++) {
    if (used[i]) continue;
    vm_note(rep, "model '%s' is not in the program: its live state is dropped",
         si->str[si->models[i].name].p);
    if (rep) rep->models_dropped++;
  }
  free(names);
  free(used);
  return LANE_OK;
}

static int carry_in(lane_runtime *dst, const lane_runtime *src, lane_state_report *report,
                    lane_error *err) {
  if (!dst || !src || dst == src)
    return errf(err, LANE_EARG, "carry needs two runtimes");
  wbuf w;
  st_file f;
  save_bytes(src, &w);
  if (w.oom) { free(w.p); return errf(err, LANE_ENOMEM, "out of memory carrying state"); }
  vm_report_reset(report);
  rbuf r = {w.p, w.n, 0, 0};
  int rc = st_read(&r, dst, &f, err);
  if (rc == LANE_OK) rc = st_match(&f, dst, report, err);
  if (rc == LANE_OK) rc = carry_models(dst, src, report, err);
  if (rc == LANE_OK) st_apply(dst, &f, report, vm_now(dst));
  st_free(&f);
  free(w.p);
  return rc;
}

int lane_runtime_carry(lane_runtime *dst, const lane_runtime *src, lane_state_report *report,
                       lane_error *err) {
  vm_pin pd, ps;
  lane_runtime *d = vm_enter(dst, &pd), *s = vm_enter(src, &ps);
  int rc = carry_in(d, s, report, err);
  vm_leave(&ps);
  vm_leave(&pd);
  return rc;
}

/* ---------------------------------------------------------------------
 * Snapshots (JSON)
 * ------------------------------------------------------------------- */
typedef struct jbuf { char *p; size_t cap, n; } jbuf;

static void jprintf(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jprintf(jbuf *j, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(j->n < j->cap ? j->p + j->n : NULL, j->n < j->cap ? j->cap - j->n : 0, fmt, ap);
  va_end(ap);
  if (k > 0) j->n += (size_t)k;
}

static void jstring(jbuf *j, const bc_str *s) {
  jprintf(j, "\"");
  for (uint32_t i = 0; i < s->len; i++) {
    unsigned char c = (unsigned char)s->p[i];
    if (c == '"' || c == '\\') jprintf(j, "\\%c", c);
    else if (c < 0x20) jprintf(j, "\\u%04x", c);
    else jprintf(j, "%c", c);
  }
  jprintf(j, "\"");
}

static const char *const ON_FULL[] = {"shared", "closed", "open"};

/* One budget's keys with spend now (the overflow account as key_hash 0). */
static void jbudget(jbuf *j, const lane_runtime *rt, uint32_t i, uint64_t now) {
  const vm_budget_rt *b = rt->b[i];
  const bc_image *im = &rt->prog->im;
  uint64_t cur = vm_bud_cur(b, now);
  int k = 0;
  jprintf(j, "%s\n  {\"budget\": ", i ? "," : "");
  jstring(j, &im->str[im->budgets[i].name]);
  jprintf(j, ", \"on_full\": \"%s\", \"keys\": [", ON_FULL[LD(&b->on_full) % 3]);
  for (uint32_t l = 0; l < b->nlevels; l++) {
    unsigned char *blk = vm_level_get(b, l);
    for (uint32_t s = 0, n = vm_level_slots(b, l); blk && s < n; s++) {
      vm_ref r = vm_slot_ref(b, blk, n, s);
      uint64_t h = LDA(r.h);
      int64_t nanos = h && h != VM_TOMB ? vm_slot_spend(b, &r, h, cur) : 0;
      if (!nanos) continue;
      jprintf(j, "%s{\"key_hash\": \"%016llx\", \"spent\": %.17g}", k++ ? ", " : "",
              (unsigned long long)h, (double)nanos / 1e9);
    }
  }
  int64_t ovf = vm_ring_spend(b, b->ovf, cur);
  if (ovf)
    jprintf(j, "%s{\"key_hash\": \"%016llx\", \"spent\": %.17g}", k++ ? ", " : "", 0ull,
            (double)ovf / 1e9);
  jprintf(j, "]}");
}

static size_t runtime_snapshot_in(const lane_runtime *rt, char *buf, size_t cap) {
  static const char *const states[] = {"closed", "open", "half_open"};
  jbuf j = {buf, buf ? cap : 0, 0};
  if (!rt) return 0;
  uint64_t now = vm_now(rt);
  const bc_image *im = &rt->prog->im;
  jprintf(&j, "{\"now_ms\": %llu, \"program\": \"%016llx\",\n \"options\": {\"window_ms\": %u, "
              "\"min_samples\": %u, \"breaker_failures\": %u, \"breaker_cooldown_ms\": %u, "
              "\"budget_keys\": %u},\n \"models\": [",
          (unsigned long long)now, (unsigned long long)rt->prog->checksum, rt->opt.window_ms,
          rt->opt.min_samples, rt->opt.breaker_failures, rt->opt.breaker_cooldown_ms,
          rt->opt.budget_keys);
  int first = 1;
  for (uint32_t m = 0; m < rt->nmodels; m++) {
    lane_live_stats st;
    lane_model_stats(rt, (int)m, &st);
    if (!st.samples && st.state == LANE_BREAKER_CLOSED) continue;   /* nothing live */
    jprintf(&j, "%s\n  {\"model\": ", first ? "" : ",");
    jstring(&j, &im->str[im->models[m].name]);
    jprintf(&j, ", \"p50\": %.17g, \"p95\": %.17g, \"error_rate\": %.17g, \"samples\": %llu, "
                "\"state\": \"%s\", \"until_ms\": %llu}",
            st.p50, st.p95, st.error_rate, (unsigned long long)st.samples, states[st.state],
            (unsigned long long)st.until_ms);
    first = 0;
  }
  jprintf(&j, "%s], \"budgets\": [", first ? "" : "\n");
  for (uint32_t i = 0; i < rt->nbudgets; i++) jbudget(&j, rt, i, now);
  jprintf(&j, "%s]}\n", rt->nbudgets ? "\n" : "");
  return j.n;
}

size_t lane_runtime_snapshot(const lane_runtime *rt, char *buf, size_t cap) {
  vm_pin pin;
  size_t rc = runtime_snapshot_in(vm_enter(rt, &pin), buf, cap);
  vm_leave(&pin);
  return rc;
}
