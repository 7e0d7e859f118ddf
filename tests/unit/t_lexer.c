/*
 * t_lexer.c -- lane's tokens: numbers and unit literals, strings and
 * escapes, comments, positions and lexical errors. The lexer has no API
 * of its own, so each case parses a one-expression policy and looks at
 * the literal node (or at the rendered diagnostics).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "tap.h"

static ast_ctx ctx;
static src_file file;
static char text[4096];
static char out[8192];

/* Parses `src` as a whole file into the global context. */
static ast_list parse(const char *src) {
  ast_list decls = { 0 };
  ast_ctx_free(&ctx);
  ast_ctx_init(&ctx);
  snprintf(text, sizeof text, "%s", src);
  file.name = "t.lane";
  file.text = text;
  file.len = strlen(text);
  file.module = "t";
  file.is_root = 1;
  parse_file(&ctx, &file, &decls);
  return decls;
}

/* The expression `e`, parsed as `route r { require e }`; NULL on error. */
static const ast_node *expr(const char *e) {
  char src[1024];
  ast_list d;
  snprintf(src, sizeof src, "route r { require %s }", e);
  d = parse(src);
  if (d.n != 1 || d.v[0]->list.n != 1) return NULL;
  return d.v[0]->list.v[0]->a;
}

/* ast_dump of expression `e`. */
static const char *dump(const char *e) {
  const ast_node *n = expr(e);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ast_dump(f, n);
  fclose(f);
  snprintf(out, sizeof out, "%s", buf ? buf : "");
  free(buf);
  return out;
}

/* Rendered diagnostics after parsing `src`. */
static const char *errors(const char *src) {
  char *buf = NULL;
  size_t n = 0;
  FILE *f;
  parse(src);
  f = open_memstream(&buf, &n);
  diag_render(f, &ctx);
  fclose(f);
  snprintf(out, sizeof out, "%s", buf ? buf : "");
  free(buf);
  return out;
}

static void test_numbers(void) {
  const ast_node *n;
  n = expr("123");
  ok(n && n->kind == N_INT && n->lit.i == 123, "decimal int");
  n = expr("0x1F");
  ok(n && n->kind == N_INT && n->lit.i == 31, "hex int");
  n = expr("123u");
  ok(n && n->kind == N_UINT && n->lit.u == 123, "uint");
  n = expr("0x1Fu");
  ok(n && n->kind == N_UINT && n->lit.u == 31, "hex uint");
  n = expr("18446744073709551615u");
  ok(n && n->kind == N_UINT && n->lit.u == UINT64_MAX, "largest uint");
  n = expr("9223372036854775807");
  ok(n && n->kind == N_INT && n->lit.i == INT64_MAX, "largest int");
  n = expr("-9223372036854775808");
  ok(n && n->kind == N_INT && n->lit.i == INT64_MIN, "-2^63 folds to INT64_MIN");
  is_int(ctx.nerrors, 0, "... without an error");
  ok(n && n->span.col == 19 && n->span.len == 20, "... spanning the minus");
  n = expr("- 0x8000000000000000");
  ok(n && n->kind == N_INT && n->lit.i == INT64_MIN, "hex -2^63 folds too");
  is_str(errors("route r { require 9223372036854775808 > 0 }"),
         "t.lane:1:19: error: integer literal 9223372036854775808 is too large\n"
         "    1 | route r { require 9223372036854775808 > 0 }\n"
         "      |                   ^~~~~~~~~~~~~~~~~~~\n",
         "2^63 without minus is an error");
  is_int(ctx.nerrors, 1, "... one error");
  errors("route r { require -(9223372036854775808) }");
  is_int(ctx.nerrors, 1, "2^63 in parentheses is not 'directly' under minus");
  errors("route r { require x - 9223372036854775808 }");
  is_int(ctx.nerrors, 1, "binary minus does not fold");
  is_str(errors("route r { require 99999999999999999999 }"),
         "t.lane:1:19: error: integer literal 99999999999999999999 is too large\n"
         "    1 | route r { require 99999999999999999999 }\n"
         "      |                   ^~~~~~~~~~~~~~~~~~~~\n",
         "int overflow");
  errors("route r { require 18446744073709551616u }");
  is_int(ctx.nerrors, 1, "uint overflow");

  n = expr("1.5");
  ok(n && n->kind == N_DOUBLE && n->lit.d == 1.5, "double 1.5");
  n = expr("1.");
  ok(n && n->kind == N_DOUBLE && n->lit.d == 1.0, "double 1.");
  n = expr(".5");
  ok(n && n->kind == N_DOUBLE && n->lit.d == 0.5, "double .5");
  n = expr("1e3");
  ok(n && n->kind == N_DOUBLE && n->lit.d == 1000.0, "double 1e3");
  n = expr("1.5e-3");
  ok(n && n->kind == N_DOUBLE && n->lit.d == 1.5e-3, "double 1.5e-3");
}

static void test_units(void) {
  const ast_node *n;
  n = expr("$0.002");
  ok(n && n->kind == N_MONEY, "money kind");
  is_dbl(n ? n->lit.d : -1, 0.002, 0, "money $0.002");
  n = expr("$200");
  is_dbl(n ? n->lit.d : -1, 200.0, 0, "money $200");
  n = expr("$3/Mtok");
  ok(n && n->kind == N_PRICE, "price kind");
  is_dbl(n ? n->lit.d : -1, 3.0 / 1e6, 0, "$3/Mtok is exactly 3.0/1e6");
  n = expr("$3/Ktok");
  is_dbl(n ? n->lit.d : -1, 3.0 / 1e3, 0, "$3/Ktok is exactly 3.0/1e3");
  n = expr("$0.000003/tok");
  is_dbl(n ? n->lit.d : -1, 0.000003, 0, "$0.000003/tok");
  n = expr("$0.15/Mtok");
  is_dbl(n ? n->lit.d : -1, 0.15 / 1e6, 0, "$0.15/Mtok is strtod/1e6");
  is_str(dump("$10/n"), "(/ (money 10) n)", "$10/n is money divided by n");
  is_str(dump("$10 / Mtok"), "(/ (money 10) Mtok)", "spaced /Mtok is division");

  n = expr("800ms");
  ok(n && n->kind == N_DURATION && n->lit.d == 800, "800ms");
  n = expr("2s");
  ok(n && n->kind == N_DURATION && n->lit.d == 2000, "2s");
  n = expr("5m");
  ok(n && n->kind == N_DURATION && n->lit.d == 300000, "5m");
  n = expr("1h");
  ok(n && n->kind == N_DURATION && n->lit.d == 3600000, "1h");
  n = expr("1d");
  ok(n && n->kind == N_DURATION && n->lit.d == 86400000, "1d");
  n = expr("1.5s");
  ok(n && n->kind == N_DURATION && n->lit.d == 1500, "1.5s");

  n = expr("32k");
  ok(n && n->kind == N_TOKENS && n->lit.i == 32000, "32k");
  n = expr("1M");
  ok(n && n->kind == N_TOKENS && n->lit.i == 1000000, "1M");
  n = expr("1.5k");
  ok(n && n->kind == N_TOKENS && n->lit.i == 1500, "1.5k = 1500");
  n = expr("0.0015M");
  ok(n && n->kind == N_TOKENS && n->lit.i == 1500, "0.0015M = 1500 exactly");
  n = expr("1e3k");
  ok(n && n->kind == N_TOKENS && n->lit.i == 1000000, "1e3k");
  is_str(errors("route r { require 1.0005k }"),
         "t.lane:1:19: error: token count 1.0005k is not a whole number\n"
         "    1 | route r { require 1.0005k }\n"
         "      |                   ^~~~~~~\n",
         "1.0005k is an error");
  errors("route r { require 10000000000000000k }");
  is_int(ctx.nerrors, 1, "token count overflow");

  n = expr("5%");
  ok(n && n->kind == N_FRACTION, "5%% is a fraction");
  is_dbl(n ? n->lit.d : -1, 0.05, 0, "5%% = 5/100");
  is_str(dump("10 % 3"), "(% 10 3)", "10 %% 3 is modulo");
  is_str(dump("10%3"), "(% 10 3)", "10%%3 is modulo");
  is_str(dump("10% 3"), "(% 10 3)", "10%% 3 is modulo");
  is_str(dump("10%\t(x)"), "(% 10 x)", "10%% (x) is modulo");
  is_str(dump("10%x"), "(% 10 x)", "10%%x is modulo");
  is_str(dump("x%y"), "(% x y)", "x%%y is modulo");
  is_str(dump("f(5%, 7%)"), "(call f (fraction 0.05) (fraction 0.07))",
         "5%% before , and ) is a fraction");
  is_str(dump("a < 5% || b"), "(|| (< a (fraction 0.05)) b)", "5%% before || is a fraction");
  is_str(dump("50%\n"), "(fraction 0.5)", "5%% before a newline is a fraction");
}

static void test_suffix_errors(void) {
  is_str(errors("route r { require 5xyz }"),
         "t.lane:1:20: error: invalid suffix 'xyz' on number\n"
         "    1 | route r { require 5xyz }\n"
         "      |                    ^~~\n",
         "invalid suffix");
  is_str(errors("route r { require 1.5u }"),
         "t.lane:1:22: error: invalid suffix 'u' on number\n"
         "    1 | route r { require 1.5u }\n"
         "      |                      ^\n",
         "u on a double");
  errors("route r { require $5k }");
  is_int(ctx.nerrors, 1, "suffix on money");
  errors("route r { require 1e }");
  is_int(ctx.nerrors, 1, "1e is a bad suffix");
  errors("route r { require 0x }");
  is_int(ctx.nerrors, 1, "0x is a bad suffix");
}

static void test_strings(void) {
  const ast_node *n;
  n = expr("\"a\\tb\"");
  ok(n && n->kind == N_STRING && n->len == 3 && memcmp(n->str, "a\tb", 3) == 0, "\\t");
  n = expr("'it\\'s'");
  is_str(n ? n->str : NULL, "it's", "single quotes and \\'");
  n = expr("\"\\\\ \\\" \\' \\n \\r \\t \\a \\b \\f \\v \\? \\`\"");
  is_str(n ? n->str : NULL, "\\ \" ' \n \r \t \a \b \f \v ? `", "simple escapes");
  n = expr("\"\\x41\\101\\u00e9\\U0001F600\"");
  is_str(n ? n->str : NULL, "AA\xc3\xa9\xf0\x9f\x98\x80", "hex, octal, \\u, \\U escapes");
  n = expr("\"\\xff\"");
  is_str(n ? n->str : NULL, "\xc3\xbf", "\\xff is code point U+00FF");
  n = expr("r\"a\\n\"");
  ok(n && n->len == 3 && memcmp(n->str, "a\\n", 3) == 0, "raw string keeps backslashes");
  n = expr("R'x\\'");
  is_str(n ? n->str : NULL, "x\\", "R'...' raw");
  n = expr("\"\"\"one\n\"two\" ''\nthree\"\"\"");
  is_str(n ? n->str : NULL, "one\n\"two\" ''\nthree", "triple-quoted spans lines");
  n = expr("'''a\\tb'''");
  is_str(n ? n->str : NULL, "a\tb", "''' with escapes");
  n = expr("r\"\"\"a\\tb\"\"\"");
  is_str(n ? n->str : NULL, "a\\tb", "raw triple-quoted");
  n = expr("\"\"");
  ok(n && n->kind == N_STRING && n->len == 0, "empty string");
  n = expr("\"caf\xc3\xa9\"");
  is_str(n ? n->str : NULL, "caf\xc3\xa9", "UTF-8 passes through");

  is_str(errors("route r { require \"abc }"),
         "t.lane:1:19: error: unterminated string\n"
         "    1 | route r { require \"abc }\n"
         "      |                   ^\n"
         "t.lane:1:25: error: unexpected end of file, expected '}'\n"
         "    1 | route r { require \"abc }\n"
         "      |                         ^\n",
         "unterminated string");
  is_str(errors("route r { require \"a\\qb\" }"),
         "t.lane:1:21: error: invalid escape sequence '\\q'\n"
         "    1 | route r { require \"a\\qb\" }\n"
         "      |                     ^~\n",
         "bad escape");
  is_str(errors("route r { require \"\\uD800\" }"),
         "t.lane:1:20: error: invalid Unicode code point in escape \\uD800\n"
         "    1 | route r { require \"\\uD800\" }\n"
         "      |                    ^~~~~~\n",
         "surrogate code point");
  errors("route r { require \"\\U00110000\" }");
  is_int(ctx.nerrors, 1, "code point above U+10FFFF");
  errors("route r { require \"\\x4\" }");
  is_int(ctx.nerrors, 1, "short \\x escape");
  errors("route r { require \"\xff\" }");
  is_int(ctx.nerrors, 1, "invalid UTF-8 byte in a string");
  errors("route r { require \"\"\"never closed\n }");
  is_int(ctx.nerrors, 2, "unterminated triple-quoted string (and then EOF)");
  is_str(errors("route r {\n  require \"\"\"a\nb\\q\"\"\" }"),
         "t.lane:3:2: error: invalid escape sequence '\\q'\n"
         "    3 | b\\q\"\"\" }\n"
         "      |  ^~\n",
         "escape error on a later line of a long string");
}

static void test_chars_and_comments(void) {
  is_str(errors("route r { require a @ b }"),
         "t.lane:1:21: error: unexpected character '@'\n"
         "    1 | route r { require a @ b }\n"
         "      |                     ^\n"
         "t.lane:1:23: error: unexpected identifier, expected operator, route item or '}'\n"
         "    1 | route r { require a @ b }\n"
         "      |                       ^\n",
         "unexpected character, then the parser's view");
  errors("route r { require a \x01 }");
  is_str(ctx.ndiags ? ctx.diags[0].msg : NULL, "unexpected byte 0x01", "control byte");
  errors("route r { require a \xc3\xa9 }");
  is_str(ctx.ndiags ? ctx.diags[0].msg : NULL, "unexpected character '\xc3\xa9'",
         "a UTF-8 character is one error");
  is_str(errors("route r { require x \xc3\xa9\xc3\xa9 }"),
         "t.lane:1:21: error: unexpected character '\xc3\xa9'\n"
         "    1 | route r { require x \xc3\xa9\xc3\xa9 }\n"
         "      |                     ^\n"
         "t.lane:1:23: error: unexpected character '\xc3\xa9'\n"
         "    1 | route r { require x \xc3\xa9\xc3\xa9 }\n"
         "      |                      ^\n",
         "carets count characters, columns count bytes");
  errors("route r { require a \xff }");
  is_str(ctx.ndiags ? ctx.diags[0].msg : NULL, "unexpected byte 0xFF", "stray byte");
  is_str(dump("a # comment && b\n || c"), "(|| a c)", "comments run to end of line");
  is_str(dump("req.x && budget.b.used"), "(&& (. req x) (. (. budget b) used))",
         "req and budget are identifiers in expressions");
  is_str(dump("true || false || null"), "(|| (|| true false) null)", "true false null");
  is_str(dump("_a1 in B_2"), "(in _a1 B_2)", "identifiers and in");
}

static void test_positions(void) {
  ast_list d = parse("# c\n\troute  r {\n  require\n    foo.bar   < 2 }");
  const ast_node *req, *e;
  ok(d.n == 1, "one route");
  if (d.n != 1) return;
  is_int(d.v[0]->span.line, 2, "route line");
  is_int(d.v[0]->span.col, 2, "route column (tab is one byte)");
  is_int(d.v[0]->span.len, 5, "multi-line node: span of its first token");
  req = d.v[0]->list.v[0];
  e = req->a;
  is_int(req->span.line, 3, "require line");
  is_int(req->span.len, 7, "require spans its keyword (expression is on the next line)");
  is_int(e->span.line, 4, "expression line");
  is_int(e->span.col, 5, "expression column");
  is_int(e->span.len, 13, "binary spans both operands");
  is_int(e->a->span.len, 7, "selector spans a.b");
  is_int(e->b->span.col, 17, "literal column");
  ok(e->span.file == &file, "spans point at the file");
}

int main(void) {
  test_numbers();
  test_units();
  test_suffix_errors();
  test_strings();
  test_chars_and_comments();
  test_positions();
  ast_ctx_free(&ctx);
  return done_testing();
}
