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
}

void bc_specialize(lane_program *p) {
  const bc_image *im = &p->im;
  uint32_t nf = im->nfilters, nx = 0;
  bc_unspecialize(p);
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
