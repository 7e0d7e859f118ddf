/*
 * spec.c -- what the loader works out once so that a selection does less
 * per member: which part of each member filter depends on the request and
 * the model's capabilities alone, so that one decision evaluates it once
 * per capability class, not once per member (vm.c, member_filter).
 *
 * The compiler writes a member filter as the conjunction of the route's
 * `require`s and the selection's `where`: conjuncts, each but the last
 * ending in a JF_KEEP to the region's FRET. A filter's *prefix* is its
 * longest run of whole conjuncts, from the start, whose only model reads
 * are M_CAP and whose jumps stay inside it or leave for the FRET with
 * false (a JF_KEEP: a jump there with true ends the whole filter); the rest
 * is its tail, which starts with an empty stack and no TRY open (FRET,
 * verified, needs one bool and none open on every edge). For a model m
 * the prefix's value depends only on the request, the budgets' spend
 * and m's capability bits in capmask. So:
 *
 *   VM_SPEC_WHOLE   the whole filter is such a prefix: its value is kept
 *                   per (capability class) for the decision;
 *   VM_SPEC_PREFIX  the prefix is copied into xcode as a region of its
 *                   own (its JF_KEEPs to the FRET go to the copy's FRET,
 *                   a fall-through ends in PUSH_B 1; FRET); its value is
 *                   kept per class and the tail runs per member;
 *   VM_SPEC_TAIL    no prefix, but the whole filter is a tail the VM runs
 *                   natively (tail_kind), as a PREFIX's tail may be.
 *
 * Equal prefixes (the same instructions, jumps relative to the start)
 * share one canonical id, so the route's `require`s, repeated in every
 * filter of the route, are evaluated once per class per decision, across
 * its selections. Steps are counted as if each member ran its filter (the
 * memo keeps each prefix run's count), so lane_decision.steps and the
 * verifier's worst case do not change. The analysis is linear in the
 * filters' code; when its scratch memory cannot be had, nothing is
 * specialised and decisions take the plain path.
 */
#include <stdlib.h>
#include <string.h>

#include "vm.h"

static int is_jump(uint8_t op) { return bc_ops[op].fmt == BC_FMT_JUMP; }

/* Normalized instruction word for hashing and comparing: jump targets
 * relative to the region's start, the FRET as ~0. */
static uint32_t norm_c(const bc_insn *in, uint32_t start, uint32_t fret) {
  if (!is_jump(in->op)) return in->c;
  return in->c == fret ? 0xffffffffu : in->c - start;
}

static uint64_t part_hash(const bc_insn *code, uint32_t start, uint32_t end, uint32_t fret,
                          int kind) {
  uint64_t h = BC_FNV_OFFSET ^ (uint64_t)kind;
  for (uint32_t pc = start; pc < end; pc++) {
    const bc_insn *in = &code[pc];
    uint32_t w[2] = {(uint32_t)in->op | (uint32_t)in->a << 8 | (uint32_t)in->b << 16,
                     norm_c(in, start, fret)};
    h = bc_fnv1a64(w, sizeof w, h);
  }
  return h ^ (uint64_t)(end - start) << 1;
}

static int part_equal(const bc_insn *code, uint32_t s1, uint32_t f1, uint32_t s2, uint32_t f2,
                      uint32_t len) {
  for (uint32_t k = 0; k < len; k++) {
    const bc_insn *a = &code[s1 + k], *b = &code[s2 + k];
    if (a->op != b->op || a->a != b->a || a->b != b->b || norm_c(a, s1, f1) != norm_c(b, s2, f2))
      return 0;
  }
  return 1;
}

/* The tails the VM runs natively (the `where` of a selection after its
 * requires): [M_COST, PUSH_D k, LT_D, FRET] is cost < KDBL[k] and
 * [M_P95, LOAD f, LE_D, FRET] is p95 <= req.f (a double field, as LE_D
 * verified). Each counts its 4 steps. */
static void tail_kind(const bc_image *im, vm_fspec *fs, uint32_t t, uint32_t fret) {
  const bc_insn *c = im->code;
  fs->tailk = VM_TAIL_CODE;
  if (fret - t != 3) return;
  if (c[t].op == BC_OP_M_COST && c[t + 1].op == BC_OP_PUSH_D && c[t + 2].op == BC_OP_LT_D) {
    fs->tailk = VM_TAIL_COST_LT;
    fs->targ = c[t + 1].c;
  } else if (c[t].op == BC_OP_M_P95 && c[t + 1].op == BC_OP_LOAD && c[t + 2].op == BC_OP_LE_D) {
    fs->tailk = VM_TAIL_P95_LE;
    fs->targ = c[t + 1].c;
  }
}

void bc_unspecialize(lane_program *p) {
  for (uint32_t f = 0; f < p->im.nfilters; f++) p->fspec[f].kind = VM_SPEC_NONE;
  free(p->plan);
  p->plan = NULL;
  free(p->fcode);
  p->fcode = NULL;
}

/* ---------------------------------------------------------------------
 * Fused compare-and-jumps (vm.h, BC_OP_X_*)
 *
 * A rule condition or a filter's conjunct is mostly LOAD f, a constant,
 * a comparison and a conditional jump: four dispatches for one test. The
 * instruction at the LOAD becomes one fused instruction that does all
 * four; the other three stay where they are, so a jump into the middle
 * of the sequence (none of the compiler's do, but a file may) still runs
 * them. Only sequences the verifier has typed are fused: the comparison
 * names its operand type, so the LOAD's field has that type. Explain
 * regions run the code as verified; traced decisions the fused code,
 * like any other (a trace records no instruction inside a sequence).
 * ------------------------------------------------------------------- */
static int fuse_jump(uint8_t op) {
  return op == BC_OP_JF ? VM_FJ_F : op == BC_OP_JF_KEEP ? VM_FJ_F_KEEP
       : op == BC_OP_JT_KEEP ? VM_FJ_T_KEEP : -1;
}

/* The comparison of op for constants of push (PUSH_S, PUSH_I, PUSH_D):
 * VM_FC_*, or -1. *fused: the fused op. */
static int fuse_cmp(uint8_t push, uint8_t op, uint8_t *fused) {
  static const uint8_t S[] = {BC_OP_EQ_S, BC_OP_NE_S};
  static const uint8_t I[] = {BC_OP_EQ_I, BC_OP_NE_I, BC_OP_LT_I, BC_OP_LE_I, BC_OP_GT_I, BC_OP_GE_I};
  static const uint8_t D[] = {BC_OP_EQ_D, BC_OP_NE_D, BC_OP_LT_D, BC_OP_LE_D, BC_OP_GT_D, BC_OP_GE_D};
  const uint8_t *t = push == BC_OP_PUSH_S ? S : push == BC_OP_PUSH_I ? I : push == BC_OP_PUSH_D ? D : NULL;
  int n = push == BC_OP_PUSH_S ? 2 : 6;
  *fused = push == BC_OP_PUSH_S ? BC_OP_X_SCMP : push == BC_OP_PUSH_I ? BC_OP_X_ICMP : BC_OP_X_DCMP;
  for (int k = 0; t && k < n; k++)
    if (t[k] == op) return k;
  return -1;
}

/* The fusable sequence starting at pc (before end): its length (2, 3 or
 * 4 instructions, its jump included) and, in *f, the fused instruction
 * that stands for it; 0 if there is none. */
static uint32_t fuse_at(const bc_insn *code, uint32_t pc, uint32_t end, bc_insn *f) {
  const bc_insn *in = &code[pc];
  int j, c;
  uint8_t op;
  if (in->op != BC_OP_LOAD || pc + 1 >= end) return 0;
  *f = *in;
  if ((j = fuse_jump(code[pc + 1].op)) >= 0) {                 /* LOAD f; Jx */
    f->a = (uint8_t)(j << 3);
    f->op = vm_x_op(BC_OP_X_LJ, f->a);
    return 2;
  }
  if (pc + 2 < end && code[pc + 1].op == BC_OP_NOT &&
      (j = fuse_jump(code[pc + 2].op)) >= 0) {                 /* LOAD f; NOT; Jx */
    f->a = (uint8_t)(j << 3 | VM_FJ_NOT);
    f->op = vm_x_op(BC_OP_X_LJ, f->a);
    return 3;
  }
  if (pc + 3 < end && (j = fuse_jump(code[pc + 3].op)) >= 0 &&
      (c = fuse_cmp(code[pc + 1].op, code[pc + 2].op, &op)) >= 0) {
    f->a = (uint8_t)(c | j << 3);                             /* LOAD f; PUSH k; CMP; Jx */
    f->op = vm_x_op(op, f->a);
    return 4;
  }
  return 0;
}

/* Fuses the sequences of code[0, n) in place. */
static void fuse(bc_insn *code, uint32_t n) {
  bc_insn f;
  for (uint32_t pc = 0; pc < n; pc++)
    if (fuse_at(code, pc, n, &f)) code[pc] = f;
}

/* A fused KEEP jump to a JF (`a && b` or `a || b` ending a condition:
 * the KEEP leaves the value the JF then pops) becomes F_KEEP_JF or
 * T_KEEP_JF, which go where the JF sends that value and count its step:
 * one dispatch fewer. Only in fcode, whose targets are its own indexes. */
static void thread_keeps(bc_insn *code, uint32_t n) {
  for (uint32_t pc = 0; pc < n; pc++) {
    bc_insn *f = &code[pc];
    if (f->op < BC_OP_X_ICMP || f->op >= VM_NOPS) continue;
    int fam = vm_x_family(f->op), j = VM_FJ(f->a);
    uint32_t t = code[pc + vm_x_span(f)].c;
    if ((j != VM_FJ_F_KEEP && j != VM_FJ_T_KEEP) || t >= n || code[t].op != BC_OP_JF) continue;
    f->a = (uint8_t)((f->a & ~(7u << 3)) | (unsigned)(j == VM_FJ_F_KEEP ? VM_FJ_F_KEEP_JF
                                                                         : VM_FJ_T_KEEP_JF) << 3);
    f->op = vm_x_op(fam, f->a);
  }
}

static bc_insn *fused_code(const bc_image *im) {
  bc_insn *c = malloc((size_t)im->ncode * sizeof *c + 1);
  if (!c) return NULL;
  memcpy(c, im->code, (size_t)im->ncode * sizeof *c);
  fuse(c, im->ncode);
  thread_keeps(c, im->ncode);
  return c;
}

/* ---------------------------------------------------------------------
 * Selections as set walks (vm.c, vm_cand_sets)
 *
 * Each pool becomes a set of its members and a set of those its filter
 * checks; `fits` becomes two tables, the distinct nonzero contexts and
 * max_outputs sorted ascending, each row the set of models whose limit is
 * 0 or at least that value. A decision looks its request's need up in
 * each (a binary search) once, and a selection then visits only the
 * members in pool & both rows, never computing `fits` per member. One
 * allocation; without it (or past VM_SET_WORDS words) selections take
 * the member-by-member path.
 * ------------------------------------------------------------------- */
static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* A model's limit for `fits`: its context (out 0) or its max_output. */
static int64_t limit_of(const bc_model *md, int out) { return out ? md->max_output : md->context; }

/* The distinct nonzero limits of the models into at (room for nm),
 * sorted; their count. */
static uint32_t distinct_sorted(int64_t *at, const bc_image *im, int out) {
  uint32_t k = 0;
  for (uint32_t m = 0; m < im->nmodels; m++)
    if (limit_of(&im->models[m], out) > 0) at[k++] = limit_of(&im->models[m], out);
  qsort(at, k, sizeof *at, cmp_i64);
  uint32_t d = 0;
  for (uint32_t i = 0; i < k; i++)
    if (!d || at[d - 1] != at[i]) at[d++] = at[i];
  return d;
}

/* Row k of t: models with limit 0 or >= at[k]; row n: limit 0 (a
 * negative limit cannot be: the verifier rejects it, and it reads as 0). */
static void fit_rows(vm_fit *t, const bc_image *im, int out, uint32_t w) {
  for (uint32_t m = 0; m < im->nmodels; m++) {
    uint64_t bit = 1ull << (m & 63);
    uint32_t word = m >> 6;
    int64_t lim = limit_of(&im->models[m], out);
    if (lim <= 0) {
      for (uint32_t k = 0; k <= t->n; k++) t->ok[(size_t)k * w + word] |= bit;
      continue;
    }
    /* rows 0..j where at[j] <= lim: at ascends, so up to the first above */
    for (uint32_t k = 0; k < t->n && t->at[k] <= lim; k++) t->ok[(size_t)k * w + word] |= bit;
  }
}

/* Filter f's part as conjuncts (vm_conj) into out: how many, or 0 when
 * it has another shape (it is then interpreted). */
static uint32_t conj_parse(const bc_image *im, const bc_filter *fl, const vm_fspec *fs,
                           vm_conj *out) {
  const bc_insn *c = im->code;
  uint32_t fret = fl->end - 1, whole = fs->kind == VM_SPEC_WHOLE;
  uint32_t end = whole ? fret : fs->tail, pc = fl->start, n = 0;
  int last = 0;   /* a WHOLE's last conjunct, whose value falls into the FRET */
  while (pc < end) {
    vm_conj k = {{0, 0, 0, 0}, 0, 0, 0xff, 0, 0};
    uint32_t t;
    if (n == VM_CONJ_MAX || last) return 0;
    if (c[pc].op == BC_OP_M_CAP) {                            /* cap */
      k.cap = (uint8_t)(c[pc].c & 31);
      pc++;
    } else if ((t = fuse_at(c, pc, end, &k.test)) != 0 && c[pc + t - 1].op != BC_OP_JF) {
      const bc_insn *j = &c[pc + t - 1];
      k.k = c[pc + 1].c;   /* the PUSH's constant, when there is one */
      k.ntest = (uint8_t)t;
      if (j->op == BC_OP_JF_KEEP && j->c == fret) {          /* test */
        out[n++] = k;
        pc += t;
        continue;
      }
      if (j->op != BC_OP_JT_KEEP || pc + t >= end || c[pc + t].op != BC_OP_M_CAP ||
          j->c != pc + t + 1)
        return 0;
      k.cap = (uint8_t)(c[pc + t].c & 31);                    /* test || cap */
      pc += t + 1;
    } else {
      return 0;
    }
    if (pc < end && c[pc].op == BC_OP_JF_KEEP && c[pc].c == fret) {
      k.jf = 1;
      pc++;
    } else if (whole && pc == fret) {
      last = 1;
    } else {
      return 0;
    }
    out[n++] = k;
  }
  /* a WHOLE ends on a conjunct that leaves its value; a PREFIX at its cut */
  return (whole ? last : pc == end) ? n : 0;
}

/* Filter f's conjuncts into out (room for VM_CONJ_MAX), when its part
 * has them: how many. */
static uint32_t filter_conj(const lane_program *p, uint32_t f, vm_conj *out) {
  const vm_fspec *fs = &p->fspec[f];
  if (fs->kind != VM_SPEC_WHOLE && fs->kind != VM_SPEC_PREFIX) return 0;
  return conj_parse(&p->im, &p->im.filters[f], fs, out);
}

/* A member and the price it is ordered by (plan_build's orders). */
typedef struct ord_key { double k; uint32_t m; } ord_key;

static int ord_cmp(const void *a, const void *b) {
  const ord_key *x = a, *y = b;
  if (x->k != y->k) return x->k < y->k ? -1 : 1;
  return x->m < y->m ? -1 : x->m > y->m;
}

/* Pool c's members into ord twice: by their lowest input price (the
 * plan's price tuple: input or long input), then by their lowest output
 * price, ties by model index. */
static void pool_orders(const bc_image *im, const vm_plan *pl, uint32_t c, uint32_t *ord,
                        ord_key *tmp) {
  const bc_pool *pool = &im->pools[c];
  for (int out = 0; out < 2; out++) {
    for (uint32_t k = 0; k < pool->count; k++) {
      uint32_t m = im->members[pool->first + k] & BC_MEMBER_MODEL;
      tmp[k] = (ord_key){ vm_price_floor(&pl->price[m], out), m };
    }
    if (pool->count > 1) qsort(tmp, pool->count, sizeof *tmp, ord_cmp);
    for (uint32_t k = 0; k < pool->count; k++) ord[(size_t)out * pool->count + k] = tmp[k].m;
  }
}

static vm_plan *plan_build(const lane_program *p) {
  const bc_image *im = &p->im;
  uint32_t nm = im->nmodels, nf = im->nfilters, w = (nm + 63) / 64;
  if (!nm || w > VM_SET_WORDS) return NULL;
  /* sizes first: the distinct limits decide the fit rows; the filters'
   * conjuncts are counted here and parsed again into the plan below */
  int64_t *tmp = malloc(2 * (size_t)nm * sizeof *tmp);
  if (!tmp) return NULL;
  uint32_t nctx = distinct_sorted(tmp, im, 0), nout = distinct_sorted(tmp + nm, im, 1);
  uint32_t nconj = 0;
  vm_conj scratch[VM_CONJ_MAX];
  for (uint32_t f = 0; f < nf; f++) nconj += filter_conj(p, f, scratch);
  size_t sets = 2 * (size_t)im->npools + nctx + 1 + nout + 1 + VM_CAPS, nmem = 0;
  for (uint32_t c = 0; c < im->npools; c++) nmem += im->pools[c].count;   /* pools may share */
  size_t bytes = sizeof(vm_plan) + (size_t)nm * sizeof(vm_price) + sets * w * sizeof(uint64_t) +
                 (size_t)(nctx + nout) * sizeof(int64_t) + (size_t)nconj * sizeof(vm_conj) +
                 (size_t)nf * sizeof(uint32_t) + (2 * nmem + im->npools) *
                 sizeof(uint32_t) + nf + im->npools;
  unsigned char *blk = calloc(1, bytes);
  if (!blk) { free(tmp); return NULL; }
  vm_plan *pl = (vm_plan *)blk;
  pl->price = (vm_price *)(pl + 1);
  uint64_t *at = (uint64_t *)(pl->price + nm);
  pl->words = w;
  for (uint32_t m = 0; m < nm; m++) {
    const bc_model *md = &im->models[m];
    vm_price *pr = &pl->price[m];
    pr->la = md->long_above > 0 ? md->long_above : INT64_MAX;
    pr->in = md->input;
    pr->out = md->output;
    pr->lin = md->long_input > 0 ? md->long_input : md->input;
    pr->lout = md->long_output > 0 ? md->long_output : md->output;
  }
  pl->pool = at;  at += (size_t)im->npools * w;
  pl->check = at; at += (size_t)im->npools * w;
  pl->ctx.ok = at; at += (size_t)(nctx + 1) * w;
  pl->out.ok = at; at += (size_t)(nout + 1) * w;
  pl->caps = at;  at += (size_t)VM_CAPS * w;
  for (uint32_t m = 0; m < nm; m++)
    for (uint32_t c = 0; c < VM_CAPS; c++)
      if (im->models[m].caps >> c & 1) pl->caps[(size_t)c * w + (m >> 6)] |= 1ull << (m & 63);
  pl->ctx.at = (int64_t *)at;
  pl->out.at = pl->ctx.at + nctx;
  pl->conj = (vm_conj *)(pl->out.at + nout);
  pl->cfirst = (uint32_t *)(pl->conj + nconj);
  pl->ord = pl->cfirst + nf;
  pl->ordfirst = pl->ord + 2 * nmem;
  pl->cn = (uint8_t *)(pl->ordfirst + im->npools);
  pl->ascending = pl->cn + nf;
  for (uint32_t f = 0, at_c = 0; f < nf; f++) {
    pl->cfirst[f] = at_c;
    pl->cn[f] = (uint8_t)filter_conj(p, f, scratch);
    memcpy(pl->conj + at_c, scratch, pl->cn[f] * sizeof *scratch);
    at_c += pl->cn[f];
  }
  pl->ctx.n = nctx;
  pl->out.n = nout;
  memcpy(pl->ctx.at, tmp, nctx * sizeof *tmp);
  memcpy(pl->out.at, tmp + nm, nout * sizeof *tmp);
  free(tmp);
  fit_rows(&pl->ctx, im, 0, w);
  fit_rows(&pl->out, im, 1, w);
  for (uint32_t c = 0; c < im->npools; c++) {
    const bc_pool *pool = &im->pools[c];
    uint64_t *set = pl->pool + (size_t)c * w, *chk = pl->check + (size_t)c * w;
    int asc = 1;
    for (uint32_t k = 0; k < pool->count; k++) {
      uint32_t mem = im->members[pool->first + k], m = mem & BC_MEMBER_MODEL;
      if (k && m <= (im->members[pool->first + k - 1] & BC_MEMBER_MODEL)) asc = 0;
      set[m >> 6] |= 1ull << (m & 63);
      if (mem & BC_MEMBER_CHECK) chk[m >> 6] |= 1ull << (m & 63);
    }
    pl->ascending[c] = (uint8_t)asc;
  }
  /* cheapest()'s orders, for the pools walked by their sets */
  uint32_t most = 0, at_o = 0;
  for (uint32_t c = 0; c < im->npools; c++)
    if (im->pools[c].count > most) most = im->pools[c].count;
  ord_key *keys = most ? malloc((size_t)most * sizeof *keys) : NULL;
  if (most && !keys) { free(blk); return NULL; }
  for (uint32_t c = 0; c < im->npools; c++) {
    pl->ordfirst[c] = at_o;
    if (pl->ascending[c] && im->pools[c].count) pool_orders(im, pl, c, pl->ord + at_o, keys);
    at_o += 2 * im->pools[c].count;
  }
  free(keys);
  return pl;
}

static void spec_filters(lane_program *p) {
  const bc_image *im = &p->im;
  uint32_t nf = im->nfilters, nx = 0;
  if (!nf) return;
  uint32_t cap = 16;
  while (cap < 2 * nf) cap <<= 1;
  /* canonical parts: hash -> representative filter, in an open table */
  struct slot { uint64_t h; uint32_t f; uint32_t canon; } *tab = calloc(cap, sizeof *tab);
  if (!tab) return;
  uint32_t ncanon = 0;
  for (uint32_t f = 0; f < nf; f++) {
    const bc_filter *fl = &im->filters[f];
    uint32_t s = fl->start, fret = fl->end - 1;
    if (im->code[fret].op != BC_OP_FRET) continue;   /* an explain region */
    uint32_t capmask = 0, maxjump = 0, cut = 0, cutmask = 0;
    int whole = 1, nocut = 0;
    for (uint32_t pc = s; pc < fret; pc++) {
      const bc_insn *in = &im->code[pc];
      if (bc_ops[in->op].region == 'F') {
        if (in->op != BC_OP_M_CAP) { whole = 0; break; }
        capmask |= 1u << (in->c & 31);
      }
      if (is_jump(in->op) && in->c != fret && in->c > maxjump) maxjump = in->c;
      /* Only a JF_KEEP reaches the FRET from a conjunct (with false): any
       * other jump there ends the whole filter, true, so no prefix that
       * holds it is one (`req.images == 0 || vision && cost < $x`). */
      if (is_jump(in->op) && in->c == fret && in->op != BC_OP_JF_KEEP) nocut = 1;
      /* a conjunct ends here if nothing before jumps past its end */
      if (in->op == BC_OP_JF_KEEP && in->c == fret && maxjump <= pc + 1 && !nocut) {
        cut = pc + 1;
        cutmask = capmask;
      }
    }
    vm_fspec *fs = &p->fspec[f];
    int kind = whole ? VM_SPEC_WHOLE : cut ? VM_SPEC_PREFIX : VM_SPEC_NONE;
    if (!whole) tail_kind(im, fs, cut ? cut : s, fret);
    if (kind == VM_SPEC_NONE) {
      if (fs->tailk != VM_TAIL_CODE) {
        fs->tail = s;
        fs->kind = VM_SPEC_TAIL;
      }
      continue;
    }
    uint32_t end = kind == VM_SPEC_WHOLE ? fret + 1 : cut;
    uint64_t h = part_hash(im->code, s, end, fret, kind);
    uint32_t i = (uint32_t)h & (cap - 1);
    for (;; i = (i + 1) & (cap - 1)) {
      struct slot *t = &tab[i];
      if (!t->h) {   /* a new part (hash 0 is moved off below) */
        t->h = h ? h : 1;
        t->f = f;
        t->canon = ncanon++;
        fs->canon = t->canon;
        if (kind == VM_SPEC_PREFIX) {   /* copy it into xcode */
          fs->xstart = nx;
          uint32_t len = cut - s, xfret = nx + len + 1;
          for (uint32_t k = 0; k < len; k++) {
            bc_insn in = im->code[s + k];
            if (is_jump(in.op))
              in.c = in.c == fret ? xfret : in.c == cut ? nx + len : nx + (in.c - s);
            p->xcode[nx + k] = in;
          }
          p->xcode[nx + len] = (bc_insn){BC_OP_PUSH_B, 1, 0, 0};
          p->xcode[nx + len + 1] = (bc_insn){BC_OP_FRET, 0, 0, 0};
          fuse(p->xcode + nx, len + 2);
          nx += len + 2;
        }
        break;
      }
      if (t->h == (h ? h : 1)) {
        const bc_filter *rf = &im->filters[t->f];
        const vm_fspec *rs = &p->fspec[t->f];
        uint32_t rend = rs->kind == VM_SPEC_WHOLE ? rf->end : rs->tail;
        if (rs->kind == kind && rend - rf->start == end - s &&
            part_equal(im->code, rf->start, rf->end - 1, s, fret, end - s)) {
          fs->canon = t->canon;
          fs->xstart = rs->xstart;
          break;
        }
      }
    }
    fs->capmask = kind == VM_SPEC_WHOLE ? capmask : cutmask;
    fs->tail = kind == VM_SPEC_WHOLE ? 0 : cut;
    fs->kind = (uint8_t)kind;
  }
  free(tab);
}

void bc_specialize(lane_program *p) {
  bc_unspecialize(p);
  spec_filters(p);
  p->plan = plan_build(p);
  p->fcode = fused_code(&p->im);
}
