/*
 * ast.c -- the arena, node constructors, diagnostics and the debug dump.
 *
 * Everything a compilation allocates comes from one arena hanging off the
 * ast_ctx, so ast_ctx_free is the single place memory is given back. The
 * arena hands out zeroed memory; an allocation failure sets ctx->nomem and
 * returns NULL, and callers unwind (the parser stops with YYNOMEM).
 */
#include "ast.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdlib.h>
#include <string.h>

/* A block of arena memory; blocks are chained newest first. */
struct arena_block {
  arena_block *next;      /* older block */
  size_t       used;      /* bytes handed out from data */
  size_t       size;      /* bytes of data */
  max_align_t  data[];    /* the memory itself */
};

#ifndef ARENA_BLOCK         /* a tiny block size makes allocation-failure tests bite */
#define ARENA_BLOCK 16384   /* default block payload; big requests get their own */
#endif
#define ALIGN       (sizeof(max_align_t))

void ast_ctx_init(ast_ctx *ctx) {
  memset(ctx, 0, sizeof *ctx);
}

void ast_ctx_free(ast_ctx *ctx) {
  arena_block *b = ctx->arena;
  while (b) {
    arena_block *next = b->next;
    free(b);
    b = next;
  }
  free(ctx->diags);
  free(ctx->comments);
  memset(ctx, 0, sizeof *ctx);
}

void *ast_alloc(ast_ctx *ctx, size_t n) {
  arena_block *b = ctx->arena;
  size_t need = (n + ALIGN - 1) / ALIGN * ALIGN;
  void *p;
  if (need < n) { ctx->nomem = 1; return NULL; }
  if (need == 0) need = ALIGN;
  if (!b || b->size - b->used < need) {
    size_t size = need > ARENA_BLOCK ? need : ARENA_BLOCK;
    if (size > SIZE_MAX - sizeof *b) { ctx->nomem = 1; return NULL; }
    b = malloc(sizeof *b + size);
    if (!b) { ctx->nomem = 1; return NULL; }
    b->used = 0;
    b->size = size;
    /* A big private block goes behind the current one so the current
     * block's free space stays usable. */
    if (need > ARENA_BLOCK && ctx->arena) {
      b->next = ctx->arena->next;
      ctx->arena->next = b;
    } else {
      b->next = ctx->arena;
      ctx->arena = b;
    }
  }
  p = (char *)b->data + b->used;
  b->used += need;
  memset(p, 0, need);
  return p;
}

char *ast_strndup(ast_ctx *ctx, const char *s, size_t n) {
  char *p;
  if (n == SIZE_MAX) { ctx->nomem = 1; return NULL; }
  p = ast_alloc(ctx, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

ast_node *ast_new(ast_ctx *ctx, ast_kind kind, ast_span span) {
  ast_node *n = ast_alloc(ctx, sizeof *n);
  if (!n) return NULL;
  n->kind = kind;
  n->span = span;
  return n;
}

int ast_push(ast_ctx *ctx, ast_list *l, ast_node *item) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 4;
    ast_node **v;
    if (l->cap > (1 << 28)) {
      ctx->nomem = 1;
      return -1;
    }
    /* The old array stays in the arena; lists are short, so the waste is
     * bounded by the final size. */
    v = ast_alloc(ctx, (size_t)cap * sizeof *v);
    if (!v) return -1;
    if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof *v);
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = item;
  return 0;
}

ast_span ast_join(ast_span a, ast_span b) {
  if (a.file == b.file && a.line == b.line && b.col >= a.col) {
    int end = b.col + b.len;
    if (end - a.col > a.len) a.len = end - a.col;
    a.more |= b.more;
  } else if (a.file == b.file && b.line > a.line) {
    a.more = 1;   /* the joined span goes on below a's line */
  }
  return a;
}

/* ---- diagnostics ---- */

void diag_vreport(ast_ctx *ctx, diag_level lv, ast_span sp, const char *fmt,
                  va_list ap) {
  int max = ctx->max_errors > 0 ? ctx->max_errors : 20;
  int stored = 0, i, n;
  va_list ap2;
  char *msg;
  ast_diag *d;

  for (i = 0; i < ctx->ndiags; i++) stored += ctx->diags[i].level == DIAG_ERROR;
  if (lv == DIAG_ERROR) {
    ctx->nerrors++;
    if (stored >= max) return;
  } else if (lv == DIAG_NOTE && stored < ctx->nerrors) {
    return;   /* the error this note explains was not stored */
  }
  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  msg = ast_alloc(ctx, (size_t)n + 1);
  if (!msg) return;
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  if (ctx->ndiags == ctx->capdiags) {
    int cap = ctx->capdiags ? ctx->capdiags * 2 : 16;
    ast_diag *v = realloc(ctx->diags, (size_t)cap * sizeof *v);
    if (!v) { ctx->nomem = 1; return; }
    ctx->diags = v;
    ctx->capdiags = cap;
  }
  d = &ctx->diags[ctx->ndiags++];
  d->level = lv;
  d->span = sp;
  d->msg = msg;
}

void diag_report(ast_ctx *ctx, diag_level lv, ast_span sp, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vreport(ctx, lv, sp, fmt, ap);
  va_end(ap);
}

static const char *level_word(diag_level lv) {
  switch (lv) {
  case DIAG_WARNING: return "warning";
  case DIAG_NOTE: return "note";
  default: return "error";
  }
}

/* Finds line `line` (1-based) of f; sets *n to its length without the
 * newline and a trailing '\r'. NULL when the file has no such line. */
const char *ast_source_line(const src_file *f, int line, size_t *n) {
  const char *p = f->text, *end, *q;
  int l = 1;
  if (!p || line < 1) return NULL;
  end = p + f->len;   /* only once p is known not to be NULL */
  while (l < line) {
    q = memchr(p, '\n', (size_t)(end - p));
    if (!q) return NULL;
    p = q + 1;
    l++;
  }
  q = memchr(p, '\n', (size_t)(end - p));
  if (!q) q = end;
  if (q > p && q[-1] == '\r') q--;
  *n = (size_t)(q - p);
  return p;
}

void diag_render_one(FILE *out, const ast_diag *d) {
  size_t n = 0;
  const char *line = d->span.file ? ast_source_line(d->span.file, d->span.line, &n) : NULL;
  diag_render_one_at(out, d, line, n);
}

void diag_render_one_at(FILE *out, const ast_diag *d, const char *line, size_t n) {
  const ast_span *s = &d->span;
  size_t i, col, len;

  /* Names, messages and source lines come from files: written through
   * text_put, so that escape sequences in them never reach the terminal. */
  if (!s->file) {
    fprintf(out, "lane: %s: ", level_word(d->level));
    text_put(out, d->msg, (size_t)-1);
    fputc('\n', out);
    return;
  }
  text_put(out, s->file->name ? s->file->name : "<input>", (size_t)-1);
  fprintf(out, ":%d:%d: %s: ", s->line, s->col, level_word(d->level));
  text_put(out, d->msg, (size_t)-1);
  fputc('\n', out);
  if (!line) return;
  fprintf(out, "%5d | ", s->line);
  text_put(out, line, n);
  fputc('\n', out);
  col = s->col > 0 ? (size_t)s->col - 1 : 0;
  if (col > n) col = n;
  len = s->len > 0 ? (size_t)s->len : 1;
  if (col + len > n) len = n > col ? n - col : 1;
  /* Columns count bytes; the caret line counts what the line above shows
   * (a character, or \xNN for an escaped byte), so that it lines up under
   * UTF-8 and escaped text too. */
  fputs("      | ", out);
  for (i = 0; i < col;) {
    int esc;
    size_t k = text_unit(line + i, n - i, &esc);
    if (line[i] == '\t') fputc('\t', out);
    else fprintf(out, "%*s", esc ? 4 : 1, "");
    i += k;
  }
  fputc('^', out);
  size_t w = len ? text_width(line + col, len < n - col ? len : n - col) : 1;
  for (i = 1; i < w; i++) fputc('~', out);
  fputc('\n', out);
}

/* Orders two diagnostics by where they point: files in order of first
 * report, then line and column; spans without a file come first. */
static int diag_before(const ast_ctx *ctx, const ast_diag *a, const ast_diag *b) {
  if (a->span.file != b->span.file) {
    if (!a->span.file || !b->span.file) return !a->span.file;
    for (int i = 0; i < ctx->ndiags; i++) {
      if (ctx->diags[i].span.file == a->span.file) return 1;
      if (ctx->diags[i].span.file == b->span.file) return 0;
    }
  }
  return a->span.line < b->span.line ||
         (a->span.line == b->span.line && a->span.col < b->span.col);
}

/* Renders in source order: each error or warning with the notes that
 * follow it, groups sorted stably by position (passes report out of order). */
void diag_render(FILE *out, const ast_ctx *ctx) {
  int i, k, shown = 0, ngroups = 0;
  int *group = malloc((size_t)(ctx->ndiags + 1) * sizeof *group);
  for (i = 0; i < ctx->ndiags; i++) {
    shown += ctx->diags[i].level == DIAG_ERROR;
    if (!group || (ctx->diags[i].level == DIAG_NOTE && ngroups > 0)) continue;
    int g = ngroups++;
    for (; g > 0 && diag_before(ctx, &ctx->diags[i], &ctx->diags[group[g - 1]]); g--)
      group[g] = group[g - 1];
    group[g] = i;
  }
  if (!group) {   /* out of memory: report order is still complete */
    for (i = 0; i < ctx->ndiags; i++) diag_render_one(out, &ctx->diags[i]);
  }
  for (k = 0; k < ngroups; k++) {
    i = group[k];
    do diag_render_one(out, &ctx->diags[i++]);
    while (i < ctx->ndiags && ctx->diags[i].level == DIAG_NOTE);
  }
  free(group);
  if (ctx->nerrors > shown)
    fprintf(out, "lane: %d more errors not shown\n", ctx->nerrors - shown);
}

/* ---- debug dump ---- */

static const char *op_name(int op) {
  static const char *const names[] = {
    "?", "||", "&&", "==", "!=", "<", "<=", ">", ">=", "in",
    "+", "-", "*", "/", "%", "!", "-"
  };
  return op >= 0 && op < (int)(sizeof names / sizeof names[0]) ? names[op] : "?";
}

/* Shortest %g form that reads back as the same double. */
static void dump_double(FILE *out, double d) {
  char buf[40];
  int prec;
  /* The range test comes first: converting a double outside long long's
   * range (1e30, say) is undefined behaviour. */
  if (d > -1e15 && d < 1e15 && d == (double)(long long)d) {
    fprintf(out, "%.0f", d);
    return;
  }
  for (prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) break;
  }
  fputs(buf, out);
}

static void dump_bytes(FILE *out, const char *s, size_t n) {
  size_t i;
  fputc('"', out);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
    else if (c == '\n') fputs("\\n", out);
    else if (c == '\t') fputs("\\t", out);
    else if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
    else fputc(c, out);
  }
  fputc('"', out);
}

static void dump_list(FILE *out, const ast_list *l) {
  int i;
  for (i = 0; i < l->n; i++) {
    fputc(' ', out);
    ast_dump(out, l->v[i]);
  }
}

/* Writes "(head", the children a, b, c that are set, the list, then ")". */
static void dump_form(FILE *out, const char *head, const ast_node *n) {
  fprintf(out, "(%s", head);
  if (n->a) { fputc(' ', out); ast_dump(out, n->a); }
  if (n->b) { fputc(' ', out); ast_dump(out, n->b); }
  if (n->c) { fputc(' ', out); ast_dump(out, n->c); }
  dump_list(out, &n->list);
  fputc(')', out);
}

static void dump_named(FILE *out, const char *head, const ast_node *n) {
  fprintf(out, "(%s %s", head, n->name ? n->name : "-");
  if (n->a) { fputc(' ', out); ast_dump(out, n->a); }
  if (n->b) { fputc(' ', out); ast_dump(out, n->b); }
  dump_list(out, &n->list);
  fputc(')', out);
}

static void dump_lit(FILE *out, const char *head, double d) {
  fprintf(out, "(%s ", head);
  dump_double(out, d);
  fputc(')', out);
}

void ast_dump(FILE *out, const ast_node *n) {
  static const char *const orders[] = { "select?", "cheapest", "fastest", "best" };
  if (!n) { fputs("nil", out); return; }
  switch (n->kind) {
  case N_INT: fprintf(out, "%lld", (long long)n->lit.i); break;
  case N_UINT: fprintf(out, "%lluu", (unsigned long long)n->lit.u); break;
  case N_DOUBLE: dump_double(out, n->lit.d); break;
  case N_BOOL: fputs(n->lit.b ? "true" : "false", out); break;
  case N_STRING: dump_bytes(out, n->str, n->len); break;
  case N_NULL: fputs("null", out); break;
  case N_MONEY: dump_lit(out, "money", n->lit.d); break;
  case N_PRICE: dump_lit(out, "price", n->lit.d); break;
  case N_DURATION: dump_lit(out, "duration", n->lit.d); break;
  case N_TOKENS: fprintf(out, "(tokens %lld)", (long long)n->lit.i); break;
  case N_FRACTION: dump_lit(out, "fraction", n->lit.d); break;
  case N_IDENT: fputs(n->name ? n->name : "-", out); break;
  case N_SELECTOR:
    fputs("(. ", out);
    ast_dump(out, n->a);
    fprintf(out, " %s)", n->name ? n->name : "-");
    break;
  case N_INDEX: dump_form(out, "[]", n); break;
  case N_CALL:
    if (n->a) {
      fputs("(mcall ", out);
      ast_dump(out, n->a);
      fprintf(out, " %s", n->name ? n->name : "-");
    } else {
      fprintf(out, "(call %s", n->name ? n->name : "-");
    }
    dump_list(out, &n->list);
    fputc(')', out);
    break;
  case N_UNARY:
  case N_BINARY: dump_form(out, op_name(n->op), n); break;
  case N_COND: dump_form(out, "?", n); break;
  case N_LIST: dump_form(out, "list", n); break;
  case N_MAP: dump_form(out, "map", n); break;
  case N_POOL:
    fprintf(out, "(pool %s", n->name ? n->name : "models");
    if (n->a) { fputc(' ', out); ast_dump(out, n->a); }
    fputc(')', out);
    break;
  case N_SELECT:
    dump_form(out, n->op >= 1 && n->op <= 3 ? orders[n->op] : orders[0], n);
    break;
  case N_MODELREF: fprintf(out, "(ref %s)", n->name ? n->name : "-"); break;
  case N_SPLIT: dump_form(out, "split", n); break;
  case N_ARM: dump_form(out, "arm", n); break;
  case N_SHADOW: fprintf(out, "(shadow %s)", n->name ? n->name : "-"); break;
  case N_IMPORT:
    fputs("(import ", out);
    dump_bytes(out, n->str, n->len);
    fputc(')', out);
    break;
  case N_MODEL: dump_named(out, "model", n); break;
  case N_PROP: dump_named(out, "prop", n); break;
  case N_REQUEST: dump_form(out, "request", n); break;
  case N_FIELD:
    fprintf(out, "(field %s %s)", n->name ? n->name : "-", n->str ? n->str : "-");
    break;
  case N_POOLDEF: dump_named(out, "pooldef", n); break;
  case N_BUDGET: dump_named(out, "budget", n); break;
  case N_ROUTE: dump_named(out, "route", n); break;
  case N_TEST:
    fputs("(test ", out);
    dump_bytes(out, n->str, n->len);
    dump_list(out, &n->list);
    fputc(')', out);
    break;
  case N_FALLBACKS: dump_form(out, "fallbacks", n); break;
  case N_REQUIRE: dump_form(out, "require", n); break;
  case N_WHEN: dump_form(out, "when", n); break;
  case N_OTHERWISE: dump_form(out, "otherwise", n); break;
  case N_TROUTE: fprintf(out, "(test-route %s)", n->name ? n->name : "-"); break;
  case N_TREQ: dump_form(out, "req", n); break;
  case N_INIT: dump_named(out, "init", n); break;
  case N_EXPECT: dump_form(out, "expect", n); break;
  case N_TSTATE:
    fprintf(out, "(%s ", n->name ? n->name : "-");
    dump_bytes(out, n->str, n->len);
    fputc(')', out);
    break;
  default: fprintf(out, "(?kind %d)", (int)n->kind); break;
  }
}

/* ---- reading sources ---- */

FILE *ast_fopen_regular(const char *path) {
  int fd = open(path, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return NULL;
  struct stat st;
  int e = fstat(fd, &st) != 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
  if (e) {
    close(fd);
    errno = e;
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);   /* a regular file: blocking reads again */
  if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    e = errno;
    close(fd);
    errno = e;
  }
  return f;
}

const char *ast_strerror(int e) {
  return e == EINVAL ? "not a regular file" : strerror(e);
}

int ast_valid_date(const char *s) {
  if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return 0;
  int mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
  return mo >= 1 && mo <= 12 && d >= 1 && d <= 31;
}
