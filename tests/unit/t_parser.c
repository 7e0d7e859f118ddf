/*
 * t_parser.c -- lane's grammar: precedence, every declaration and route
 * item, when-texts, spans, syntax errors with their exact rendering, error
 * recovery and the diagnostics machinery of ast.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "tap.h"

static ast_ctx ctx;
static src_file file;
static char text[8192];
static char out[16384];
static int result;          /* parse_file's return value */

static ast_list parse(const char *src) {
  ast_list decls = { 0 };
  ast_ctx_free(&ctx);
  ast_ctx_init(&ctx);
  snprintf(text, sizeof text, "%s", src);
  file.name = "p.lane";
  file.text = text;
  file.len = strlen(text);
  file.module = "p";
  file.is_root = 1;
  result = parse_file(&ctx, &file, &decls);
  return decls;
}

/* Closes a memstream and copies what it holds into out. */
static const char *take(FILE *f, char **buf) {
  fclose(f);
  snprintf(out, sizeof out, "%s", *buf ? *buf : "");
  free(*buf);
  *buf = NULL;
  return out;
}

/* Every declaration of `src`, dumped one per line. */
static const char *decls(const char *src) {
  ast_list d = parse(src);
  char *buf = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&buf, &n);
  int i;
  for (i = 0; i < d.n; i++) {
    ast_dump(f, d.v[i]);
    fputc('\n', f);
  }
  return take(f, &buf);
}

/* Expression `e` dumped, parsed as the condition of a test's expect. */
static const char *ex(const char *e) {
  char src[1024];
  ast_list d;
  char *buf = NULL;
  size_t n = 0;
  FILE *f;
  snprintf(src, sizeof src, "test \"t\" { expect %s }", e);
  d = parse(src);
  f = open_memstream(&buf, &n);
  if (d.n == 1 && d.v[0]->list.n == 1) ast_dump(f, d.v[0]->list.v[0]->a);
  else fputs("(parse failed)", f);
  return take(f, &buf);
}

static const char *errors(const char *src) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f;
  parse(src);
  f = open_memstream(&buf, &n);
  diag_render(f, &ctx);
  return take(f, &buf);
}

static void test_precedence(void) {
  is_str(ex("a || b && c"), "(|| a (&& b c))", "&& binds tighter than ||");
  is_str(ex("a && b || c && d"), "(|| (&& a b) (&& c d))", "|| lowest");
  is_str(ex("a || b || c"), "(|| (|| a b) c)", "|| left-assoc");
  is_str(ex("a && b < c"), "(&& a (< b c))", "relations bind tighter than &&");
  is_str(ex("a < b == c"), "(== (< a b) c)", "relations: one level, left-assoc");
  is_str(ex("a in b != c"), "(!= (in a b) c)", "in is a relation");
  is_str(ex("a <= b + c"), "(<= a (+ b c))", "+ binds tighter than <=");
  is_str(ex("a >= 1 - 2 - 3"), "(>= a (- (- 1 2) 3))", "- left-assoc");
  is_str(ex("a > b + c * d"), "(> a (+ b (* c d)))", "* binds tighter than +");
  is_str(ex("a / b % c * d"), "(* (% (/ a b) c) d)", "* / %% one level, left-assoc");
  is_str(ex("-a * !b"), "(* (- a) (! b))", "unary binds tighter than *");
  is_str(ex("!!a"), "(! (! a))", "nested unary");
  is_str(ex("-a.b[0]"), "(- ([] (. a b) 0))", "member binds tighter than unary");
  is_str(ex("(a + b) * c"), "(* (+ a b) c)", "parentheses");
  is_str(ex("a ? b : c ? d : e"), "(? a b (? c d e))", "?: right-assoc");
  is_str(ex("a || b ? c : d"), "(? (|| a b) c d)", "?: lowest");
  is_str(ex("a ? b ? c : d : e"), "(? a (? b c d) e)", "nested ?: in the middle");
  is_str(ex("f()"), "(call f)", "call, no args");
  is_str(ex("f(a, b,)"), "(call f a b)", "call, trailing comma");
  is_str(ex("x.size()"), "(mcall x size)", "method call");
  is_str(ex("req.tags.exists(t, t == 'a')"), "(mcall (. req tags) exists t (== t \"a\"))",
         "method call with args");
  is_str(ex("[1, 2.5, 'x',][0]"), "([] (list 1 2.5 \"x\") 0)", "list literal and index");
  is_str(ex("[]"), "(list)", "empty list");
  is_str(ex("a[b][c]"), "([] ([] a b) c)", "index chains");
  is_str(ex("budget.tenant_daily.used >= 100%"),
         "(>= (. (. budget tenant_daily) used) (fraction 1))", "budget selector");
  is_str(ex("cost < $0.01 && primary.vision"),
         "(&& (< cost (money 0.01)) (. primary vision))", "money in comparison");
  is_str(ex("size(fallbacks) == 2"), "(== (call size fallbacks) 2)",
         "'fallbacks' is also a name in expressions (test results)");
  is_str(ex("x == 1u || y == 2.0 || z == null"),
         "(|| (|| (== x 1u) (== y 2)) (== z null))", "literals");
}

static void test_decls(void) {
  is_str(decls("import \"std/providers/anthropic\""),
         "(import \"std/providers/anthropic\")\n", "import");
  is_str(decls("model muse { provider \"meta\" input $1/Mtok context 128k "
               "caps vision, tools quality 0.88 tags [\"a\", \"b\"] p50 800ms }"),
         "(model muse (prop provider \"meta\") (prop input (price 1e-06)) "
         "(prop context (tokens 128000)) (prop caps vision tools) (prop quality 0.88) "
         "(prop tags (list \"a\" \"b\")) (prop p50 (duration 800)))\n",
         "model with every kind of property");
  is_str(decls("model anthropic.claude_haiku_4_5 { quality 0.84 }"),
         "(model anthropic.claude_haiku_4_5 (prop quality 0.84))\n", "qualified model override");
  is_str(decls("model m {}"), "(model m)\n", "empty model");
  is_str(decls("request { team: string, spent_frac: double  n: int }"),
         "(request (field team string) (field spent_frac double) (field n int))\n",
         "request fields, commas optional");
  is_str(decls("pool a = models pool b = models where vision && quality >= 0.7 "
               "pool c = b where x"),
         "(pooldef a (pool models))\n"
         "(pooldef b (pool models (&& vision (>= quality 0.7))))\n"
         "(pooldef c (pool b x))\n",
         "pools");
  is_str(decls("budget tenant_daily { key req.tenant limit $200 window 1d }"),
         "(budget tenant_daily (prop key (. req tenant)) (prop limit (money 200)) "
         "(prop window (duration 86400000)))\n",
         "budget");
  is_str(decls("route chat {\n"
               "  fallbacks 2\n"
               "  require fits && healthy\n"
               "  when req.images > 0 -> cheapest(vision_ok)\n"
               "  when a -> muse, then fastest(models where q >= 0.8), shadow x.y\n"
               "  when b -> split { muse: 70%, best(models): 30%, } by req.user\n"
               "  when c -> split { m: 1 } by k, then n\n"
               "  otherwise -> cheapest(models), shadow muse\n"
               "  shadow anthropic.claude_haiku_4_5\n"
               "}"),
         "(route chat (fallbacks 2) (require (&& fits healthy)) "
         "(when (> (. req images) 0) (cheapest (pool vision_ok))) "
         "(when a (ref muse) (fastest (pool models (>= q 0.8))) (shadow x.y)) "
         "(when b (split (. req user) (arm (ref muse) (fraction 0.7)) "
         "(arm (best (pool models)) (fraction 0.3)))) "
         "(when c (split k (arm (ref m) 1)) (ref n)) "
         "(otherwise (cheapest (pool models)) (shadow muse)) "
         "(shadow anthropic.claude_haiku_4_5))\n",
         "route with every item kind");
  is_str(decls("test \"images\" {\n  route chat\n"
               "  req { task: \"chat\", images: 1, input_tokens: 2k, }\n"
               "  req {}\n  expect rule == 2\n}"),
         "(test \"images\" (test-route chat) (req (init task \"chat\") (init images 1) "
         "(init input_tokens (tokens 2000))) (req) (expect (== rule 2)))\n",
         "test block");
  is_int(result, 0, "parse_file returns 0 for a good file");
  is_str(decls(""), "", "empty file");
  is_str(decls("# only a comment\n"), "", "comment-only file");
}

static void test_when_text(void) {
  ast_list d = parse("route r {\n"
                     "  when req.task ==   \"a  b\"   # comment\n"
                     "       &&\tbucket( req.user )<5% -> m\n"
                     "  when x->m\n"
                     "  when '#not a comment'  ==  r\"x\\\" -> m\n"
                     "}");
  const ast_node *w;
  ok(d.n == 1 && d.v[0]->list.n == 3, "three rules");
  if (d.n != 1 || d.v[0]->list.n != 3) return;
  w = d.v[0]->list.v[0];
  is_str(w->text, "req.task == \"a  b\" && bucket( req.user )<5%",
         "whitespace and comments collapse to one space, strings kept");
  is_int(w->span.line, 2, "when span line");
  is_int(w->span.col, 3, "when span column");
  is_int(w->span.len, 4, "multi-line when: its keyword");
  is_str(d.v[0]->list.v[1]->text, "x", "single token");
  is_int(d.v[0]->list.v[1]->span.len, 9, "one-line when spans the whole rule");
  is_str(d.v[0]->list.v[2]->text, "'#not a comment' == r\"x\\\"",
         "# inside a string is not a comment; raw strings end at the quote");
  is_str(d.v[0]->list.v[0]->a->span.file ? "set" : NULL, "set", "condition has a span");
}

static void test_spans(void) {
  ast_list d = parse("pool p = models where a.b + cc * 2");
  const ast_node *e;
  if (d.n != 1) { ok(0, "pool parsed"); return; }
  is_int(d.v[0]->span.col, 1, "pooldef column");
  is_int(d.v[0]->span.len, 34, "pooldef spans the line");
  e = d.v[0]->a->a;
  is_int(e->span.col, 23, "binary starts at its left operand");
  is_int(e->span.len, 12, "binary ends at its right operand");
  is_int(e->b->span.col, 29, "right operand column");
  is_int(e->b->span.len, 6, "cc * 2");
  d = parse("route r { when x -> m, shadow a.b }");
  if (d.n == 1 && d.v[0]->list.n == 1 && d.v[0]->list.v[0]->list.n == 2) {
    const ast_node *s = d.v[0]->list.v[0]->list.v[1];
    is_int(s->span.col, 24, "chained shadow column");
    is_int(s->span.len, 10, "chained shadow spans 'shadow a.b'");
  } else {
    ok(0, "chain parsed");
  }
}

static void test_syntax_errors(void) {
  is_str(errors("route r {\n  when -> x\n}\n"),
         "p.lane:2:8: error: unexpected '->', expected expression\n"
         "    2 |   when -> x\n"
         "      |        ^~\n",
         "missing condition");
  is_int(result, 1, "parse_file counts the error");
  is_str(errors("route r {\n  when a -> m\n"),
         "p.lane:2:14: error: unexpected end of file, expected '}'\n"
         "    2 |   when a -> m\n"
         "      |              ^\n",
         "unclosed brace at end of file");
  is_str(errors("route r { when a b -> m }"),
         "p.lane:1:18: error: unexpected identifier, expected operator or '->'\n"
         "    1 | route r { when a b -> m }\n"
         "      |                  ^\n",
         "missing operator");
  is_str(errors("foo"),
         "p.lane:1:1: error: unexpected identifier, expected declaration\n"
         "    1 | foo\n"
         "      | ^~~\n",
         "junk at top level");
  is_str(errors("route r { foo }"),
         "p.lane:1:11: error: unexpected identifier, expected route item or '}'\n"
         "    1 | route r { foo }\n"
         "      |           ^~~\n",
         "junk in a route");
  is_str(errors("test \"t\" { when }"),
         "p.lane:1:12: error: unexpected 'when', expected identifier, 'route', 'req', 'expect' or '}'\n"
         "    1 | test \"t\" { when }\n"
         "      |            ^~~~\n",
         "keywords are quoted");
  is_str(errors("model m { input $1/Mtok, output $2/Mtok }"),
         "p.lane:1:24: error: unexpected ',', expected operator, identifier, 'caps' or '}'\n"
         "    1 | model m { input $1/Mtok, output $2/Mtok }\n"
         "      |                        ^\n",
         "comma between properties");
  is_str(errors("request { team string }"),
         "p.lane:1:16: error: unexpected identifier, expected ':'\n"
         "    1 | request { team string }\n"
         "      |                ^~~~~~\n",
         "field without colon");
  is_str(errors("route r { when a -> cheapest(models where) }"),
         "p.lane:1:42: error: unexpected ')', expected expression\n"
         "    1 | route r { when a -> cheapest(models where) }\n"
         "      |                                          ^\n",
         "where without condition");
  is_str(errors("route r { when a -> 5 }"),
         "p.lane:1:21: error: unexpected number, expected identifier, 'cheapest', "
         "'fastest', 'best' or 'split'\n"
         "    1 | route r { when a -> 5 }\n"
         "      |                     ^\n",
         "a number is not a target");
  is_str(errors("pool p = models where \"s\" \"t\""),
         "p.lane:1:27: error: unexpected string, expected operator or declaration\n"
         "    1 | pool p = models where \"s\" \"t\"\n"
         "      |                           ^~~\n",
         "strings are named 'string'");
}

static void test_recovery(void) {
  const char *src =
      "route r {\n"
      "  when -> y\n"
      "  when a b -> c\n"
      "  require (a ||\n"
      "  require x\n"
      "  when ok -> fine\n"
      "}\n"
      "model m { input $1/Mtok +* 3  output $4/Mtok }\n"
      "pool p = models where a >\n"
      "route q { when x -> m }\n";
  ast_list d;
  is_str(errors(src),
         "p.lane:2:8: error: unexpected '->', expected expression\n"
         "    2 |   when -> y\n"
         "      |        ^~\n"
         "p.lane:3:10: error: unexpected identifier, expected operator or '->'\n"
         "    3 |   when a b -> c\n"
         "      |          ^\n"
         "p.lane:5:3: error: unexpected 'require', expected expression\n"
         "    5 |   require x\n"
         "      |   ^~~~~~~\n"
         "p.lane:8:26: error: unexpected '*', expected expression\n"
         "    8 | model m { input $1/Mtok +* 3  output $4/Mtok }\n"
         "      |                          ^\n"
         "p.lane:10:1: error: unexpected 'route', expected expression\n"
         "   10 | route q { when x -> m }\n"
         "      | ^~~~~\n",
         "five errors in one file");
  is_int(result, 5, "parse_file returns the error count");
  d = parse(src);
  is_int(d.n, 3, "good declarations around the errors survive");
  if (d.n == 3) {
    is_int(d.v[0]->list.n, 2, "route r keeps its good items");
    is_str(d.v[2]->name, "q", "route after the errors is parsed");
  }
  is_str(decls("route r { when -> y  when a -> b }\nroute s { }"),
         "(route r (when a (ref b)))\n(route s)\n", "recovery at the next route item");
  is_str(decls("test \"t\" { req { a: } expect x }\nimport \"z\""),
         "(test \"t\")\n(import \"z\")\n", "recovery inside a test");
}

static void test_limits(void) {
  char src[4096] = "";
  int i;
  for (i = 0; i < 25; i++) strcat(src, "route r { when -> x }\n");
  errors(src);
  is_int(ctx.nerrors, 25, "every error is counted");
  is_int(ctx.ndiags, 20, "20 are kept by default");
  ok(strstr(out, "\nlane: 5 more errors not shown\n") != NULL &&
     out[strlen(out) - 1] == '\n' &&
     strcmp(out + strlen(out) - strlen("lane: 5 more errors not shown\n"),
            "lane: 5 more errors not shown\n") == 0,
     "the render ends with the count of the rest");
  {
    ast_list d = { 0 };
    ast_ctx_free(&ctx);
    ast_ctx_init(&ctx);
    ctx.max_errors = 2;
    file.text = src;
    file.len = strlen(src);
    is_int(parse_file(&ctx, &file, &d), 25, "max_errors does not change the count");
    is_int(ctx.ndiags, 2, "max_errors = 2 keeps two");
  }
  {
    /* 300 nested parentheses: deeper than bison's first stack. */
    char deep[1024];
    int k;
    strcpy(deep, "route r { require ");
    for (k = 0; k < 300; k++) strcat(deep, "(");
    strcat(deep, "x");
    for (k = 0; k < 300; k++) strcat(deep, ")");
    strcat(deep, " }");
    parse(deep);
    is_int(result, 0, "deep nesting parses");
  }
}

static void test_render(void) {
  src_file f = { "dir/x.lane", "a\n\tb  cd\r\nlast", 14, "x", 1 };
  ast_ctx c;
  ast_span s1 = { &f, 2, 5, 2, 0 }, s0 = { NULL, 0, 0, 0, 0 }, s3 = { &f, 3, 3, 9, 0 };
  char *buf = NULL;
  size_t n = 0;
  FILE *o;
  ast_ctx_init(&c);
  diag_error(&c, s1, "bad %s", "cd");
  diag_report(&c, DIAG_WARNING, s0, "no place");
  diag_report(&c, DIAG_NOTE, s3, "past the end");
  o = open_memstream(&buf, &n);
  diag_render(o, &c);
  is_str(take(o, &buf),
         "lane: warning: no place\n"
         "dir/x.lane:3:3: note: past the end\n"
         "    3 | last\n"
         "      |   ^~\n"
         "dir/x.lane:2:5: error: bad cd\n"
         "    2 | \tb  cd\n"
         "      | \t   ^~\n",
         "tabs copied, \\r dropped, note kept with its warning, source order "
         "(file-less first), span clipped to the line");
  ast_ctx_free(&c);

  ast_ctx_init(&c);
  c.max_errors = 1;
  diag_error(&c, s1, "one");
  diag_error(&c, s1, "two");
  diag_report(&c, DIAG_NOTE, s1, "note on two");
  diag_report(&c, DIAG_WARNING, s0, "warn");
  is_int(c.ndiags, 2, "a note on a dropped error is dropped; warnings are kept");
  buf = NULL;
  o = open_memstream(&buf, &n);
  diag_render_one(o, &c.diags[1]);
  is_str(take(o, &buf), "lane: warning: warn\n", "diag_render_one");
  ast_ctx_free(&c);
}

static void test_ast(void) {
  src_file f = { "f", "", 0, "f", 1 };
  ast_span a = { &f, 3, 5, 2, 0 }, b = { &f, 3, 10, 4, 0 }, c = { &f, 4, 1, 3, 0 }, j;
  ast_ctx x;
  ast_list l = { 0 };
  ast_node *n;
  char *s;
  int i, okk = 1;
  j = ast_join(a, b);
  ok(j.line == 3 && j.col == 5 && j.len == 9, "join on one line");
  j = ast_join(a, c);
  ok(j.line == 3 && j.col == 5 && j.len == 2 && j.more && !a.more,
     "join across lines keeps a's first line and says it goes on below");
  ast_ctx_init(&x);
  n = ast_new(&x, N_INT, a);
  ok(n && n->kind == N_INT && n->a == NULL && n->name == NULL && n->list.n == 0,
     "ast_new: zeroed node");
  for (i = 0; i < 1000; i++) okk &= ast_push(&x, &l, n) == 0;
  ok(okk && l.n == 1000 && l.v[999] == n, "ast_push grows");
  s = ast_strndup(&x, "hello", 3);
  is_str(s, "hel", "ast_strndup");
  ok(ast_alloc(&x, 100000) != NULL, "big allocation");
  ok(((uintptr_t)ast_alloc(&x, 1) % sizeof(double)) == 0, "aligned");
  ast_ctx_free(&x);
  ok(x.arena == NULL && x.ndiags == 0, "ast_ctx_free resets");
}

int main(void) {
  test_precedence();
  test_decls();
  test_when_text();
  test_spans();
  test_syntax_errors();
  test_recovery();
  test_limits();
  test_render();
  test_ast();
  ast_ctx_free(&ctx);
  return done_testing();
}
