/*
 * bc.c -- the opcode table, the .lanec encoder and the hashes of the format.
 *
 * bc_ops is the one expansion of BC_OPCODES that everything else reads: the
 * verifier's operand and stack checks, the worst-case weights and the
 * disassembler. bc_encode writes a file the loader accepts byte for byte;
 * the compiler's emitter and the tests both go through it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "bc.h"
#include "lane.h"
#include "vm.h"

const bc_opinfo bc_ops[BC_NOPS] = {
#define BC_OP_INFO(name, fmt, in, out, w, fail, reg, doc) \
  { #name, BC_FMT_##fmt, in, out, w, fail, (#reg)[0], doc },
  BC_OPCODES(BC_OP_INFO)
#undef BC_OP_INFO
};

/* Units of properties that have none in the file. */
#define BC_U_NONE 0
#define BC_U_TAGS 0

const bc_mpinfo bc_mprops[BC_NMPROPS] = {
#define BC_MP_INFO(id, name, member, unit, mt, off, kind, op, group, doc) \
  { #id, name, #member, BC_U_##unit, (#mt)[0], BC_MPK_##kind, group, off, \
    0 BC_MP_IN_RECORD(kind)(+ offsetof(bc_model, member)), BC_OP_##op, doc },
  BC_MPROPS(BC_MP_INFO)
#undef BC_MP_INFO
};

/* The rows M_FIELD reads come first; every stored row fits the record
 * and together they fill it (t_bc.c checks that none overlap). */
#define BC_MP_CHECK(id, name, member, unit, mt, off, kind, op, group, doc) \
  _Static_assert((int)BC_OP_##op != (int)BC_OP_M_FIELD || (int)BC_MP_##id < (int)BC_NMFIELDS, \
                 #id ": M_FIELD rows come first"); \
  BC_MP_IN_RECORD(kind)(_Static_assert(off >= 0 && \
    off + sizeof(BC_MP_CTYPE_##mt) <= BC_RECORD_MODELS, #id ": inside the record");)
BC_MPROPS(BC_MP_CHECK)
#undef BC_MP_CHECK
_Static_assert(0
#define BC_MP_SIZE(id, name, member, unit, mt, off, kind, op, group, doc) \
  BC_MP_IN_RECORD(kind)(+ sizeof(BC_MP_CTYPE_##mt))
  BC_MPROPS(BC_MP_SIZE)
#undef BC_MP_SIZE
  == BC_RECORD_MODELS, "the stored rows fill the model record");
_Static_assert(sizeof(bc_model) == BC_RECORD_MODELS, "bc_model has no padding");

static const struct { const char *name; uint32_t rec; } sections[BC_SEC_MAX] = {
#define BC_SEC_INFO(name, id, rec) [id] = { #name, rec },
  BC_SECTIONS(BC_SEC_INFO)
#undef BC_SEC_INFO
};

const char *bc_section_name(uint32_t id) {
  return id < BC_SEC_MAX ? sections[id].name : NULL;
}

uint32_t bc_section_record(uint32_t id) {
  return id < BC_SEC_MAX ? sections[id].rec : 0;
}

const char *bc_unit_name(uint32_t unit) {
  static const char *const names[] = {
    "?", "int", "uint", "double", "bool", "string",
    "tokens", "money", "duration", "fraction", "price",
  };
  return unit < sizeof names / sizeof names[0] ? names[unit] : "?";
}

int bc_unit_type(uint32_t unit) {
  switch (unit) {
  case BC_U_INT: case BC_U_TOKENS: return LANE_T_INT;
  case BC_U_UINT: return LANE_T_UINT;
  case BC_U_DOUBLE: case BC_U_MONEY: case BC_U_DURATION:
  case BC_U_FRACTION: case BC_U_PRICE: return LANE_T_DOUBLE;
  case BC_U_BOOL: return LANE_T_BOOL;
  case BC_U_STRING: return LANE_T_STRING;
  default: return 0;
  }
}

int bc_op_can_fail(uint32_t op) { return op < BC_NOPS && bc_ops[op].can_fail; }

/* ---------------------------------------------------------------------
 * Hashes
 * ------------------------------------------------------------------- */
uint64_t bc_fnv1a64(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t bc_checksum(const unsigned char *file, size_t n) {
  static const unsigned char zero[8];
  uint64_t h = BC_FNV_OFFSET;
  if (n <= 24) return bc_fnv1a64(file, n, h);
  h = bc_fnv1a64(file, 24, h);
  h = bc_fnv1a64(zero, n < 32 ? n - 24 : 8, h);
  return n > 32 ? bc_fnv1a64(file + 32, n - 32, h) : h;
}

uint64_t bc_splitmix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---------------------------------------------------------------------
 * Encoder
 * ------------------------------------------------------------------- */
static unsigned char *put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
  return p + 2;
}

static unsigned char *put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
  return p + 4;
}

static unsigned char *put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
  return p + 8;
}

static unsigned char *putd(unsigned char *p, double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return put64(p, u);
}

/* Number of records section id will hold for im. */
static uint64_t sec_count(const bc_image *im, uint32_t id) {
  uint64_t n = 0;
  switch (id) {
  case BC_SEC_STRIDX: return im->nstr;
  case BC_SEC_STRDATA:
    for (uint32_t i = 0; i < im->nstr; i++) n += (uint64_t)im->str[i].len + 1;
    return n;
  case BC_SEC_KINT: return im->nkint;
  case BC_SEC_KDBL: return im->nkdbl;
  case BC_SEC_CAPS: return im->ncaps;
  case BC_SEC_MODELS: return im->nmodels;
  case BC_SEC_FIELDS: return im->nfields;
  case BC_SEC_POOLS: return im->npools;
  case BC_SEC_MEMBERS: return im->nmembers;
  case BC_SEC_FILTERS: return im->nfilters;
  case BC_SEC_ROUTES: return im->nroutes;
  case BC_SEC_RULES: return im->nrules;
  case BC_SEC_LISTS: return im->nlists;
  case BC_SEC_LISTELEMS: return im->nlistelems;
  case BC_SEC_BUDGETS: return im->nbudgets;
  case BC_SEC_CODE: return im->ncode;
  case BC_SEC_LINES: return im->lines ? im->ncode : 0;
  case BC_SEC_SWITCHES: return im->nswitches;
  case BC_SEC_CASES: return im->ncases;
  default: return 0;
  }
}

static unsigned char *put_model(unsigned char *p, const bc_model *m) {
#define PUT_D(q, v) putd(q, v)
#define PUT_I(q, v) put64(q, (uint64_t)(v))
#define PUT_S(q, v) put32(q, v)
#define PUT_U(q, v) put32(q, v)
#define BC_MP_PUT(id, name, member, unit, mt, off, kind, op, group, doc) \
  BC_MP_IN_RECORD(kind)(PUT_##mt(p + (off), m->member);)
  BC_MPROPS(BC_MP_PUT)
#undef BC_MP_PUT
  return p + BC_RECORD_MODELS;
}

/* Writes the body of section id at p; returns the end. */
static unsigned char *sec_write(const bc_image *im, uint32_t id, unsigned char *p) {
  uint32_t i, off = 0;
  switch (id) {
  case BC_SEC_STRIDX:
    for (i = 0; i < im->nstr; i++) {
      p = put32(p, off); p = put32(p, im->str[i].len);
      off += im->str[i].len + 1;
    }
    break;
  case BC_SEC_STRDATA:
    for (i = 0; i < im->nstr; i++) {
      if (im->str[i].len) memcpy(p, im->str[i].p, im->str[i].len);
      p += im->str[i].len;
      *p++ = 0;
    }
    break;
  case BC_SEC_KINT:
    for (i = 0; i < im->nkint; i++) p = put64(p, (uint64_t)im->kint[i]);
    break;
  case BC_SEC_KDBL:
    for (i = 0; i < im->nkdbl; i++) p = putd(p, im->kdbl[i]);
    break;
  case BC_SEC_CAPS:
    for (i = 0; i < im->ncaps; i++) p = put32(p, im->caps[i]);
    break;
  case BC_SEC_MODELS:
    for (i = 0; i < im->nmodels; i++) p = put_model(p, &im->models[i]);
    break;
  case BC_SEC_FIELDS:
    for (i = 0; i < im->nfields; i++) {
      p = put32(p, im->fields[i].name);
      *p++ = im->fields[i].type; *p++ = im->fields[i].unit;
      p = put16(p, 0);
    }
    break;
  case BC_SEC_POOLS:
    for (i = 0; i < im->npools; i++) {
      p = put32(p, im->pools[i].first); p = put32(p, im->pools[i].count);
    }
    break;
  case BC_SEC_MEMBERS:
    for (i = 0; i < im->nmembers; i++) p = put32(p, im->members[i]);
    break;
  case BC_SEC_FILTERS:
    for (i = 0; i < im->nfilters; i++) {
      p = put32(p, im->filters[i].start); p = put32(p, im->filters[i].end);
    }
    break;
  case BC_SEC_ROUTES:
    for (i = 0; i < im->nroutes; i++) {
      const bc_route *r = &im->routes[i];
      p = put32(p, r->name); p = put32(p, r->start); p = put32(p, r->end);
      p = put32(p, r->fallbacks); p = put32(p, r->first_rule);
      p = put32(p, r->nrules);
    }
    break;
  case BC_SEC_RULES:
    for (i = 0; i < im->nrules; i++) {
      p = put32(p, im->rules[i].name); p = put32(p, im->rules[i].line);
      p = put32(p, im->rules[i].next);
    }
    break;
  case BC_SEC_LISTS:
    for (i = 0; i < im->nlists; i++) {
      p = put32(p, im->lists[i].type); p = put32(p, im->lists[i].first);
      p = put32(p, im->lists[i].count);
    }
    break;
  case BC_SEC_LISTELEMS:
    for (i = 0; i < im->nlistelems; i++) p = put32(p, im->listelems[i]);
    break;
  case BC_SEC_BUDGETS:
    for (i = 0; i < im->nbudgets; i++) {
      p = put32(p, im->budgets[i].name); p = put32(p, im->budgets[i].key_field);
      p = putd(p, im->budgets[i].limit); p = putd(p, im->budgets[i].window_ms);
      p = put32(p, im->budgets[i].flags); p = put32(p, im->budgets[i].reserved);
    }
    break;
  case BC_SEC_SWITCHES:
    for (i = 0; i < im->nswitches; i++) {
      p = put32(p, im->switches[i].field); p = put32(p, im->switches[i].first);
      p = put32(p, im->switches[i].count); p = put32(p, im->switches[i].otherwise);
    }
    break;
  case BC_SEC_CASES:
    for (i = 0; i < im->ncases; i++) {
      p = put32(p, im->cases[i].str); p = put32(p, im->cases[i].target);
    }
    break;
  case BC_SEC_CODE:
    for (i = 0; i < im->ncode; i++) {
      *p++ = im->code[i].op; *p++ = im->code[i].a;
      p = put16(p, im->code[i].b); p = put32(p, im->code[i].c);
    }
    break;
  case BC_SEC_LINES:
    for (i = 0; im->lines && i < im->ncode; i++) p = put32(p, im->lines[i]);
    break;
  default:
    break;
  }
  return p;
}

/* Sections are written in id order, each body 8-byte aligned (the padding is
 * zero and belongs to no section). */
int bc_encode(const bc_image *im, unsigned char **out, size_t *n) {
  uint64_t size[BC_SEC_MAX] = {0}, total;
  uint32_t nsec = 0, id, off[BC_SEC_MAX] = {0};
  unsigned char *buf, *p;

  *out = NULL;
  *n = 0;
  for (id = 1; id < BC_SEC_MAX; id++) {
    size[id] = sec_count(im, id) * bc_section_record(id);
    if (size[id]) nsec++;
  }
  total = BC_HEADER_SIZE + (uint64_t)BC_SECTION_SIZE * nsec;
  for (id = 1; id < BC_SEC_MAX; id++) {
    if (!size[id]) continue;
    total = (total + 7) & ~(uint64_t)7;
    if (total > UINT32_MAX) return -1;
    off[id] = (uint32_t)total;
    total += size[id];
  }
  if (total > UINT32_MAX) return -1;
  buf = calloc(1, (size_t)total);
  if (!buf) return -1;
  memcpy(buf, BC_MAGIC, 8);
  put16(buf + 8, LANE_FORMAT_VERSION);
  put16(buf + 10, im->flags);
  put32(buf + 12, nsec);
  put32(buf + 16, (uint32_t)total);
  p = buf + BC_HEADER_SIZE;
  for (id = 1; id < BC_SEC_MAX; id++) {
    if (!size[id]) continue;
    p = put32(p, id); p = put32(p, off[id]); p = put32(p, (uint32_t)size[id]);
  }
  for (id = 1; id < BC_SEC_MAX; id++)
    if (size[id]) sec_write(im, id, buf + off[id]);
  put64(buf + 24, bc_checksum(buf, (size_t)total));
  *out = buf;
  *n = (size_t)total;
  return 0;
}
