/*
 * asm.h -- a tiny bytecode assembler for the VM's tests and for gen.c.
 *
 * Builds a bc_image by hand: strings, models, pools, filters, routes and
 * rules, then encodes it with bc_encode. Header-only, fixed capacities,
 * aborts on misuse (it is test code, not liblane).
 *
 *   la *a = la_new();                       the 12 standard fields are added
 *   uint32_t m = la_model(a, "acme.small", 1, 2, 8000, 1000, 0.5, 300, 0);
 *   uint32_t pool = la_pool(a, 1, (uint32_t[]){ m });
 *   la_route(a, "chat", 1);
 *   la_rule(a, "otherwise");                emits RULE k, links the last rule
 *   la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, 0, pool);
 *   la_op(a, BC_OP_ENDRULE, 0, 0, 0);
 *   la_route_end(a);                        emits NOMATCH
 */
#ifndef LANE_TEST_ASM_H
#define LANE_TEST_ASM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc.h"
#include "lane.h"

#define LA_MAXCODE 200000
#define LA_MAXMEM  200000

typedef struct la {
  bc_image  im;                       /* the image being built */
  bc_str    str[1024];                /* strings */
  int64_t   kint[256];                /* int constants */
  double    kdbl[256];                /* double constants */
  uint32_t  caps[BC_MAX_CAPS];        /* capability names */
  bc_model  models[LANE_MAX_MODELS];  /* models */
  bc_field  fields[LANE_MAX_FIELDS];  /* request fields */
  bc_pool   pools[64];                /* pools */
  uint32_t  members[LA_MAXMEM];       /* pool members */
  bc_filter filters[64];              /* filter regions */
  bc_route  routes[64];               /* routes */
  bc_rule   rules[256];               /* rules */
  bc_list   lists[32];                /* lists */
  uint32_t  listelems[256];           /* list elements */
  bc_budget budgets[8];               /* budgets */
  bc_xnode  xnodes[64];               /* explain nodes */
  uint32_t  xrules[256];              /* explain: per rule */
  bc_xsel   xsels[16];                /* explain: per CAND */
  uint32_t  xlist[64];                /* explain: conditions of the CANDs */
  int64_t   route_out[64];            /* per route: output_estimate */
  bc_insn   code[LA_MAXCODE];         /* instructions */
  uint32_t  lines[LA_MAXCODE];        /* line per instruction */
  char      text[16384];              /* bytes of strings made here */
  size_t    ntext;                    /* bytes of text used */
  uint32_t  line;                     /* line given to new instructions */
  int       last_rule;                /* rule whose next is pending, or -1 */
} la;

static inline void la_die(const char *what) {
  fprintf(stderr, "asm: %s\n", what);
  exit(99);
}

static inline uint32_t la_str(la *a, const char *s) {
  for (uint32_t i = 0; i < a->im.nstr; i++)
    if (a->str[i].len == strlen(s) && memcmp(a->str[i].p, s, a->str[i].len) == 0) return i;
  if (a->im.nstr >= 1024) la_die("too many strings");
  a->str[a->im.nstr].p = s;
  a->str[a->im.nstr].len = (uint32_t)strlen(s);
  return a->im.nstr++;
}

static inline uint32_t la_field(la *a, const char *name, int unit) {
  static const int types[] = { 0, LANE_T_INT, LANE_T_UINT, LANE_T_DOUBLE, LANE_T_BOOL,
                               LANE_T_STRING, LANE_T_INT, LANE_T_DOUBLE, LANE_T_DOUBLE,
                               LANE_T_DOUBLE, LANE_T_DOUBLE, LANE_T_INT };   /* by bc_unit */
  if (unit < 0 || unit >= (int)(sizeof types / sizeof *types)) la_die("unknown unit");
  bc_field *f = &a->fields[a->im.nfields];
  f->name = la_str(a, name);
  f->unit = (uint8_t)unit;
  f->type = (uint8_t)types[unit];
  return a->im.nfields++;
}

static inline la *la_new(void) {
  la *a = calloc(1, sizeof *a);
  if (!a) la_die("out of memory");
  a->im.str = a->str; a->im.kint = a->kint; a->im.kdbl = a->kdbl;
  a->im.caps = a->caps; a->im.models = a->models; a->im.fields = a->fields;
  a->im.pools = a->pools; a->im.members = a->members; a->im.filters = a->filters;
  a->im.routes = a->routes; a->im.rules = a->rules; a->im.lists = a->lists;
  a->im.listelems = a->listelems; a->im.budgets = a->budgets;
  a->im.xnodes = a->xnodes; a->im.xrules = a->xrules; a->im.xsels = a->xsels;
  a->im.xlist = a->xlist; a->im.route_out = a->route_out;
  a->im.code = a->code; a->im.lines = a->lines;
  a->last_rule = -1;
  a->line = 1;
#define LA_STD(id, name, unit) la_field(a, name, unit);
  BC_STD_FIELDS(LA_STD)
#undef LA_STD
  return a;
}

static inline uint32_t la_kint(la *a, int64_t v) {
  for (uint32_t i = 0; i < a->im.nkint; i++) if (a->kint[i] == v) return i;
  a->kint[a->im.nkint] = v;
  return a->im.nkint++;
}

static inline uint32_t la_kdbl(la *a, double v) {
  for (uint32_t i = 0; i < a->im.nkdbl; i++)
    if (memcmp(&a->kdbl[i], &v, sizeof v) == 0) return i;
  a->kdbl[a->im.nkdbl] = v;
  return a->im.nkdbl++;
}

static inline uint32_t la_cap(la *a, const char *name) {
  a->caps[a->im.ncaps] = la_str(a, name);
  return a->im.ncaps++;
}

/* A model "provider.id"; prices in $ per million tokens. */
static inline uint32_t la_model(la *a, const char *name, double in_mtok, double out_mtok,
                         int64_t context, int64_t max_output, double quality,
                         double p95, uint32_t caps) {
  bc_model *m = &a->models[a->im.nmodels];
  const char *dot = strchr(name, '.');
  size_t plen = dot ? (size_t)(dot - name) : strlen(name);
  char *prov = a->text + a->ntext;
  if (a->ntext + plen + 1 > sizeof a->text) la_die("too much text");
  memcpy(prov, name, plen);
  prov[plen] = 0;
  a->ntext += plen + 1;
  m->name = la_str(a, name);
  m->provider = la_str(a, prov);
  m->id = la_str(a, dot ? dot + 1 : name);
  m->region = la_str(a, "");
  m->deprecated = la_str(a, "");
  m->input = in_mtok / 1e6;
  m->output = out_mtok / 1e6;
  m->cached_input = in_mtok / 1e7;
  m->context = context;
  m->max_output = max_output;
  m->quality = quality;
  m->p50 = p95 / 2;
  m->p95 = p95;
  m->caps = caps;
  m->line = a->line;
  return a->im.nmodels++;
}

static inline uint32_t la_pool(la *a, uint32_t n, const uint32_t *members) {
  bc_pool *p = &a->pools[a->im.npools];
  p->first = a->im.nmembers;
  p->count = n;
  if (a->im.nmembers + n > LA_MAXMEM) la_die("too many members");
  memcpy(a->members + a->im.nmembers, members, n * sizeof *members);
  a->im.nmembers += n;
  return a->im.npools++;
}

static inline uint32_t la_list_int(la *a, uint32_t n, const int64_t *v) {
  bc_list *l = &a->lists[a->im.nlists];
  l->type = LANE_T_INT;
  l->first = a->im.nlistelems;
  l->count = n;
  for (uint32_t i = 0; i < n; i++) a->listelems[a->im.nlistelems++] = la_kint(a, v[i]);
  return a->im.nlists++;
}

static inline uint32_t la_list_str(la *a, uint32_t n, const char *const *v) {
  bc_list *l = &a->lists[a->im.nlists];
  l->type = LANE_T_STRING;
  l->first = a->im.nlistelems;
  l->count = n;
  for (uint32_t i = 0; i < n; i++) a->listelems[a->im.nlistelems++] = la_str(a, v[i]);
  return a->im.nlists++;
}

static inline uint32_t la_budget(la *a, const char *name, uint32_t key, double limit) {
  bc_budget *b = &a->budgets[a->im.nbudgets];
  b->name = la_str(a, name);
  b->key_field = key;
  b->limit = limit;
  b->window_ms = 86400000.0;
  return a->im.nbudgets++;
}

static inline uint32_t la_op(la *a, int op, int oa, int ob, uint32_t oc) {
  uint32_t pc = a->im.ncode;
  if (pc >= LA_MAXCODE) la_die("too much code");
  a->code[pc].op = (uint8_t)op;
  a->code[pc].a = (uint8_t)oa;
  a->code[pc].b = (uint16_t)ob;
  a->code[pc].c = oc;
  a->lines[pc] = a->line;
  a->im.nlines = ++a->im.ncode;   /* a line per instruction */
  return pc;
}

/* Points the jump at pc to the next instruction to be emitted. */
static inline void la_patch(la *a, uint32_t pc) { a->code[pc].c = a->im.ncode; }

/* Ends a rule whose condition left a bool: JF past the rule, CAND of pool
 * (order, filter), ENDRULE. Returns the JF's pc. */
static inline uint32_t la_then_cand(la *a, int order, int filter, uint32_t pool) {
  uint32_t jf = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, order, filter, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, jf);
  return jf;
}

static inline uint32_t la_filter(la *a) {
  a->filters[a->im.nfilters].start = a->im.ncode;
  return a->im.nfilters++;
}

static inline void la_filter_end(la *a) { a->filters[a->im.nfilters - 1].end = a->im.ncode; }

/* An explain node (bc.h, "Explanations"). */
static inline uint32_t la_xnode(la *a, int kind, int unit, const char *text, uint32_t region,
                                uint32_t xa, uint32_t xb) {
  bc_xnode *x = &a->xnodes[a->im.nxnodes];
  if (a->im.nxnodes >= 64) la_die("too many explain nodes");
  x->kind = (uint8_t)kind;
  x->unit = (uint8_t)unit;
  x->text = la_str(a, text);
  x->region = region;
  x->a = xa;
  x->b = xb;
  return a->im.nxnodes++;
}

static inline uint32_t la_route(la *a, const char *name, uint32_t fallbacks) {
  bc_route *r = &a->routes[a->im.nroutes];
  if (a->im.nroutes >= 64) la_die("too many routes");
  r->name = la_str(a, name);
  r->start = a->im.ncode;
  r->fallbacks = fallbacks;
  r->first_rule = a->im.nrules;
  a->last_rule = -1;
  return a->im.nroutes++;
}

static inline uint32_t la_rule(la *a, const char *name) {
  bc_route *r = &a->routes[a->im.nroutes - 1];
  uint32_t pc;
  if (a->last_rule >= 0) a->rules[a->last_rule].next = a->im.ncode;
  pc = la_op(a, BC_OP_RULE, 0, 0, r->nrules);
  a->rules[a->im.nrules].name = la_str(a, name);
  a->rules[a->im.nrules].line = a->line;
  a->last_rule = (int)a->im.nrules++;
  r->nrules++;
  return pc;
}

static inline void la_route_end(la *a) {
  bc_route *r = &a->routes[a->im.nroutes - 1];
  uint32_t pc = la_op(a, BC_OP_NOMATCH, 0, 0, 0);
  if (a->last_rule >= 0) a->rules[a->last_rule].next = pc;
  a->last_rule = -1;
  r->end = a->im.ncode;
}

static inline unsigned char *la_bytes(const la *a, size_t *n) {
  unsigned char *out;
  if (bc_encode(&a->im, &out, n) != 0) la_die("bc_encode failed");
  return out;
}

static inline lane_program *la_load(const la *a, lane_error *err) {
  size_t n;
  unsigned char *b = la_bytes(a, &n);
  lane_program *p = lane_load(b, n, err);
  free(b);
  return p;
}

#endif /* LANE_TEST_ASM_H */
