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
#define BC_OP_INFO(name, fmt, in, out, w, fail, reg, flow, empty, doc) \
  { #name, BC_FMT_##fmt, in, out, w, fail, (#reg)[0], BC_FLOW_##flow, empty, doc },
  BC_OPCODES(BC_OP_INFO)
#undef BC_OP_INFO
};

const bc_fmtinfo bc_fmts[BC_NFMTS] = {
#define BC_FMT_INFO(name, uses, doc) { #name, BC_USES_##uses, doc },
  BC_FORMATS(BC_FMT_INFO)
#undef BC_FMT_INFO
};

/* Units of properties that have none in the file. */
#define BC_U_NONE 0
#define BC_U_TAGS 0

const bc_mpinfo bc_mprops[BC_NMPROPS] = {
#define BC_MP_INFO(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  { #id, name, #member, BC_U_##unit, (#mt)[0], BC_MPK_##kind, group, off, \
    0 BC_MP_IN_RECORD(kind)(+ offsetof(bc_model, member)), BC_OP_##op, mfa, doc },
  BC_MPROPS(BC_MP_INFO)
#undef BC_MP_INFO
};

const uint8_t bc_mfield_row[BC_NMFIELDS] = {
#define BC_MP_ROW(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_MF(op)([mfa] = BC_MP_##id,)
  BC_MPROPS(BC_MP_ROW)
#undef BC_MP_ROW
};

/* M_FIELD operands are 0 .. BC_NMFIELDS - 1, each once (a second
 * initializer of one is an error under -Wextra), for rows in the record;
 * every stored row fits the record and together they fill it (t_bc.c
 * checks that none overlap). */
#define BC_MP_CHECK(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  _Static_assert(((int)BC_OP_##op == (int)BC_OP_M_FIELD) == ((mfa) >= 0) && \
                 (mfa) < (int)BC_NMFIELDS, #id ": an M_FIELD row has an operand"); \
  BC_MP_MF(op)(_Static_assert((off) >= 0, #id ": M_FIELD reads the record");) \
  _Static_assert((group) >= 0 && (group) < BC_MP_GROUPS, #id ": a line group"); \
  BC_MP_IN_RECORD(kind)(_Static_assert(off >= 0 && \
    off + sizeof(BC_MP_CTYPE_##mt) <= BC_RECORD_MODELS, #id ": inside the record");)
BC_MPROPS(BC_MP_CHECK)
#undef BC_MP_CHECK
_Static_assert(0
#define BC_MP_SUM(id, name, member, unit, mt, off, kind, op, mfa, group, doc) BC_MP_MF(op)(+ (mfa))
  BC_MPROPS(BC_MP_SUM)
#undef BC_MP_SUM
  == BC_NMFIELDS * (BC_NMFIELDS - 1) / 2, "M_FIELD operands have no gaps");
/* A property added to the record changes the format: bump its version. */
_Static_assert(LANE_FORMAT_VERSION != 3 || BC_RECORD_MODELS == 144, "format 3's model record");
_Static_assert(sizeof(bc_model) == BC_RECORD_MODELS, "bc_model has no padding");

static const struct { const char *name; uint32_t rec; } sections[BC_SEC_MAX] = {
#define BC_SEC_INFO(name, id, rec, field, nfield, type, codec) [id] = { #name, rec },
  BC_SECTIONS(BC_SEC_INFO)
#undef BC_SEC_INFO
};

/* Ids run from 1 without gaps; a REC section's layout fills its record. */
#define BC_REC_SIZE_8  1
#define BC_REC_SIZE_16 2
#define BC_REC_SIZE_32 4
#define BC_REC_SIZE_64 8
#define BC_REC_SIZE_D  8
#define BC_REC_SIZE(w, member, off) + BC_REC_SIZE_##w
#define BC_SEC_CHECK(name, id, rec, field, nfield, type, codec) \
  _Static_assert(id >= 1 && id < BC_SEC_MAX, #name ": ids are 1, 2, ..."); \
  BC_SEC_IS_REC(codec)(_Static_assert((0 BC_REC_##name(BC_REC_SIZE)) == rec, \
                                      #name ": its fields fill the record");)
BC_SECTIONS(BC_SEC_CHECK)
#undef BC_SEC_CHECK

/* Flow facts the verifier relies on: a KEEP instruction is a jump, one that
 * needs an empty stack produces nothing. */
#define BC_OP_CHECK(name, fmt, in, out, w, fail, reg, flow, empty, doc)               \
  _Static_assert((int)BC_FLOW_##flow != (int)BC_FLOW_KEEP || (int)BC_FMT_##fmt == (int)BC_FMT_JUMP, \
                 #name ": KEEP is a jump");                                          \
  _Static_assert(!(empty) || sizeof(out) == 1, #name ": an empty-stack op pushes nothing");
BC_OPCODES(BC_OP_CHECK)
#undef BC_OP_CHECK

const char *bc_section_name(uint32_t id) {
  return id < BC_SEC_MAX ? sections[id].name : NULL;
}

uint32_t bc_section_record(uint32_t id) {
  return id < BC_SEC_MAX ? sections[id].rec : 0;
}

const char *bc_unit_name(uint32_t unit) {
  static const char *const names[] = {
    "?", "int", "uint", "double", "bool", "string",
    "tokens", "money", "duration", "fraction", "price", "timestamp",
  };
  return unit < sizeof names / sizeof names[0] ? names[unit] : "?";
}

const char *bc_map_unit_name(uint32_t unit) {
  static const char *const names[] = {
    "?", "map(string, int)", "map(string, uint)", "map(string, double)", "map(string, bool)",
    "map(string, string)", "map(string, tokens)", "map(string, money)",
    "map(string, duration)", "map(string, fraction)", "map(string, price)",
    "map(string, timestamp)",
  };
  return unit < sizeof names / sizeof names[0] ? names[unit] : "?";
}

int bc_unit_type(uint32_t unit) {
  switch (unit) {
  case BC_U_INT: case BC_U_TOKENS: case BC_U_TIMESTAMP: return LANE_T_INT;
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

#define PUT_8(q, v)  (*(q) = (unsigned char)(v))
#define PUT_16(q, v) put16(q, (uint16_t)(v))
#define PUT_32(q, v) put32(q, (uint32_t)(v))
#define PUT_64(q, v) put64(q, (uint64_t)(v))
#define PUT_D(q, v)  putd(q, v)

/* Number of records section id will hold for im. */
static uint64_t sec_count(const bc_image *im, uint32_t id) {
  uint64_t n = 0;
  switch (id) {
  case BC_SEC_STRDATA:
    for (uint32_t i = 0; i < im->nstr; i++) n += (uint64_t)im->str[i].len + 1;
    return n;
#define BC_SEC_COUNT(name, id_, rec, field, nfield, type, codec) \
  BC_SEC_ARRAY(codec)(case BC_SEC_##name: return im->nfield;)
  BC_SECTIONS(BC_SEC_COUNT)
#undef BC_SEC_COUNT
  default: return 0;
  }
}

static unsigned char *put_model(unsigned char *p, const bc_model *m) {
#define BC_MP_PUT(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_IN_RECORD(kind)(PUT_##mt(p + (off), m->member);)
#define PUT_I PUT_64
#define PUT_S PUT_32
#define PUT_U PUT_32
  BC_MPROPS(BC_MP_PUT)
#undef PUT_I
#undef PUT_S
#undef PUT_U
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
  case BC_SEC_MODELS:
    for (i = 0; i < im->nmodels; i++) p = put_model(p, &im->models[i]);
    break;
#define REC_PUT(w, member, at) PUT_##w(p + (at), (*e)member);
#define BC_SEC_WRITE(name, id_, rec, field, nfield, type, codec) \
  BC_SEC_IS_REC(codec)(case BC_SEC_##name:                      \
    for (i = 0; i < im->nfield; i++, p += rec) {                 \
      const type *e = &im->field[i];                             \
      BC_REC_##name(REC_PUT)                                     \
    }                                                            \
    break;)
  BC_SECTIONS(BC_SEC_WRITE)
#undef BC_SEC_WRITE
#undef REC_PUT
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
