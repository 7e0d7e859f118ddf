/*
 * big.h -- hostile .lanec files of any size, one kind per path of the
 * verifier (vm/load.c) that once took time quadratic in the file, and one
 * whose single decision did.
 *
 *   size_t n;
 *   unsigned char *b = big_file(BIG_LISTS, 8 << 20, &n);   caller frees
 *
 * tests/unit/t_scale.c loads each kind at 1 MB and 8 MB and compares the
 * verifier's work counts; tests/bench/verify_scale.c times them. Every
 * file is built as a bc_image and encoded by bc_encode, so it is
 * well-formed down to the table it attacks. Header-only test code: it
 * aborts when memory runs out.
 */
#ifndef LANE_TEST_BIG_H
#define LANE_TEST_BIG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc.h"
#include "lane.h"

typedef enum big_kind {
  BIG_ROUTES,        /* routes with names alike but for their last bytes:
                        names were compared pairwise */
  BIG_SWITCH_SHARED, /* switches over the same cases: each rescanned them */
  BIG_SWITCH_USES,   /* one switch, one SWITCH per three instructions: its
                        targets were rescanned per SWITCH in three passes */
  BIG_LISTS,         /* lists over the same elements: each rescanned them */
  BIG_POOL_USES,     /* one pool, a CAND best() per instruction: the pool's
                        order was rescanned per CAND */
  BIG_CASE_STRINGS,  /* two-case switches over two long strings alike but
                        for the last byte: compared once per switch */
  BIG_CONTAINS,      /* one decision: 2/3 of the size of "a" contains 1/3
                        of "a" then "b", two constants: quadratic matching
                        reads a third of the file for every byte of it */
  BIG_NKINDS
} big_kind;

static const char *const big_names[BIG_NKINDS] = {
  "routes", "switch_shared", "switch_uses", "lists", "pool_uses", "case_strings", "contains",
};

typedef struct big {
  bc_image im;        /* arrays malloc'd to the counts the kind needs */
  char    *text;      /* bytes of the strings made here */
  size_t   ntext;     /* used */
} big;

static inline void *big_alloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) { fprintf(stderr, "big: out of memory\n"); exit(99); }
  return p;
}

/* A string of len bytes: fill, then the decimal tail (may be NULL). */
static inline uint32_t big_str(big *b, char fill, size_t len, const char *tail) {
  size_t tl = tail ? strlen(tail) : 0;
  char *p = b->text + b->ntext;
  memset(p, fill, len);
  if (tl) memcpy(p + len, tail, tl);
  p[len + tl] = 0;
  b->ntext += len + tl + 1;
  b->im.str[b->im.nstr].p = p;
  b->im.str[b->im.nstr].len = (uint32_t)(len + tl);
  return b->im.nstr++;
}

static inline uint32_t big_cstr(big *b, const char *s) { return big_str(b, 0, 0, s); }

/* Room for the counts given, the standard fields and one model, pool 0
 * of one member, string "otherwise". */
static inline void big_init(big *b, size_t nstr, size_t ntext, size_t ncode, size_t nroutes,
                            size_t nrules, size_t nswitches, size_t ncases, size_t nlists,
                            size_t nelems, size_t npools, size_t nmembers) {
  static const struct { const char *name; int unit; } std[] = {
#define BIG_STD(id, name, unit) { name, unit },
    BC_STD_FIELDS(BIG_STD)
#undef BIG_STD
  };
  bc_image *im = &b->im;
  memset(b, 0, sizeof *b);
  im->str = big_alloc(nstr + 32, sizeof *im->str);
  b->text = big_alloc(ntext + 1024, 1);
  im->code = big_alloc(ncode, sizeof *im->code);
  im->routes = big_alloc(nroutes, sizeof *im->routes);
  im->rules = big_alloc(nrules, sizeof *im->rules);
  im->switches = big_alloc(nswitches, sizeof *im->switches);
  im->cases = big_alloc(ncases, sizeof *im->cases);
  im->lists = big_alloc(nlists, sizeof *im->lists);
  im->listelems = big_alloc(nelems, sizeof *im->listelems);
  im->pools = big_alloc(npools + 1, sizeof *im->pools);
  im->members = big_alloc(nmembers + 1, sizeof *im->members);
  im->fields = big_alloc(BC_NSTD, sizeof *im->fields);
  im->models = big_alloc(1, sizeof *im->models);
  im->kint = big_alloc(1, sizeof *im->kint);
  im->nkint = 1;
  for (int i = 0; i < BC_NSTD; i++) {
    im->fields[i].name = big_cstr(b, std[i].name);
    im->fields[i].unit = (uint8_t)std[i].unit;
    im->fields[i].type = std[i].unit == BC_U_STRING ? LANE_T_STRING
                       : std[i].unit == BC_U_BOOL ? LANE_T_BOOL
                       : std[i].unit == BC_U_DURATION ? LANE_T_DOUBLE : LANE_T_INT;
  }
  im->nfields = BC_NSTD;
  im->models[0].name = big_cstr(b, "acme.m");
  im->models[0].provider = big_cstr(b, "acme");
  im->models[0].id = big_cstr(b, "m");
  im->models[0].region = im->models[0].deprecated = big_cstr(b, "");
  im->models[0].input = 1e-6;
  im->models[0].output = 2e-6;
  im->models[0].quality = 0.5;
  im->nmodels = 1;
  im->pools[0] = (bc_pool){ 0, 1 };
  im->npools = 1;
  im->nmembers = 1;
  big_cstr(b, "otherwise");   /* string BIG_OTHERWISE */
}
#define BIG_OTHERWISE (BC_NSTD + 4)

static inline uint32_t big_op(big *b, int op, int a, int bb, uint32_t c) {
  bc_insn *in = &b->im.code[b->im.ncode];
  in->op = (uint8_t)op; in->a = (uint8_t)a; in->b = (uint16_t)bb; in->c = c;
  return b->im.ncode++;
}

/* Starts route name at the next instruction with one rule "otherwise". */
static inline void big_route(big *b, uint32_t name) {
  bc_route *r = &b->im.routes[b->im.nroutes++];
  r->name = name;
  r->start = b->im.ncode;
  r->first_rule = b->im.nrules;
  r->nrules = 1;
  b->im.rules[b->im.nrules++].name = BIG_OTHERWISE;
  big_op(b, BC_OP_RULE, 0, 0, 0);
}

/* Ends the route with CAND ENDRULE NOMATCH; the rule resumes at NOMATCH. */
static inline void big_route_end(big *b) {
  bc_route *r = &b->im.routes[b->im.nroutes - 1];
  big_op(b, BC_OP_CAND, BC_ORD_LISTED, 0, 0);
  big_op(b, BC_OP_ENDRULE, 0, 0, 0);
  b->im.rules[r->first_rule].next = big_op(b, BC_OP_NOMATCH, 0, 0, 0);
  r->end = b->im.ncode;
}

static inline unsigned char *big_encode(big *b, size_t *n) {
  bc_image *im = &b->im;
  unsigned char *out;
  if (bc_encode(im, &out, n) != 0) { fprintf(stderr, "big: bc_encode failed\n"); exit(99); }
  free(im->str); free(b->text); free(im->code); free(im->routes); free(im->rules);
  free(im->switches); free(im->cases); free(im->lists); free(im->listelems);
  free(im->pools); free(im->members); free(im->fields); free(im->models); free(im->kint);
  return out;
}

/* Case strings "c0000000", "c0000001", ...: ascending. */
static inline void big_case_strings(big *b, uint32_t n, uint32_t target) {
  char tail[16];
  for (uint32_t k = 0; k < n; k++) {
    snprintf(tail, sizeof tail, "%07u", (unsigned)k);
    b->im.cases[k] = (bc_case){ big_str(b, 'c', 1, tail), target };
  }
  b->im.ncases = n;
}

/* A file of kind k of about `size` bytes (*n gets the exact size). */
static inline unsigned char *big_file(big_kind k, size_t size, size_t *n) {
  big b;
  switch (k) {
  case BIG_ROUTES: {       /* 133 bytes a route: 4 instructions, route, rule, name */
    uint32_t r = (uint32_t)(size / 133);
    char tail[16];
    big_init(&b, r, (size_t)r * 57, 4 * (size_t)r, r, r, 0, 0, 0, 0, 0, 0);
    for (uint32_t i = 0; i < r; i++) {
      snprintf(tail, sizeof tail, "%08u", (unsigned)i);
      big_route(&b, big_str(&b, 'r', 48, tail));
      big_route_end(&b);
    }
    break;
  }
  case BIG_SWITCH_SHARED: {  /* cases: 25 bytes each; switches: 16 */
    uint32_t nc = (uint32_t)(size / 2 / 25), ns = (uint32_t)(size / 2 / 16);
    big_init(&b, nc, (size_t)nc * 9, 5, 1, 1, ns, nc, 0, 0, 0, 0);
    big_route(&b, big_cstr(&b, "r"));
    big_op(&b, BC_OP_SWITCH, 0, 0, 0);
    big_case_strings(&b, nc, b.im.ncode);
    for (uint32_t i = 0; i < ns; i++) b.im.switches[i] = (bc_switch){ BC_F_TIER, 0, nc, b.im.ncode };
    b.im.nswitches = ns;
    big_route_end(&b);
    break;
  }
  case BIG_SWITCH_USES: {    /* cases: 25 bytes each; PUSH_B JF SWITCH: 24 */
    uint32_t nc = (uint32_t)(size / 2 / 25), m = (uint32_t)(size / 2 / 24);
    big_init(&b, nc, (size_t)nc * 9, 3 * (size_t)m + 4, 1, 1, 1, nc, 0, 0, 0, 0);
    big_route(&b, big_cstr(&b, "r"));
    for (uint32_t i = 0; i < m; i++) {
      big_op(&b, BC_OP_PUSH_B, 1, 0, 0);
      big_op(&b, BC_OP_JF, 0, 0, b.im.ncode + 2);
      big_op(&b, BC_OP_SWITCH, 0, 0, 0);
    }
    big_case_strings(&b, nc, b.im.ncode);
    b.im.switches[0] = (bc_switch){ BC_F_TIER, 0, nc, b.im.ncode };
    b.im.nswitches = 1;
    big_route_end(&b);
    break;
  }
  case BIG_LISTS: {          /* elements: 4 bytes each; lists: 12 */
    uint32_t ne = (uint32_t)(size / 8), nl = (uint32_t)(size / 24);
    big_init(&b, 0, 0, 7, 1, 1, 0, 0, nl, ne, 0, 0);
    for (uint32_t i = 0; i < nl; i++) b.im.lists[i] = (bc_list){ LANE_T_INT, 0, ne };
    b.im.nlists = nl;
    b.im.nlistelems = ne;    /* all KINT 0 */
    big_route(&b, big_cstr(&b, "r"));
    big_op(&b, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
    big_op(&b, BC_OP_IN_LIST, 0, 0, 0);
    big_op(&b, BC_OP_JF, 0, 0, b.im.ncode + 1);
    big_route_end(&b);
    break;
  }
  case BIG_POOL_USES: {      /* members: 4 bytes each; CAND: 8 */
    uint32_t nm = (uint32_t)(size / 8), nc = (uint32_t)(size / 16);
    big_init(&b, 0, 0, (size_t)nc + 4, 1, 1, 0, 0, 0, 0, 1, nm);
    b.im.pools[1] = (bc_pool){ 0, nm };   /* model 0 throughout: sorted */
    b.im.npools = 2;
    b.im.nmembers = nm;
    big_route(&b, big_cstr(&b, "r"));
    for (uint32_t i = 0; i < nc; i++) big_op(&b, BC_OP_CAND, BC_ORD_BEST, 0, 1);
    big_route_end(&b);
    break;
  }
  case BIG_CASE_STRINGS: {   /* two strings of size / 4; switches: 32 bytes */
    size_t len = size / 4;
    uint32_t ns = (uint32_t)(size / 2 / 32), sa, sb;
    big_init(&b, 2, 2 * len + 4, 5, 1, 1, ns, 2 * (size_t)ns, 0, 0, 0, 0);
    sa = big_str(&b, 'a', len, NULL);
    sb = big_str(&b, 'a', len, "b");
    big_route(&b, big_cstr(&b, "r"));
    big_op(&b, BC_OP_SWITCH, 0, 0, 0);
    for (uint32_t i = 0; i < ns; i++) {
      b.im.cases[2 * i] = (bc_case){ sa, b.im.ncode };
      b.im.cases[2 * i + 1] = (bc_case){ sb, b.im.ncode };
      b.im.switches[i] = (bc_switch){ BC_F_TIER, 2 * i, 2, b.im.ncode };
    }
    b.im.nswitches = ns;
    b.im.ncases = 2 * ns;
    big_route_end(&b);
    break;
  }
  default: {                 /* BIG_CONTAINS */
    size_t len = size / 3;
    uint32_t sa, sb;
    big_init(&b, 2, 3 * len + 4, 8, 1, 1, 0, 0, 0, 0, 0, 0);
    sa = big_str(&b, 'a', 2 * len, NULL);
    sb = big_str(&b, 'a', len, "b");
    big_route(&b, big_cstr(&b, "r"));
    big_op(&b, BC_OP_PUSH_S, 0, 0, sa);
    big_op(&b, BC_OP_PUSH_S, 0, 0, sb);
    big_op(&b, BC_OP_S_CONTAINS, 0, 0, 0);
    big_op(&b, BC_OP_JF, 0, 0, b.im.ncode + 1);
    big_route_end(&b);
    break;
  }
  }
  return big_encode(&b, n);
}

#endif /* LANE_TEST_BIG_H */
