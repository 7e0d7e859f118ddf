/*
 * fmt.c -- `lane fmt`: prints a policy's syntax tree in one canonical
 * layout and puts every comment back where it was.
 *
 * Layout. Two-space indentation. One blank line between top-level
 * declarations, except that one-line declarations of one kind (imports,
 * pools, one-line models, budgets) written without a blank line between
 * them stay together, names padded so `{` or `=` line up, and in a run of
 * models or budgets the properties every row starts with line up in
 * columns. Inside blocks one blank line is kept where the source had any
 * (never after `{` or before `}`). A model, budget or request body written
 * on one line stays on one line if it fits in WIDTH columns, else it is a
 * block: model properties keep their order and share a line while in one
 * group (identity, prices, context, long-context tier, caps, quality,
 * latency, ...: the generated catalogs' layout); budget properties and
 * request fields go one to a line. Routes and tests are blocks with one
 * item per line; the `->` of a route's rules line up in one column. A rule
 * whose condition is longer than COND_MAX or spans lines, that holds a
 * comment after its condition, or that would pass WIDTH puts `->` on the
 * next line, CONT further in; a chain still too wide (or with comments
 * between its items) then puts each `then`/`shadow` item on its own line.
 * Expressions get spaces around binary operators and the fewest
 * parentheses that keep the tree (CEL precedence); lists, arguments, arms
 * and test requests use `, `; literals are copied as written. A
 * when-condition is also the rule's name (its text with whitespace
 * collapsed, shown in decisions and `rule_name`), so when the canonical
 * form would rename the rule, the condition is printed as that name.
 *
 * Comments are placed by position: before each output line come the
 * comments that precede its first node in the source -- a trailing one at
 * the end of the line before, an own-line one on a line of its own at the
 * new line's indentation -- then those inside a construct printed on that
 * one line. Trailing comments on consecutive lines line up.
 *
 * The result is parsed again: its tree (ast_dump), rule names and comment
 * texts must equal the original's, or fmt_text fails rather than return a
 * text that means something else.
 */
#define _XOPEN_SOURCE 700   /* realpath, mkstemp */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bc.h"    /* BC_MPROPS, the model properties */
#include "fmt.h"

enum {
  WIDTH = 100,    /* lines longer than this are broken where the layout allows */
  COND_MAX = 50,  /* a longer when-condition puts its `->` on the next line */
  CONT = 4        /* extra indentation of a rule's continued `->` line */
};

/* ---- growing text ---- */

typedef struct sbuf {
  char  *s;               /* bytes, NUL-terminated once non-empty */
  size_t n;               /* bytes used */
  size_t cap;             /* bytes allocated */
  int    oom;             /* an allocation failed: the text is incomplete */
} sbuf;

static void sput(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *t = realloc(b->s, cap);
    if (!t) { b->oom = 1; return; }
    b->s = t;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

static void sputs(sbuf *b, const char *s) { sput(b, s, strlen(s)); }

/* Appends each string up to a NULL. */
/* Appends each string of a list: cat(b, "route ", name). An array, not a
 * NULL-ended variadic list, so no sentinel can be forgotten or mistyped. */
static void cat_n(sbuf *b, const char *const *s, size_t n) {
  for (size_t i = 0; i < n; i++) sputs(b, s[i]);
}
#define cat(b, ...)                                                           \
  cat_n((b), (const char *const[]){__VA_ARGS__},                              \
        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
static void spad(sbuf *b, int n) { while (n-- > 0) sput(b, " ", 1); }

/* Display columns of s[0..n): UTF-8 continuation bytes take none. */
static int cols(const char *s, size_t n) {
  int c = 0;
  for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
  return c;
}
static int scols(const char *s) { return cols(s, strlen(s)); }

/* ---- the printer ---- */

typedef struct fmt_p {
  ast_ctx    *ctx;        /* arena for the texts of items */
  const char *src;        /* the source */
  size_t      len;        /* its bytes */
  size_t     *lines;      /* offset of each source line's first byte */
  int         nlines;     /* number of source lines */
  const ast_comment *cm;  /* the file's comments, in order */
  size_t     *cmoff;      /* source offset of each comment */
  int         ncm;        /* number of comments */
  int         ci;         /* the next comment to place */
  sbuf        out;        /* the formatted text so far */
  int         open;       /* an output line is started and not ended */
  int         closed;     /* the open line ends with a comment */
  int         fresh;      /* no blank line may come next (file start, after `{`) */
  size_t     *trail;      /* out offsets where a trailing comment's code ends */
  int         ntrail;     /* number of trailing comments */
  int         captrail;   /* allocated */
  int         oom;        /* an allocation failed */
} fmt_p;

static size_t off_of(const fmt_p *p, ast_span s) {
  if (s.line < 1 || s.line > p->nlines) return p->len;
  size_t o = p->lines[s.line - 1] + (size_t)(s.col - 1);
  return o > p->len ? p->len : o;
}
static size_t nstart(const fmt_p *p, const ast_node *n) { return off_of(p, n->span); }

static int idchar(int c) {
  return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* Is a string literal (maybe raw) starting at i? */
static int str_at(const fmt_p *p, size_t i) {
  char c = p->src[i];
  if (c == '"' || c == '\'') return 1;
  return (c == 'r' || c == 'R') && i + 1 < p->len &&
         (p->src[i + 1] == '"' || p->src[i + 1] == '\'') && (i == 0 || !idchar(p->src[i - 1]));
}

/* The end of the string literal at i, by the lexer's rules. */
static size_t str_end(const fmt_p *p, size_t i) {
  const char *s = p->src;
  int raw = 0, triple;
  if (s[i] == 'r' || s[i] == 'R') { raw = 1; i++; }
  char q = s[i];
  triple = i + 2 < p->len && s[i + 1] == q && s[i + 2] == q;
  for (i += triple ? 3 : 1; i < p->len; i++) {
    if (!raw && s[i] == '\\' && i + 1 < p->len) { i++; continue; }
    if (!triple && s[i] == '\n') return i;
    if (s[i] == q && (!triple || (i + 2 < p->len && s[i + 1] == q && s[i + 2] == q)))
      return i + (triple ? 3 : 1);
  }
  return p->len;
}

/* Skips blanks, line ends and comments from i. */
static size_t skip_blank(const fmt_p *p, size_t i) {
  while (i < p->len) {
    char c = p->src[i];
    if (c == '#') while (i < p->len && p->src[i] != '\n') i++;
    else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') i++;
    else break;
  }
  return i;
}

/* The first `ch` at or after i outside comments and strings. */
static size_t find_ch(const fmt_p *p, size_t i, char ch) {
  while (i < p->len) {
    if (p->src[i] == ch) return i;
    if (p->src[i] == '#') { while (i < p->len && p->src[i] != '\n') i++; continue; }
    if (str_at(p, i)) { i = str_end(p, i); continue; }
    i++;
  }
  return p->len;
}

static int is_block(ast_kind k) {
  return k == N_MODEL || k == N_REQUEST || k == N_BUDGET || k == N_ROUTE || k == N_TEST ||
         k == N_TREQ;
}

static size_t close_of(const fmt_p *p, const ast_node *n);

/* Where n ends in the source: exact for one-line nodes and blocks, else at
 * least past the last byte of its last descendant. */
static size_t tend(const fmt_p *p, const ast_node *n) {
  size_t s = nstart(p, n), e = s + (size_t)n->span.len;
  if (n->kind == N_STRING && s < p->len) return str_end(p, s);
  if (is_block(n->kind)) return close_of(p, n) + 1;
  const ast_node *kids[3] = { n->a, n->b, n->c };
  for (int i = 0; i < 3 + n->list.n; i++) {
    const ast_node *k = i < 3 ? kids[i] : n->list.v[i - 3];
    size_t ke = k ? tend(p, k) : 0;
    if (ke > e) e = ke;
  }
  return e > p->len ? p->len : e;
}

/* The offset of a block's closing brace. */
static size_t close_of(const fmt_p *p, const ast_node *n) {
  size_t from = find_ch(p, nstart(p, n), '{') + 1;
  for (int i = 0; i < n->list.n; i++) {
    size_t e = tend(p, n->list.v[i]);
    if (e > from) from = e;
  }
  return find_ch(p, from, '}');
}

static int any_comment(const fmt_p *p, size_t from, size_t to) {
  for (int i = p->ci; i < p->ncm && p->cmoff[i] < to; i++)
    if (p->cmoff[i] >= from) return 1;
  return 0;
}

/* Does the source line of off start with off, after a blank line? */
static int blank_before(const fmt_p *p, size_t off) {
  size_t ls = off, i;
  while (ls > 0 && p->src[ls - 1] != '\n') ls--;
  for (i = ls; i < off; i++)
    if (p->src[i] != ' ' && p->src[i] != '\t') return 0;
  if (ls == 0) return 0;
  for (i = ls - 1; i > 0 && p->src[i - 1] != '\n'; i--) {
    char c = p->src[i - 1];
    if (c != ' ' && c != '\t' && c != '\r') return 0;
  }
  return 1;
}

/* Ends the open line and starts one at `indent`, after a blank line when
 * asked and allowed. */
static void newline(fmt_p *p, int indent, int blank) {
  if (p->open) sputs(&p->out, "\n");
  if (blank && !p->fresh) sputs(&p->out, "\n");
  spad(&p->out, indent);
  p->open = 1;
  p->closed = p->fresh = 0;
}

/* Places the comments before source offset `before`: a trailing one at
 * the end of the open line (unless `own`, or that line already ends in a
 * comment), the others on lines of their own at `indent`. *blank asks for
 * a blank line before the next line started. */
static void flush(fmt_p *p, size_t before, int indent, int own, int *blank) {
  while (p->ci < p->ncm && p->cmoff[p->ci] < before) {
    const ast_comment *c = &p->cm[p->ci];
    size_t off = p->cmoff[p->ci++];
    if (!c->own_line && !own && p->open && !p->closed) {
      if (p->ntrail == p->captrail) {
        int cap = p->captrail ? 2 * p->captrail : 16;
        size_t *v = realloc(p->trail, (size_t)cap * sizeof *v);
        if (!v) { p->oom = 1; return; }
        p->trail = v;
        p->captrail = cap;
      }
      p->trail[p->ntrail++] = p->out.n;
    } else {
      if (blank_before(p, off)) *blank = 1;
      newline(p, indent, *blank);
      *blank = 0;
    }
    sput(&p->out, c->text, c->len);
    p->closed = 1;
  }
}

/* Starts the output line of a construct that spans source [start, end).
 * blank: 1 a blank line before it (and its comments), 0 one where the
 * source had one, -1 none before the line itself. */
static void line_at(fmt_p *p, int indent, size_t start, size_t end, int blank) {
  int want = blank > 0;
  flush(p, start, indent, 0, &want);
  if (blank == 0 && blank_before(p, start)) want = 1;
  flush(p, end, indent, 1, &want);
  newline(p, indent, want && blank >= 0);
}

/* Opens a block after its header; 0 when it is empty and printed `{}`. */
static int open_block(fmt_p *p, const ast_node *d) {
  if (d->list.n == 0 && !any_comment(p, nstart(p, d), close_of(p, d))) {
    sputs(&p->out, "{}");
    return 0;
  }
  sputs(&p->out, "{");
  p->fresh = 1;
  return 1;
}

/* The `}` of a block whose items are at indent + 2. */
static void close_line(fmt_p *p, int indent, size_t at) {
  int want = 0;
  flush(p, at, indent + 2, 0, &want);
  newline(p, indent, 0);
  sputs(&p->out, "}");
}

/* ---- expressions and targets ---- */

static void pexpr(fmt_p *p, sbuf *b, const ast_node *n);

static int prec(const ast_node *n) {
  switch (n->kind) {
  case N_COND: return 1;
  case N_BINARY:
    return n->op == OP_OR ? 2 : n->op == OP_AND ? 3 : n->op <= OP_IN ? 4 : n->op <= OP_SUB ? 5 : 6;
  case N_UNARY: return 7;
  case N_SELECTOR: case N_INDEX: return 8;
  case N_CALL: return n->a ? 8 : 9;
  default: return 9;
  }
}

static int is_number(const ast_node *n) {
  return n->kind >= N_INT && n->kind <= N_FRACTION && n->kind != N_BOOL &&
         n->kind != N_STRING && n->kind != N_NULL;
}

/* n, in parentheses when it binds less tightly than `need` (or `force`). */
static void sub(fmt_p *p, sbuf *b, const ast_node *n, int need, int force) {
  int paren = force || prec(n) < need;
  if (paren) sputs(b, "(");
  pexpr(p, b, n);
  if (paren) sputs(b, ")");
}

static void plit(fmt_p *p, sbuf *b, const ast_node *n) {
  size_t s = nstart(p, n), e = n->kind == N_STRING ? str_end(p, s) : s + (size_t)n->span.len;
  if (n->kind == N_INT && s < p->len && p->src[s] == '-') {
    /* -9223372036854775808: the parser folds the minus into the literal */
    sputs(b, "-");
    for (s = e = skip_blank(p, s + 1); e < p->len && idchar(p->src[e]);) e++;
  }
  sput(b, p->src + s, (e > p->len ? p->len : e) - s);
}

static void plist(fmt_p *p, sbuf *b, const ast_list *l) {
  for (int i = 0; i < l->n; i++) {
    if (i) sputs(b, ", ");
    sub(p, b, l->v[i], 1, 0);
  }
}

static void pexpr(fmt_p *p, sbuf *b, const ast_node *n) {
  static const char *const ops[] = { "?", " || ", " && ", " == ", " != ", " < ", " <= ", " > ",
                                     " >= ", " in ", " + ", " - ", " * ", " / ", " % " };
  switch (n->kind) {
  case N_IDENT: sputs(b, n->name); break;
  case N_SELECTOR: sub(p, b, n->a, 8, is_number(n->a)); cat(b, ".", n->name); break;
  case N_CALL:
    if (n->a) { sub(p, b, n->a, 8, is_number(n->a)); sputs(b, "."); }
    cat(b, n->name, "(");
    plist(p, b, &n->list);
    sputs(b, ")");
    break;
  case N_INDEX:
    sub(p, b, n->a, 8, is_number(n->a));
    sputs(b, "[");
    sub(p, b, n->b, 1, 0);
    sputs(b, "]");
    break;
  case N_UNARY: sputs(b, n->op == OP_NOT ? "!" : "-"); sub(p, b, n->a, 7, 0); break;
  case N_BINARY: {
    int pr = prec(n);
    size_t at = b->n;
    sub(p, b, n->a, pr, 0);
    /* `5% in x` would read as 5 modulo `in`: keep (5%) */
    if (n->op == OP_IN && !b->oom && b->n > at && b->s[b->n - 1] == '%') {
      b->n = at;
      sub(p, b, n->a, pr, 1);
    }
    sputs(b, n->op > OP_NONE && n->op <= OP_MOD ? ops[n->op] : " ? ");
    sub(p, b, n->b, pr + 1, 0);
    break;
  }
  case N_COND:
    sub(p, b, n->a, 2, 0);
    sputs(b, " ? ");
    sub(p, b, n->b, 1, 0);
    sputs(b, " : ");
    sub(p, b, n->c, 1, 0);
    break;
  case N_LIST: sputs(b, "["); plist(p, b, &n->list); sputs(b, "]"); break;
  case N_MAP:
    sputs(b, "{");
    for (int i = 0; i + 1 < n->list.n; i += 2) {
      if (i) sputs(b, ", ");
      sub(p, b, n->list.v[i], 1, 0);
      sputs(b, ": ");
      sub(p, b, n->list.v[i + 1], 1, 0);
    }
    sputs(b, "}");
    break;
  case N_BOOL: sputs(b, n->lit.b ? "true" : "false"); break;
  case N_NULL: sputs(b, "null"); break;
  default: if (n->kind <= N_FRACTION) plit(p, b, n); break;
  }
}

/* A pool: `models` or a pool name, maybe with `where`. */
static void ppool(fmt_p *p, sbuf *b, const ast_node *pool) {
  sputs(b, pool->name ? pool->name : "models");
  if (pool->a) { sputs(b, " where "); pexpr(p, b, pool->a); }
}

static void ptarget(fmt_p *p, sbuf *b, const ast_node *t) {
  static const char *const orders[] = { "?(", "cheapest(", "fastest(", "best(" };
  switch (t->kind) {
  case N_SELECT:
    sputs(b, orders[t->op >= ORD_CHEAPEST && t->op <= ORD_BEST ? t->op : 0]);
    ppool(p, b, t->a);
    sputs(b, ")");
    break;
  case N_SPLIT:
    for (int i = 0; i < t->list.n; i++) {
      sputs(b, i ? ", " : "split { ");
      ptarget(p, b, t->list.v[i]->a);
      sputs(b, ": ");
      pexpr(p, b, t->list.v[i]->b);
    }
    sputs(b, " } by ");
    pexpr(p, b, t->a);
    break;
  case N_SHADOW:
    cat(b, "shadow ", t->name, t->a ? " " : "");
    if (t->a) plit(p, b, t->a);
    break;
  default: sputs(b, t->name ? t->name : "?"); break;
  }
}

/* One property, request field or test request field. */
static void pitem(fmt_p *p, sbuf *b, const ast_node *n) {
  sputs(b, n->name);
  if (n->kind == N_FIELD) {
    sputs(b, ": ");
    sputs(b, n->str);
    if (n->op == 1) sputs(b, " sensitive");
    return;
  }
  sputs(b, n->kind == N_INIT ? ": " : " ");
  if (n->a) { pexpr(p, b, n->a); return; }
  for (int i = 0; i < n->list.n; i++) {   /* caps */
    if (i) sputs(b, ", ");
    sputs(b, n->list.v[i]->name);
  }
}

/* The string literal after a keyword of kw bytes at the start of n. */
static void pstrtok(fmt_p *p, sbuf *b, const ast_node *n, size_t kw) {
  size_t s = skip_blank(p, nstart(p, n) + kw);
  if (s < p->len && str_at(p, s)) sput(b, p->src + s, str_end(p, s) - s);
}

typedef void (*printer)(fmt_p *, sbuf *, const ast_node *);

/* What f prints for n, as an arena string. */
static const char *text(fmt_p *p, printer f, const ast_node *n) {
  sbuf b = { 0 };
  const char *s;
  f(p, &b, n);
  s = b.oom ? NULL : ast_strndup(p->ctx, b.s ? b.s : "", b.n);
  free(b.s);
  if (!s) p->oom = 1;
  return s ? s : "";
}

static const char *concat(fmt_p *p, const char *a, const char *c) {
  size_t na = strlen(a), nc = strlen(c);
  char *s = ast_alloc(p->ctx, na + nc + 1);
  if (!s) { p->oom = 1; return ""; }
  memcpy(s, a, na);
  memcpy(s + na, c, nc + 1);
  return s;
}

/* ---- declarations ---- */

static const char *keyword(ast_kind k) {
  static const char *const kw[] = { "import", "model", "", "request", "", "pool", "budget",
                                    "route", "test" };
  return k >= N_IMPORT && k <= N_TEST ? kw[k - N_IMPORT] : "";
}

/* Texts of a declaration's items (properties or fields), in p's arena. */
static const char **item_texts(fmt_p *p, const ast_node *d) {
  const char **t = ast_alloc(p->ctx, (size_t)(d->list.n + 1) * sizeof *t);
  if (!t) { p->oom = 1; return NULL; }
  for (int i = 0; i < d->list.n; i++) t[i] = text(p, pitem, d->list.v[i]);
  return t;
}

/* The one-line body `{ a  b }` of d, or NULL when d is printed as a block:
 * it was not written on one line, or it is too wide. */
static const char *oneline_body(fmt_p *p, const ast_node *d) {
  sbuf b = { 0 };
  const char **t;
  const char *s = NULL;
  int frac = 0;
  if (d->kind != N_MODEL && d->kind != N_BUDGET && d->kind != N_REQUEST) return NULL;
  if (d->span.len <= (int)strlen(keyword(d->kind)) || !(t = item_texts(p, d))) return NULL;
  sputs(&b, "{");
  for (int i = 0; i < d->list.n; i++) {
    size_t n = strlen(t[i]);
    sputs(&b, i ? "  " : " ");
    sputs(&b, t[i]);
    if (n && t[i][n - 1] == '%' && i + 1 < d->list.n) frac = 1;   /* `5%  p95` is modulo */
  }
  sputs(&b, d->list.n ? " }" : "}");
  if (!b.oom && !frac && !strchr(b.s, '\n') &&
      scols(keyword(d->kind)) + 1 + (d->name ? scols(d->name) + 1 : 0) + scols(b.s) <= WIDTH)
    s = ast_strndup(p->ctx, b.s, b.n);
  free(b.s);
  return s;
}

static int oneline(fmt_p *p, const ast_node *d) {
  return d->kind == N_IMPORT || d->kind == N_POOLDEF || oneline_body(p, d) != NULL;
}

/* Do declarations a and b (next to each other) stay without a blank line? */
static int together(fmt_p *p, const ast_node *a, const ast_node *b) {
  size_t from = tend(p, a), to = nstart(p, b), at = to;
  if (a->kind != b->kind || !oneline(p, a) || !oneline(p, b)) return 0;
  for (int i = p->ci; i < p->ncm && p->cmoff[i] < to; i++)
    if (p->cmoff[i] >= from && p->cm[i].own_line) { at = p->cmoff[i]; break; }
  return !blank_before(p, at);
}

/* Alignment of a run of one-line declarations. */
typedef struct run_l {
  int name;               /* columns the names are padded to */
  int ncol;               /* leading properties shared by every row */
  int col[16];            /* columns each shared property is padded to */
} run_l;

static void run_layout(fmt_p *p, ast_node **v, int n, run_l *r) {
  memset(r, 0, sizeof *r);
  if (n < 2) return;
  r->ncol = (int)(sizeof r->col / sizeof r->col[0]);
  for (int i = 0; i < n; i++) {
    int w = v[i]->name ? scols(v[i]->name) : 0;
    if (w > r->name) r->name = w;
    if (v[i]->kind != N_MODEL && v[i]->kind != N_BUDGET) { r->ncol = 0; continue; }
    if (v[i]->list.n < r->ncol) r->ncol = v[i]->list.n;
    for (int k = 0; k < r->ncol; k++)
      if (strcmp(v[i]->list.v[k]->name, v[0]->list.v[k]->name)) r->ncol = k;
  }
  for (int i = 0; i < n; i++)
    for (int k = 0; k < r->ncol; k++) {
      int w = scols(text(p, pitem, v[i]->list.v[k]));
      if (w > r->col[k]) r->col[k] = w;
    }
}

/* The line group of a model property (BC_MPROPS' group column): a new line
 * starts where it changes. */
static int prop_group(const char *name) {
  static const struct { const char *name; int group; } groups[] = {
#define FMT_MP_GROUP(id, pname, member, unit, mt, off, kind, op, mfa, group, doc) { pname, group },
    BC_MPROPS(FMT_MP_GROUP)
#undef FMT_MP_GROUP
  };
  for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
    if (groups[i].group && strcmp(groups[i].name, name) == 0) return groups[i].group;
  return 99;
}

/* The items of a model, budget or request block; model properties share
 * lines by group. */
static void pblock_items(fmt_p *p, const ast_node *d) {
  const ast_list *l = &d->list;
  const char **t = item_texts(p, d);
  if (!t) return;
  for (int i = 0, j; i < l->n; i = j) {
    int w = 2 + scols(t[i]);
    for (j = i + 1; d->kind == N_MODEL && j < l->n; j++) {
      const ast_node *a = l->v[j - 1], *b = l->v[j];
      size_t na = strlen(t[j - 1]);
      if (prop_group(a->name) != prop_group(b->name) || any_comment(p, tend(p, a), nstart(p, b)) ||
          (na && t[j - 1][na - 1] == '%') || strchr(t[j], '\n') ||
          w + 2 + scols(t[j]) > WIDTH)
        break;
      w += 2 + scols(t[j]);
    }
    line_at(p, 2, nstart(p, l->v[i]), tend(p, l->v[j - 1]), 0);
    for (int k = i; k < j; k++) {
      if (k > i) sputs(&p->out, "  ");
      sputs(&p->out, t[k]);
    }
  }
}

/* ---- routes ---- */

typedef struct rule_l {
  const char  *head;      /* "when COND" or "otherwise" */
  const char **item;      /* chain items: "t", "then t", "shadow m" */
  int          broken;    /* `->` goes on the next line */
} rule_l;

static int chain_cols(const ast_node *r, const rule_l *l) {
  int w = 0;
  for (int i = 0; i < r->list.n; i++) w += (i ? 2 : 0) + scols(l->item[i]);
  return w;
}

static size_t head_end(const fmt_p *p, const ast_node *r) {
  return r->kind == N_WHEN ? tend(p, r->a) : nstart(p, r) + 9;
}

/* Texts of a rule; whether it must be broken whatever the column. */
static void rule_texts(fmt_p *p, const ast_node *r, rule_l *l) {
  const char *cond = "";
  if (r->kind == N_WHEN) {
    cond = text(p, pexpr, r->a);
    if (r->text && strcmp(cond, r->text)) cond = r->text;   /* keep the rule's name */
  }
  l->head = r->kind == N_WHEN ? concat(p, "when ", cond) : "otherwise";
  l->item = ast_alloc(p->ctx, (size_t)(r->list.n + 1) * sizeof *l->item);
  if (!l->item) { p->oom = 1; return; }
  for (int i = 0; i < r->list.n; i++) {
    const ast_node *t = r->list.v[i];
    l->item[i] = text(p, ptarget, t);
    if (i && t->kind != N_SHADOW) l->item[i] = concat(p, "then ", l->item[i]);
    if (strchr(l->item[i], '\n')) l->broken = 1;
  }
  if (strchr(l->head, '\n') || scols(cond) > COND_MAX ||
      any_comment(p, head_end(p, r), tend(p, r)))
    l->broken = 1;
}

/* Lays out the rules of a route; returns the column `->` is aligned to
 * (relative to the items' indentation). */
static int rules_layout(fmt_p *p, const ast_list *items, rule_l *rl) {
  int col = 0, changed = 1;
  for (int i = 0; i < items->n; i++)
    if (items->v[i]->kind == N_WHEN || items->v[i]->kind == N_OTHERWISE)
      rule_texts(p, items->v[i], &rl[i]);
  while (changed && !p->oom) {   /* breaking a rule can only narrow the column */
    changed = col = 0;
    for (int i = 0; i < items->n; i++)
      if (rl[i].head && !rl[i].broken && scols(rl[i].head) > col) col = scols(rl[i].head);
    for (int i = 0; i < items->n; i++)
      if (rl[i].head && !rl[i].broken && 2 + col + 4 + chain_cols(items->v[i], &rl[i]) > WIDTH)
        rl[i].broken = changed = 1;
  }
  return col;
}

static void prule(fmt_p *p, const ast_node *r, const rule_l *l, int col) {
  const ast_list *c = &r->list;
  int split = 0;
  if (!l->broken) {
    line_at(p, 2, nstart(p, r), tend(p, r), 0);
    sputs(&p->out, l->head);
    spad(&p->out, col - scols(l->head));
    sputs(&p->out, " -> ");
    for (int i = 0; i < c->n; i++) {
      if (i) sputs(&p->out, ", ");
      sputs(&p->out, l->item[i]);
    }
    return;
  }
  line_at(p, 2, nstart(p, r), head_end(p, r), 0);
  sputs(&p->out, l->head);
  split = 2 + CONT + 3 + chain_cols(r, l) > WIDTH;
  for (int i = 1; i < c->n; i++)
    if (any_comment(p, tend(p, c->v[i - 1]), nstart(p, c->v[i]))) split = 1;
  for (int i = 0; i < c->n; i++) {
    if (i == 0 || split)
      line_at(p, 2 + CONT + (i ? 3 : 0), nstart(p, c->v[i]),
              split ? tend(p, c->v[i]) : tend(p, r), -1);
    else
      sputs(&p->out, ", ");
    if (i == 0) sputs(&p->out, "-> ");
    sputs(&p->out, l->item[i]);
    if (split && i + 1 < c->n) sputs(&p->out, ",");
  }
}

static void proute(fmt_p *p, const ast_node *r) {
  const ast_list *l = &r->list;
  rule_l *rl = calloc((size_t)l->n + 1, sizeof *rl);
  int col;
  if (!rl) { p->oom = 1; return; }
  col = rules_layout(p, l, rl);
  if (!open_block(p, r)) { free(rl); return; }
  for (int i = 0; i < l->n && !p->oom; i++) {
    const ast_node *it = l->v[i];
    if (it->kind == N_WHEN || it->kind == N_OTHERWISE) { prule(p, it, &rl[i], col); continue; }
    line_at(p, 2, nstart(p, it), tend(p, it), 0);
    if (it->kind == N_SHADOW) {
      ptarget(p, &p->out, it);
    } else if (it->kind == N_PROP) {   /* output_estimate 500 */
      cat(&p->out, it->name, " ");
      pexpr(p, &p->out, it->a);
    } else {
      sputs(&p->out, it->kind == N_FALLBACKS ? "fallbacks " : "require ");
      pexpr(p, &p->out, it->a);
    }
  }
  free(rl);
  close_line(p, 0, close_of(p, r));
}

static void ptest(fmt_p *p, const ast_node *t) {
  if (!open_block(p, t)) return;
  for (int i = 0; i < t->list.n; i++) {
    const ast_node *it = t->list.v[i];
    line_at(p, 2, nstart(p, it), tend(p, it), 0);
    if (it->kind == N_TROUTE) {
      cat(&p->out, "route ", it->name);
    } else if (it->kind == N_TREQ) {
      for (int k = 0; k < it->list.n; k++) {
        sputs(&p->out, k ? ", " : "req { ");
        pitem(p, &p->out, it->list.v[k]);
      }
      sputs(&p->out, it->list.n ? " }" : "req {}");
    } else if (it->kind == N_TSTATE) {   /* state "snapshot.json" */
      cat(&p->out, it->name, " ");
      pstrtok(p, &p->out, it, strlen(it->name));
    } else if (it->a) {
      sputs(&p->out, "expect ");
      pexpr(p, &p->out, it->a);
    }
  }
  close_line(p, 0, close_of(p, t));
}

/* One declaration; `blank` as for line_at, r the alignment of its run. */
static void pdecl(fmt_p *p, const ast_node *d, int blank, const run_l *r) {
  const char *body = oneline_body(p, d);
  line_at(p, 0, nstart(p, d), body || d->kind == N_POOLDEF || d->kind == N_IMPORT ?
                                  tend(p, d) : nstart(p, d), blank);
  cat(&p->out, keyword(d->kind), " ");
  if (d->kind == N_IMPORT || d->kind == N_TEST) {
    pstrtok(p, &p->out, d, strlen(keyword(d->kind)));
    if (d->kind == N_TEST) sputs(&p->out, " ");
  } else if (d->kind != N_REQUEST) {
    sputs(&p->out, d->name);
    spad(&p->out, r->name - scols(d->name));
    sputs(&p->out, " ");
  }
  if (d->kind == N_POOLDEF) {
    sputs(&p->out, "= ");
    ppool(p, &p->out, d->a);
  } else if (d->kind == N_ROUTE) {
    proute(p, d);
  } else if (d->kind == N_TEST) {
    ptest(p, d);
  } else if (d->kind != N_IMPORT && !body) {
    if (open_block(p, d)) {
      pblock_items(p, d);
      close_line(p, 0, close_of(p, d));
    }
  } else if (d->kind != N_IMPORT && r->ncol) {
    for (int k = 0; k < d->list.n; k++) {
      const char *t = text(p, pitem, d->list.v[k]);
      cat(&p->out, k ? "  " : "{ ", t);
      if (k < r->ncol && k + 1 < d->list.n) spad(&p->out, r->col[k] - scols(t));
    }
    sputs(&p->out, " }");
  } else if (d->kind != N_IMPORT) {
    sputs(&p->out, body);
  }
}

static void pfile(fmt_p *p, const ast_list *d) {
  p->fresh = 1;
  for (int i = 0, j; i < d->n && !p->oom; i = j) {
    run_l r;
    for (j = i + 1; j < d->n && together(p, d->v[j - 1], d->v[j]);) j++;
    run_layout(p, d->v + i, j - i, &r);
    for (int k = i; k < j && !p->oom; k++) pdecl(p, d->v[k], k == i && i > 0 ? 1 : 0, &r);
  }
  int want = 0;
  flush(p, p->len + 1, 0, 0, &want);
  if (p->open) sputs(&p->out, "\n");
}

static size_t line_end(const char *s, size_t n, size_t i) {
  while (i < n && s[i] != '\n') i++;
  return i;
}

/* Lines up trailing comments on consecutive lines: the final text. */
static char *align_trails(const fmt_p *p, size_t *outlen) {
  sbuf r = { 0 };
  const char *s = p->out.s ? p->out.s : "";
  size_t n = p->out.n, ls = 0;
  int t = 0;
  while (ls < n) {
    size_t l = ls, e = line_end(s, n, ls);
    int k = t, w = 0;
    /* the run of lines from ls on that each end in a trailing comment */
    for (; k < p->ntrail && l < n && p->trail[k] <= line_end(s, n, l); k++) {
      int c = cols(s + l, p->trail[k] - l);
      if (c > w) w = c;
      l = line_end(s, n, l) + 1;
    }
    if (k == t) {
      sput(&r, s + ls, (e < n ? e + 1 : e) - ls);
      ls = e + 1;
      continue;
    }
    for (; t < k; t++, ls = e + 1) {
      e = line_end(s, n, ls);
      sput(&r, s + ls, p->trail[t] - ls);
      spad(&r, w + 2 - cols(s + ls, p->trail[t] - ls));
      sput(&r, s + p->trail[t], (e < n ? e + 1 : e) - p->trail[t]);
    }
  }
  if (r.oom) { free(r.s); return NULL; }
  *outlen = r.n;
  if (!r.s) r.s = calloc(1, 1);
  return r.s;
}

/* ---- the check: the same tree, rule names and comments ---- */

static char *dump_all(const ast_list *d) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  if (!f) return NULL;
  for (int i = 0; i < d->n; i++) {
    ast_dump(f, d->v[i]);
    fputc('\n', f);
  }
  fclose(f);
  return buf;
}

/* NULL when a and b mean the same, else what differs. */
static const char *differs(const ast_list *a, const ast_list *b, const ast_comment *ca, int na,
                           const ast_comment *cb, int nb) {
  char *da = dump_all(a), *db = dump_all(b);
  int same = da && db && !strcmp(da, db);
  free(da);
  free(db);
  if (!same) return "the syntax tree";
  for (int i = 0; i < a->n; i++)
    for (int k = 0; a->v[i]->kind == N_ROUTE && k < a->v[i]->list.n; k++) {
      const ast_node *x = a->v[i]->list.v[k], *y = b->v[i]->list.v[k];
      if (x->kind == N_WHEN && strcmp(x->text ? x->text : "", y->text ? y->text : ""))
        return "a rule name";
  }
  if (na != nb) return "the comments";
  for (int i = 0; i < na; i++)
    if (ca[i].len != cb[i].len || memcmp(ca[i].text, cb[i].text, ca[i].len)) return "a comment";
  return NULL;
}

static const char *base_module(ast_ctx *ctx, const char *path) {
  const char *b = strrchr(path, '/'), *dot;
  b = b ? b + 1 : path;
  dot = strrchr(b, '.');
  return ast_strndup(ctx, b, dot && dot > b ? (size_t)(dot - b) : strlen(b));
}

int fmt_text(ast_ctx *ctx, const char *path, const char *text_, size_t len, char **out,
             size_t *outlen) {
  src_file *f = ast_alloc(ctx, sizeof *f), g = { 0 };
  char *copy = ast_alloc(ctx, len + 1), *res = NULL;
  ast_list decls = { 0 }, again = { 0 };
  fmt_p p;
  ast_ctx c2;
  int c0 = ctx->ncomments, r;
  const char *why = NULL;
  *out = NULL;
  *outlen = 0;
  if (!f || !copy) return -1;
  memcpy(copy, text_, len);
  f->name = path;
  f->text = copy;
  f->len = len;
  f->module = base_module(ctx, path);
  f->is_root = 1;
  if (parse_file(ctx, f, &decls) != 0) return -1;

  memset(&p, 0, sizeof p);
  p.ctx = ctx;
  p.src = copy;
  p.len = len;
  p.cm = ctx->comments + c0;
  p.ncm = ctx->ncomments - c0;
  p.lines = malloc(((size_t)len + 2) * sizeof *p.lines);
  p.cmoff = malloc(((size_t)p.ncm + 1) * sizeof *p.cmoff);
  if (p.lines && p.cmoff) {
    p.lines[p.nlines++] = 0;
    for (size_t i = 0; i < len; i++)
      if (copy[i] == '\n') p.lines[p.nlines++] = i + 1;
    for (int i = 0; i < p.ncm; i++) p.cmoff[i] = off_of(&p, p.cm[i].span);
    pfile(&p, &decls);
    if (!p.oom && !p.out.oom) res = align_trails(&p, outlen);
  }
  free(p.lines);
  free(p.cmoff);
  free(p.out.s);
  free(p.trail);
  if (!res) { ctx->nomem = 1; return -1; }

  /* Parse the result again: it must mean exactly what the source meant. */
  ast_ctx_init(&c2);
  g.name = path;
  g.text = res;
  g.len = *outlen;
  g.module = f->module;
  g.is_root = 1;
  r = parse_file(&c2, &g, &again);
  if (c2.nomem) ctx->nomem = 1;
  else if (r != 0) why = "the syntax (it does not parse)";
  else why = differs(&decls, &again, ctx->comments + c0, ctx->ncomments - c0, c2.comments,
                     c2.ncomments);
  ast_ctx_free(&c2);
  if (why || ctx->nomem) {
    ast_span sp = { f, 1, 1, 1, 0 };
    if (why)
      diag_error(ctx, sp, "fmt: the formatted text would change %s; the file is left as it is "
                          "(a bug in lane fmt, please report it)", why);
    free(res);
    *outlen = 0;
    return -1;
  }
  *out = res;
  return 0;
}

/* ---- the command ---- */

typedef struct dline {
  const char *s;          /* the line's bytes */
  size_t      n;          /* without its line end */
  int         nl;         /* 1 when a newline ends it */
} dline;

static dline *split_lines(const char *s, size_t n, int *count) {
  dline *v = malloc((n + 1) * sizeof *v);
  int k = 0;
  if (!v) return NULL;
  for (size_t i = 0; i < n;) {
    const char *e = memchr(s + i, '\n', n - i);
    size_t len = e ? (size_t)(e - (s + i)) : n - i;
    v[k].s = s + i;
    v[k].n = len;
    v[k++].nl = e != NULL;
    i += len + (e != NULL);
  }
  *count = k;
  return v;
}

static int same_line(const dline *a, const dline *b) {
  return a->n == b->n && a->nl == b->nl && !memcmp(a->s, b->s, a->n);
}

static void put_line(FILE *out, char tag, const dline *l) {
  fputc(tag, out);
  fwrite(l->s, 1, l->n, out);
  fputs(l->nl ? "\n" : "\n\\ No newline at end of file\n", out);
}

/* A unified diff (3 lines of context) from a to b: the longest common
 * subsequence of lines, once the common head and tail are set aside (all
 * removed, then all added, when the rest is too large for the table). */
static int udiff(FILE *out, const char *path, const char *a, size_t an, const char *b, size_t bn) {
  int na, nb, pre = 0, suf = 0, n = 0, rc = -1, i = 0, j = 0, N, M;
  dline *A = split_lines(a, an, &na), *B = split_lines(b, bn, &nb);
  char *op = NULL;              /* per step: ' ', '-' or '+' */
  int *pa = NULL, *pb = NULL;   /* lines of a and of b before each step */
  uint16_t *t = NULL;           /* T(x, y): LCS of the middles from x and y on */
  size_t w;
#define T(x, y) t[(size_t)(x) * w + (size_t)(y)]
  if (!A || !B) goto done;
  while (pre < na && pre < nb && same_line(&A[pre], &B[pre])) pre++;
  while (suf < na - pre && suf < nb - pre && same_line(&A[na - 1 - suf], &B[nb - 1 - suf])) suf++;
  N = na - pre - suf, M = nb - pre - suf, w = (size_t)M + 1;
  op = malloc((size_t)(na + nb + 1));
  pa = malloc((size_t)(na + nb + 1) * sizeof *pa);
  pb = malloc((size_t)(na + nb + 1) * sizeof *pb);
  if (!op || !pa || !pb) goto done;
  if ((size_t)(N + 1) * w <= ((size_t)1 << 24)) t = calloc((size_t)(N + 1) * w, sizeof *t);
  for (int x = N - 1; t && x >= 0; x--)
    for (int y = M - 1; y >= 0; y--)
      T(x, y) = same_line(&A[pre + x], &B[pre + y]) ? (uint16_t)(T(x + 1, y + 1) + 1)
                : T(x + 1, y) > T(x, y + 1) ? T(x + 1, y) : T(x, y + 1);
  for (int k = 0; k < pre; k++, n++) { op[n] = ' '; pa[n] = pb[n] = k; }
  while (i < N || j < M) {
    pa[n] = pre + i;
    pb[n] = pre + j;
    if (t && i < N && j < M && same_line(&A[pre + i], &B[pre + j])) { op[n++] = ' '; i++; j++; }
    else if (i < N && (j == M || !t || T(i + 1, j) >= T(i, j + 1))) { op[n++] = '-'; i++; }
    else { op[n++] = '+'; j++; }
  }
#undef T
  for (int k = 0; k < suf; k++, n++) { op[n] = ' '; pa[n] = na - suf + k; pb[n] = nb - suf + k; }
  if (n > pre + suf) fprintf(out, "--- %s\n+++ %s\n", path, path);
  for (int k = 0, s, e, last, ca, cb; k < n; k = e + 1) {
    while (k < n && op[k] == ' ') k++;
    if (k == n) break;
    s = k > 3 ? k - 3 : 0;
    for (last = e = k; e < n && (op[e] != ' ' || e - last <= 6); e++)   /* merge gaps <= 6 */
      if (op[e] != ' ') last = e;
    e = last + 3 < n - 1 ? last + 3 : n - 1;
    for (int y = s + (ca = cb = 0); y <= e; y++) { ca += op[y] != '+'; cb += op[y] != '-'; }
    fprintf(out, "@@ -%d,%d +%d,%d @@\n", pa[s] + (ca > 0), ca, pb[s] + (cb > 0), cb);
    for (int x = s; x <= e; x++) put_line(out, op[x], op[x] == '+' ? &B[pb[x]] : &A[pa[x]]);
  }
  rc = 0;
done:
  free(A); free(B); free(op); free(pa); free(pb); free(t);
  return rc;
}

static char *read_all(const char *path, size_t *n) {
  FILE *f = ast_fopen_regular(path);
  sbuf b = { 0 };
  char chunk[65536];
  size_t k;
  if (!f) return NULL;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) sput(&b, chunk, k);
  if (ferror(f) || b.oom) { fclose(f); free(b.s); errno = errno ? errno : ENOMEM; return NULL; }
  fclose(f);
  *n = b.n;
  return b.s ? b.s : calloc(1, 1);
}

/* Replaces the file at path (through symbolic links) by s, atomically. */
static int write_atomic(const char *path, const char *s, size_t n, FILE *err) {
  char *real = realpath(path, NULL), *tmp;
  const char *target = real ? real : path;
  struct stat st;
  int fd, ok;
  size_t tl = strlen(target) + 16;
  if (!(tmp = malloc(tl))) { free(real); fprintf(err, "lane: out of memory\n"); return -1; }
  snprintf(tmp, tl, "%s.fmt-XXXXXX", target);
  if ((fd = mkstemp(tmp)) < 0) {
    fprintf(err, "lane: cannot write beside '%s': %s\n", path, strerror(errno));
    free(tmp); free(real);
    return -1;
  }
  if (stat(target, &st) == 0) (void)fchmod(fd, st.st_mode & 07777);
  ok = 1;
  for (size_t done = 0; ok && done < n;) {
    ssize_t w = write(fd, s + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ok = 0;
    else done += (size_t)w;
  }
  if (close(fd) != 0) ok = 0;
  if (!ok || rename(tmp, target) != 0) {
    fprintf(err, "lane: cannot write '%s': %s\n", path, strerror(errno));
    unlink(tmp);
    free(tmp); free(real);
    return -1;
  }
  free(tmp); free(real);
  return 0;
}

int fmt_command(const char *const *files, int nfiles, int check, int diff, FILE *out,
                FILE *err) {
  int rc = 0;
  for (int i = 0; i < nfiles; i++) {
    ast_ctx ctx;
    size_t n = 0, rn = 0;
    char *src, *res = NULL;
    errno = 0;
    if (!(src = read_all(files[i], &n))) {
      fprintf(err, "lane: cannot read '%s': %s\n", files[i], ast_strerror(errno));
      rc = 2;
      continue;
    }
    ast_ctx_init(&ctx);
    if (fmt_text(&ctx, files[i], src, n, &res, &rn) != 0) {
      if (ctx.nomem) fprintf(err, "lane: out of memory\n");
      else diag_render(err, &ctx);
      rc = 2;
    } else if (rn != n || memcmp(res, src, n) != 0) {
      if (diff && udiff(out, files[i], src, n, res, rn) != 0) {
        fprintf(err, "lane: out of memory\n");
        rc = 2;
      }
      if (check) fprintf(err, "lane fmt: %s is not formatted\n", files[i]);
      if (check || diff) rc = rc ? rc : 1;
      else if (write_atomic(files[i], res, rn, err) != 0) rc = 2;
    }
    free(res);
    free(src);
    ast_ctx_free(&ctx);
  }
  return rc;
}
