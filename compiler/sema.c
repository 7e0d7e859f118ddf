/*
 * sema.c -- loading (imports), declarations and name resolution.
 *
 * sema_load reads the root file and every module it imports (each once);
 * sema_check declares models, fields, pools, budgets, routes and tests in
 * source order, then checks every expression (check.c).
 */
#define _XOPEN_SOURCE 700   /* realpath */
#include "sema.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>   /* readlink */

#ifndef LANE_STDLIB_DIR
#define LANE_STDLIB_DIR "stdlib"
#endif

/* Capability flags every program knows, whether or not a model has them.
 * responses_only marks a model served only by the Responses API (catalog
 * mode "responses"): a policy that speaks Chat Completions writes
 * `require !responses_only`. */
static const char *const std_caps[] = {
  "vision", "tools", "json", "reasoning", "audio", "pdf", "caching", "responses_only"
};

void sema_check_exprs(sema_unit *u);   /* check.c */

void sema_init(sema_unit *u, const sema_opts *opts) {
  memset(u, 0, sizeof *u);
  ast_ctx_init(&u->ctx);
  if (opts) u->opts = *opts;
  u->ctx.max_errors = u->opts.max_errors;
  for (size_t i = 0; i < sizeof std_caps / sizeof *std_caps; i++)
    u->caps[u->ncaps++] = std_caps[i];
}

void sema_free(sema_unit *u) {
  free(u->ix_models.slot);
  free(u->ix_fields.slot);
  free(u->ix_pools.slot);
  free(u->ix_budgets.slot);
  free(u->ix_routes.slot);
  free(u->mods);
  free(u->models);
  free(u->fields);
  free(u->pools);
  free(u->budgets);
  free(u->routes);
  ast_ctx_free(&u->ctx);
}

/* Grows a malloc'd array of n items to hold one more; 0 or -1. */
int sema_grow(void *pp, int n, int *cap, size_t size) {
  void **p = pp;
  if (n < *cap) return 0;
  int nc = *cap ? *cap * 2 : 16;
  void *q = realloc(*p, (size_t)nc * size);
  if (!q) return -1;
  *p = q;
  *cap = nc;
  return 0;
}

static ast_span nospan(void) {
  ast_span s = {0};
  return s;
}

/* ---- loading ---- */

int sema_path_norm(const char *path, char *out, size_t cap) {
  size_t n = 0, floor = 0;   /* out[0, floor) -- "/" or leading ".." parts -- stays */
  int abs = path[0] == '/';
  if (abs) { if (cap < 2) return -1; out[n++] = '/'; floor = 1; }
  for (const char *p = path; *p;) {
    while (*p == '/') p++;
    size_t k = strcspn(p, "/");
    int dot = k == 1 && p[0] == '.', up = k == 2 && p[0] == '.' && p[1] == '.';
    if (up && n > floor) {   /* take away the part before */
      while (n > floor && out[n - 1] != '/') n--;
      if (n > floor) n--;
    } else if (k && !dot && !(up && abs)) {   /* "/.." is "/" */
      int sep = n > 0 && out[n - 1] != '/';
      if (n + (size_t)sep + k + 1 > cap) return -1;
      if (sep) out[n++] = '/';
      memcpy(out + n, p, k);
      n += k;
      if (up) floor = n;
    }
    p += k;
  }
  if (n == 0) { if (cap < 2) return -1; out[n++] = '.'; }
  out[n] = 0;
  return 0;
}

/* The entry of the sealed set (opts.files) whose path is path, both read
 * normalised (sema_path_norm), or NULL. */
static const lanec_file *sealed_find(const sema_opts *o, const char *path) {
  char want[PATH_MAX], have[PATH_MAX];
  if (sema_path_norm(path, want, sizeof want) != 0) return NULL;
  for (int i = 0; i < o->nfiles; i++)
    if (o->files[i].path && sema_path_norm(o->files[i].path, have, sizeof have) == 0 &&
        strcmp(have, want) == 0)
      return &o->files[i];
  return NULL;
}

char *sema_read_input(const sema_unit *u, const char *path, size_t max, size_t *len) {
  if (u->opts.files) {   /* sealed: the set alone */
    const lanec_file *f = sealed_find(&u->opts, path);
    if (!f) { errno = ENOENT; return NULL; }
    size_t n = f->n > max ? max + 1 : f->n;
    char *buf = malloc(n + 1);
    if (!buf) { errno = ENOMEM; return NULL; }
    if (n) memcpy(buf, f->bytes, n);
    buf[n] = 0;
    *len = n;
    return buf;
  }
  FILE *f = ast_fopen_regular(path);
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (ferror(f)) { int e = errno; free(buf); fclose(f); errno = e ? e : EIO; return NULL; }
    if (n + 1 < cap || n > max) break;   /* the end, or past max: the caller says so */
    char *nb = realloc(buf, cap * 2);
    if (!nb) { free(buf); buf = NULL; break; }
    buf = nb;
    cap *= 2;
  }
  fclose(f);
  if (!buf) { errno = ENOMEM; return NULL; }
  buf[n] = 0;
  *len = n;
  return buf;
}

static char *read_file(sema_unit *u, const char *path, size_t *len) {
  /* past AST_MAX_SOURCE the parser reports the file too large */
  char *buf = sema_read_input(u, path, AST_MAX_SOURCE, len);
  if (!buf) {
    if (errno == ENOMEM) u->ctx.nomem = 1;
    return NULL;
  }
  char *copy = ast_strndup(&u->ctx, buf, *len);
  free(buf);
  return copy;
}

static const char *module_name(sema_unit *u, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (n > 5 && strcmp(base + n - 5, ".lane") == 0) n -= 5;
  return ast_strndup(&u->ctx, base, n);
}

static sema_module *add_module(sema_unit *u, const char *path, const char *text,
                               size_t len, int root) {
  sema_module **mods = realloc(u->mods, (size_t)(u->nmods + 1) * sizeof *mods);
  if (!mods) { u->ctx.nomem = 1; return NULL; }
  u->mods = mods;   /* kept even if m fails: realloc freed the old array */
  sema_module *m = ast_alloc(&u->ctx, sizeof *m);
  if (!m) return NULL;
  m->file.name = ast_strndup(&u->ctx, path, strlen(path));
  m->file.text = text;
  m->file.len = len;
  m->file.module = module_name(u, path);
  m->file.is_root = root;
  if (!text || !m->file.name || !m->file.module) {   /* out of memory (ctx.nomem) */
    u->ctx.nomem = 1;
    return NULL;
  }
  u->mods[u->nmods++] = m;   /* only a whole module: later passes read every field */
  if (parse_file(&u->ctx, &m->file, &m->decls) < 0) u->ctx.nomem = 1;
  return m;
}

static int same_file(const sema_unit *u, const char *a, const char *b) {
  char ra[PATH_MAX], rb[PATH_MAX];
  if (u->opts.files)   /* sealed: the same name, once normalised */
    return sema_path_norm(a, ra, sizeof ra) == 0 && sema_path_norm(b, rb, sizeof rb) == 0 &&
           strcmp(ra, rb) == 0;
  if (realpath(a, ra) && realpath(b, rb)) return strcmp(ra, rb) == 0;
  return strcmp(a, b) == 0;
}

/* Something is there (stat, not open: opening a FIFO would block); reading
 * it then says if it is not a regular file. Sealed: in the set. */
static int file_exists(const sema_unit *u, const char *path) {
  if (u->opts.files) return sealed_find(&u->opts, path) != NULL;
  struct stat st;
  return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

static char *resolve_import(sema_unit *u, const src_file *from, const char *mod, size_t n);

/* Whether module mod (e.g. "std/providers/anthropic"), not imported,
 * declares model name ("anthropic.claude_haiku_4_5"): for the hint that
 * names the import a policy forgot. */
int sema_module_declares(sema_unit *u, const char *mod, const char *name) {
  src_file here = {"", "", 0, "", 1};
  char *path = resolve_import(u, &here, mod, strlen(mod));
  const char *dot = strchr(name, '.');
  if (!path || !dot) return 0;
  size_t n;
  char *text = sema_read_input(u, path, AST_MAX_SOURCE, &n);
  if (!text) return 0;
  char want[300];
  int k = snprintf(want, sizeof want, "model %s ", dot + 1);
  int found = 0;
  /* a line that starts with the declaration */
  for (const char *line = text; !found && line < text + n;) {
    found = (size_t)k < sizeof want && (size_t)(text + n - line) >= (size_t)k &&
            strncmp(line, want, (size_t)k) == 0;
    const char *nl = memchr(line, '\n', (size_t)(text + n - line));
    line = nl ? nl + 1 : text + n;
  }
  free(text);
  return found;
}

/* Finds the file an import names; NULL if none. */
static char *resolve_import(sema_unit *u, const src_file *from, const char *mod,
                            size_t n) {
  char buf[PATH_MAX];
  if (n > 4 && memcmp(mod, "std/", 4) == 0 && u->opts.files) {   /* sealed: by name */
    snprintf(buf, sizeof buf, "%.*s.lane", (int)n, mod);
    return file_exists(u, buf) ? ast_strndup(&u->ctx, buf, strlen(buf)) : NULL;
  }
  if (n > 4 && memcmp(mod, "std/", 4) == 0) {
    const char *dir = u->opts.stdlib ? u->opts.stdlib : getenv("LANE_STDLIB");
    if (!dir || !*dir) {
      /* An installed lane reads <bindir>/../share/lane/stdlib; a lane in
       * the build tree has none there and reads the compiled-in source
       * tree's stdlib. */
      char exe[PATH_MAX];
      ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
      char *bin = k > 0 ? (exe[k] = 0, strrchr(exe, '/')) : NULL;
      if (bin) {
        snprintf(buf, sizeof buf, "%.*s/../share/lane/stdlib/%.*s.lane", (int)(bin - exe),
                 exe, (int)(n - 4), mod + 4);
        if (file_exists(u, buf)) return ast_strndup(&u->ctx, buf, strlen(buf));
      }
      dir = LANE_STDLIB_DIR;
    }
    snprintf(buf, sizeof buf, "%s/%.*s.lane", dir, (int)(n - 4), mod + 4);
    return file_exists(u, buf) ? ast_strndup(&u->ctx, buf, strlen(buf)) : NULL;
  }
  const char *slash = strrchr(from->name, '/');
  int dlen = slash ? (int)(slash - from->name) : 1;
  snprintf(buf, sizeof buf, "%.*s/%.*s.lane", dlen, slash ? from->name : ".",
           (int)n, mod);
  if (file_exists(u, buf)) return ast_strndup(&u->ctx, buf, strlen(buf));
  for (int i = 0; i < u->opts.ninclude; i++) {
    snprintf(buf, sizeof buf, "%s/%.*s.lane", u->opts.include[i], (int)n, mod);
    if (file_exists(u, buf)) return ast_strndup(&u->ctx, buf, strlen(buf));
  }
  return NULL;
}

/* Loads the modules imported by m, depth first. */
static void load_imports(sema_unit *u, sema_module *m, int depth) {
  for (int i = 0; i < m->decls.n; i++) {
    ast_node *d = m->decls.v[i];
    if (d->kind != N_IMPORT) continue;
    char *path = resolve_import(u, &m->file, d->str, d->len);
    if (!path) {
      if (d->len > 4 && memcmp(d->str, "std/", 4) == 0)
        diag_error(&u->ctx, d->span, "cannot find module '%.*s' in the standard library",
                   (int)d->len, d->str);
      else
        diag_error(&u->ctx, d->span,
                   "cannot find module '%.*s' beside this file or in any -I directory",
                   (int)d->len, d->str);
      continue;
    }
    d->ref = -1;
    for (int k = 0; k < u->nmods; k++)
      if (same_file(u, u->mods[k]->file.name, path)) d->ref = k;
    if (d->ref >= 0) continue;
    if (depth > 32) {
      diag_error(&u->ctx, d->span, "imports nested more than 32 deep");
      continue;
    }
    size_t len;
    char *text = read_file(u, path, &len);
    if (!text) {
      diag_error(&u->ctx, d->span, "cannot read '%s': %s", path, ast_strerror(errno));
      continue;
    }
    d->ref = u->nmods;
    sema_module *im = add_module(u, path, text, len, 0);
    if (!im) return;
    load_imports(u, im, depth + 1);
  }
}

int sema_load(sema_unit *u, const char *path, const char *text) {
  size_t len;
  if (text) {
    len = strlen(text);
    text = ast_strndup(&u->ctx, text, len);
  } else {
    text = read_file(u, path, &len);
    if (!text) {
      if (!u->ctx.nomem)
        diag_error(&u->ctx, nospan(), "cannot read '%s': %s", path, ast_strerror(errno));
      return -1;
    }
  }
  sema_module *m = add_module(u, path, text, len, 1);
  if (!m) return -1;
  load_imports(u, m, 0);
  return u->ctx.nomem || u->ctx.nerrors ? -1 : 0;
}

int sema_load_tests(sema_unit *u, const char *path) {
  size_t len;
  char *text = read_file(u, path, &len);
  if (!text) {
    diag_error(&u->ctx, nospan(), "cannot read '%s': %s", path, ast_strerror(errno));
    return -1;
  }
  sema_module *m = add_module(u, path, text, len, 0);
  if (!m || u->nmods < 2) return -1;
  for (int i = 0; i < m->decls.n; i++) {
    ast_node *d = m->decls.v[i];
    if (d->kind == N_TEST) ast_push(&u->ctx, &u->mods[0]->decls, d);
    else diag_error(&u->ctx, d->span, "a test file may hold only test blocks");
  }
  m->state = 2;   /* nothing in it to declare */
  return u->ctx.nerrors ? -1 : 0;
}

void sema_node_text(const ast_node *n, const char *line, size_t len, char *buf, size_t cap) {
  if (!line && n->span.file) line = ast_source_line(n->span.file, n->span.line, &len);
  if (!line || n->span.col < 1 || (size_t)n->span.col - 1 > len) {
    snprintf(buf, cap, "(expression)");
    return;
  }
  size_t from = (size_t)n->span.col - 1, k = (size_t)n->span.len;
  int cut = 0;
  if (n->span.more || from + k > len) { k = len - from; cut = 1; }   /* it goes on below */
  if (cut ? k + 4 > cap : k + 1 > cap) {   /* too long to quote: cut at a character, say so */
    cut = 1;
    k = cap > 4 ? cap - 4 : 0;
    while (k && ((unsigned char)line[from + k] & 0xC0) == 0x80) k--;
  }
  snprintf(buf, cap, "%.*s%s", (int)k, line + from, cut ? "..." : "");
}

int sema_split_last(const ast_node *split) {
  int last = -1;
  for (int i = 0; i < split->list.n; i++)
    if (split->list.v[i]->ref > 0) last = i;
  return last;
}

/* ---- lookups ---- */

/* ---- name indexes ---- */

static uint32_t name_hash(const char *s) {
  uint32_t h = 2166136261u;   /* FNV-1a 32 */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The index of name in ix, or -1. */
static int ix_find(const sema_index *ix, const char *name) {
  if (!ix->cap) return -1;
  for (uint32_t i = name_hash(name) & (ix->cap - 1);; i = (i + 1) & (ix->cap - 1)) {
    if (!ix->slot[i].name) return -1;
    if (strcmp(ix->slot[i].name, name) == 0) return ix->slot[i].idx;
  }
}

static void ix_put(sema_ixent *slot, uint32_t cap, sema_ixent e) {
  uint32_t i = name_hash(e.name) & (cap - 1);
  while (slot[i].name) i = (i + 1) & (cap - 1);
  slot[i] = e;
}

/* Adds name -> idx (name is arena-owned and outlives the index). Running
 * out of memory marks the context, as every allocation here does. */
static void ix_add(sema_unit *u, sema_index *ix, const char *name, int idx) {
  if ((ix->n + 1) * 2 > ix->cap) {   /* at most half full */
    uint32_t cap = ix->cap ? ix->cap * 2 : 64;
    sema_ixent *slot = calloc(cap, sizeof *slot);
    if (!slot) { u->ctx.nomem = 1; return; }
    for (uint32_t i = 0; i < ix->cap; i++)
      if (ix->slot[i].name) ix_put(slot, cap, ix->slot[i]);
    free(ix->slot);
    ix->slot = slot;
    ix->cap = cap;
  }
  ix_put(ix->slot, ix->cap, (sema_ixent){name, idx});
  ix->n++;
}

int sema_model_find(const sema_unit *u, const char *name) { return ix_find(&u->ix_models, name); }

int sema_field_find(const sema_unit *u, const char *name) { return ix_find(&u->ix_fields, name); }

int sema_cap_find(const sema_unit *u, const char *name) {
  for (int i = 0; i < u->ncaps; i++)
    if (strcmp(u->caps[i], name) == 0) return i;
  return -1;
}

static int cap_intern(sema_unit *u, const char *name, ast_span sp) {
  int i = sema_cap_find(u, name);
  if (i >= 0) return i;
  if (u->ncaps == BC_MAX_CAPS) {
    diag_error(&u->ctx, sp, "too many capability names (at most %d)", BC_MAX_CAPS);
    return -1;
  }
  u->caps[u->ncaps] = name;
  return u->ncaps++;
}

/* ---- model declarations ---- */

const sema_mpinfo sema_mprops[BC_NMPROPS] = {
#define SEMA_MP_INFO(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  { TY_##unit, 0 SEMA_MP_VALUE(kind)(+ offsetof(sema_model, member)) },
  BC_MPROPS(SEMA_MP_INFO)
#undef SEMA_MP_INFO
};

/* The property a model declaration sets with name (a row of BC_MPROPS
 * with a line group, caps aside), or -1. */
static int declared_prop(const char *name) {
  for (int k = 0; k < BC_NMPROPS; k++)
    if (bc_mprops[k].group && bc_mprops[k].kind != BC_MPK_RECORD &&
        strcmp(bc_mprops[k].name, name) == 0)
      return k;
  return -1;
}

/* The names a model declaration takes, caps included, by line group. */
static int declared_names(const char **names) {
  int n = 0;
  for (int g = 1; g < BC_MP_GROUPS; g++)
    for (int k = 0; k < BC_NMPROPS; k++)
      if (bc_mprops[k].group == g) names[n++] = bc_mprops[k].name;
  return n;
}

int sema_check_const(sema_unit *u, ast_node *e, int want, const char *what, ev_val *out);

static void apply_caps(sema_unit *u, sema_model *m, ast_node *p) {
  for (int i = 0; i < p->list.n; i++) {
    ast_node *c = p->list.v[i];
    int bit = cap_intern(u, c->name, c->span);
    if (bit >= 0) m->caps |= 1u << bit;
  }
}


static void apply_prop(sema_unit *u, sema_model *m, ast_node *p) {
  if (strcmp(p->name, "caps") == 0 && !p->a) { apply_caps(u, m, p); return; }
  int k = declared_prop(p->name);
  int is_cap = sema_cap_find(u, p->name) >= 0;
  for (size_t i = 0; i < sizeof std_caps / sizeof *std_caps; i++)
    is_cap |= strcmp(std_caps[i], p->name) == 0;
  if (k < 0 && is_cap) {
    diag_error(&u->ctx, p->span, "'%s' is a capability, not a property; list capabilities "
               "after caps, separated by commas: caps %s, tools", p->name, p->name);
    return;
  }
  if (k < 0) {
    const char *names[BC_NMPROPS];
    int n = declared_names(names);
    const char *best = sema_suggest(p->name, names, n);
    if (best) {
      diag_error(&u->ctx, p->span, "unknown model property '%s'; did you mean '%s'?", p->name,
                 best);
      return;
    }
    char list[512];
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof list; i++)
      at += (size_t)snprintf(list + at, sizeof list - at, "%s%s",
                             i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
    diag_error(&u->ctx, p->span, "unknown model property '%s'; expected %s", p->name, list);
    return;
  }
  int ty = sema_mprops[k].ty;
  char *slot = (char *)m + sema_mprops[k].soff;   /* the member, for a SEMA_MP_VALUE row */
  ev_val v;
  if (sema_check_const(u, p->a, ty, p->name, &v) != 0) return;
  const char *n = p->name;
  if (ty == TY_STRING) {
    const char *s = ast_strndup(&u->ctx, v.s, v.n);
    if (!s) return;   /* out of memory (ctx.nomem): keep the old value */
    if (k == MP_DEPRECATED && !ast_valid_date(s)) {
      diag_error(&u->ctx, p->a->span, "deprecated wants a date as \"YYYY-MM-DD\"");
      return;
    }
    *(const char **)slot = s;
  } else if (ty == TY_PRICE) {
    if (!(v.v.d >= 0 && isfinite(v.v.d)) || v.v.d > 1.0) {
      diag_error(&u->ctx, p->a->span, "%s price must be between $0 and $1000000/Mtok", n);
      return;
    }
    // cppcheck-suppress invalidPointerCast ; slot is the offsetof of a double member
    *(double *)slot = v.v.d;
  } else if (ty == TY_TOKENS) {
    if (v.v.i < 0) { diag_error(&u->ctx, p->a->span, "%s cannot be negative", n); return; }
    *(int64_t *)slot = v.v.i;
  } else if (ty == TY_DOUBLE) {
    if (!(v.v.d >= 0 && v.v.d <= 1)) {
      diag_error(&u->ctx, p->a->span, "%s must be between 0 and 1", n);
      return;
    }
    // cppcheck-suppress invalidPointerCast ; slot is the offsetof of a double member
    *(double *)slot = v.v.d;
  } else if (ty == TY_DURATION) {
    if (!(v.v.d >= 0 && isfinite(v.v.d))) {
      diag_error(&u->ctx, p->a->span, "%s cannot be negative", n);
      return;
    }
    // cppcheck-suppress invalidPointerCast ; slot is the offsetof of a double member
    *(double *)slot = v.v.d;
  } else {
    m->tags = ast_alloc(&u->ctx, (v.n ? v.n : 1) * sizeof *m->tags);
    if (!m->tags) return;
    m->ntags = 0;
    for (size_t i = 0; i < v.n; i++) {   /* out of memory: keep the tags copied so far */
      if (!(m->tags[i] = ast_strndup(&u->ctx, v.items[i].s, v.items[i].n))) break;
      m->ntags++;
    }
  }
}

static void declare_model(sema_unit *u, sema_module *mod, ast_node *d) {
  const char *name = d->name;
  int qualified = strchr(name, '.') != NULL;
  if (!qualified && !mod->file.is_root) {
    size_t n = strlen(mod->file.module) + strlen(name) + 2;
    char *q = ast_alloc(&u->ctx, n);
    if (!q) return;
    snprintf(q, n, "%s.%s", mod->file.module, name);
    name = q;
  }
  int idx = sema_model_find(u, name);
  if (qualified) {
    if (idx < 0) {
      const char *best = sema_suggest_model(u, name);
      if (best)
        diag_error(&u->ctx, d->span, "no model '%s' to override; did you mean '%s'?", name,
                   best);
      else
        diag_error(&u->ctx, d->span,
                   "no model '%s' to override; import its catalog first, or declare "
                   "a new model with an unqualified name", name);
      return;
    }
  } else if (idx >= 0) {
    diag_error(&u->ctx, d->span, "model '%s' is already declared", name);
    diag_report(&u->ctx, DIAG_NOTE, u->models[idx].span, "first declared here");
    return;
  } else {
    if (u->nmodels >= LANE_MAX_MODELS) {
      diag_error(&u->ctx, d->span, "too many models (at most %d)", LANE_MAX_MODELS);
      return;
    }
    if (sema_grow(&u->models, u->nmodels, &u->capmodels, sizeof *u->models)) {
      u->ctx.nomem = 1;
      return;
    }
    idx = u->nmodels++;
    ix_add(u, &u->ix_models, name, idx);
    sema_model *m = &u->models[idx];
    memset(m, 0, sizeof *m);
    m->name = name;
    m->span = d->span;
    for (int k = 0; k < BC_NMPROPS; k++)   /* string properties default to "" */
      if (sema_mprops[k].soff && bc_mprops[k].mt == 'S')
        *(const char **)((char *)m + sema_mprops[k].soff) = "";
    m->provider = mod->file.is_root ? "" : mod->file.module;
    m->id = d->name;
  }
  d->ref = idx;
  for (int i = 0; i < d->list.n; i++) apply_prop(u, &u->models[idx], d->list.v[i]);
  if (qualified && mod->file.is_root) sema_warn_deprecated(u, d->span, &u->models[idx]);
}

/* ---- request fields ---- */

static const struct { const char *name; int ty; } type_names[] = {
  {"string", TY_STRING}, {"int", TY_INT}, {"uint", TY_UINT}, {"double", TY_DOUBLE},
  {"bool", TY_BOOL}, {"tokens", TY_TOKENS}, {"money", TY_MONEY},
  {"duration", TY_DURATION}, {"fraction", TY_FRACTION}, {"price", TY_PRICE},
};

/* A field type as written: a scalar's name, or "map(string, T)" (the
 * parser writes it so), or 0. */
static int field_type(const char *name) {
  static const char map[] = "map(string, ";
  size_t n = strlen(name), m = sizeof map - 1;
  if (!strcmp(name, "list(string)")) return TY_LIST | TY_STRING;
  for (size_t k = 0; k < sizeof type_names / sizeof *type_names; k++) {
    const char *t = type_names[k].name;
    size_t tn = strlen(t);
    if (!strcmp(t, name)) return type_names[k].ty;
    if (n == m + tn + 1 && !strncmp(name, map, m) && !strncmp(name + m, t, tn) &&
        name[n - 1] == ')')
      return TY_MAPOF(TY_STRING, type_names[k].ty);
  }
  return TY_ERROR;
}

static int add_field(sema_unit *u, const char *name, int ty, ast_span sp) {
  if (u->nfields >= LANE_MAX_FIELDS) {
    diag_error(&u->ctx, sp, "too many request fields (at most %d)", LANE_MAX_FIELDS);
    return -1;
  }
  if (sema_grow(&u->fields, u->nfields, &u->capfields, sizeof *u->fields)) {
    u->ctx.nomem = 1;
    return -1;
  }
  sema_field *f = &u->fields[u->nfields];
  f->name = name;
  f->ty = ty;
  f->span = sp;
  f->sensitive = 0;
  ix_add(u, &u->ix_fields, name, u->nfields);
  return u->nfields++;
}

static int unit_ty(int unit) {
  switch (unit) {
  case BC_U_INT: return TY_INT;
  case BC_U_UINT: return TY_UINT;
  case BC_U_DOUBLE: return TY_DOUBLE;
  case BC_U_BOOL: return TY_BOOL;
  case BC_U_STRING: return TY_STRING;
  case BC_U_TOKENS: return TY_TOKENS;
  case BC_U_MONEY: return TY_MONEY;
  case BC_U_DURATION: return TY_DURATION;
  case BC_U_FRACTION: return TY_FRACTION;
  default: return TY_PRICE;
  }
}

static void add_std_fields(sema_unit *u) {
#define STD_FIELD(id, name, unit) add_field(u, name, unit_ty(unit), nospan());
  BC_STD_FIELDS(STD_FIELD)
#undef STD_FIELD
}

static void declare_fields(sema_unit *u, ast_node *d) {
  for (int i = 0; i < d->list.n; i++) {
    ast_node *f = d->list.v[i];
    int ty = field_type(f->str);
    if (!ty) {
      diag_error(&u->ctx, f->span,
                 "unknown field type '%s'; expected string, int, uint, double, bool, "
                 "tokens, money, duration, fraction, price, map(string, T) of one of "
                 "those, or list(string)", f->str);
      continue;
    }
    int prev = sema_field_find(u, f->name);
    if (f->op == 1 && ty != TY_STRING) {
      diag_error(&u->ctx, f->span, "only a string field can be sensitive; '%s' is %s (a "
                 "number or a flag tells little, and the log hashes text)", f->name, f->str);
      continue;
    }
    if (prev >= 0 && prev < BC_NSTD && f->op == 1 && u->fields[prev].ty == ty) {
      u->fields[prev].sensitive = 1;   /* `user: string sensitive` marks a standard field */
      continue;
    }
    if (prev >= 0) {
      if (prev < BC_NSTD)
        diag_error(&u->ctx, f->span, "'%s' is a standard request field; it needs no declaration",
                   f->name);
      else {
        diag_error(&u->ctx, f->span, "request field '%s' is already declared", f->name);
        diag_report(&u->ctx, DIAG_NOTE, u->fields[prev].span, "first declared here");
      }
      continue;
    }
    if (add_field(u, f->name, ty, f->span) >= 0 && f->op == 1)
      u->fields[u->nfields - 1].sensitive = 1;
  }
}

/* ---- pools, budgets, routes ---- */

static int find_pool(const sema_unit *u, const char *name) { return ix_find(&u->ix_pools, name); }

static int find_budget(const sema_unit *u, const char *name) {
  return ix_find(&u->ix_budgets, name);
}

static int find_route(const sema_unit *u, const char *name) { return ix_find(&u->ix_routes, name); }

int sema_pool_find(const sema_unit *u, const char *name) { return find_pool(u, name); }
int sema_budget_find(const sema_unit *u, const char *name) { return find_budget(u, name); }
int sema_route_find(const sema_unit *u, const char *name) { return find_route(u, name); }

static void dup_error(sema_unit *u, ast_node *d, const char *what, ast_span prev) {
  diag_error(&u->ctx, d->span, "%s '%s' is already declared", what, d->name);
  diag_report(&u->ctx, DIAG_NOTE, prev, "first declared here");
}

static void declare_pool(sema_unit *u, ast_node *d) {
  int prev = find_pool(u, d->name);
  if (prev >= 0) { dup_error(u, d, "pool", u->pools[prev].span); return; }
  if (sema_grow(&u->pools, u->npools, &u->cappools, sizeof *u->pools)) { u->ctx.nomem = 1; return; }
  ix_add(u, &u->ix_pools, d->name, u->npools);
  sema_pool *p = &u->pools[u->npools++];
  p->name = d->name;
  p->def = d->a;
  p->span = d->span;
  p->state = 0;
}

static void declare_budget(sema_unit *u, ast_node *d) {
  int prev = find_budget(u, d->name);
  if (prev >= 0) { dup_error(u, d, "budget", u->budgets[prev].node->span); return; }
  if (sema_grow(&u->budgets, u->nbudgets, &u->capbudgets, sizeof *u->budgets)) {
    u->ctx.nomem = 1;
    return;
  }
  ix_add(u, &u->ix_budgets, d->name, u->nbudgets);
  sema_budget *b = &u->budgets[u->nbudgets++];
  memset(b, 0, sizeof *b);
  b->name = d->name;
  b->node = d;
  b->key_field = -1;
}

static void declare_route(sema_unit *u, ast_node *d) {
  int prev = find_route(u, d->name);
  if (prev >= 0) { dup_error(u, d, "route", u->routes[prev].node->span); return; }
  if (u->nroutes == SEMA_MAX_ROUTES) {   /* said once, at the first route too many */
    if (u->routes_over++ == 0)
      diag_error(&u->ctx, d->span, "more than %d routes: the limit is %d routes in a policy",
                 SEMA_MAX_ROUTES, SEMA_MAX_ROUTES);
    return;
  }
  if (sema_grow(&u->routes, u->nroutes, &u->caproutes, sizeof *u->routes)) {
    u->ctx.nomem = 1;
    return;
  }
  ix_add(u, &u->ix_routes, d->name, u->nroutes);
  sema_route *r = &u->routes[u->nroutes++];
  memset(r, 0, sizeof *r);
  r->name = d->name;
  r->node = d;
  int seen_fallbacks = 0;
  ast_node *otherwise = NULL;
  for (int i = 0; i < d->list.n; i++) {
    ast_node *it = d->list.v[i];
    switch (it->kind) {
    case N_FALLBACKS: {
      if (seen_fallbacks++) {
        diag_error(&u->ctx, it->span, "route '%s' sets fallbacks twice", d->name);
        break;
      }
      ev_val v;
      if (sema_check_const(u, it->a, TY_INT, "fallbacks", &v) == 0) {
        if (v.v.i < 0 || v.v.i >= LANE_MAX_CANDIDATES)
          diag_error(&u->ctx, it->a->span, "fallbacks must be between 0 and %d",
                     LANE_MAX_CANDIDATES - 1);
        else r->fallbacks = (int)v.v.i;
      }
      break;
    }
    case N_PROP: {   /* output_estimate, the one setting written so */
      if (r->output_estimate) {
        diag_error(&u->ctx, it->span, "route '%s' sets output_estimate twice", d->name);
        break;
      }
      ev_val v;
      if (sema_check_const(u, it->a, TY_TOKENS, "output_estimate", &v) == 0) {
        if (v.v.i < 1 || v.v.i > BC_MAX_OUTPUT_ESTIMATE)
          diag_error(&u->ctx, it->a->span, "output_estimate must be between 1 and %d tokens "
                     "(the output a request without max_output_tokens is expected to take)",
                     BC_MAX_OUTPUT_ESTIMATE);
        else r->output_estimate = v.v.i;
      }
      break;
    }
    case N_REQUIRE: ast_push(&u->ctx, &r->requires, it); break;
    case N_SHADOW: ast_push(&u->ctx, &r->shadows, it); break;
    case N_WHEN:
    case N_OTHERWISE:
      if (otherwise) {
        diag_error(&u->ctx, it->span, "this rule comes after 'otherwise' and can never run");
        diag_report(&u->ctx, DIAG_NOTE, otherwise->span, "'otherwise' closes the route here");
        break;
      }
      if (it->kind == N_OTHERWISE) otherwise = it;
      ast_push(&u->ctx, &r->rules, it);
      break;
    default: break;
    }
  }
  if (r->rules.n == 0)
    diag_error(&u->ctx, d->span, "route '%s' has no rules; add 'when … -> …' or 'otherwise -> …'",
               d->name);
}

/* Declares everything in module m (imports first, where they appear). */
static void declare_module(sema_unit *u, sema_module *m) {
  if (m->state) return;
  m->state = 1;
  for (int i = 0; i < m->decls.n; i++) {
    ast_node *d = m->decls.v[i];
    if (!m->file.is_root && d->kind != N_IMPORT && d->kind != N_MODEL &&
        d->kind != N_REQUEST) {
      diag_error(&u->ctx, d->span,
                 "an imported module may declare only models and request fields");
      continue;
    }
    switch (d->kind) {
    case N_IMPORT:
      if (d->ref > 0 && d->ref < u->nmods) declare_module(u, u->mods[d->ref]);
      break;
    case N_MODEL: declare_model(u, m, d); break;
    case N_REQUEST: declare_fields(u, d); break;
    case N_POOLDEF: declare_pool(u, d); break;
    case N_BUDGET: declare_budget(u, d); break;
    case N_ROUTE: declare_route(u, d); break;
    case N_TEST: ast_push(&u->ctx, &u->tests, d); break;
    default: break;
    }
  }
  m->state = 2;
}

int sema_check(sema_unit *u) {
  if (u->nmods == 0) return u->ctx.nerrors + 1;
  add_std_fields(u);
  declare_module(u, u->mods[0]);
  if (u->nroutes == 0 && !u->ctx.nerrors)
    diag_error(&u->ctx, nospan(), "%s: the policy declares no route", u->mods[0]->file.name);
  sema_check_exprs(u);
  if (u->ctx.nomem && !u->ctx.nerrors)
    diag_error(&u->ctx, nospan(), "out of memory");
  return u->ctx.nerrors;
}
