/*
 * t_fmt.c -- `lane fmt`: the layout of every construct, comments kept by
 * position, alignment, minimal parentheses, literals as written, refusal on
 * syntax errors, the command's --check/--diff/rewrite, and idempotence over
 * every policy in the repository (golden accept policies, examples, stdlib).
 */
#include "fmt.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"

static char got[1 << 16];

/* src formatted, or "ERROR" when fmt_text fails. */
static const char *fmt(const char *src) {
  ast_ctx ctx;
  char *out = NULL;
  size_t n = 0;
  ast_ctx_init(&ctx);
  if (fmt_text(&ctx, "t.lane", src, strlen(src), &out, &n) != 0) snprintf(got, sizeof got, "ERROR");
  else snprintf(got, sizeof got, "%s", out);
  free(out);
  ast_ctx_free(&ctx);
  return got;
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  char *s;
  long len;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  s = malloc((size_t)len + 1);
  *n = s ? fread(s, 1, (size_t)len, f) : 0;
  if (s) s[*n] = '\0';
  fclose(f);
  return s;
}

/* Formats a file twice; the second pass changes nothing. With `canonical`,
 * the file must already be in canonical layout. Returns how many it read. */
static int idempotent_dir(const char *dir, int canonical) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int count = 0;
  if (!d) { ok(0, "cannot open %s", dir); return 0; }
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name), n, n1 = 0, n2 = 0;
    char path[1024], *src, *once = NULL, *twice = NULL;
    ast_ctx c1, c2;
    if (l < 6 || strcmp(e->d_name + l - 5, ".lane")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (!(src = slurp(path, &n))) continue;
    ast_ctx_init(&c1);
    ast_ctx_init(&c2);
    int r1 = fmt_text(&c1, path, src, n, &once, &n1);
    int r2 = r1 ? -1 : fmt_text(&c2, path, once, n1, &twice, &n2);
    if (r1) diag_render(stdout, &c1);
    ok(!r1 && !r2 && n1 == n2 && !memcmp(once, twice, n1), "fmt of fmt is fmt: %s", path);
    int same = !r1 && n1 == n && !memcmp(once, src, n);
    if (canonical) ok(same, "%s is formatted", path);
    free(src); free(once); free(twice);
    ast_ctx_free(&c1);
    ast_ctx_free(&c2);
    count++;
  }
  closedir(d);
  return count;
}

/* tests/golden/fmt/NAME.lane formats to NAME.out, which is canonical. */
static void golden_pairs(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  if (!d) { ok(0, "cannot open %s", dir); return; }
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name), n, m;
    char path[1024], *src, *want;
    if (l < 6 || strcmp(e->d_name + l - 5, ".lane")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    src = slurp(path, &n);
    snprintf(path + strlen(path) - 5, 5, ".out");
    want = slurp(path, &m);
    if (!src || !want) { ok(0, "%s has no .out", e->d_name); free(src); free(want); continue; }
    is_str(fmt(src), want, "golden fmt %s", e->d_name);
    is_str(fmt(want), want, "golden fmt %s: output is canonical", e->d_name);
    free(src);
    free(want);
  }
  closedir(d);
}

static void constructs(void) {
  is_str(fmt("import   \"std/providers/anthropic\"\nimport 'x'"),
         "import \"std/providers/anthropic\"\nimport 'x'\n", "imports stay together, as written");
  is_str(fmt("import \"a\"\n\n\n\nimport \"b\"\n"), "import \"a\"\n\nimport \"b\"\n",
         "blank lines collapse to one");
  is_str(fmt("model m{input $0.2/Mtok output $0.8/Mtok}"),
         "model m { input $0.2/Mtok  output $0.8/Mtok }\n", "one-line model: two spaces");
  is_str(fmt("model m {\n provider \"p\" name \"n\" input $1/Mtok output $2/Mtok context 128k\n"
             " max_output 8k caps vision,tools quality 0.8 p50 1s p95 2s deprecated \"2026-01-01\" }"),
         "model m {\n  provider \"p\"  name \"n\"\n  input $1/Mtok  output $2/Mtok\n"
         "  context 128k  max_output 8k\n  caps vision, tools\n  quality 0.8\n  p50 1s  p95 2s\n"
         "  deprecated \"2026-01-01\"\n}\n",
         "model block: properties in order, one line per group");
  is_str(fmt("model a { quality 0.9 p95 1s }\nmodel bbb.ccc { quality 0.85 p95 700ms }\n"),
         "model a       { quality 0.9   p95 1s }\nmodel bbb.ccc { quality 0.85  p95 700ms }\n",
         "a run of one-line models aligns `{` and shared properties");
  is_str(fmt("model a { quality 0.9 }\n\nmodel b { quality 0.8 }\nroute r { otherwise -> a }"),
         "model a { quality 0.9 }\n\nmodel b { quality 0.8 }\n\nroute r {\n  otherwise -> a\n}\n",
         "a blank line between one-line models is kept; routes are blocks");
  is_str(fmt("model m { p50 (5%) p95 1s }\nmodel n {\n p50 5%\n p95 1s\n}"),
         "model m {\n  p50 5%\n  p95 1s\n}\n\nmodel n {\n  p50 5%\n  p95 1s\n}\n",
         "a fraction ends its line (`5%%  p95` would read as modulo)");
  is_str(fmt("request { a: int, b: string }\nrequest {\n a: int\n}"),
         "request { a: int  b: string }\n\nrequest {\n  a: int\n}\n", "request bodies");
  is_str(fmt("pool a = models where (quality > 0)\npool bcd = a where vision"),
         "pool a   = models where quality > 0\npool bcd = a where vision\n", "pools align `=`");
  is_str(fmt("budget b { key req.tenant limit $200 window 1d }"),
         "budget b { key req.tenant  limit $200  window 1d }\n", "budget");
  is_str(fmt("route r { fallbacks 2 require fits\n when req.tier == \"pro\" -> a, then b, shadow c 10%\n"
             " when req.images > 0 -> split {a: 70%, b: 30%,} by req.user\n otherwise -> c shadow d }"),
         "route r {\n  fallbacks 2\n  require fits\n"
         "  when req.tier == \"pro\" -> a, then b, shadow c 10%\n"
         "  when req.images > 0    -> split { a: 70%, b: 30% } by req.user\n"
         "  otherwise              -> c\n  shadow d\n}\n",
         "route items one per line, `->` aligned");
  is_str(fmt("route r {\n when req.latency_budget > 0ms && req.latency_budget < 1500ms && req.tools"
             " -> fastest(models)\n when req.tools -> a\n}"),
         "route r {\n  when req.latency_budget > 0ms && req.latency_budget < 1500ms && req.tools\n"
         "      -> fastest(models)\n  when req.tools -> a\n}\n",
         "a long condition puts `->` on the next line");
  is_str(fmt("route r {\n when req.tools -> split { anthropic.claude_sonnet_4_5: 50%, openai.gpt_5: 50% }"
             " by req.tenant, then best(models where quality >= 0.8), shadow muse\n}"),
         "route r {\n  when req.tools\n"
         "      -> split { anthropic.claude_sonnet_4_5: 50%, openai.gpt_5: 50% } by req.tenant,\n"
         "         then best(models where quality >= 0.8),\n         shadow muse\n}\n",
         "a chain too wide for its line: one item per line");
  is_str(fmt("route r { when req.n>1 -> a\n otherwise -> a }"),
         "route r {\n  when req.n>1 -> a\n  otherwise    -> a\n}\n",
         "a when-condition keeps its text: it is the rule's name");
  is_str(fmt("test \"t\" { route r req { a: 1, b: \"x\", } expect (rule == 1) state \"s.json\" }"),
         "test \"t\" {\n  route r\n  req { a: 1, b: \"x\" }\n  expect rule == 1\n  state \"s.json\"\n}\n",
         "test items one per line");
  is_str(fmt("route r {}\ntest \"t\" {\n}"), "route r {}\n\ntest \"t\" {}\n", "empty blocks");
}

static const char *ex(const char *e) {
  char src[512];
  snprintf(src, sizeof src, "route r { require %s }", e);
  fmt(src);
  char *s = strstr(got, "require ");
  if (!s) return got;
  s += 8;
  *strchr(s, '\n') = '\0';
  return s;
}

static void expressions(void) {
  is_str(ex("((a && b) || c)"), "a && b || c", "needless parentheses go");
  is_str(ex("a && (b || c)"), "a && (b || c)", "needed ones stay");
  is_str(ex("(a - b) - (c - d)"), "a - b - (c - d)", "left associativity");
  is_str(ex("(a ? b : c) ? d : (e ? f : g)"), "(a ? b : c) ? d : e ? f : g", "?: is right-associative");
  is_str(ex("-(a + b) * !(c)"), "-(a + b) * !c", "unary operators");
  is_str(ex("(a + b).size() + (1).size() + (-x)[0]"), "(a + b).size() + (1).size() + (-x)[0]",
         "postfix operands");
  is_str(ex("(5%) in [5%,10%,]"), "(5%) in [5%, 10%]", "a fraction before `in` keeps its parentheses");
  is_str(ex("10%3 == x%y"), "10 % 3 == x % y", "modulo gets spaces");
  is_str(ex("$0.2/Mtok < $3/Ktok && 0x1F == 31 && 1.5k > 1e3 && .5 < 1."),
         "$0.2/Mtok < $3/Ktok && 0x1F == 31 && 1.5k > 1e3 && .5 < 1.", "literals as written");
  is_str(ex("-9223372036854775808 < x && r'a\\d' != '''b'''"),
         "-9223372036854775808 < x && r'a\\d' != '''b'''", "the smallest int and string forms");
}

static void comments(void) {
  is_str(fmt("# head\n\nmodel m {   # trailing\n  # own\n  quality 0.9 # q\n  # last\n}\n# tail\n"),
         "# head\n\nmodel m {  # trailing\n  # own\n  quality 0.9  # q\n  # last\n}\n# tail\n",
         "comments stay where they were");
  is_str(fmt("route r {\n  fallbacks 2 # a\n  require fits && healthy # b\n  otherwise -> m\n}"),
         "route r {\n  fallbacks 2              # a\n  require fits && healthy  # b\n  otherwise -> m\n}\n",
         "trailing comments on consecutive lines line up");
  is_str(fmt("route r {\n  when a && # inside\n    b -> m\n}"),
         "route r {\n  # inside\n  when a && b -> m\n}\n", "a comment inside a one-line construct goes before it");
  is_str(fmt("route r {\n  when a # why\n    -> m, # first\n    then n\n}"),
         "route r {\n  when a     # why\n      -> m,  # first\n         then n\n}\n",
         "comments inside a rule keep it on several lines");
  is_str(fmt("model m { input $1/Mtok # list\n output $2/Mtok }"),
         "model m {\n  input $1/Mtok  # list\n  output $2/Mtok\n}\n",
         "a comment between properties ends their line");
  is_str(fmt("# only a comment"), "# only a comment\n", "a file of comments");
  is_str(fmt(""), "", "an empty file");
}

static void refusals(void) {
  ast_ctx ctx;
  char *out = (char *)1;
  size_t n = 7;
  const char *bad = "route r { when -> m }\nmodel m { context 128kb }\n";
  ast_ctx_init(&ctx);
  is_int(fmt_text(&ctx, "bad.lane", bad, strlen(bad), &out, &n), -1, "syntax errors: refused");
  ok(out == NULL && n == 0, "no output");
  is_int(ctx.nerrors, 2, "both errors reported");
  ast_ctx_free(&ctx);
}

static void command(void) {
  char dir[] = "/tmp/t_fmt.XXXXXX", path[512], missing[512], broken[512], *buf = NULL;
  const char *files[2];
  size_t n = 0, len;
  FILE *f, *o, *e;
  if (!mkdtemp(dir)) { ok(0, "mkdtemp"); return; }
  snprintf(path, sizeof path, "%s/p.lane", dir);
  snprintf(missing, sizeof missing, "%s/none.lane", dir);
  snprintf(broken, sizeof broken, "%s/broken.lane", dir);
  f = fopen(path, "w");
  fputs("model m{quality 0.9}\nroute r { otherwise -> m }\n", f);
  fclose(f);
  f = fopen(broken, "w");
  fputs("route r { when -> }\n", f);
  fclose(f);
  files[0] = path;
  e = fopen("/dev/null", "w");

  o = open_memstream(&buf, &n);
  is_int(fmt_command(files, 1, 0, 1, o, e), 1, "--diff: exit 1 when the file would change");
  fclose(o);
  char want[2048];
  snprintf(want, sizeof want, "--- %s\n+++ %s\n@@ -1,2 +1,5 @@\n-model m{quality 0.9}\n"
           "-route r { otherwise -> m }\n+model m { quality 0.9 }\n+\n+route r {\n"
           "+  otherwise -> m\n+}\n", path, path);
  is_str(buf, want, "--diff prints a unified diff");
  free(buf);
  buf = NULL;
  is_int(fmt_command(files, 1, 1, 0, e, e), 1, "--check: exit 1");
  char *s = slurp(path, &len);
  is_str(s, "model m{quality 0.9}\nroute r { otherwise -> m }\n", "--check and --diff write nothing");
  free(s);
  is_int(fmt_command(files, 1, 0, 0, e, e), 0, "rewrite: exit 0");
  s = slurp(path, &len);
  is_str(s, "model m { quality 0.9 }\n\nroute r {\n  otherwise -> m\n}\n", "rewritten in place");
  free(s);
  is_int(fmt_command(files, 1, 1, 1, e, e), 0, "--check of a formatted file: exit 0");
  files[1] = missing;
  is_int(fmt_command(files, 2, 1, 0, e, e), 2, "an unreadable file: exit 2");
  files[0] = broken;
  is_int(fmt_command(files, 1, 0, 0, e, e), 2, "a syntax error: exit 2");
  s = slurp(broken, &len);
  is_str(s, "route r { when -> }\n", "a file with errors is left alone");
  free(s);
  fclose(e);
  unlink(path);
  unlink(broken);
  rmdir(dir);
}

int main(void) {
  constructs();
  expressions();
  comments();
  refusals();
  command();
  golden_pairs("tests/golden/fmt");
  idempotent_dir("tests/golden/accept", 0);
  idempotent_dir("tests/golden/accept/catalogs", 0);
  idempotent_dir("tests/golden/testrun", 0);
  idempotent_dir("stdlib/providers", 1);
  idempotent_dir("examples/policies", 1);
  return done_testing();
}
