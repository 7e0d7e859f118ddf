/*
 * load.c -- reads a .lanec file into a lane_program and verifies all of it.
 *
 * The loader trusts nothing. bc_decode checks the header, the section table
 * and the string table and decodes every section into arrays owned by the
 * program; bc_verify then checks every table index, every code region,
 * every operand, the stack types of every path (abstract interpretation
 * over the forward-only control flow) and the worst-case instruction count
 * of each route. The interpreter relies on all of it and checks only data.
 *
 * Messages are deterministic: they are compared byte for byte by the golden
 * tests in tests/golden/lanec/.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm.h"

#define DEFAULT_MAX_BYTES ((size_t)64 << 20)
#define DEFAULT_MAX_STEPS 1000000u

static int errf(lane_error *err, int code, const char *fmt, ...) {
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

static int decode_strings(bc_image *im, const unsigned char *idx,
                          const unsigned char *data, uint32_t ndata,
                          lane_error *err) {
  for (uint32_t i = 0; i < im->nstr; i++) {
    uint32_t off = rd32(idx + 8 * i), len = rd32(idx + 8 * i + 4);
    if ((uint64_t)off + len >= ndata)
      return errf(err, LANE_EFORMAT,
                  "string %u: offset %u + length %u is past the end of STRDATA (%u bytes)",
                  (unsigned)i, (unsigned)off, (unsigned)len, (unsigned)ndata);
    if (data[off + len] != 0)
      return errf(err, LANE_EFORMAT, "string %u: not NUL-terminated", (unsigned)i);
    im->str[i].p = (const char *)data + off;
    im->str[i].len = len;
  }
  return LANE_OK;
}

static void decode_model(bc_model *m, const unsigned char *q) {
  m->name = rd32(q); m->provider = rd32(q + 4);
  m->id = rd32(q + 8); m->region = rd32(q + 12);
  m->input = rdd(q + 16); m->output = rdd(q + 24); m->cached_input = rdd(q + 32);
  m->context = (int64_t)rd64(q + 40); m->max_output = (int64_t)rd64(q + 48);
  m->quality = rdd(q + 56); m->p50 = rdd(q + 64); m->p95 = rdd(q + 72);
  m->caps = rd32(q + 80); m->line = rd32(q + 84);
  m->cache_write = rdd(q + 88); m->reasoning_output = rdd(q + 96);
  m->long_above = (int64_t)rd64(q + 104);
  m->long_input = rdd(q + 112); m->long_output = rdd(q + 120);
  m->long_cached_input = rdd(q + 128);
  m->deprecated = rd32(q + 136);
  m->reserved = rd32(q + 140);
}

/* Decodes every section of the verified-structure file at p->bytes. */
static int decode_all(lane_program *p, const uint32_t *off, lane_error *err) {
  bc_image *im = &p->im;
  const unsigned char *b = p->bytes;
  uint32_t i;
#define AT(sec) (b + off[BC_SEC_##sec])
  for (i = 0; i < im->nkint; i++) im->kint[i] = (int64_t)rd64(AT(KINT) + 8 * i);
  for (i = 0; i < im->nkdbl; i++) im->kdbl[i] = rdd(AT(KDBL) + 8 * i);
  for (i = 0; i < im->ncaps; i++) im->caps[i] = rd32(AT(CAPS) + 4 * i);
  for (i = 0; i < im->nmodels; i++) decode_model(&im->models[i], AT(MODELS) + 144 * i);
  for (i = 0; i < im->nfields; i++) {
    const unsigned char *q = AT(FIELDS) + 8 * i;
    im->fields[i].name = rd32(q);
    im->fields[i].type = q[4];
    im->fields[i].unit = q[5];
    if (rd16(q + 6) != 0)
      return errf(err, LANE_EFORMAT, "field %u: reserved bytes must be 0", (unsigned)i);
  }
  for (i = 0; i < im->npools; i++) {
    im->pools[i].first = rd32(AT(POOLS) + 8 * i);
    im->pools[i].count = rd32(AT(POOLS) + 8 * i + 4);
  }
  for (i = 0; i < im->nmembers; i++) im->members[i] = rd32(AT(MEMBERS) + 4 * i);
  for (i = 0; i < im->nfilters; i++) {
    im->filters[i].start = rd32(AT(FILTERS) + 8 * i);
    im->filters[i].end = rd32(AT(FILTERS) + 8 * i + 4);
  }
  for (i = 0; i < im->nroutes; i++) {
    const unsigned char *q = AT(ROUTES) + 24 * i;
    bc_route *r = &im->routes[i];
    r->name = rd32(q); r->start = rd32(q + 4); r->end = rd32(q + 8);
    r->fallbacks = rd32(q + 12); r->first_rule = rd32(q + 16); r->nrules = rd32(q + 20);
  }
  for (i = 0; i < im->nrules; i++) {
    const unsigned char *q = AT(RULES) + 12 * i;
    im->rules[i].name = rd32(q); im->rules[i].line = rd32(q + 4);
    im->rules[i].next = rd32(q + 8);
  }
  for (i = 0; i < im->nlists; i++) {
    const unsigned char *q = AT(LISTS) + 12 * i;
    im->lists[i].type = rd32(q); im->lists[i].first = rd32(q + 4);
    im->lists[i].count = rd32(q + 8);
  }
  for (i = 0; i < im->nlistelems; i++) im->listelems[i] = rd32(AT(LISTELEMS) + 4 * i);
  for (i = 0; i < im->nbudgets; i++) {
    const unsigned char *q = AT(BUDGETS) + 32 * i;
    im->budgets[i].name = rd32(q); im->budgets[i].key_field = rd32(q + 4);
    im->budgets[i].limit = rdd(q + 8); im->budgets[i].window_ms = rdd(q + 16);
    im->budgets[i].flags = rd32(q + 24); im->budgets[i].reserved = rd32(q + 28);
  }
  for (i = 0; i < im->nswitches; i++) {
    const unsigned char *q = AT(SWITCHES) + 16 * i;
    im->switches[i].field = rd32(q); im->switches[i].first = rd32(q + 4);
    im->switches[i].count = rd32(q + 8); im->switches[i].otherwise = rd32(q + 12);
  }
  for (i = 0; i < im->ncases; i++) {
    im->cases[i].str = rd32(AT(CASES) + 8 * i);
    im->cases[i].target = rd32(AT(CASES) + 8 * i + 4);
  }
  for (i = 0; i < im->ncode; i++) {
    const unsigned char *q = AT(CODE) + 8 * i;
    im->code[i].op = q[0]; im->code[i].a = q[1];
    im->code[i].b = rd16(q + 2); im->code[i].c = rd32(q + 4);
  }
  if (im->lines)
    for (i = 0; i < im->ncode; i++) im->lines[i] = rd32(AT(LINES) + 4 * i);
#undef AT
  return LANE_OK;
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
  NEED(cnt[BC_SEC_STRIDX], bc_str);     NEED(cnt[BC_SEC_KINT], int64_t);
  NEED(cnt[BC_SEC_KDBL], double);       NEED(cnt[BC_SEC_CAPS], uint32_t);
  NEED(cnt[BC_SEC_MODELS], bc_model);   NEED(cnt[BC_SEC_FIELDS], bc_field);
  NEED(cnt[BC_SEC_POOLS], bc_pool);     NEED(cnt[BC_SEC_MEMBERS], uint32_t);
  NEED(cnt[BC_SEC_FILTERS], bc_filter); NEED(cnt[BC_SEC_ROUTES], bc_route);
  NEED(cnt[BC_SEC_RULES], bc_rule);     NEED(cnt[BC_SEC_LISTS], bc_list);
  NEED(cnt[BC_SEC_LISTELEMS], uint32_t); NEED(cnt[BC_SEC_BUDGETS], bc_budget);
  NEED(cnt[BC_SEC_CODE], bc_insn);      NEED(cnt[BC_SEC_LINES], uint32_t);
  NEED(cnt[BC_SEC_SWITCHES], bc_switch); NEED(cnt[BC_SEC_CASES], bc_case);
  NEED(cnt[BC_SEC_ROUTES], uint64_t);   NEED(cnt[BC_SEC_FILTERS], uint64_t);
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
#define TAKE(field, nfield, sec, type) \
  (im->nfield = cnt[BC_SEC_##sec], im->field = carve(&at, (uint64_t)im->nfield * sizeof(type)))
  TAKE(str, nstr, STRIDX, bc_str);          TAKE(kint, nkint, KINT, int64_t);
  TAKE(kdbl, nkdbl, KDBL, double);          TAKE(caps, ncaps, CAPS, uint32_t);
  TAKE(models, nmodels, MODELS, bc_model);  TAKE(fields, nfields, FIELDS, bc_field);
  TAKE(pools, npools, POOLS, bc_pool);      TAKE(members, nmembers, MEMBERS, uint32_t);
  TAKE(filters, nfilters, FILTERS, bc_filter); TAKE(routes, nroutes, ROUTES, bc_route);
  TAKE(rules, nrules, RULES, bc_rule);      TAKE(lists, nlists, LISTS, bc_list);
  TAKE(listelems, nlistelems, LISTELEMS, uint32_t);
  TAKE(budgets, nbudgets, BUDGETS, bc_budget); TAKE(code, ncode, CODE, bc_insn);
  TAKE(switches, nswitches, SWITCHES, bc_switch); TAKE(cases, ncases, CASES, bc_case);
#undef TAKE
  im->lines = carve(&at, (uint64_t)cnt[BC_SEC_LINES] * sizeof(uint32_t));
  if (!size[BC_SEC_LINES]) im->lines = NULL;
  p->route_steps = carve(&at, (uint64_t)im->nroutes * sizeof(uint64_t));
  p->filter_steps = carve(&at, (uint64_t)im->nfilters * sizeof(uint64_t));
  p->bytes = at;
  p->nbytes = n;
  memcpy(p->bytes, b, n);
  im->flags = rd16(b + 10);
  p->version = rd16(b + 8);
  p->checksum = rd64(b + 24);
  p->nsec = nsec;
  memcpy(p->sec, sec, nsec * sizeof sec[0]);
  if (decode_strings(im, p->bytes + off[BC_SEC_STRIDX], p->bytes + off[BC_SEC_STRDATA],
                     size[BC_SEC_STRDATA], err) != LANE_OK ||
      decode_all(p, off, err) != LANE_OK) {
    free(block);
    return NULL;
  }
  return p;
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

static int check_models(const bc_image *im, lane_error *err) {
  static const char *const dname[] = {
    "input price", "output price", "cached_input price", "quality", "p50", "p95",
    "cache_write price", "reasoning_output price", "long_input price",
    "long_output price", "long_cached_input price"
  };
  if (im->ncaps > BC_MAX_CAPS)
    return errf(err, LANE_EFORMAT, "%u capabilities, at most %d",
                (unsigned)im->ncaps, BC_MAX_CAPS);
  for (uint32_t i = 0; i < im->ncaps; i++) CHECK_STR("capability", i, "name", im->caps[i]);
  if (im->nmodels > LANE_MAX_MODELS)
    return errf(err, LANE_EFORMAT, "%u models, at most %d", (unsigned)im->nmodels,
                LANE_MAX_MODELS);
  for (uint32_t i = 0; i < im->nmodels; i++) {
    const bc_model *m = &im->models[i];
    double d[11] = { m->input, m->output, m->cached_input, m->quality, m->p50, m->p95,
                     m->cache_write, m->reasoning_output, m->long_input, m->long_output,
                     m->long_cached_input };
    CHECK_STR("model", i, "name", m->name);
    CHECK_STR("model", i, "provider", m->provider);
    CHECK_STR("model", i, "id", m->id);
    CHECK_STR("model", i, "region", m->region);
    CHECK_STR("model", i, "deprecated", m->deprecated);
    if (m->reserved)
      return errf(err, LANE_EFORMAT, "model %u (%s): reserved field is %u, must be 0",
                  (unsigned)i, S(im, m->name), (unsigned)m->reserved);
    for (int k = 0; k < 11; k++)
      if (!nonneg(d[k]))
        return errf(err, LANE_EFORMAT, "model %u (%s): %s %g is not a finite number >= 0",
                    (unsigned)i, S(im, m->name), dname[k], d[k]);
    if (m->context < 0 || m->max_output < 0 || m->long_above < 0)
      return errf(err, LANE_EFORMAT, "model %u (%s): negative %s",
                  (unsigned)i, S(im, m->name),
                  m->context < 0 ? "context" : m->max_output < 0 ? "max_output" : "long_above");
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

static int check_fields(const bc_image *im, lane_error *err) {
  static const struct { const char *name; int unit; } std[BC_NSTD] = {
#define BC_STD_ROW(id, name, unit) { name, unit },
    BC_STD_FIELDS(BC_STD_ROW)
#undef BC_STD_ROW
  };
  if (im->nfields > LANE_MAX_FIELDS)
    return errf(err, LANE_EFORMAT, "%u request fields, at most %d",
                (unsigned)im->nfields, LANE_MAX_FIELDS);
  if (im->nfields < BC_NSTD)
    return errf(err, LANE_EFORMAT, "%u request fields, the %d standard ones are required",
                (unsigned)im->nfields, BC_NSTD);
  for (uint32_t i = 0; i < im->nfields; i++) {
    const bc_field *f = &im->fields[i];
    CHECK_STR("field", i, "name", f->name);
    if (!bc_unit_type(f->unit))
      return errf(err, LANE_EFORMAT, "field %u (%s): unknown unit %u", (unsigned)i,
                  S(im, f->name), (unsigned)f->unit);
    if (f->type != bc_unit_type(f->unit))
      return errf(err, LANE_EFORMAT, "field %u (%s): type %u does not match unit %s",
                  (unsigned)i, S(im, f->name), (unsigned)f->type, bc_unit_name(f->unit));
    if (i < BC_NSTD && (strcmp(S(im, f->name), std[i].name) != 0 ||
                        im->str[f->name].len != strlen(std[i].name) ||
                        f->unit != std[i].unit))
      return errf(err, LANE_EFORMAT,
                  "field %u: expected standard field %s (%s), found %s (%s)",
                  (unsigned)i, std[i].name, bc_unit_name((uint32_t)std[i].unit),
                  S(im, f->name), bc_unit_name(f->unit));
    for (uint32_t j = 0; j < i; j++)
      if (same_str(im, f->name, im->fields[j].name))
        return errf(err, LANE_EFORMAT, "field %u: name %s is already field %u",
                    (unsigned)i, S(im, f->name), (unsigned)j);
  }
  return LANE_OK;
}

/* Bytewise order of two strings, shorter first on a common prefix. */
static int str_cmp(const bc_image *im, uint32_t a, uint32_t b) {
  const bc_str *x = &im->str[a], *y = &im->str[b];
  uint32_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->p, y->p, n) : 0;
  return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int check_switches(const bc_image *im, lane_error *err) {
  for (uint32_t i = 0; i < im->nswitches; i++) {
    const bc_switch *sw = &im->switches[i];
    if (sw->field >= im->nfields || im->fields[sw->field].type != LANE_T_STRING)
      return errf(err, LANE_EFORMAT, "switch %u: field %u is not a string field",
                  (unsigned)i, (unsigned)sw->field);
    if ((uint64_t)sw->first + sw->count > im->ncases)
      return errf(err, LANE_EFORMAT, "switch %u: cases [%u,+%u) out of range (%u cases)",
                  (unsigned)i, (unsigned)sw->first, (unsigned)sw->count, (unsigned)im->ncases);
    for (uint32_t k = 0; k < sw->count; k++) {
      const bc_case *c = &im->cases[sw->first + k];
      if (c->str >= im->nstr)
        return errf(err, LANE_EFORMAT, "switch %u case %u: string %u out of range (%u strings)",
                    (unsigned)i, (unsigned)k, (unsigned)c->str, (unsigned)im->nstr);
      if (k && str_cmp(im, im->cases[sw->first + k - 1].str, c->str) >= 0)
        return errf(err, LANE_EFORMAT, "switch %u: cases are not in strictly ascending order",
                    (unsigned)i);
    }
  }
  return LANE_OK;
}

static int check_pools_lists(const bc_image *im, lane_error *err) {
  for (uint32_t i = 0; i < im->nmembers; i++)
    if ((im->members[i] & BC_MEMBER_MODEL) >= im->nmodels)
      return errf(err, LANE_EFORMAT, "member %u: model index %u out of range (%u models)",
                  (unsigned)i, (unsigned)(im->members[i] & BC_MEMBER_MODEL),
                  (unsigned)im->nmodels);
  for (uint32_t i = 0; i < im->npools; i++)
    if ((uint64_t)im->pools[i].first + im->pools[i].count > im->nmembers)
      return errf(err, LANE_EFORMAT, "pool %u: members [%u,+%u) out of range (%u members)",
                  (unsigned)i, (unsigned)im->pools[i].first,
                  (unsigned)im->pools[i].count, (unsigned)im->nmembers);
  for (uint32_t i = 0; i < im->nlists; i++) {
    const bc_list *l = &im->lists[i];
    uint32_t lim;
    const char *what;
    switch (l->type) {
    case LANE_T_INT: case LANE_T_UINT: lim = im->nkint; what = "int constant"; break;
    case LANE_T_DOUBLE: lim = im->nkdbl; what = "double constant"; break;
    case LANE_T_STRING: lim = im->nstr; what = "string"; break;
    default:
      return errf(err, LANE_EFORMAT, "list %u: bad element type %u", (unsigned)i,
                  (unsigned)l->type);
    }
    if ((uint64_t)l->first + l->count > im->nlistelems)
      return errf(err, LANE_EFORMAT, "list %u: elements [%u,+%u) out of range (%u elements)",
                  (unsigned)i, (unsigned)l->first, (unsigned)l->count,
                  (unsigned)im->nlistelems);
    for (uint32_t k = 0; k < l->count; k++)
      if (im->listelems[l->first + k] >= lim)
        return errf(err, LANE_EFORMAT, "list %u element %u: %s %u out of range (%u)",
                    (unsigned)i, (unsigned)k, what,
                    (unsigned)im->listelems[l->first + k], (unsigned)lim);
  }
  for (uint32_t i = 0; i < im->nbudgets; i++) {
    const bc_budget *bu = &im->budgets[i];
    CHECK_STR("budget", i, "name", bu->name);
    if (bu->key_field != BC_NONE && bu->key_field >= im->nfields)
      return errf(err, LANE_EFORMAT, "budget %u (%s): key field %u out of range (%u fields)",
                  (unsigned)i, S(im, bu->name), (unsigned)bu->key_field,
                  (unsigned)im->nfields);
    if ((bu->flags & ~BC_BUDGET_ROLLING) || bu->reserved)
      return errf(err, LANE_EFORMAT, "budget %u (%s): unknown flags 0x%x",
                  (unsigned)i, S(im, bu->name), (unsigned)(bu->flags | bu->reserved));
    if (!nonneg(bu->limit) || !nonneg(bu->window_ms))
      return errf(err, LANE_EFORMAT, "budget %u (%s): %s %g is not a finite number >= 0",
                  (unsigned)i, S(im, bu->name), nonneg(bu->limit) ? "window" : "limit",
                  nonneg(bu->limit) ? bu->window_ms : bu->limit);
  }
  return LANE_OK;
}

static int check_routes(const bc_image *im, lane_error *err) {
  for (uint32_t i = 0; i < im->nrules; i++) CHECK_STR("rule", i, "name", im->rules[i].name);
  for (uint32_t i = 0; i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    CHECK_STR("route", i, "name", r->name);
    for (uint32_t j = 0; j < i; j++)
      if (same_str(im, r->name, im->routes[j].name))
        return errf(err, LANE_EFORMAT, "route %u: name %s is already route %u",
                    (unsigned)i, S(im, r->name), (unsigned)j);
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

static int check_regions(const bc_image *im, int32_t *owner, lane_error *err) {
  uint32_t nreg = im->nroutes + im->nfilters;
  char a[96], b[96];
  for (uint32_t pc = 0; pc < im->ncode; pc++) owner[pc] = -1;
  for (uint32_t k = 0; k < nreg; k++) {
    uint32_t start, end;
    region_of(im, (int32_t)k, &start, &end);
    region_label(im, (int32_t)k, a, sizeof a);
    if (start >= end)
      return errf(err, LANE_EFORMAT, "%s: empty code region [%u,%u)", a,
                  (unsigned)start, (unsigned)end);
    if (end > im->ncode)
      return errf(err, LANE_EFORMAT,
                  "%s: code region [%u,%u) is past the end of the code (%u instructions)",
                  a, (unsigned)start, (unsigned)end, (unsigned)im->ncode);
    for (uint32_t pc = start; pc < end; pc++) {
      if (owner[pc] >= 0) {
        region_label(im, owner[pc], b, sizeof b);
        return errf(err, LANE_EFORMAT, "%s: code region [%u,%u) overlaps %s", a,
                    (unsigned)start, (unsigned)end, b);
      }
      owner[pc] = (int32_t)k;
    }
  }
  for (uint32_t pc = 0; pc < im->ncode; pc++)
    if (owner[pc] < 0)
      return errf(err, LANE_EFORMAT, "instruction %u belongs to no route or filter",
                  (unsigned)pc);
  return LANE_OK;
}

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

/* Which of a, b, c each format uses: bit 0 a, bit 1 b, bit 2 c. */
static int fmt_uses(bc_fmt f) {
  switch (f) {
  case BC_FMT_NONE: return 0;
  case BC_FMT_BOOL: case BC_FMT_MFIELD: return 1;
  case BC_FMT_BUDGET: return 5;
  case BC_FMT_CAND: return 7;
  case BC_FMT_SHADOW: return 6;
  default: return 4;
  }
}

static int check_operands(const bc_image *im, const int32_t *owner, uint32_t pc,
                          lane_error *err) {
  const bc_insn *in = &im->code[pc];
  const bc_opinfo *info = &bc_ops[in->op];
  int uses = fmt_uses(info->fmt);
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
    region_of(im, owner[pc], &start, &end);
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
  case BC_FMT_FIELD: RANGE(im->nfields, "field"); break;
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
    if ((in->a & BC_CAND_ORDER) >= BC_NORDERS ||
        (in->a & ~(BC_CAND_ORDER | BC_CAND_FITS | BC_CAND_HEALTHY)))
      return insn_fail(im, err, pc, "order and checks %u out of range", (unsigned)in->a);
    if (in->b > im->nfilters)
      return insn_fail(im, err, pc, "filter %u out of range (%u)", (unsigned)in->b - 1,
                       (unsigned)im->nfilters);
    RANGE(im->npools, "pool");
    if ((in->a & BC_CAND_ORDER) == BC_ORD_BEST) {   /* the VM stops early: sorted members */
      const bc_pool *pl = &im->pools[c];
      for (uint32_t k = 1; k < pl->count; k++) {
        uint32_t prev = im->members[pl->first + k - 1] & BC_MEMBER_MODEL;
        uint32_t cur = im->members[pl->first + k] & BC_MEMBER_MODEL;
        if (im->models[cur].quality > im->models[prev].quality)
          return insn_fail(im, err, pc, "pool %u for best() is not sorted by quality",
                           (unsigned)c);
      }
    }
    break;
  case BC_FMT_MODEL: RANGE(im->nmodels, "model"); break;
  case BC_FMT_SWITCH:
    RANGE(im->nswitches, "switch");
    region_of(im, owner[pc], &start, &end);
    for (uint32_t k = 0; k <= im->switches[c].count; k++) {
      const bc_switch *sw = &im->switches[c];
      uint32_t t = k < sw->count ? im->cases[sw->first + k].target : sw->otherwise;
      if (t <= pc || t >= end)
        return insn_fail(im, err, pc, "switch target %u is not after the instruction in "
                         "its region [%u,%u)", (unsigned)t, (unsigned)start, (unsigned)end);
    }
    break;
  case BC_FMT_SHADOW:
    if (in->b > 100)
      return insn_fail(im, err, pc, "sampled percent %u above 100", (unsigned)in->b);
    RANGE(im->nmodels, "model");
    break;
  case BC_FMT_RULE: RANGE(im->routes[owner[pc]].nrules, "rule"); break;
  }
#undef RANGE
  return LANE_OK;
}

static int check_code(const bc_image *im, const int32_t *owner, lane_error *err) {
  for (uint32_t pc = 0; pc < im->ncode; pc++) {
    const bc_insn *in = &im->code[pc];
    int in_route = (uint32_t)owner[pc] < im->nroutes;
    if (in->op >= BC_NOPS)
      return errf(err, LANE_EFORMAT, "instruction %u: unknown opcode %u", (unsigned)pc,
                  (unsigned)in->op);
    if (bc_ops[in->op].region == 'R' && !in_route)
      return insn_fail(im, err, pc, "not allowed in a filter");
    if (bc_ops[in->op].region == 'F' && in_route)
      return insn_fail(im, err, pc, "not allowed in a route");
    if (check_operands(im, owner, pc, err) != LANE_OK) return LANE_EFORMAT;
  }
  for (uint32_t i = 0; i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    if (im->code[r->start].op != BC_OP_RULE || im->code[r->start].c != 0)
      return errf(err, LANE_EFORMAT, "route %s: does not start with RULE 0", S(im, r->name));
    if (im->code[r->end - 1].op != BC_OP_NOMATCH)
      return errf(err, LANE_EFORMAT, "route %s: does not end with NOMATCH", S(im, r->name));
    for (uint32_t k = 0; k < r->nrules; k++) {
      uint32_t next = im->rules[r->first_rule + k].next;
      if (next < r->start || next >= r->end ||
          (im->code[next].op != BC_OP_RULE && next != r->end - 1))
        return errf(err, LANE_EFORMAT,
                    "route %s rule %u: resumes at instruction %u, which is not a RULE "
                    "or the route's NOMATCH", S(im, r->name), (unsigned)k, (unsigned)next);
    }
  }
  for (uint32_t i = 0; i < im->nfilters; i++)
    if (im->code[im->filters[i].end - 1].op != BC_OP_FRET)
      return errf(err, LANE_EFORMAT, "filter %u: does not end with FRET", (unsigned)i);
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Stack types: abstract interpretation over the forward-only code
 * ------------------------------------------------------------------- */

/* The abstract state before an instruction. Types are lane_type codes
 * (1 int .. 5 string), four bits per slot. */
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

static int vget(const vstate *s, int i) { return (int)(s->t[i / 16] >> (4 * (i % 16))) & 15; }

static void vset(vstate *s, int i, int ty) {
  s->t[i / 16] &= ~((uint64_t)15 << (4 * (i % 16)));
  s->t[i / 16] |= (uint64_t)ty << (4 * (i % 16));
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
  static const char mf[BC_NMFIELDS] = {
#define BC_MF_TYPE(id, t) t,
    BC_MFIELDS(BC_MF_TYPE)
#undef BC_MF_TYPE
  };
  switch (in->op) {
  case BC_OP_LOAD: return im->fields[in->c].type;
  case BC_OP_M_FIELD: return tcode(mf[in->a]);
  case BC_OP_IN_LIST: return (int)im->lists[in->c].type;
  default: return 0;
  }
}

static int slot_type(const bc_image *im, const bc_insn *in, char c) {
  return c == '*' ? star_type(im, in) : tcode(c);
}

/* Writes types of slots [from, depth) as "int, double", or "nothing". */
static void list_types(const vstate *s, int from, char *buf, size_t n) {
  size_t len = 0;
  buf[0] = 0;
  if (from >= s->depth) { snprintf(buf, n, "nothing"); return; }
  for (int i = from; i < s->depth && len < n; i++)
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i > from ? ", " : "",
                            tname(vget(s, i)));
}

static int merge(const bc_image *im, vstate *st, uint32_t to, const vstate *s,
                 lane_error *err) {
  vstate *t = &st[to];
  if (!t->seen) {
    *t = *s;
    t->seen = 1;
    return LANE_OK;
  }
  if (t->depth != s->depth || memcmp(t->t, s->t, sizeof t->t) != 0) {
    char a[80], b[80];
    list_types(t, 0, a, sizeof a);
    list_types(s, 0, b, sizeof b);
    return insn_fail(im, err, to, "paths reach it with different stacks: [%s] and [%s]",
                     a, b);
  }
  if (t->nh != s->nh || (s->nh && t->h != s->h))
    return insn_fail(im, err, to, "paths reach it inside different TRY handlers "
                     "(%u and %u active)", (unsigned)t->nh, (unsigned)s->nh);
  if (t->cur != s->cur) t->cur = -2;
  return LANE_OK;
}

static int needs_empty(int op) {
  return op == BC_OP_RULE || op == BC_OP_CAND || op == BC_OP_SHADOW ||
         op == BC_OP_ENDRULE || op == BC_OP_NOMATCH || op == BC_OP_SWITCH;
}

/* Checks inputs of the instruction at pc against s and pops them, never
 * below floor (the depth the innermost TRY handler restores). */
static int pop_inputs(const bc_image *im, uint32_t pc, vstate *s, int floor,
                      lane_error *err) {
  const bc_insn *in = &im->code[pc];
  const char *want = bc_ops[in->op].in;
  int n = (int)strlen(want), bad = 0;
  char a[120], b[120];
  size_t len = 0;
  if (needs_empty(in->op) && s->depth)
    return insn_fail(im, err, pc, "needs an empty stack, found %u value%s",
                     (unsigned)s->depth, s->depth == 1 ? "" : "s");
  if ((needs_empty(in->op) || in->op == BC_OP_FRET) && s->nh)
    return insn_fail(im, err, pc, "inside a TRY that has not ended");
  if (in->op == BC_OP_ENDTRY && !s->nh)
    return insn_fail(im, err, pc, "ENDTRY without a TRY");
  if (in->op == BC_OP_FRET && (s->depth != 1 || vget(s, 0) != LANE_T_BOOL)) {
    list_types(s, 0, a, sizeof a);
    return insn_fail(im, err, pc, "needs exactly one bool on the stack, found %s", a);
  }
  a[0] = 0;
  for (int i = 0; i < n; i++) {
    int ty = slot_type(im, in, want[i]);
    len += (size_t)snprintf(a + len, sizeof a - len, "%s%s", i ? ", " : "", tname(ty));
    if (i + s->depth - n >= 0 && vget(s, s->depth - n + i) != ty) bad = 1;
  }
  if (s->depth < n) {
    list_types(s, 0, b, sizeof b);
    return insn_fail(im, err, pc, "stack underflow: expects %s, found %s", a, b);
  }
  if (bad) {
    list_types(s, s->depth - n, b, sizeof b);
    return insn_fail(im, err, pc, "expects %s on the stack, found %s", a, b);
  }
  if (s->depth - n < floor)
    return insn_fail(im, err, pc, "pops values its TRY handler restores");
  for (int i = 0; i < n; i++) vset(s, --s->depth, 0);
  return LANE_OK;
}

static int push_outputs(const bc_image *im, uint32_t pc, vstate *s, lane_error *err) {
  const bc_insn *in = &im->code[pc];
  for (const char *o = bc_ops[in->op].out; *o; o++) {
    if (s->depth >= BC_MAX_STACK)
      return insn_fail(im, err, pc, "stack depth exceeds %d", BC_MAX_STACK);
    vset(s, s->depth++, slot_type(im, in, *o));
  }
  return LANE_OK;
}

/* Interprets one region [start,end) abstractly; st[] gets the states. */
static int type_region(const bc_image *im, const bc_route *route, uint32_t start,
                       uint32_t end, vstate *st, lane_error *err) {
  vstate s0;
  memset(&s0, 0, sizeof s0);
  s0.cur = -1;
  if (merge(im, st, start, &s0, err) != LANE_OK) return LANE_EFORMAT;
  for (uint32_t pc = start; pc < end; pc++) {
    const bc_insn *in = &im->code[pc];
    vstate s, before;
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
      if (merge(im, st, im->rules[route->first_rule + (uint32_t)s.cur].next, &e, err))
        return LANE_EFORMAT;
    }
    before = s;
    if (pop_inputs(im, pc, &s, s.nh ? st[s.h].depth : 0, err) != LANE_OK)
      return LANE_EFORMAT;
    if (in->op == BC_OP_RULE) s.cur = (int32_t)in->c;
    if (bc_ops[in->op].fmt == BC_FMT_JUMP) {
      int keep = in->op == BC_OP_JF_KEEP || in->op == BC_OP_JT_KEEP;
      if (merge(im, st, in->c, keep ? &before : &s, err) != LANE_OK) return LANE_EFORMAT;
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
      const bc_switch *sw = &im->switches[in->c];
      for (uint32_t k = 0; k < sw->count; k++)
        if (merge(im, st, im->cases[sw->first + k].target, &s, err)) return LANE_EFORMAT;
      if (merge(im, st, sw->otherwise, &s, err)) return LANE_EFORMAT;
      continue;
    }
    if (push_outputs(im, pc, &s, err) != LANE_OK) return LANE_EFORMAT;
    if (in->op == BC_OP_JMP || in->op == BC_OP_NOMATCH || in->op == BC_OP_FRET)
      continue;
    if (merge(im, st, pc + 1, &s, err) != LANE_OK) return LANE_EFORMAT;
  }
  return LANE_OK;
}

/* ---------------------------------------------------------------------
 * Worst-case instruction counts: longest path over the DAG
 * ------------------------------------------------------------------- */
static uint64_t sadd(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static uint64_t smul(uint64_t a, uint64_t b) {
  return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t region_steps(const lane_program *p, const bc_route *route, uint32_t start,
                             uint32_t end, const vstate *st, uint64_t *dp) {
  const bc_image *im = &p->im;
  for (uint32_t pc = end; pc-- > start;) {
    const bc_insn *in = &im->code[pc];
    uint64_t w = bc_ops[in->op].weight, best = 0;
    if (in->op == BC_OP_CAND) {
      uint64_t per = sadd(1, in->b ? p->filter_steps[in->b - 1] : 0);
      w = sadd(w, smul(im->pools[in->c].count, per));
    }
    if (in->op != BC_OP_JMP && in->op != BC_OP_NOMATCH && in->op != BC_OP_FRET &&
        in->op != BC_OP_SWITCH)
      best = dp[pc + 1];
    if (bc_ops[in->op].fmt == BC_FMT_JUMP && dp[in->c] > best) best = dp[in->c];
    if (in->op == BC_OP_SWITCH) {
      const bc_switch *sw = &im->switches[in->c];
      best = dp[sw->otherwise];
      for (uint32_t k = 0; k < sw->count; k++)
        if (dp[im->cases[sw->first + k].target] > best) best = dp[im->cases[sw->first + k].target];
      /* binary search: about log2(count) string compares */
      for (uint32_t n = sw->count; n > 1; n >>= 1) w = sadd(w, 1);
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

/* ---------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------- */
int bc_verify(lane_program *p, uint64_t max_steps, lane_error *err) {
  const bc_image *im = &p->im;
  size_t per = sizeof(int32_t) + sizeof(vstate) + sizeof(uint64_t);
  unsigned char *tmp;
  int32_t *owner;
  vstate *st;
  uint64_t *dp;
  int rc;

  if ((rc = check_models(im, err)) || (rc = check_fields(im, err)) ||
      (rc = check_pools_lists(im, err)) || (rc = check_switches(im, err)) ||
      (rc = check_routes(im, err)))
    return rc;
  tmp = calloc(im->ncode ? im->ncode : 1, per);
  if (!tmp) return errf(err, LANE_ENOMEM, "out of memory verifying %u instructions",
                        (unsigned)im->ncode);
  st = (vstate *)tmp;
  dp = (uint64_t *)(tmp + (size_t)im->ncode * sizeof(vstate));
  owner = (int32_t *)(tmp + (size_t)im->ncode * (sizeof(vstate) + sizeof(uint64_t)));
  rc = check_regions(im, owner, err);
  if (!rc) rc = check_code(im, owner, err);
  for (uint32_t i = 0; !rc && i < im->nfilters; i++)
    rc = type_region(im, NULL, im->filters[i].start, im->filters[i].end, st, err);
  for (uint32_t i = 0; !rc && i < im->nroutes; i++)
    rc = type_region(im, &im->routes[i], im->routes[i].start, im->routes[i].end, st, err);
  for (uint32_t i = 0; !rc && i < im->nfilters; i++)
    p->filter_steps[i] = region_steps(p, NULL, im->filters[i].start, im->filters[i].end,
                                      st, dp);
  p->max_steps = 0;
  for (uint32_t i = 0; !rc && i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    p->route_steps[i] = region_steps(p, r, r->start, r->end, st, dp);
    if (p->route_steps[i] > p->max_steps) p->max_steps = p->route_steps[i];
    if (p->route_steps[i] > max_steps)
      rc = errf(err, LANE_ELIMIT,
                "route %s: worst case of %llu instructions exceeds the limit of %llu",
                S(im, r->name), (unsigned long long)p->route_steps[i],
                (unsigned long long)max_steps);
  }
  free(tmp);
  return rc;
}

lane_program *lane_load_with(const void *bytes, size_t n, const lane_load_options *opt,
                             lane_error *err) {
  size_t max_bytes = opt && opt->max_bytes ? opt->max_bytes : DEFAULT_MAX_BYTES;
  uint64_t max_steps = opt && opt->max_steps ? opt->max_steps : DEFAULT_MAX_STEPS;
  lane_program *p = bc_decode(bytes, n, max_bytes, err);
  if (!p) return NULL;
  if (bc_verify(p, max_steps, err) != LANE_OK) {
    free(p);
    return NULL;
  }
  if (err) {
    err->code = LANE_OK;
    err->line = 0;
    err->message[0] = 0;
  }
  return p;
}

lane_program *lane_load(const void *bytes, size_t n, lane_error *err) {
  return lane_load_with(bytes, n, NULL, err);
}

void lane_program_free(lane_program *p) { free(p); }
