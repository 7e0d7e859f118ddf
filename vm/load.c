/*
 * load.c -- reads a .lanec file into a lane_program and verifies all of it.
 *
 * The loader trusts nothing. bc_decode checks the header, the section table
 * and the string table and decodes every section into arrays owned by the
 * program; bc_verify then checks every table index, every code region,
 * every operand, the stack types of every path (abstract interpretation
 * over the forward-only control flow) and the worst-case steps of each
 * route, string work included (the cost model, bc_len_steps). The
 * interpreter relies on all of it and checks only data. All of it takes
 * time O(n log n) in the file's size, whatever the file.
 *
 * Messages are deterministic: they are compared byte for byte by the golden
 * tests in tests/golden/lanec/.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sem.h"
#include "vm.h"

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define DEFAULT_MAX_STEPS 1000000u

int vm_errf(lane_error *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    err->line = 0;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) {
  return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static double rdd(const unsigned char *p) {
  uint64_t u = rd64(p);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* ---------------------------------------------------------------------
 * Header and section table
 * ------------------------------------------------------------------- */
static int check_header(const unsigned char *b, size_t n, size_t max_bytes,
                        lane_error *err) {
  uint32_t size;
  if (n > max_bytes)
    return errf(err, LANE_ELIMIT, "file too large: %zu bytes, the limit is %zu",
                n, max_bytes);
  if (memcmp(b, BC_MAGIC, n < 8 ? n : 8) != 0)
    return errf(err, LANE_EFORMAT, "bad magic: not a .lanec file");
  if (n < BC_HEADER_SIZE)
    return errf(err, LANE_EFORMAT, "truncated: %zu bytes, header needs %d", n,
                BC_HEADER_SIZE);
  if (rd16(b + 8) != LANE_FORMAT_VERSION)
    return errf(err, LANE_EVERSION,
                "unsupported format version %u (this VM reads version %d)",
                (unsigned)rd16(b + 8), LANE_FORMAT_VERSION);
  size = rd32(b + 16);
  if (size != n)
    return errf(err, LANE_EFORMAT, "size mismatch: header says %u bytes, file has %zu",
                (unsigned)size, n);
  if (bc_checksum(b, n) != rd64(b + 24))
    return errf(err, LANE_EFORMAT, "checksum mismatch: file is corrupted");
  if (rd16(b + 10) != 0)
    return errf(err, LANE_EFORMAT, "unknown header flags 0x%04x",
                (unsigned)rd16(b + 10));
  if (rd32(b + 20) != 0)
    return errf(err, LANE_EFORMAT, "reserved header field is %u, must be 0",
                (unsigned)rd32(b + 20));
  return LANE_OK;
}

/* Reads and checks the section table into sec[]; *size_of[id] gets each
 * section's size (0 when missing). */
static int read_sections(const unsigned char *b, size_t n, vm_section *sec,
                         uint32_t *nsec, uint32_t *size_of, uint32_t *off_of,
                         lane_error *err) {
  uint32_t count = rd32(b + 12), i, j;
  uint64_t table_end = BC_HEADER_SIZE + (uint64_t)BC_SECTION_SIZE * count;
  if (table_end > n)
    return errf(err, LANE_EFORMAT,
                "section table: %u sections need %llu bytes, file has %zu",
                (unsigned)count, (unsigned long long)table_end, n);
  if (count >= BC_SEC_MAX)
    return errf(err, LANE_EFORMAT, "section table: %u sections, at most %d",
                (unsigned)count, BC_SEC_MAX - 1);
  for (i = 0; i < count; i++) {
    const unsigned char *e = b + BC_HEADER_SIZE + BC_SECTION_SIZE * i;
    vm_section s = { rd32(e), rd32(e + 4), rd32(e + 8) };
    const char *name = bc_section_name(s.id);
    uint32_t rec = bc_section_record(s.id);
    if (!name)
      return errf(err, LANE_EFORMAT, "section table entry %u: unknown section id %u",
                  (unsigned)i, (unsigned)s.id);
    for (j = 0; j < i; j++)
      if (sec[j].id == s.id)
        return errf(err, LANE_EFORMAT, "section %s appears twice", name);
    if (s.offset < table_end)
      return errf(err, LANE_EFORMAT,
                  "section %s: offset %u is inside the header or section table",
                  name, (unsigned)s.offset);
    if ((uint64_t)s.offset + s.size > n)
      return errf(err, LANE_EFORMAT,
                  "section %s: offset %u + size %u is past the end of the file (%zu bytes)",
                  name, (unsigned)s.offset, (unsigned)s.size, n);
    if (s.size % rec)
      return errf(err, LANE_EFORMAT,
                  "section %s: size %u is not a whole number of %u-byte records",
                  name, (unsigned)s.size, (unsigned)rec);
    for (j = 0; j < i; j++)
      if (s.size && sec[j].size && s.offset < sec[j].offset + sec[j].size &&
          sec[j].offset < s.offset + s.size)
        return errf(err, LANE_EFORMAT, "sections %s and %s overlap",
                    bc_section_name(sec[j].id), name);
    sec[i] = s;
    size_of[s.id] = s.size;
    off_of[s.id] = s.offset;
  }
  *nsec = count;
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------- */

/* Bump allocation inside the program's single block. */
static void *carve(unsigned char **at, uint64_t bytes) {
  void *p = *at;
  *at += (bytes + 7) & ~(uint64_t)7;
  return p;
}

/* Strings follow each other in STRDATA without overlapping (gaps are
 * allowed), so their lengths add up to at most its size: work done once
 * per string is linear in the file. */
static int decode_strings(bc_image *im, const unsigned char *idx,
                          const unsigned char *data, uint32_t ndata,
                          lane_error *err) {
  uint64_t end = 0;   /* one past the previous string's NUL */
  for (uint32_t i = 0; i < im->nstr; i++) {
    uint32_t off = rd32(idx + 8 * i), len = rd32(idx + 8 * i + 4);
    if ((uint64_t)off + len >= ndata)
      return errf(err, LANE_EFORMAT,
                  "string %u: offset %u + length %u is past the end of STRDATA (%u bytes)",
                  (unsigned)i, (unsigned)off, (unsigned)len, (unsigned)ndata);
    if (off < end)
      return errf(err, LANE_EFORMAT,
                  "string %u: offset %u overlaps string %u, which ends at %llu",
                  (unsigned)i, (unsigned)off, (unsigned)(i - 1), (unsigned long long)end - 1);
    end = (uint64_t)off + len + 1;
    if (data[off + len] != 0)
      return errf(err, LANE_EFORMAT, "string %u: not NUL-terminated", (unsigned)i);
    im->str[i].p = (const char *)data + off;
    im->str[i].len = len;
  }
  return LANE_OK;
}

static void decode_model(bc_model *m, const unsigned char *q) {
#define GET_D(at) rdd(at)
#define GET_I(at) (int64_t)rd64(at)
#define GET_S(at) rd32(at)
#define GET_U(at) rd32(at)
#define BC_MP_GET(id, name, member, unit, mt, off, kind, op, mfa, group, doc) \
  BC_MP_IN_RECORD(kind)(m->member = GET_##mt(q + (off));)
  BC_MPROPS(BC_MP_GET)
#undef BC_MP_GET
}

/* Decodes every section but the strings of the verified-structure file at
 * p->bytes: REC sections by their BC_REC_ layouts, models by BC_MPROPS. */
static void decode_all(lane_program *p, const uint32_t *off) {
  bc_image *im = &p->im;
  const unsigned char *b = p->bytes;
  uint32_t i;
#define GET_8(at)  (*(at))
#define GET_16(at) rd16(at)
#define GET_32(at) rd32(at)
#define GET_64(at) rd64(at)
#define REC_GET(w, member, at) (*e)member = GET_##w(q + (at));
#define BC_SEC_READ(name, id, rec, field, nfield, type, codec)            \
  BC_SEC_IS_REC(codec)(                                                  \
    for (i = 0; i < im->nfield; i++) {                                   \
      const unsigned char *q = b + off[BC_SEC_##name] + (size_t)i * rec; \
      type *e = &im->field[i];                                           \
      BC_REC_##name(REC_GET)                                             \
    })
  BC_SECTIONS(BC_SEC_READ)
#undef BC_SEC_READ
#undef REC_GET
  for (i = 0; i < im->nmodels; i++)
    decode_model(&im->models[i], b + off[BC_SEC_MODELS] + (size_t)BC_RECORD_MODELS * i);
}

lane_program *bc_decode(const void *bytes, size_t n, size_t max_bytes,
                        lane_error *err) {
  const unsigned char *b = bytes;
  vm_section sec[BC_SEC_MAX];
  uint32_t nsec = 0, size[BC_SEC_MAX] = {0}, off[BC_SEC_MAX] = {0}, cnt[BC_SEC_MAX];
  uint64_t total = (sizeof(lane_program) + 7) & ~(uint64_t)7;
  unsigned char *block, *at;
  lane_program *p;
  bc_image *im;

  if (!b && n) {
    errf(err, LANE_EARG, "no bytes given");
    return NULL;
  }
  if (!b) b = (const unsigned char *)"";
  if (check_header(b, n, max_bytes ? max_bytes : DEFAULT_MAX_BYTES, err) != LANE_OK ||
      read_sections(b, n, sec, &nsec, size, off, err) != LANE_OK)
    return NULL;
  for (uint32_t id = 1; id < BC_SEC_MAX; id++) cnt[id] = size[id] / bc_section_record(id);
  if (size[BC_SEC_LINES] && cnt[BC_SEC_LINES] != cnt[BC_SEC_CODE]) {
    errf(err, LANE_EFORMAT, "section LINES: %u entries for %u instructions",
         (unsigned)cnt[BC_SEC_LINES], (unsigned)cnt[BC_SEC_CODE]);
    return NULL;
  }
#define NEED(count, type) total += ((uint64_t)(count) * sizeof(type) + 7) & ~(uint64_t)7
#define BC_SEC_NEED(name, id, rec, field, nfield, type, codec) \
  BC_SEC_ARRAY(codec)(NEED(cnt[BC_SEC_##name], type);)
  BC_SECTIONS(BC_SEC_NEED)
#undef BC_SEC_NEED
  NEED(cnt[BC_SEC_ROUTES], uint64_t);   NEED(cnt[BC_SEC_FILTERS], uint64_t);
  NEED(cnt[BC_SEC_FILTERS], vm_fspec);   /* spec.c: at most the code plus */
  NEED(cnt[BC_SEC_CODE] + 2 * (uint64_t)cnt[BC_SEC_FILTERS], bc_insn);   /* 2 per filter */
  NEED(n, unsigned char);
#undef NEED
  if (total > SIZE_MAX || !(block = malloc((size_t)total))) {
    errf(err, LANE_ENOMEM, "out of memory loading %zu bytes", n);
    return NULL;
  }
  memset(block, 0, sizeof(lane_program));
  p = (lane_program *)block;
  im = &p->im;
  at = block + ((sizeof(lane_program) + 7) & ~(uint64_t)7);
#define BC_SEC_TAKE(name, id, rec, field, nfield, type, codec) \
  BC_SEC_ARRAY(codec)(im->nfield = cnt[BC_SEC_##name];          \
                      im->field = carve(&at, (uint64_t)im->nfield * sizeof(type));)
  BC_SECTIONS(BC_SEC_TAKE)
#undef BC_SEC_TAKE
  if (!im->nlines) im->lines = NULL;
  p->route_steps = carve(&at, (uint64_t)im->nroutes * sizeof(uint64_t));
  p->filter_steps = carve(&at, (uint64_t)im->nfilters * sizeof(uint64_t));
  p->fspec = carve(&at, (uint64_t)im->nfilters * sizeof(vm_fspec));
  memset(p->fspec, 0, (size_t)im->nfilters * sizeof(vm_fspec));   /* none until bc_specialize */
  p->xcode = carve(&at, ((uint64_t)im->ncode + 2 * (uint64_t)im->nfilters) * sizeof(bc_insn));
  p->bytes = at;
  p->nbytes = n;
  memcpy(p->bytes, b, n);
  im->flags = rd16(b + 10);
  p->version = rd16(b + 8);
  p->checksum = rd64(b + 24);
  p->nsec = nsec;
  memcpy(p->sec, sec, nsec * sizeof sec[0]);
  if (decode_strings(im, p->bytes + off[BC_SEC_STRIDX], p->bytes + off[BC_SEC_STRDATA],
                     size[BC_SEC_STRDATA], err) != LANE_OK) {
    free(block);
    return NULL;
  }
  decode_all(p, off);
  return p;
}

/* ---------------------------------------------------------------------
 * The verifier's state
 *
 * Every check runs in time linear in the file, or n log n: a fact about a
 * range of a table (a list's elements, a pool's members, a switch's cases)
 * is computed once over the table, never once per user of the range, and
 * names are compared by rank, not pairwise. `work` counts the inner-loop
 * iterations (and bytes compared, by 16) so that a test can check the
 * growth without a clock (bc_load_counted).
 * ------------------------------------------------------------------- */

/* The abstract state before an instruction. Types are lane_type codes
 * (1 int .. 4 bool), four bits per slot; a string is LANE_T_STRING + its
 * length class (str_class), so the worst case can weigh string work. */
typedef struct vstate {
  uint64_t t[BC_MAX_STACK / 16]; /* slot i at t[i / 16], bits 4 * (i % 16) */
  int32_t  cur;                  /* current rule; -1 none; -2 differs by path */
  uint8_t  depth;                /* values on the stack */
  uint8_t  seen;                 /* reached by some path */
  uint8_t  nh;                   /* TRY handlers open */
  uint32_t h;                    /* where the innermost resumes, if nh; the
                                    state there is the one at its TRY, so it
                                    holds the depth it restores and the
                                    handlers outside it */
} vstate;

#define NO_CUR INT32_MIN         /* vswitch.cur: no SWITCH typed yet */

/* What the verifier knows of a switch, computed once from its cases
 * (which belong to it alone, check_switches). */
typedef struct vswitch {
  uint32_t lo, hi;      /* least and greatest target, otherwise included */
  uint32_t maxlen;      /* bytes of its longest case string */
  int32_t  cur;         /* rules of the SWITCHes merged into its targets,
                           joined as vstate.cur; NO_CUR none yet */
  uint64_t best;        /* longest path from one of its targets */
  int      known;       /* best is computed */
} vswitch;

typedef struct vctx {
  const bc_image *im;       /* the image verified */
  lane_error     *err;      /* where a rejection goes */
  uint64_t        work;     /* inner-loop iterations, bytes compared / 16 */
  /* facts kept until the end */
  vswitch        *sw;       /* nswitches */
  uint64_t       *list_bytes; /* nlists: bytes of a string list's elements */
  uint32_t       *rising;   /* nmembers + 1: first k' >= k whose member has a
                               higher quality than the one before it, else
                               nmembers */
  uint32_t        mflen[BC_NMFIELDS]; /* longest value of a string model field */
  uint32_t        nranked;  /* strings with a rank */
  /* scratch of the table checks; the code arrays below reuse its memory */
  uint32_t       *rank;     /* nstr: 0 unranked, else 1 + the number of
                               smaller distinct ranked strings */
  uint32_t       *sorted;   /* nstr: ranked strings in order; then the first
                               route of each rank */
  uint32_t       *tmp;      /* nstr: merge buffer */
  uint32_t       *case_of;  /* ncases: 1 + the switch a case belongs to */
  uint32_t       *next_bad; /* nlistelems + 1: next element out of range */
  uint64_t       *prefix;   /* nlistelems + 1: string bytes of elements before */
  /* the code checks */
  vstate         *st;       /* ncode abstract states */
  uint64_t       *dp;       /* ncode longest paths */
  int32_t        *owner;    /* ncode: region of each instruction */
  uint8_t        *idepth;   /* nfilters: an iteration region's ITER depth + 1
                               (its MVARs read depths below it); 0 other regions */
  uint32_t       *ichain;   /* nfilters x BC_MAX_ITER: the map field each ITER
                               around an iteration region walks, outermost first */
  uint64_t       *iter_total; /* nfilters: the worst case of one ITER running an
                               iteration region over all its entries (iter_bound) */
  int             mvar_depth; /* while iter_bound types a region: the depth whose
                               MVAR strings get class mvar_cls; else -1 */
  int             mvar_cls;
} vctx;

/* Allocates every array of v in one block (*block, freed by the caller):
 * the facts, then the table scratch and the code arrays at the same
 * place. About 60 bytes per instruction, 12 per string and per list
 * element, 4 per case and per member, 32 per switch. */
static int vctx_alloc(vctx *v, unsigned char **block, uint64_t *code_bytes) {
  const bc_image *im = v->im;
  uint64_t fixed = 0, scratch = 0, code = 0;
#define SZ(acc, n, type) acc += ((uint64_t)(n) * sizeof(type) + 7) & ~(uint64_t)7
  SZ(fixed, im->nswitches, vswitch); SZ(fixed, im->nlists, uint64_t);
  SZ(fixed, (uint64_t)im->nmembers + 1, uint32_t); SZ(fixed, im->nfilters, uint8_t);
  SZ(fixed, (uint64_t)im->nfilters * BC_MAX_ITER, uint32_t);
  SZ(fixed, im->nfilters, uint64_t);
  SZ(scratch, (uint64_t)im->nlistelems + 1, uint64_t);
  SZ(scratch, im->nstr, uint32_t); SZ(scratch, im->nstr, uint32_t);
  SZ(scratch, im->nstr, uint32_t); SZ(scratch, im->ncases, uint32_t);
  SZ(scratch, (uint64_t)im->nlistelems + 1, uint32_t);
  SZ(code, im->ncode, vstate); SZ(code, im->ncode, uint64_t); SZ(code, im->ncode, int32_t);
#undef SZ
  uint64_t total = fixed + (scratch > code ? scratch : code);
  unsigned char *at;
  if (total > SIZE_MAX || !(*block = calloc(1, total ? (size_t)total : 1)))
    return errf(v->err, LANE_ENOMEM, "out of memory verifying %u instructions",
                (unsigned)im->ncode);
  at = *block;
  v->sw = carve(&at, (uint64_t)im->nswitches * sizeof(vswitch));
  v->list_bytes = carve(&at, (uint64_t)im->nlists * sizeof(uint64_t));
  v->rising = carve(&at, ((uint64_t)im->nmembers + 1) * sizeof(uint32_t));
  v->idepth = carve(&at, (uint64_t)im->nfilters * sizeof(uint8_t));
  v->ichain = carve(&at, (uint64_t)im->nfilters * BC_MAX_ITER * sizeof(uint32_t));
  v->iter_total = carve(&at, (uint64_t)im->nfilters * sizeof(uint64_t));
  {
    unsigned char *s = at;
    v->prefix = carve(&s, ((uint64_t)im->nlistelems + 1) * sizeof(uint64_t));
    v->rank = carve(&s, (uint64_t)im->nstr * sizeof(uint32_t));
    v->sorted = carve(&s, (uint64_t)im->nstr * sizeof(uint32_t));
    v->tmp = carve(&s, (uint64_t)im->nstr * sizeof(uint32_t));
    v->case_of = carve(&s, (uint64_t)im->ncases * sizeof(uint32_t));
    v->next_bad = carve(&s, ((uint64_t)im->nlistelems + 1) * sizeof(uint32_t));
  }
  v->st = carve(&at, (uint64_t)im->ncode * sizeof(vstate));
  v->dp = carve(&at, (uint64_t)im->ncode * sizeof(uint64_t));
  v->owner = carve(&at, (uint64_t)im->ncode * sizeof(int32_t));
  *code_bytes = code;
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Tables
 * ------------------------------------------------------------------- */
static const char *S(const bc_image *im, uint32_t i) { return im->str[i].p; }

static int bad_index(lane_error *err, const char *what, uint32_t i,
                     const char *part, uint32_t idx, uint32_t n) {
  return errf(err, LANE_EFORMAT, "%s %u %s: string index %u out of range (%u strings)",
              what, (unsigned)i, part, (unsigned)idx, (unsigned)n);
}

#define CHECK_STR(what, i, part, idx) \
  if ((idx) >= im->nstr) return bad_index(err, what, i, part, idx, im->nstr)

static int nonneg(double v) { return isfinite(v) && v >= 0; }

/* Reads member k of model m as the type its row gives. */
static uint32_t mp_u32(const bc_model *m, const bc_mpinfo *k) {
  uint32_t x;
  memcpy(&x, (const char *)m + k->moff, sizeof x);
  return x;
}

/* The model table, property by property as BC_MPROPS describes them:
 * string indexes in range, prices and priors finite and >= 0, token
 * counts >= 0; then what only RECORD rows mean. */
static int check_models(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  if (im->ncaps > BC_MAX_CAPS)
    return errf(err, LANE_EFORMAT, "%u capabilities, at most %d",
                (unsigned)im->ncaps, BC_MAX_CAPS);
  for (uint32_t i = 0; i < im->ncaps; i++) CHECK_STR("capability", i, "name", im->caps[i]);
  if (im->nmodels > LANE_MAX_MODELS)
    return errf(err, LANE_EFORMAT, "%u models, at most %d", (unsigned)im->nmodels,
                LANE_MAX_MODELS);
  for (uint32_t i = 0; i < im->nmodels; i++) {
    const bc_model *m = &im->models[i];
    v->work++;
    for (int k = 0; k < BC_NMPROPS; k++) {   /* first: the name the others report */
      const bc_mpinfo *p = &bc_mprops[k];
      if (p->off < 0 || p->mt != 'S') continue;
      uint32_t s = mp_u32(m, p);
      CHECK_STR("model", i, p->member, s);
      /* the string fields M_FIELD pushes: their longest, for the worst case */
      if (p->mf >= 0 && im->str[s].len > v->mflen[p->mf]) v->mflen[p->mf] = im->str[s].len;
    }
    if (m->reserved)
      return errf(err, LANE_EFORMAT, "model %u (%s): reserved field is %u, must be 0",
                  (unsigned)i, S(im, m->name), (unsigned)m->reserved);
    for (int k = 0; k < BC_NMPROPS; k++) {
      const bc_mpinfo *p = &bc_mprops[k];
      const char *at = (const char *)m + p->moff;
      double d;
      int64_t n;
      if (p->off < 0 || p->kind == BC_MPK_RECORD) continue;
      if (p->mt == 'D' && (memcpy(&d, at, sizeof d), !nonneg(d)))
        return errf(err, LANE_EFORMAT, "model %u (%s): %s%s %g is not a finite number >= 0",
                    (unsigned)i, S(im, m->name), p->member,
                    p->unit == BC_U_PRICE ? " price" : "", d);
      if (p->mt == 'I' && (memcpy(&n, at, sizeof n), n < 0))
        return errf(err, LANE_EFORMAT, "model %u (%s): negative %s",
                    (unsigned)i, S(im, m->name), p->member);
    }
    if (im->ncaps < 32 && (m->caps >> im->ncaps) != 0)
      return errf(err, LANE_EFORMAT,
                  "model %u (%s): capability bits 0x%x beyond the %u capabilities",
                  (unsigned)i, S(im, m->name), (unsigned)m->caps, (unsigned)im->ncaps);
  }
  return LANE_OK;
}

static int same_str(const bc_image *im, uint32_t a, uint32_t b) {
  return im->str[a].len == im->str[b].len &&
         memcmp(im->str[a].p, im->str[b].p, im->str[a].len) == 0;
}

/* At most LANE_MAX_FIELDS fields: names are compared pairwise. */
static int check_fields(vctx *v) {
  static const struct { const char *name; int unit; } std[BC_NSTD] = {
#define BC_STD_ROW(id, name, unit) { name, unit },
    BC_STD_FIELDS(BC_STD_ROW)
#undef BC_STD_ROW
  };
  const bc_image *im = v->im;
  lane_error *err = v->err;
  if (im->nfields > LANE_MAX_FIELDS)
    return errf(err, LANE_EFORMAT, "%u request fields, at most %d",
                (unsigned)im->nfields, LANE_MAX_FIELDS);
  if (im->nfields < BC_NSTD)
    return errf(err, LANE_EFORMAT, "%u request fields, the %d standard ones are required",
                (unsigned)im->nfields, BC_NSTD);
  for (uint32_t i = 0; i < im->nfields; i++) {
    const bc_field *f = &im->fields[i];
    if (f->flags & ~BC_FIELD_SENSITIVE)
      return errf(err, LANE_EFORMAT, "field %u: unknown flags 0x%x", (unsigned)i,
                  (unsigned)f->flags);
    if ((f->flags & BC_FIELD_SENSITIVE) && f->type != LANE_T_STRING)
      return errf(err, LANE_EFORMAT, "field %u: only a string field can be sensitive",
                  (unsigned)i);
    CHECK_STR("field", i, "name", f->name);
    if (!bc_unit_type(f->unit))
      return errf(err, LANE_EFORMAT, "field %u (%s): unknown unit %u", (unsigned)i,
                  S(im, f->name), (unsigned)f->unit);
    if (f->type != bc_unit_type(f->unit) &&
        (!(f->type == LANE_T_MAP || (f->type == LANE_T_LIST && f->unit == BC_U_STRING)) ||
         i < BC_NSTD))
      return errf(err, LANE_EFORMAT, "field %u (%s): type %u does not match unit %s",
                  (unsigned)i, S(im, f->name), (unsigned)f->type, bc_unit_name(f->unit));
    if (i < BC_NSTD && (strcmp(S(im, f->name), std[i].name) != 0 ||
                        im->str[f->name].len != strlen(std[i].name) ||
                        f->unit != std[i].unit))
      return errf(err, LANE_EFORMAT,
                  "field %u: expected standard field %s (%s), found %s (%s)",
                  (unsigned)i, std[i].name, bc_unit_name((uint32_t)std[i].unit),
                  S(im, f->name), bc_unit_name(f->unit));
    for (uint32_t j = 0; j < i; j++) {
      v->work += 1 + im->str[f->name].len / 16;
      if (same_str(im, f->name, im->fields[j].name))
        return errf(err, LANE_EFORMAT, "field %u: name %s is already field %u",
                    (unsigned)i, S(im, f->name), (unsigned)j);
    }
  }
  return LANE_OK;
}

/* Bytewise order of two strings (sem_bytes_cmp), shorter first on a
 * common prefix. */
static int str_cmp(vctx *v, uint32_t a, uint32_t b) {
  const bc_str *x = &v->im->str[a], *y = &v->im->str[b];
  v->work += 1 + (x->len < y->len ? x->len : y->len) / 16;
  return sem_bytes_cmp(x->p, x->len, y->p, y->len);
}

/* Stable merge sort of n string indexes by their bytes. A comparison
 * reads at most the bytes of the string it lets out first, and each
 * string goes out once per level, so a sort costs O((S + n) log n) for
 * strings of S bytes in all. */
static void sort_strings(vctx *v, uint32_t *a, uint32_t *t, uint32_t n) {
  uint32_t *from = a, *to = t, *swap;
  for (uint64_t w = 1; w < n; w *= 2) {
    for (uint64_t lo = 0; lo < n; lo += 2 * w) {
      uint64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
      uint64_t i = lo, j = mid, o = lo;
      while (i < mid && j < hi)
        to[o++] = str_cmp(v, from[j], from[i]) < 0 ? from[j++] : from[i++];
      while (i < mid) to[o++] = from[i++];
      while (j < hi) to[o++] = from[j++];
      v->work += hi - lo;
    }
    swap = from; from = to; to = swap;
  }
  if (from != a && n) memcpy(a, from, (size_t)n * sizeof *a);
}

/* Ranks the strings that switch cases and route names use by their
 * bytes, equal strings alike, so that the switches' order and the
 * routes' distinct names are checked by comparing ranks: each string is
 * read O(log n) times in all, however many cases or routes use it.
 * Strings do not overlap (decode_strings), so this is O(S log S). */
static void rank_strings(vctx *v) {
  const bc_image *im = v->im;
  uint32_t n = 0;
#define MARK(s) \
  do { uint32_t s_ = (s); v->work++; \
       if (s_ < im->nstr && !v->rank[s_]) { v->rank[s_] = 1; v->sorted[n++] = s_; } } while (0)
  for (uint32_t i = 0; i < im->ncases; i++) MARK(im->cases[i].str);
  for (uint32_t i = 0; i < im->nroutes; i++) MARK(im->routes[i].name);
#undef MARK
  sort_strings(v, v->sorted, v->tmp, n);
  for (uint32_t i = 0; i < n; i++)
    v->rank[v->sorted[i]] = i == 0 ? 1
        : v->rank[v->sorted[i - 1]] + (str_cmp(v, v->sorted[i - 1], v->sorted[i]) != 0);
  v->nranked = n;
}

/* A switch's cases are its own: two switches may not share a case, so
 * what is learned about a switch (vswitch) costs its cases once. */
static int check_switches(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  for (uint32_t i = 0; i < im->nswitches; i++) {
    const bc_switch *sw = &im->switches[i];
    vswitch *f = &v->sw[i];
    if (sw->field >= im->nfields || im->fields[sw->field].type != LANE_T_STRING)
      return errf(err, LANE_EFORMAT, "switch %u: field %u is not a string field",
                  (unsigned)i, (unsigned)sw->field);
    if ((uint64_t)sw->first + sw->count > im->ncases)
      return errf(err, LANE_EFORMAT, "switch %u: cases [%u,+%u) out of range (%u cases)",
                  (unsigned)i, (unsigned)sw->first, (unsigned)sw->count, (unsigned)im->ncases);
    f->lo = f->hi = sw->otherwise;
    f->cur = NO_CUR;
    for (uint32_t k = 0; k < sw->count; k++) {
      uint32_t at = sw->first + k;
      const bc_case *c = &im->cases[at];
      v->work++;
      if (v->case_of[at])
        return errf(err, LANE_EFORMAT, "switch %u: cases [%u,+%u) overlap those of switch %u",
                    (unsigned)i, (unsigned)sw->first, (unsigned)sw->count,
                    (unsigned)(v->case_of[at] - 1));
      v->case_of[at] = i + 1;
      if (c->str >= im->nstr)
        return errf(err, LANE_EFORMAT, "switch %u case %u: string %u out of range (%u strings)",
                    (unsigned)i, (unsigned)k, (unsigned)c->str, (unsigned)im->nstr);
      if (k && v->rank[im->cases[at - 1].str] >= v->rank[c->str])
        return errf(err, LANE_EFORMAT, "switch %u: cases are not in strictly ascending order",
                    (unsigned)i);
      if (c->target < f->lo) f->lo = c->target;
      if (c->target > f->hi) f->hi = c->target;
      if (im->str[c->str].len > f->maxlen) f->maxlen = im->str[c->str].len;
    }
  }
  return LANE_OK;
}

/* The element table and bound of a list type; LANE_EFORMAT if unknown. */
static int list_kind(const bc_image *im, uint32_t type, uint32_t *lim, const char **what) {
  switch (type) {
  case LANE_T_INT: case LANE_T_UINT: *lim = im->nkint; *what = "int constant"; return LANE_OK;
  case LANE_T_DOUBLE: *lim = im->nkdbl; *what = "double constant"; return LANE_OK;
  case LANE_T_STRING: *lim = im->nstr; *what = "string"; return LANE_OK;
  default: return LANE_EFORMAT;
  }
}

static int list_shape(const bc_image *im, uint32_t i, lane_error *err) {
  const bc_list *l = &im->lists[i];
  uint32_t lim;
  const char *what;
  if (list_kind(im, l->type, &lim, &what) != LANE_OK)
    return errf(err, LANE_EFORMAT, "list %u: bad element type %u", (unsigned)i,
                (unsigned)l->type);
  if ((uint64_t)l->first + l->count > im->nlistelems)
    return errf(err, LANE_EFORMAT, "list %u: elements [%u,+%u) out of range (%u elements)",
                (unsigned)i, (unsigned)l->first, (unsigned)l->count,
                (unsigned)im->nlistelems);
  return LANE_OK;
}

/* Lists may share elements: each element table bound is checked once per
 * element (next_bad), then once per list. Reports what checking the lists
 * one by one would: the first list with a fault, its first fault. */
static int check_lists(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  uint32_t ne = im->nlistelems, shape = im->nlists, worst, at = 0, i;
  int rc = LANE_OK;
  for (i = 0; i < im->nlists; i++, v->work++)
    if ((rc = list_shape(im, i, err)) != LANE_OK) { shape = i; break; }
  worst = shape;
  for (uint32_t type = LANE_T_INT; type <= LANE_T_STRING; type++) {
    uint32_t lim = 0;
    const char *what = "";
    if (type == LANE_T_UINT || type == LANE_T_BOOL) continue;   /* UINT is INT's */
    list_kind(im, type, &lim, &what);
    v->next_bad[ne] = ne;
    for (uint32_t k = ne; k-- > 0; v->work++)
      v->next_bad[k] = im->listelems[k] >= lim ? k : v->next_bad[k + 1];
    for (i = 0; i < worst; i++, v->work++) {
      const bc_list *l = &im->lists[i];
      uint32_t t = l->type == LANE_T_UINT ? LANE_T_INT : l->type;
      if (t == type && v->next_bad[l->first] < l->first + l->count) {
        worst = i;
        at = v->next_bad[l->first] - l->first;
      }
    }
  }
  if (worst < shape) {
    const bc_list *l = &im->lists[worst];
    uint32_t lim = 0;
    const char *what = "";
    list_kind(im, l->type, &lim, &what);
    return errf(err, LANE_EFORMAT, "list %u element %u: %s %u out of range (%u)",
                (unsigned)worst, (unsigned)at, what,
                (unsigned)im->listelems[l->first + at], (unsigned)lim);
  }
  if (rc != LANE_OK) return rc;
  /* what a string list can compare: its elements' bytes, for the worst case */
  v->prefix[0] = 0;
  for (uint32_t k = 0; k < ne; k++, v->work++)
    v->prefix[k + 1] = v->prefix[k] +
                       (im->listelems[k] < im->nstr ? im->str[im->listelems[k]].len : 0);
  for (i = 0; i < im->nlists; i++) {
    const bc_list *l = &im->lists[i];
    v->list_bytes[i] = l->type != LANE_T_STRING ? 0
                     : v->prefix[l->first + l->count] - v->prefix[l->first];
  }
  return LANE_OK;
}

static int check_pools_lists(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  int rc;
  for (uint32_t i = 0; i < im->nmembers; i++, v->work++)
    if ((im->members[i] & BC_MEMBER_MODEL) >= im->nmodels)
      return errf(err, LANE_EFORMAT, "member %u: model index %u out of range (%u models)",
                  (unsigned)i, (unsigned)(im->members[i] & BC_MEMBER_MODEL),
                  (unsigned)im->nmodels);
  for (uint32_t i = 0; i < im->npools; i++, v->work++)
    if ((uint64_t)im->pools[i].first + im->pools[i].count > im->nmembers)
      return errf(err, LANE_EFORMAT, "pool %u: members [%u,+%u) out of range (%u members)",
                  (unsigned)i, (unsigned)im->pools[i].first,
                  (unsigned)im->pools[i].count, (unsigned)im->nmembers);
  /* where quality rises between neighbours, for best()'s sorted pools */
  v->rising[im->nmembers] = im->nmembers;
  for (uint32_t k = im->nmembers; k-- > 0; v->work++)
    v->rising[k] = k > 0 && im->models[im->members[k] & BC_MEMBER_MODEL].quality >
                            im->models[im->members[k - 1] & BC_MEMBER_MODEL].quality
                 ? k : v->rising[k + 1];
  if ((rc = check_lists(v)) != LANE_OK) return rc;
  for (uint32_t i = 0; i < im->nbudgets; i++) {
    const bc_budget *bu = &im->budgets[i];
    v->work++;
    CHECK_STR("budget", i, "name", bu->name);
    if (bu->key_field != BC_NONE && bu->key_field >= im->nfields)
      return errf(err, LANE_EFORMAT, "budget %u (%s): key field %u out of range (%u fields)",
                  (unsigned)i, S(im, bu->name), (unsigned)bu->key_field,
                  (unsigned)im->nfields);
    if (bu->key_field != BC_NONE && im->fields[bu->key_field].type >= LANE_T_MAP)
      return errf(err, LANE_EFORMAT, "budget %u (%s): key field %s is a map", (unsigned)i,
                  S(im, bu->name), S(im, im->fields[bu->key_field].name));
    if ((bu->flags & ~(BC_BUDGET_ROLLING | BC_BUDGET_FULL_CLOSED | BC_BUDGET_FULL_OPEN)) ||
        bu->reserved)
      return errf(err, LANE_EFORMAT, "budget %u (%s): unknown flags 0x%x",
                  (unsigned)i, S(im, bu->name), (unsigned)(bu->flags | bu->reserved));
    if ((bu->flags & BC_BUDGET_FULL_CLOSED) && (bu->flags & BC_BUDGET_FULL_OPEN))
      return errf(err, LANE_EFORMAT, "budget %u (%s): on_full is both closed and open",
                  (unsigned)i, S(im, bu->name));
    if (!nonneg(bu->limit) || !nonneg(bu->window_ms))
      return errf(err, LANE_EFORMAT, "budget %u (%s): %s %g is not a finite number >= 0",
                  (unsigned)i, S(im, bu->name), nonneg(bu->limit) ? "window" : "limit",
                  nonneg(bu->limit) ? bu->window_ms : bu->limit);
  }
  return LANE_OK;
}

/* Route names are distinct: compared by rank (rank_strings), the first
 * route of each rank kept in v->sorted, which the ranking is done with. */
static int check_routes(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  uint32_t *first = v->sorted;
  for (uint32_t i = 0; i < im->nrules; i++, v->work++)
    CHECK_STR("rule", i, "name", im->rules[i].name);
  for (uint32_t i = 0; i < v->nranked; i++) first[i] = BC_NONE;
  for (uint32_t i = 0; i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    v->work++;
    CHECK_STR("route", i, "name", r->name);
    if (first[v->rank[r->name] - 1] != BC_NONE)
      return errf(err, LANE_EFORMAT, "route %u: name %s is already route %u",
                  (unsigned)i, S(im, r->name), (unsigned)first[v->rank[r->name] - 1]);
    first[v->rank[r->name] - 1] = i;
    if (r->fallbacks >= LANE_MAX_CANDIDATES)
      return errf(err, LANE_EFORMAT, "route %s: %u fallbacks, at most %d",
                  S(im, r->name), (unsigned)r->fallbacks, LANE_MAX_CANDIDATES - 1);
    if (r->nrules == 0)
      return errf(err, LANE_EFORMAT, "route %s: has no rules", S(im, r->name));
    if ((uint64_t)r->first_rule + r->nrules > im->nrules)
      return errf(err, LANE_EFORMAT, "route %s: rules [%u,+%u) out of range (%u rules)",
                  S(im, r->name), (unsigned)r->first_rule, (unsigned)r->nrules,
                  (unsigned)im->nrules);
  }
  if (im->nroute_out && im->nroute_out != im->nroutes)
    return errf(err, LANE_EFORMAT, "ROUTEOUT has %u entries for %u routes",
                (unsigned)im->nroute_out, (unsigned)im->nroutes);
  for (uint32_t i = 0; i < im->nroute_out; i++, v->work++)
    if (im->route_out[i] < 0 || im->route_out[i] > BC_MAX_OUTPUT_ESTIMATE)
      return errf(err, LANE_EFORMAT, "route %s: output estimate %lld is not between 0 and %d "
                  "tokens", S(im, im->routes[i].name), (long long)im->route_out[i],
                  BC_MAX_OUTPUT_ESTIMATE);
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Code regions and operands
 * ------------------------------------------------------------------- */

/* Owner of an instruction: route r is r, filter f is nroutes + f. */
static void region_label(const bc_image *im, int32_t owner, char *buf, size_t n) {
  if ((uint32_t)owner < im->nroutes)
    snprintf(buf, n, "route %s", S(im, im->routes[owner].name));
  else
    snprintf(buf, n, "filter %u", (unsigned)(owner - (int32_t)im->nroutes));
}

static void region_of(const bc_image *im, int32_t owner, uint32_t *start, uint32_t *end) {
  if ((uint32_t)owner < im->nroutes) {
    *start = im->routes[owner].start;
    *end = im->routes[owner].end;
  } else {
    *start = im->filters[owner - (int32_t)im->nroutes].start;
    *end = im->filters[owner - (int32_t)im->nroutes].end;
  }
}

static int check_regions(vctx *v) {
  const bc_image *im = v->im;
  int32_t *owner = v->owner;
  uint32_t nreg = im->nroutes + im->nfilters;
  char a[96], b[96];
  for (uint32_t pc = 0; pc < im->ncode; pc++) owner[pc] = -1;
  for (uint32_t k = 0; k < nreg; k++) {
    uint32_t start, end;
    region_of(im, (int32_t)k, &start, &end);
    if (start >= end || end > im->ncode) {
      region_label(im, (int32_t)k, a, sizeof a);
      if (start >= end)
        return errf(v->err, LANE_EFORMAT, "%s: empty code region [%u,%u)", a,
                    (unsigned)start, (unsigned)end);
      return errf(v->err, LANE_EFORMAT,
                  "%s: code region [%u,%u) is past the end of the code (%u instructions)",
                  a, (unsigned)start, (unsigned)end, (unsigned)im->ncode);
    }
    for (uint32_t pc = start; pc < end; pc++, v->work++) {
      if (owner[pc] >= 0) {
        region_label(im, (int32_t)k, a, sizeof a);
        region_label(im, owner[pc], b, sizeof b);
        return errf(v->err, LANE_EFORMAT, "%s: code region [%u,%u) overlaps %s", a,
                    (unsigned)start, (unsigned)end, b);
      }
      owner[pc] = (int32_t)k;
    }
  }
  for (uint32_t pc = 0; pc < im->ncode; pc++, v->work++)
    if (owner[pc] < 0)
      return errf(v->err, LANE_EFORMAT, "instruction %u belongs to no route or filter",
                  (unsigned)pc);
  return LANE_OK;
}

/* errf for one instruction: the message starts with its pc and opcode and
 * err->line is its source line. */
static int insn_fail(const bc_image *im, lane_error *err, uint32_t pc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int insn_fail(const bc_image *im, lane_error *err, uint32_t pc,
                     const char *fmt, ...) {
  if (err) {
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    errf(err, LANE_EFORMAT, "instruction %u (%s): %s", (unsigned)pc,
         bc_ops[im->code[pc].op].name, msg);
    if (im->lines) err->line = (int)(im->lines[pc] & 0x7fffffff);
  }
  return LANE_EFORMAT;
}

/* Every value of CAND's order bits is an order, so only the other bits
 * can be wrong. */
_Static_assert(BC_CAND_ORDER + 1 == BC_NORDERS, "BC_CAND_ORDER holds exactly the orders");

static int check_operands(vctx *v, uint32_t pc) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  const bc_insn *in = &im->code[pc];
  const bc_opinfo *info = &bc_ops[in->op];
  int uses = bc_fmts[info->fmt].uses;
  uint32_t c = in->c, start, end;
  if (!(uses & 1) && in->a)
    return insn_fail(im, err, pc, "unused operand a is %u, must be 0", (unsigned)in->a);
  if (!(uses & 2) && in->b)
    return insn_fail(im, err, pc, "unused operand b is %u, must be 0", (unsigned)in->b);
  if (!(uses & 4) && in->c)
    return insn_fail(im, err, pc, "unused operand c is %u, must be 0", (unsigned)in->c);
#define RANGE(lim, what) \
  if (c >= (lim)) return insn_fail(im, err, pc, what " %u out of range (%u)", \
                                   (unsigned)c, (unsigned)(lim))
  switch (info->fmt) {
  case BC_FMT_NONE: break;
  case BC_FMT_JUMP:
    region_of(im, v->owner[pc], &start, &end);
    if (c <= pc)
      return insn_fail(im, err, pc, "jump target %u is not after the instruction",
                       (unsigned)c);
    if (c >= end)
      return insn_fail(im, err, pc, "jump target %u is outside its region [%u,%u)",
                       (unsigned)c, (unsigned)start, (unsigned)end);
    break;
  case BC_FMT_KINT: RANGE(im->nkint, "int constant"); break;
  case BC_FMT_KDBL: RANGE(im->nkdbl, "double constant"); break;
  case BC_FMT_STR: RANGE(im->nstr, "string"); break;
  case BC_FMT_BOOL:
    if (in->a > 1)
      return insn_fail(im, err, pc, "operand a is %u, must be 0 or 1", (unsigned)in->a);
    break;
  case BC_FMT_FIELD: {
    RANGE(im->nfields, "field");
    int ty = im->fields[in->c].type, map = ty == LANE_T_MAP, list = ty == LANE_T_LIST;
    int map_op = in->op == BC_OP_MAP_GET || in->op == BC_OP_MAP_HAS;
    int list_op = in->op == BC_OP_LIST_GET || in->op == BC_OP_LIST_HAS || in->op == BC_OP_LIST_JOIN;
    if (in->op != BC_OP_HAS && in->op != BC_OP_MAP_SIZE && !map_op && !list_op && (map || list))
      return insn_fail(im, err, pc, "field %s is a %s", S(im, im->fields[in->c].name),
                       map ? "map" : "list");
    if ((map_op && !map) || (list_op && !list))
      return insn_fail(im, err, pc, "field %s is not a %s", S(im, im->fields[in->c].name),
                       map_op ? "map" : "list");
    if (in->op == BC_OP_MAP_SIZE && !map && !list)
      return insn_fail(im, err, pc, "field %s is neither a map nor a list",
                       S(im, im->fields[in->c].name));
    break;
  }
  case BC_FMT_MFIELD:
    if (in->a >= BC_NMFIELDS)
      return insn_fail(im, err, pc, "model field %u out of range (%d)", (unsigned)in->a,
                       BC_NMFIELDS);
    break;
  case BC_FMT_CAP: RANGE(im->ncaps, "capability"); break;
  case BC_FMT_LIST: RANGE(im->nlists, "list"); break;
  case BC_FMT_BUDGET:
    if (in->a > 2)
      return insn_fail(im, err, pc, "budget selector %u, must be 0, 1 or 2",
                       (unsigned)in->a);
    RANGE(im->nbudgets, "budget");
    break;
  case BC_FMT_CAND:
    if (in->a & ~(BC_CAND_ORDER | BC_CAND_FITS | BC_CAND_HEALTHY))
      return insn_fail(im, err, pc, "order and checks %u out of range", (unsigned)in->a);
    if (in->b > im->nfilters)
      return insn_fail(im, err, pc, "filter %u out of range (%u)", (unsigned)in->b - 1,
                       (unsigned)im->nfilters);
    if (in->b && im->code[im->filters[in->b - 1].end - 1].op != BC_OP_FRET)
      return insn_fail(im, err, pc, "filter %u does not end with FRET: an explain region "
                       "is not a filter", (unsigned)in->b - 1);
    RANGE(im->npools, "pool");
    if ((in->a & BC_CAND_ORDER) == BC_ORD_BEST) {   /* the VM stops early: sorted members */
      const bc_pool *pl = &im->pools[c];
      if (pl->count > 1 && v->rising[pl->first + 1] < pl->first + pl->count)
        return insn_fail(im, err, pc, "pool %u for best() is not sorted by quality",
                         (unsigned)c);
    }
    break;
  case BC_FMT_SWITCH:
    RANGE(im->nswitches, "switch");
    region_of(im, v->owner[pc], &start, &end);
    if (v->sw[c].lo <= pc || v->sw[c].hi >= end) {   /* name the first bad target */
      const bc_switch *sw = &im->switches[c];
      for (uint32_t k = 0; k <= sw->count; k++) {
        uint32_t t = k < sw->count ? im->cases[sw->first + k].target : sw->otherwise;
        if (t <= pc || t >= end)
          return insn_fail(im, err, pc, "switch target %u is not after the instruction in "
                           "its region [%u,%u)", (unsigned)t, (unsigned)start, (unsigned)end);
      }
    }
    break;
  case BC_FMT_SHADOW:
    if (in->b > 100)
      return insn_fail(im, err, pc, "sampled percent %u above 100", (unsigned)in->b);
    /* fall through */
  case BC_FMT_MODEL:   /* c is a model (SHADOW's c; no opcode has this format alone) */
    RANGE(im->nmodels, "model");
    break;
  case BC_FMT_RULE: RANGE(im->routes[v->owner[pc]].nrules, "rule"); break;
  case BC_FMT_ITER: case BC_FMT_MVAR: {
    RANGE(im->nfields, "field");
    if (im->fields[in->c].type != LANE_T_MAP && im->fields[in->c].type != LANE_T_LIST)
      return insn_fail(im, err, pc, "iterates field %s, which is not a map or a list",
                       S(im, im->fields[in->c].name));
    int32_t o = v->owner[pc] - (int32_t)im->nroutes;   /* its filter, or < 0 in a route */
    if (info->fmt == BC_FMT_MVAR) {
      if (in->b > 1) return insn_fail(im, err, pc, "MVAR reads 0 a key or 1 a value, not %u",
                                      (unsigned)in->b);
      if (o < 0 || !v->idepth[o] || in->a >= v->idepth[o])
        return insn_fail(im, err, pc, "depth %u is not an ITER's around this code",
                         (unsigned)in->a);
      if (v->idepth[o] <= BC_MAX_ITER && v->ichain[(uint32_t)o * BC_MAX_ITER + in->a] != in->c &&
          v->ichain[(uint32_t)o * BC_MAX_ITER + in->a] != BC_NONE)
        return insn_fail(im, err, pc, "reads field %s, but the ITER at depth %u walks %s",
                         S(im, im->fields[in->c].name), (unsigned)in->a,
                         S(im, im->fields[v->ichain[(uint32_t)o * BC_MAX_ITER + in->a]].name));
    } else if (in->a > (in->op == BC_OP_ITER ? 2 : 0)) {
      return insn_fail(im, err, pc, "iteration kind %u out of range (0 to %d)", (unsigned)in->a,
                       in->op == BC_OP_ITER ? 2 : 0);
    }
    break;
  }
  case BC_FMT_REGEX: RANGE(im->nstr, "pattern string"); break;
  case BC_FMT_TSPART: {
    sem_tz z;
    if (in->op == BC_OP_DUR_PART ? in->a < SEM_TS_HOURS || in->a > SEM_TS_MILLIS || in->c != BC_NONE
                                 : in->a >= SEM_TS_NPARTS)
      return insn_fail(im, err, pc, "part %u of a %s out of range", (unsigned)in->a,
                       in->op == BC_OP_DUR_PART ? "duration (6 to 9, no zone)" : "timestamp");
    if (in->c != BC_NONE && in->c >= im->nstr)
      return insn_fail(im, err, pc, "zone string %u out of range (%u)", (unsigned)in->c,
                       (unsigned)im->nstr);
    if (in->c != BC_NONE && im->str[in->c].len > 64)
      return insn_fail(im, err, pc, "zone rule of %u bytes, at most 64", (unsigned)im->str[in->c].len);
    if (in->c != BC_NONE && sem_tz_parse(S(im, in->c), &z))
      return insn_fail(im, err, pc, "zone \"%s\" is not a POSIX TZ rule", S(im, in->c));
    break;
  }
  case BC_FMT_TYPE:
    if (in->a < LANE_T_INT || in->a > LANE_T_STRING)
      return insn_fail(im, err, pc, "type %u out of range (1 to %d)", (unsigned)in->a,
                       LANE_T_STRING);
    break;
  }
#undef RANGE
  return LANE_OK;
}

/* Whether filter f is an iteration region (ends in IRET). */
static int is_iter(const bc_image *im, int32_t f) {
  return f >= 0 && (uint32_t)f < im->nfilters && im->filters[f].end > 0 &&
         im->filters[f].end <= im->ncode && im->code[im->filters[f].end - 1].op == BC_OP_IRET;
}

static int check_iters(vctx *v);

static int check_code(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  for (uint32_t pc = 0; pc < im->ncode; pc++, v->work++)
    if (im->code[pc].op >= BC_NOPS)
      return errf(err, LANE_EFORMAT, "instruction %u: unknown opcode %u", (unsigned)pc,
                  (unsigned)im->code[pc].op);
  if (check_iters(v) != LANE_OK) return LANE_EFORMAT;
  for (uint32_t pc = 0; pc < im->ncode; pc++) {
    const bc_insn *in = &im->code[pc];
    int in_route = (uint32_t)v->owner[pc] < im->nroutes;
    v->work++;
    if (in->op >= BC_NOPS)
      return errf(err, LANE_EFORMAT, "instruction %u: unknown opcode %u", (unsigned)pc,
                  (unsigned)in->op);
    if (bc_ops[in->op].region == 'R' && !in_route)
      return insn_fail(im, err, pc, "not allowed in a filter");
    if (bc_ops[in->op].region == 'F' && in_route)
      return insn_fail(im, err, pc, "not allowed in a route");
    int in_iter = !in_route && is_iter(im, v->owner[pc] - (int32_t)im->nroutes);
    if (in_iter && (bc_ops[in->op].region == 'F' || in->op == BC_OP_XRET))
      return insn_fail(im, err, pc, "not allowed in an iteration region, which reads no model");
    if (!in_iter && in->op == BC_OP_IRET)
      return insn_fail(im, err, pc, "only an iteration region ends in IRET");
    if (check_operands(v, pc) != LANE_OK) return LANE_EFORMAT;
  }
  for (uint32_t i = 0; i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    if (im->code[r->start].op != BC_OP_RULE || im->code[r->start].c != 0)
      return errf(err, LANE_EFORMAT, "route %s: does not start with RULE 0", S(im, r->name));
    if (im->code[r->end - 1].op != BC_OP_NOMATCH)
      return errf(err, LANE_EFORMAT, "route %s: does not end with NOMATCH", S(im, r->name));
    /* a rule can resume only inside its own route's region, and regions
     * do not overlap: routes that share rules stop at the first one */
    for (uint32_t k = 0; k < r->nrules; k++, v->work++) {
      uint32_t next = im->rules[r->first_rule + k].next;
      if (next < r->start || next >= r->end ||
          (im->code[next].op != BC_OP_RULE && next != r->end - 1))
        return errf(err, LANE_EFORMAT,
                    "route %s rule %u: resumes at instruction %u, which is not a RULE "
                    "or the route's NOMATCH", S(im, r->name), (unsigned)k, (unsigned)next);
    }
  }
  for (uint32_t i = 0; i < im->nfilters; i++, v->work++) {
    int op = im->code[im->filters[i].end - 1].op;
    if (op != BC_OP_FRET && op != BC_OP_XRET && op != BC_OP_IRET)
      return errf(err, LANE_EFORMAT, "filter %u: does not end with FRET, XRET or IRET",
                  (unsigned)i);
  }
  return LANE_OK;
}

/* Iteration regions (ITER's b - 1, ending in IRET) and their depths. An
 * ITER in a route, a filter or an explain region runs its region at depth
 * 1; one in an iteration region r at r's depth + 1, and only a region
 * before r, so no region runs itself. Every ITER of a region runs it at one
 * depth, at most BC_MAX_ITER; a region no ITER runs is verified at the
 * deepest (it never runs). Each MVAR then reads a depth below its
 * region's. */
static int check_iters(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  memset(v->idepth, 0, im->nfilters);
  for (uint64_t i = 0; i < (uint64_t)im->nfilters * BC_MAX_ITER; i++) v->ichain[i] = BC_NONE;
  for (uint32_t pc = 0; pc < im->ncode; pc++, v->work++) {   /* every ITER, run or not */
    const bc_insn *in = &im->code[pc];
    if (bc_ops[in->op].fmt == BC_FMT_ITER &&
        (in->b == 0 || in->b - 1u >= im->nfilters || !is_iter(im, (int32_t)in->b - 1)))
      return insn_fail(im, err, pc, "region %u is not an iteration region (a filter "
                       "ending in IRET)", (unsigned)in->b - 1);
  }
  for (int pass = 0; pass < 2; pass++)
    for (uint32_t k = im->nfilters + im->nroutes; k-- > 0;) {   /* regions, last first */
      int32_t o = (int32_t)k - (int32_t)im->nroutes;   /* a filter's index, or < 0 */
      uint32_t start, end;
      if ((o >= 0 && is_iter(im, o)) != pass) continue;   /* pass 0: the others */
      if (pass && !v->idepth[o]) continue;   /* no ITER runs it */
      region_of(im, (int32_t)k, &start, &end);
      for (uint32_t pc = start; pc < end; pc++, v->work++) {
        const bc_insn *in = &im->code[pc];
        if (bc_ops[in->op].fmt != BC_FMT_ITER) continue;
        uint32_t t = in->b - 1;   /* an iteration region: checked above */
        if (pass && t >= (uint32_t)o)
          return insn_fail(im, err, pc, "runs region %u from region %u: an iteration region "
                           "runs only regions before it", (unsigned)t, (unsigned)o);
        int d = pass ? v->idepth[o] + 1 : 1;
        if (d > BC_MAX_ITER)
          return insn_fail(im, err, pc, "ITERs nest more than %d deep", BC_MAX_ITER);
        if (v->idepth[t] && v->idepth[t] != d)
          return insn_fail(im, err, pc, "runs region %u at depth %d, another ITER at %d",
                           (unsigned)t, d, v->idepth[t]);
        /* the fields walked around t: the caller's, then this ITER's */
        uint32_t *chain = &v->ichain[t * BC_MAX_ITER];
        for (int j = 0; j < d; j++) {
          uint32_t f = j == d - 1 ? in->c : v->ichain[(uint32_t)o * BC_MAX_ITER + (uint32_t)j];
          if (v->idepth[t] && chain[j] != f)
            return insn_fail(im, err, pc, "runs region %u over other maps than another ITER "
                             "does", (unsigned)t);
          chain[j] = f;
        }
        v->idepth[t] = (uint8_t)d;
      }
    }
  for (uint32_t i = 0; i < im->nfilters; i++)
    if (is_iter(im, (int32_t)i) && !v->idepth[i]) v->idepth[i] = BC_MAX_ITER;
  return LANE_OK;
}

/* The type an explain region returns (XRET's a), or 0 for a filter or a
 * bad index. */
static int xret_type(const bc_image *im, uint32_t region) {
  if (region >= im->nfilters) return 0;
  const bc_insn *last = &im->code[im->filters[region].end - 1];
  return last->op == BC_OP_XRET ? last->a : 0;
}

static int x_bool(const bc_image *im, uint32_t node) {
  return node < im->nxnodes && im->xnodes[node].kind != BC_X_VALUE;
}

/* The explain tables (bc.h, "Explanations"): nodes name earlier nodes
 * only, so trees end; each value comes from an explain region of its type. */
static int check_explain(vctx *v) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  for (uint32_t i = 0; i < im->nxnodes; i++, v->work++) {
    const bc_xnode *x = &im->xnodes[i];
    int kids = x->kind == BC_X_AND || x->kind == BC_X_OR ? 2 : x->kind == BC_X_NOT;
    int want = x->kind == BC_X_LEAF ? LANE_T_BOOL
               : x->kind == BC_X_VALUE ? bc_unit_type(x->unit) : 0;
    if (x->kind < BC_X_AND || x->kind >= BC_X_NKINDS || x->reserved ||
        (x->unit != 0) != (x->kind == BC_X_VALUE) || (x->kind == BC_X_VALUE && !want))
      return errf(err, LANE_EFORMAT, "explain node %u: kind %u, unit %u, reserved %u",
                  (unsigned)i, (unsigned)x->kind, (unsigned)x->unit, (unsigned)x->reserved);
    CHECK_STR("explain node", i, "text", x->text);
    if (want ? xret_type(im, x->region) != want : x->region != BC_NONE)
      return errf(err, LANE_EFORMAT, "explain node %u: region %u is not an explain region "
                  "of its type", (unsigned)i, (unsigned)x->region);
    const uint32_t ab[2] = {x->a, x->b};
    for (int k = 0; k < 2; k++) {
      int ok = k < kids ? ab[k] < i && x_bool(im, ab[k])
               : x->kind == BC_X_LEAF ? ab[k] == BC_NONE ||
                                        (ab[k] < i && im->xnodes[ab[k]].kind == BC_X_VALUE)
                                      : ab[k] == BC_NONE;
      if (!ok)
        return errf(err, LANE_EFORMAT, "explain node %u: %s %u is not an earlier node of "
                    "its kind", (unsigned)i, k ? "b" : "a", (unsigned)ab[k]);
    }
  }
  if (im->nxrules && im->nxrules != im->nrules)
    return errf(err, LANE_EFORMAT, "XRULES has %u entries for %u rules",
                (unsigned)im->nxrules, (unsigned)im->nrules);
  for (uint32_t i = 0; i < im->nxrules; i++, v->work++)
    if (im->xrules[i] != BC_NONE && !x_bool(im, im->xrules[i]))
      return errf(err, LANE_EFORMAT, "rule %u: explain node %u is not a condition",
                  (unsigned)i, (unsigned)im->xrules[i]);
  for (uint32_t i = 0; i < im->nxsels; i++, v->work++) {
    const bc_xsel *s = &im->xsels[i];
    if (s->rule >= im->nrules || (uint64_t)s->first + s->count > im->nxlist)
      return errf(err, LANE_EFORMAT, "explained selection %u: rule %u or conditions "
                  "[%u,+%u) out of range", (unsigned)i, (unsigned)s->rule, (unsigned)s->first,
                  (unsigned)s->count);
  }
  for (uint32_t i = 0; i < im->nxlist; i++, v->work++)
    if (!x_bool(im, im->xlist[i]))
      return errf(err, LANE_EFORMAT, "explained condition %u: node %u is not a condition",
                  (unsigned)i, (unsigned)im->xlist[i]);
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Stack types: abstract interpretation over the forward-only code
 * ------------------------------------------------------------------- */

/* String length classes: a string slot's code is LANE_T_STRING + class,
 * its length at most cls_max[class] bytes. Request strings (at most
 * LANE_MAX_STRING) have a class of their own; constants and model fields
 * take the least class that holds them. */
static const uint32_t cls_max[] = {
  16, 64, 256, 1024, LANE_MAX_STRING, 16384, 65536, 262144, 1048576, 16777216, UINT32_MAX
};
#define NCLASSES (int)(sizeof cls_max / sizeof cls_max[0])
_Static_assert(LANE_T_STRING + sizeof cls_max / sizeof cls_max[0] - 1 <= 15,
               "string classes fit the four bits of a slot");

static int str_class(uint64_t len) {
  int k = 0;
  while (k < NCLASSES - 1 && len > cls_max[k]) k++;
  return k;
}

static int vget(const vstate *s, int i) { return (int)(s->t[i / 16] >> (4 * (i % 16))) & 15; }

static void vset(vstate *s, int i, int ty) {
  s->t[i / 16] &= ~((uint64_t)15 << (4 * (i % 16)));
  s->t[i / 16] |= (uint64_t)ty << (4 * (i % 16));
}

/* The lane_type of slot i, its class left out. */
static int vtype(const vstate *s, int i) {
  int c = vget(s, i);
  return c > LANE_T_STRING ? LANE_T_STRING : c;
}

/* The most bytes the string in slot i (from the top: 1 is the top) holds. */
static uint64_t vbound(const vstate *s, int from_top) {
  int c = vget(s, s->depth - from_top);
  return c >= LANE_T_STRING ? cls_max[c - LANE_T_STRING] : 0;
}

static const char *tname(int ty) {
  static const char *const n[] = { "?", "int", "uint", "double", "bool", "string" };
  return ty >= 0 && ty <= 5 ? n[ty] : "?";
}

static int tcode(char c) {
  switch (c) {
  case 'I': return LANE_T_INT;
  case 'U': return LANE_T_UINT;
  case 'D': return LANE_T_DOUBLE;
  case 'B': return LANE_T_BOOL;
  case 'S': return LANE_T_STRING;
  default: return 0;
  }
}

/* The type an operand-typed ('*') stack slot has for this instruction. */
static int star_type(const bc_image *im, const bc_insn *in) {
  switch (in->op) {
  case BC_OP_LOAD: return im->fields[in->c].type;
  case BC_OP_MAP_GET: return bc_unit_type(im->fields[in->c].unit);
  case BC_OP_MVAR:   /* a list's key is its index */
    return in->b ? bc_unit_type(im->fields[in->c].unit)
                 : im->fields[in->c].type == LANE_T_LIST ? LANE_T_INT : LANE_T_STRING;
  case BC_OP_M_FIELD: return tcode(bc_mprops[bc_mfield_row[in->a]].mt);
  case BC_OP_IN_LIST: return (int)im->lists[in->c].type;
  case BC_OP_XRET: case BC_OP_POP: return in->a;
  default: return 0;
  }
}

static int slot_type(const bc_image *im, const bc_insn *in, char c) {
  return c == '*' ? star_type(im, in) : tcode(c);
}

/* The slot code an instruction pushes for output c: a string's class from
 * where it comes from (a constant, a request field, a model field). */
static int out_code(const vctx *v, const bc_insn *in, char c) {
  int ty = slot_type(v->im, in, c);
  if (ty != LANE_T_STRING) return ty;
  switch (in->op) {
  case BC_OP_PUSH_S: return LANE_T_STRING + str_class(v->im->str[in->c].len);
  case BC_OP_MVAR:   /* an entry's string: LANE_MAX_STRING, or iter_bound's bucket */
    return LANE_T_STRING + ((int)in->a == v->mvar_depth ? v->mvar_cls : str_class(LANE_MAX_STRING));
  case BC_OP_M_FIELD: return LANE_T_STRING + str_class(v->mflen[in->a]);
  default: return LANE_T_STRING + str_class(LANE_MAX_STRING);   /* LOAD */
  }
}

/* Writes types of slots [from, depth) as "int, double", or "nothing". */
static void list_types(const vstate *s, int from, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = 0;
  if (from >= s->depth) { snprintf(buf, n, "nothing"); return; }
  for (int i = from; i < s->depth && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i > from ? ", " : "",
                            tname(vtype(s, i)));
}

/* Merges state s into the one at `to`: the same types are required, a
 * string slot takes the larger of the two classes. Edges go forward, so
 * `to` has not been interpreted yet. */
static int merge(vctx *v, uint32_t to, const vstate *s) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  vstate *t = &v->st[to];
  v->work++;
  if (!t->seen) {
    *t = *s;
    t->seen = 1;
    return LANE_OK;
  }
  if (t->depth != s->depth || memcmp(t->t, s->t, sizeof t->t) != 0) {
    int same = t->depth == s->depth;
    for (int i = 0; same && i < s->depth; i++) same = vtype(t, i) == vtype(s, i);
    if (!same) {
      char a[80], b[80];
      list_types(t, 0, a, sizeof a);
      list_types(s, 0, b, sizeof b);
      return insn_fail(im, err, to, "paths reach it with different stacks: [%s] and [%s]",
                       a, b);
    }
    for (int i = 0; i < s->depth; i++)
      if (vget(s, i) > vget(t, i)) vset(t, i, vget(s, i));
  }
  if (t->nh != s->nh || (s->nh && t->h != s->h))
    return insn_fail(im, err, to, "paths reach it inside different TRY handlers "
                     "(%u and %u active)", (unsigned)t->nh, (unsigned)s->nh);
  if (t->cur != s->cur) t->cur = -2;
  return LANE_OK;
}

/* Checks inputs of the instruction at pc against s and pops them, never
 * below floor (the depth the innermost TRY handler restores). */
static int pop_inputs(const bc_image *im, uint32_t pc, vstate *s, int floor,
                      lane_error *err) {
  const bc_insn *in = &im->code[pc];
  const char *want = bc_ops[in->op].in;
  int n = (int)strlen(want), bad = 0;
  if (bc_ops[in->op].empty && s->depth)
    return insn_fail(im, err, pc, "needs an empty stack, found %u value%s",
                     (unsigned)s->depth, s->depth == 1 ? "" : "s");
  int ends = in->op == BC_OP_FRET || in->op == BC_OP_XRET || in->op == BC_OP_IRET;
  if ((bc_ops[in->op].empty || ends) && s->nh)
    return insn_fail(im, err, pc, "inside a TRY that has not ended");
  if (in->op == BC_OP_ENDTRY && !s->nh)
    return insn_fail(im, err, pc, "ENDTRY without a TRY");
  if ((in->op == BC_OP_FRET || in->op == BC_OP_IRET) &&
      (s->depth != 1 || vtype(s, 0) != LANE_T_BOOL)) {
    char a[120];
    list_types(s, 0, a, sizeof a);
    return insn_fail(im, err, pc, "needs exactly one bool on the stack, found %s", a);
  }
  if (in->op == BC_OP_XRET && s->depth != 1) {
    char a[120];
    list_types(s, 0, a, sizeof a);
    return insn_fail(im, err, pc, "needs exactly one value on the stack, found %s", a);
  }
  for (int i = 0; i < n; i++)
    if (i + s->depth - n >= 0 && vtype(s, s->depth - n + i) != slot_type(im, in, want[i]))
      bad = 1;
  if (s->depth < n || bad) {
    char a[120], b[120];
    size_t len = 0;
    a[0] = 0;
    for (int i = 0; i < n; i++)
      len += (size_t)snprintf(a + len, sizeof a - len, "%s%s", i ? ", " : "",
                              tname(slot_type(im, in, want[i])));
    if (s->depth < n) {
      list_types(s, 0, b, sizeof b);
      return insn_fail(im, err, pc, "stack underflow: expects %s, found %s", a, b);
    }
    list_types(s, s->depth - n, b, sizeof b);
    return insn_fail(im, err, pc, "expects %s on the stack, found %s", a, b);
  }
  if (s->depth - n < floor)
    return insn_fail(im, err, pc, "pops values its TRY handler restores");
  for (int i = 0; i < n; i++) vset(s, --s->depth, 0);
  return LANE_OK;
}

static int push_outputs(const vctx *v, uint32_t pc, vstate *s) {
  const bc_insn *in = &v->im->code[pc];
  for (const char *o = bc_ops[in->op].out; *o; o++) {
    if (s->depth >= BC_MAX_STACK)
      return insn_fail(v->im, v->err, pc, "stack depth exceeds %d", BC_MAX_STACK);
    vset(s, s->depth++, out_code(v, in, *o));
  }
  return LANE_OK;
}

/* SWITCH: merges its (empty-stack) state into every target. Merging what
 * was merged before changes nothing, so a switch used by many SWITCHes
 * merges its targets at most twice: once, and once more when a second
 * rule makes its join -2. */
static int merge_switch(vctx *v, uint32_t c, const vstate *s) {
  const bc_image *im = v->im;
  const bc_switch *sw = &im->switches[c];
  vswitch *f = &v->sw[c];
  int32_t join = f->cur == NO_CUR || f->cur == s->cur ? s->cur : -2;
  if (join == f->cur) return LANE_OK;
  f->cur = join;
  for (uint32_t k = 0; k < sw->count; k++)
    if (merge(v, im->cases[sw->first + k].target, s)) return LANE_EFORMAT;
  return merge(v, sw->otherwise, s);
}

/* Interprets one region [start,end) abstractly; v->st gets the states. */
static int type_region(vctx *v, const bc_route *route, uint32_t start, uint32_t end) {
  const bc_image *im = v->im;
  lane_error *err = v->err;
  vstate *st = v->st, s0;
  memset(&s0, 0, sizeof s0);
  s0.cur = -1;
  if (merge(v, start, &s0) != LANE_OK) return LANE_EFORMAT;
  for (uint32_t pc = start; pc < end; pc++) {
    const bc_insn *in = &im->code[pc];
    vstate s, before;
    v->work++;
    if (!st[pc].seen) continue;
    s = st[pc];
    /* Inside a TRY an error goes to the handler, whose state was merged
     * when the TRY was checked; pop_inputs keeps the stack it restores. */
    if (route && !s.nh && bc_op_can_fail(in->op)) {
      vstate e;
      if (s.cur < 0)
        return insn_fail(im, err, pc, "reached from different rules, cannot resume "
                         "after an error");
      memset(&e, 0, sizeof e);
      e.cur = s.cur;
      if (im->rules[route->first_rule + (uint32_t)s.cur].next <= pc)
        return insn_fail(im, err, pc, "rule %u resumes at instruction %u after an "
                         "error, which is not after the instruction", (unsigned)s.cur,
                         (unsigned)im->rules[route->first_rule + (uint32_t)s.cur].next);
      if (merge(v, im->rules[route->first_rule + (uint32_t)s.cur].next, &e))
        return LANE_EFORMAT;
    }
    before = s;
    if (pop_inputs(im, pc, &s, s.nh ? st[s.h].depth : 0, err) != LANE_OK)
      return LANE_EFORMAT;
    if (in->op == BC_OP_RULE) s.cur = (int32_t)in->c;
    if (bc_ops[in->op].fmt == BC_FMT_JUMP) {
      int keep = bc_ops[in->op].flow == BC_FLOW_KEEP;
      if (merge(v, in->c, keep ? &before : &s) != LANE_OK) return LANE_EFORMAT;
    }
    if (in->op == BC_OP_TRY) {
      if (s.nh >= BC_MAX_TRY)
        return insn_fail(im, err, pc, "more than %d TRY handlers active", BC_MAX_TRY);
      s.h = in->c;
      s.nh++;
    }
    if (in->op == BC_OP_ENDTRY) {   /* back to the handlers outside it */
      s.h = st[s.h].h;
      s.nh--;
    }
    if (in->op == BC_OP_SWITCH) {   /* a multi-way jump, no fall-through */
      if (merge_switch(v, in->c, &s) != LANE_OK) return LANE_EFORMAT;
      continue;
    }
    if (push_outputs(v, pc, &s) != LANE_OK) return LANE_EFORMAT;
    if (BC_OP_IS_VIEW(in->op))   /* a view of the receiver: its length class */
      vset(&s, s.depth - 1, vget(&before, before.depth - (int)strlen(bc_ops[in->op].in)));
    if (bc_ops[in->op].flow == BC_FLOW_STOP) continue;
    if (merge(v, pc + 1, &s) != LANE_OK) return LANE_EFORMAT;
  }
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Worst-case steps: longest path over the DAG
 * ------------------------------------------------------------------- */
static uint64_t sadd(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static uint64_t smul(uint64_t a, uint64_t b) {
  return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t umin(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* The steps instruction pc counts at most (vm/README.md, "Cost model"): its
 * weight, CAND's members and filters, and the work that grows with
 * lengths (bc_len_steps), bounded by what the verifier knows: the classes
 * of its string operands in st[pc], a list's bytes, a switch's longest
 * case, LANE_MAX_STRING for request strings. An instruction no path
 * reaches never runs: its weight alone. */
static uint64_t insn_steps(const vctx *v, const lane_program *p, uint32_t pc) {
  const bc_image *im = v->im;
  const bc_insn *in = &im->code[pc];
  const vstate *s = &v->st[pc];
  uint64_t w = bc_ops[in->op].weight;
  switch (in->op) {
  case BC_OP_CAND: {
    uint64_t per = sadd(1, in->b ? p->filter_steps[in->b - 1] : 0);
    return sadd(w, smul(im->pools[in->c].count, per));
  }
  case BC_OP_SWITCH: {   /* binary search: each probe compares a case */
    const bc_switch *sw = &im->switches[in->c];
    uint64_t probes = 0;
    for (uint32_t n = sw->count; n; n >>= 1) probes++;
    return sadd(w, bc_len_steps(BC_OP_SWITCH, probes,
                                probes * umin(LANE_MAX_STRING, v->sw[in->c].maxlen)));
  }
  case BC_OP_SHADOW:     /* a sampled shadow hashes the model's name and req.user */
    return in->b ? sadd(w, bc_len_steps(BC_OP_SHADOW,
                                        im->str[im->models[in->c].name].len, LANE_MAX_STRING))
                 : w;
  case BC_OP_BUDGET: {   /* the key is hashed */
    uint32_t f = im->budgets[in->c].key_field;
    int str = f != BC_NONE && im->fields[f].type == LANE_T_STRING;
    return sadd(w, bc_len_steps(BC_OP_BUDGET, str ? LANE_MAX_STRING : 0, 0));
  }
  case BC_OP_ITER: case BC_OP_ITER_N:   /* a run of the region per entry (iter_bound) */
    return sadd(w, v->iter_total[in->b - 1]);
  case BC_OP_MAP_GET: case BC_OP_MAP_HAS: case BC_OP_LIST_GET: case BC_OP_LIST_HAS:
    return sadd(w, bc_len_steps(in->op, LANE_MAX_MAP, 0));
  case BC_OP_IN_LIST: {
    const bc_list *l = &im->lists[in->c];
    uint64_t bytes = v->list_bytes[in->c];
    if (s->seen && l->type == LANE_T_STRING) bytes = umin(bytes, smul(l->count, vbound(s, 1)));
    return sadd(w, bc_len_steps(BC_OP_IN_LIST, l->count, bytes));
  }
  case BC_OP_EQ_S: case BC_OP_NE_S: case BC_OP_LT_S: case BC_OP_LE_S: case BC_OP_GT_S:
  case BC_OP_GE_S: case BC_OP_S_STARTS: case BC_OP_S_ENDS: case BC_OP_S_CONTAINS:
  case BC_OP_S_CHARAT: case BC_OP_S_SUBSTR: case BC_OP_S_INDEX: case BC_OP_S_LASTINDEX:
    return s->seen ? sadd(w, bc_len_steps(in->op, vbound(s, 2), vbound(s, 1))) : w;
  case BC_OP_S_SIZE: case BC_OP_BUCKET_S: case BC_OP_S_TRIM: case BC_OP_S2I: case BC_OP_S2U:
  case BC_OP_S2B: case BC_OP_S_LOWER: case BC_OP_S_UPPER: case BC_OP_S2D:
    return s->seen ? sadd(w, bc_len_steps(in->op, vbound(s, 1), 0)) : w;
  case BC_OP_I2S: case BC_OP_U2S: case BC_OP_D2S: case BC_OP_TS2S: case BC_OP_DUR2S:
  case BC_OP_TS_PART:
    return sadd(w, bc_len_steps(in->op, 0, 0));
  case BC_OP_TS_PARSE: case BC_OP_DUR_PARSE:
    return s->seen ? sadd(w, bc_len_steps(in->op, vbound(s, 1), 0)) : w;
  case BC_OP_S_MATCH:
    return s->seen ? sadd(w, bc_len_steps(in->op, vbound(s, 1),
                                          in->b < p->nre ? p->re_states[in->b] : 0)) : w;
  case BC_OP_S_CAT:   /* copies both: at most a string's limit, or it fails first */
    return s->seen ? sadd(w, bc_len_steps(in->op, umin(sadd(vbound(s, 2), vbound(s, 1)),
                                                     LANE_MAX_STRING), 0)) : w;
  case BC_OP_S_REPLACE: case BC_OP_S_REPLACE_N: {   /* s and o read, the result written */
    int k = in->op == BC_OP_S_REPLACE_N;
    return s->seen ? sadd(w, bc_len_steps(in->op, sadd(vbound(s, 3 + k), vbound(s, 2 + k)),
                                          LANE_MAX_STRING)) : w;
  }
  case BC_OP_S_SPLIT_N: case BC_OP_S_SPLIT_HAS: case BC_OP_S_SPLIT_GET: {
    /* s, sep (then i): the bytes searched, and a part per byte at most */
    int k = in->op == BC_OP_S_SPLIT_GET;
    return s->seen ? sadd(w, sadd(bc_len_steps(in->op, vbound(s, 2 + k), vbound(s, 1 + k)),
                                  smul(BC_COST_PART, sadd(vbound(s, 2 + k), 1)))) : w;
  }
  case BC_OP_LIST_JOIN:   /* the list read, the result written */
    return sadd(w, bc_len_steps(in->op, LANE_MAX_MAP, LANE_MAX_STRING));
  case BC_OP_S_SUBSTR2: case BC_OP_S_INDEX_AT: case BC_OP_S_LASTINDEX_AT:
    return s->seen ? sadd(w, bc_len_steps(in->op, vbound(s, 3), vbound(s, 2))) : w;
  default:
    return w;
  }
}

static uint64_t region_steps(vctx *v, const lane_program *p, const bc_route *route,
                             uint32_t start, uint32_t end) {
  const bc_image *im = v->im;
  const vstate *st = v->st;
  uint64_t *dp = v->dp;
  for (uint32_t pc = end; pc-- > start;) {
    const bc_insn *in = &im->code[pc];
    uint64_t w = insn_steps(v, p, pc), best = 0;
    v->work++;
    if (bc_ops[in->op].flow != BC_FLOW_STOP) best = dp[pc + 1];
    if (bc_ops[in->op].fmt == BC_FMT_JUMP && dp[in->c] > best) best = dp[in->c];
    if (in->op == BC_OP_SWITCH) {
      /* Its targets are after every SWITCH that uses it, in the one region
       * they all are in: their longest paths are final by the first (last
       * in the code) of them. */
      const bc_switch *sw = &im->switches[in->c];
      vswitch *f = &v->sw[in->c];
      if (!f->known) {
        f->best = dp[sw->otherwise];
        for (uint32_t k = 0; k < sw->count; k++, v->work++)
          if (dp[im->cases[sw->first + k].target] > f->best)
            f->best = dp[im->cases[sw->first + k].target];
        f->known = 1;
      }
      best = f->best;
    }
    if (bc_op_can_fail(in->op) && st[pc].seen && st[pc].nh) {
      if (dp[st[pc].h] > best) best = dp[st[pc].h];
    } else if (route && bc_op_can_fail(in->op) && st[pc].seen && st[pc].cur >= 0) {
      uint32_t next = im->rules[route->first_rule + (uint32_t)st[pc].cur].next;
      if (dp[next] > best) best = dp[next];
    }
    dp[pc] = sadd(w, best);
  }
  return dp[start];
}

/* The worst case of one ITER over iteration region i: a run per entry,
 * each run as long as its entry's strings allow. At most
 * BC_MAX_MAP_ENTRIES runs of the region typed with every entry string a
 * request string's (filter_steps[i]); but a map or list holds at most
 * LANE_MAX_MAP bytes, 4 for the count and at least 8 + the longest string
 * per entry, so few entries can be long. Bucketing the entries by their
 * longest string's class k (lengths above the class below, at most
 * cls_max[k]), at most (LANE_MAX_MAP - 4) / (cls_max[k - 1] + 9) of them
 * are in class k, each run costing at most the region typed with this
 * depth's MVAR strings in class k. The bound is the lesser of the two
 * sums; the region's states are left as the first typing made them. */
static int iter_bound(vctx *v, lane_program *p, uint32_t i) {
  const bc_image *im = v->im;
  uint32_t start = im->filters[i].start, end = im->filters[i].end;
  uint64_t all = smul(BC_MAX_MAP_ENTRIES, sadd(1, p->filter_steps[i])), sum = 0;
  int top = str_class(LANE_MAX_STRING), rc = LANE_OK;
  v->mvar_depth = v->idepth[i] - 1;
  for (int k = 0; k <= top + 1 && !rc; k++) {   /* k = top + 1: the states put back */
    memset(&v->st[start], 0, (size_t)(end - start) * sizeof *v->st);
    v->mvar_cls = k <= top ? k : top;
    if (k > top) v->mvar_depth = -1;
    if ((rc = type_region(v, NULL, start, end)) != LANE_OK || k > top) break;
    uint64_t n = k ? (LANE_MAX_MAP - 4) / ((uint64_t)cls_max[k - 1] + 9) : BC_MAX_MAP_ENTRIES;
    if (n > BC_MAX_MAP_ENTRIES) n = BC_MAX_MAP_ENTRIES;
    sum = sadd(sum, smul(n, sadd(1, region_steps(v, p, NULL, start, end))));
  }
  v->mvar_depth = -1;
  v->iter_total[i] = sum < all ? sum : all;
  return rc;
}

/* ---------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------- */
static int check_tables(vctx *v) {
  int rc;
  if ((rc = check_models(v)) || (rc = check_fields(v)) || (rc = check_pools_lists(v)))
    return rc;
  rank_strings(v);
  if ((rc = check_switches(v)) || (rc = check_routes(v))) return rc;
  return LANE_OK;
}

static int verify(lane_program *p, uint64_t max_steps, uint64_t *work, int *over,
                  lane_error *err) {
  const bc_image *im = &p->im;
  unsigned char *block = NULL;
  uint64_t code_bytes = 0;
  vctx v;
  int rc;

  memset(&v, 0, sizeof v);
  v.im = im;
  v.err = err;
  v.mvar_depth = -1;
  if ((rc = vctx_alloc(&v, &block, &code_bytes)) != LANE_OK) return rc;
  rc = check_tables(&v);
  if (!rc) {
    memset(v.st, 0, (size_t)code_bytes);   /* the tables' scratch was here */
    rc = check_regions(&v);
  }
  if (!rc) rc = check_code(&v);
  if (!rc) rc = check_explain(&v);
  for (uint32_t i = 0; !rc && i < im->nfilters; i++)
    rc = type_region(&v, NULL, im->filters[i].start, im->filters[i].end);
  for (uint32_t i = 0; !rc && i < im->nroutes; i++)
    rc = type_region(&v, &im->routes[i], im->routes[i].start, im->routes[i].end);
  /* iteration regions first, each after those it runs (before it) */
  for (int iter = 1; iter >= 0; iter--)
    for (uint32_t i = 0; !rc && i < im->nfilters; i++)
      if (is_iter(im, (int32_t)i) == iter) {
        p->filter_steps[i] = region_steps(&v, p, NULL, im->filters[i].start, im->filters[i].end);
        if (iter) rc = iter_bound(&v, p, i);
      }
  p->max_steps = 0;
  for (uint32_t i = 0; !rc && i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    p->route_steps[i] = region_steps(&v, p, r, r->start, r->end);
    if (p->route_steps[i] > p->max_steps) p->max_steps = p->route_steps[i];
    if (p->route_steps[i] > max_steps && over) *over = (int)i;
    if (p->route_steps[i] > max_steps)
      rc = errf(err, LANE_ELIMIT,
                "route %s: worst case of %llu instructions exceeds the limit of %llu",
                S(im, r->name), (unsigned long long)p->route_steps[i],
                (unsigned long long)max_steps);
  }
  if (work) *work += v.work;
  free(block);
  return rc;
}

int bc_verify(lane_program *p, uint64_t max_steps, lane_error *err) {
  return verify(p, max_steps, NULL, NULL, err);
}

lane_program *bc_load_counted(const void *bytes, size_t n, const lane_load_options *opt,
                              uint64_t *work, lane_error *err) {
  return bc_load_ex(bytes, n, opt, work, NULL, err);
}

/* The patterns of matches() (S_MATCH's slot b, string c), compiled once
 * by the installed engine. A slot holds one pattern. */
static int compile_patterns(lane_program *p, lane_error *err) {
  const bc_image *im = &p->im;
  uint32_t n = 0, *of = NULL;
  for (uint32_t pc = 0; pc < im->ncode; pc++)
    if (im->code[pc].op == BC_OP_S_MATCH && im->code[pc].b + 1u > n) n = im->code[pc].b + 1u;
  if (!n) return LANE_OK;
  const lane_regex_engine *e = lane_regex_installed();
  if (!e)
    return errf(err, LANE_EARG, "the program uses matches(), and no regular-expression engine "
                "is installed: link liblane-re and call lane_regex_install(lane_regex_pcre2())");
  p->re = calloc(n, sizeof *p->re);
  p->re_states = calloc(n, sizeof *p->re_states);
  of = calloc(n, sizeof *of);
  if (!p->re || !p->re_states || !of) {
    free(of);
    return errf(err, LANE_ENOMEM, "out of memory compiling %u patterns", (unsigned)n);
  }
  p->nre = n;
  p->re_engine = e;
  int rc = LANE_OK;
  for (uint32_t pc = 0; pc < im->ncode && rc == LANE_OK; pc++) {
    const bc_insn *in = &im->code[pc];
    if (in->op != BC_OP_S_MATCH) continue;
    if (in->c >= im->nstr) continue;   /* the verifier, next, refuses it */
    if (p->re[in->b]) {
      if (of[in->b] != in->c)
        rc = insn_fail(im, err, pc, "slot %u holds another pattern", (unsigned)in->b);
      continue;
    }
    char why[160] = "";
    p->re[in->b] = e->compile(im->str[in->c].p, im->str[in->c].len, why, sizeof why);
    of[in->b] = in->c;
    if (!p->re[in->b])
      rc = insn_fail(im, err, pc, "pattern \"%.60s\": %s", im->str[in->c].p, why);
    else
      p->re_states[in->b] = e->states(p->re[in->b]);
  }
  free(of);
  return rc;
}

lane_program *bc_load_ex(const void *bytes, size_t n, const lane_load_options *opt,
                         uint64_t *work, int *over, lane_error *err) {
  if (over) *over = -1;
  size_t max_bytes = opt && opt->max_bytes ? opt->max_bytes : DEFAULT_MAX_BYTES;
  uint64_t max_steps = opt && opt->max_steps ? opt->max_steps : DEFAULT_MAX_STEPS;
  lane_program *p = bc_decode(bytes, n, max_bytes, err);
  if (!p) return NULL;
  /* patterns first: the worst case counts each one's states */
  if (compile_patterns(p, err) != LANE_OK || verify(p, max_steps, work, over, err) != LANE_OK) {
    lane_program_free(p);
    return NULL;
  }
  bc_specialize(p);
  if (err) {
    err->code = LANE_OK;
    err->line = 0;
    err->message[0] = 0;
  }
  return p;
}

lane_program *lane_load_with(const void *bytes, size_t n, const lane_load_options *opt,
                             lane_error *err) {
  return bc_load_counted(bytes, n, opt, NULL, err);
}

lane_program *lane_load(const void *bytes, size_t n, lane_error *err) {
  return lane_load_with(bytes, n, NULL, err);
}

void lane_program_free(lane_program *p) {
  if (p) {
    free(p->plan);
    free(p->fcode);
    for (uint32_t i = 0; i < p->nre; i++)
      if (p->re[i]) p->re_engine->release(p->re[i]);
    free(p->re);
    free(p->re_states);
  }
  free(p);
}

static const lane_regex_engine *_Atomic installed_engine;

void lane_regex_install(const lane_regex_engine *e) { installed_engine = e; }
const lane_regex_engine *lane_regex_installed(void) { return installed_engine; }
