/*
 * re.c -- liblane-re: lane_regex_pcre2(), a regular-expression engine for
 * matches() on PCRE2 (libpcre2-8), which liblane, linking libc alone,
 * leaves to the host (lane_regex_install).
 *
 * Patterns: UTF-8, RE2's syntax. PCRE2 reads a superset; what RE2 has
 * not (backreferences, lookaround, atomic and possessive groups,
 * recursion, conditionals, callouts, \C) is refused when the pattern
 * compiles, naming the construct. The compiler (lane check) refuses them
 * too, at the pattern's line.
 *
 * Matching: pcre2_dfa_match, PCRE2's automaton matcher, which never
 * backtracks, on the pattern anchored behind a lazy (?s:.*?), so one pass
 * tries every start: its work grows with the subject times the states
 * active at a byte (re_states), which the loader's worst case counts. It allocates
 * nothing: its match data and workspace live on the caller's stack,
 * through a general context whose allocator hands out that memory.
 * A subject that is not UTF-8 does not match (PCRE2 checks it first).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lane.h"

#define RE_MAX_PATTERN 4096   /* bytes of a pattern (a string constant's limit) */
#define RE_WORKSPACE   4096   /* ints of pcre2_dfa_match's workspace */

/* What RE2 has not: a reason, or NULL. */
static const char *not_re2(const char *p, size_t n) {
  int cls = 0;
  for (size_t i = 0; i < n; i++) {
    char c = p[i], d = i + 1 < n ? p[i + 1] : 0;
    if (c == '\\') {
      if (!cls && d >= '1' && d <= '9') return "backreferences are not RE2 syntax";
      if (d == 'g' || d == 'k') return "backreferences (\\g, \\k) are not RE2 syntax";
      if (d == 'C') return "\\C is not RE2 syntax";
      i++;
      continue;
    }
    if (cls) {
      if (c == ']') cls = 0;
      continue;
    }
    if (c == '[') {
      cls = 1;
      if (d == ']') i++;   /* a ] first in a class is a member */
      else if (d == '^' && i + 2 < n && p[i + 2] == ']') i += 2;
      continue;
    }
    if (c == '(' && d == '*') return "verbs such as (*ACCEPT) are not RE2 syntax";
    if (c == '(' && d == '?' && i + 3 < n && p[i + 2] == 'P' && (p[i + 3] == '=' || p[i + 3] == '>'))
      return "backreferences and recursion ((?P=name), (?P>name)) are not RE2 syntax";
    if (c == '(' && d == '?' && i + 2 < n) {
      char e = p[i + 2], f = i + 3 < n ? p[i + 3] : 0;
      if (e == '=' || e == '!' || (e == '<' && (f == '=' || f == '!')))
        return "lookaround is not RE2 syntax";
      if (e == '>') return "atomic groups are not RE2 syntax";
      if (e == '(' ) return "conditionals are not RE2 syntax";
      if (e == 'R' || (e >= '0' && e <= '9') || e == '&' || e == '+')
        return "recursion is not RE2 syntax";
      if (e == 'C') return "callouts are not RE2 syntax";
      if (e == '|') return "branch reset groups are not RE2 syntax";
    }
    if ((c == '+' || c == '*' || c == '?' || c == '}') && d == '+')
      return "possessive quantifiers are not RE2 syntax";
  }
  return NULL;
}

static void *re_compile(const char *p, size_t n, char *why, size_t whyn) {
  const char *bad = n > RE_MAX_PATTERN ? "a pattern is at most 4096 bytes" : not_re2(p, n);
  if (bad) {
    snprintf(why, whyn, "%s", bad);
    return NULL;
  }
  int code;
  PCRE2_SIZE off;
  pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
  if (!cc) {
    snprintf(why, whyn, "out of memory");
    return NULL;
  }
  pcre2_set_parens_nest_limit(cc, 250);
  /* Anchored behind a lazy any-prefix: one pass of the automaton tries
   * every start at once, where an unanchored DFA match would restart at
   * each offset (quadratic). The pattern is checked alone first, so an
   * error's offset is the user's. */
  static const char pre[] = "(?s:.*?)(?:", post[] = ")";
  char whole[RE_MAX_PATTERN + sizeof pre + sizeof post];
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)p, n,
                                 PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_AUTO_CAPTURE,
                                 &code, &off, cc);
  if (re) {
    pcre2_code_free(re);
    memcpy(whole, pre, sizeof pre - 1);
    memcpy(whole + sizeof pre - 1, p, n);
    memcpy(whole + sizeof pre - 1 + n, post, sizeof post - 1);
    re = pcre2_compile((PCRE2_SPTR)whole, n + sizeof pre + sizeof post - 2,
                       PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_AUTO_CAPTURE |
                           PCRE2_ANCHORED,
                       &code, &off, cc);
  }
  pcre2_compile_context_free(cc);
  if (!re) {
    PCRE2_UCHAR msg[120];
    pcre2_get_error_message(code, msg, sizeof msg);
    snprintf(why, whyn, "%s at offset %zu", (const char *)msg, (size_t)off);
  }
  return re;
}

/* An arena on the stack that pcre2's allocator hands out. */
typedef struct arena { unsigned char *p; size_t used, cap; } arena;

static void *arena_alloc(PCRE2_SIZE n, void *ctx) {
  arena *a = ctx;
  n = (n + 15) & ~(PCRE2_SIZE)15;
  if (n > a->cap - a->used) return NULL;
  void *r = a->p + a->used;
  a->used += n;
  return r;
}

static void arena_free(void *p, void *ctx) { (void)p; (void)ctx; }

static int re_match(const void *re, const char *s, size_t n) {
  _Alignas(16) unsigned char mem[1024];
  int ws[RE_WORKSPACE];
  arena a = {mem, 0, sizeof mem};
  pcre2_general_context *gc = pcre2_general_context_create(arena_alloc, arena_free, &a);
  pcre2_match_data *md = gc ? pcre2_match_data_create(1, gc) : NULL;
  if (!md) return -1;
  int rc = pcre2_dfa_match(re, (PCRE2_SPTR)(s ? s : ""), n, 0, 0, md, NULL, ws, RE_WORKSPACE);
  /* nothing to free: the arena is this frame's */
  if (rc >= 0 || rc == 0) return 1;   /* a match (0: more than the ovector holds) */
  if (rc == PCRE2_ERROR_NOMATCH) return 0;
  if (rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) return 0;   /* not UTF-8 */
  return -1;   /* the workspace or a limit ran out */
}

static void re_release(void *re) { pcre2_code_free(re); }

/* Active states at a byte: at most one per item of the compiled pattern
 * (its size over the smallest item, 2 bytes), and the workspace holds no
 * more than a third of its ints (a state takes three): past that the
 * match is an error, not more work. */
static uint32_t re_states(const void *re) {
  size_t size = 0;
  pcre2_pattern_info(re, PCRE2_INFO_SIZE, &size);
  size_t items = size / 2 + 1, cap = RE_WORKSPACE / 3;
  return (uint32_t)(items < cap ? items : cap);
}

static const lane_regex_engine engine = {"pcre2 (DFA)", re_compile, re_match, re_release,
                                         re_states};

const lane_regex_engine *lane_regex_pcre2(void) { return &engine; }
