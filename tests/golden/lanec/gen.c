/*
 * gen.c -- writes the hostile .lanec files of this folder and the exact
 * error message lane_load must give for each (NAME.lanec, NAME.expect).
 *
 * Each case starts from one valid program, built with asm.h and encoded by
 * bc_encode, and breaks one thing: in the image before encoding, or in the
 * bytes after, resealing the checksum so the loader's deeper checks are
 * reached. The expected messages are written here by hand, not taken from
 * the loader. See README.md for how to rebuild.
 */
#include <math.h>
#include <stdarg.h>

#include "asm.h"

static const char *dir;
static int ncases;
static uint32_t base_nstr_cache;  /* strings of the base program */
static uint32_t base_nstr(void) { return base_nstr_cache; }

/* Interesting instructions of the base program. */
static uint32_t pc_fm, pc_fge, pc_fret, pc_rule0, pc_load_images, pc_push0, pc_gt,
                pc_jf0, pc_endrule0, pc_rule1, pc_in_list, pc_rule2, pc_nomatch;

static la *base(void) {
  la *a = la_new();
  uint32_t team = la_field(a, "team", BC_U_STRING), vision = la_cap(a, "vision");
  uint32_t m0 = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 1u << vision);
  uint32_t m1 = la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  uint32_t pool = la_pool(a, 2, (uint32_t[]){ m0, m1 | BC_MEMBER_CHECK });
  uint32_t list = la_list_str(a, 2, (const char *const[]){ "red", "blue" });
  uint32_t f = la_filter(a), j;
  pc_fm = la_op(a, BC_OP_M_FIELD, BC_MF_QUALITY, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.5));
  pc_fge = la_op(a, BC_OP_GE_D, 0, 0, 0);
  pc_fret = la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 1);
  a->line = 10;
  pc_rule0 = la_rule(a, "req.images > 0");
  pc_load_images = la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  pc_push0 = la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  pc_gt = la_op(a, BC_OP_GT_I, 0, 0, 0);
  pc_jf0 = j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f + 1, pool);
  pc_endrule0 = la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  a->line = 11;
  pc_rule1 = la_rule(a, "req.team in [\"red\", \"blue\"]");
  la_op(a, BC_OP_LOAD, 0, 0, team);
  pc_in_list = la_op(a, BC_OP_IN_LIST, 0, 0, list);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  a->line = 12;
  pc_rule2 = la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  pc_nomatch = a->im.ncode - 1;
  return a;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void reseal(unsigned char *b, size_t n) {
  uint64_t h = bc_checksum(b, n);
  for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)(h >> (8 * i));
}

/* The section table entry of section id (and its index), or NULL. */
static unsigned char *entry(unsigned char *b, uint32_t id, uint32_t *index) {
  uint32_t n = get32(b + 12);
  for (uint32_t i = 0; i < n; i++)
    if (get32(b + 32 + 12 * i) == id) {
      if (index) *index = i;
      return b + 32 + 12 * i;
    }
  fprintf(stderr, "gen: no section %u\n", (unsigned)id);
  exit(1);
}

static void emit(const char *name, const unsigned char *b, size_t n, const char *fmt, ...) {
  char path[4096], msg[512];
  FILE *f;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(path, sizeof path, "%s/%s.lanec", dir, name);
  if (!(f = fopen(path, "wb")) || fwrite(b, 1, n, f) != n || fclose(f)) {
    perror(path);
    exit(1);
  }
  snprintf(path, sizeof path, "%s/%s.expect", dir, name);
  if (!(f = fopen(path, "w")) || fprintf(f, "%s\n", msg) < 0 || fclose(f)) {
    perror(path);
    exit(1);
  }
  ncases++;
}

static unsigned char *encode(la *a, size_t *n) {
  unsigned char *b = la_bytes(a, n);
  free(a);
  return b;
}

/* Cases that break the image before encoding. */
static void image_cases(void) {
  la *a;
  unsigned char *b;
  size_t n;

#define CASE(name, mutate, ...) \
  do { a = base(); mutate; b = encode(a, &n); emit(name, b, n, __VA_ARGS__); free(b); } while (0)
  CASE("string_index", a->routes[0].name = 999,
       "route 0 name: string index 999 out of range (%u strings)", (unsigned)base_nstr());
  CASE("unknown_opcode", a->code[pc_gt].op = 200,
       "instruction %u: unknown opcode 200", (unsigned)pc_gt);
  CASE("backward_jump", a->code[pc_jf0].c = pc_load_images,
       "instruction %u (JF): jump target %u is not after the instruction",
       (unsigned)pc_jf0, (unsigned)pc_load_images);
  CASE("jump_out_of_region", a->code[pc_jf0].c = pc_nomatch + 1,
       "instruction %u (JF): jump target %u is outside its region [%u,%u)",
       (unsigned)pc_jf0, (unsigned)pc_nomatch + 1, (unsigned)pc_rule0,
       (unsigned)pc_nomatch + 1);
  CASE("stack_underflow", a->code[pc_in_list].op = BC_OP_EQ_S; a->code[pc_in_list].c = 0,
       "instruction %u (EQ_S): stack underflow: expects string, string, found string",
       (unsigned)pc_in_list);
  CASE("type_mismatch", a->code[pc_push0].op = BC_OP_PUSH_D,
       "instruction %u (GT_I): expects int, int on the stack, found int, double",
       (unsigned)pc_gt);
  CASE("missing_nomatch", a->code[pc_nomatch].op = BC_OP_ENDRULE,
       "route chat: does not end with NOMATCH");
  CASE("fallbacks_too_large", a->routes[0].fallbacks = 9,
       "route chat: 9 fallbacks, at most 8");
  CASE("bad_pool_model", a->members[1] = 77 | BC_MEMBER_CHECK,
       "member 1: model index 77 out of range (2 models)");
  CASE("nan_price", a->models[1].input = NAN,
       "model 1 (acme.small): input price nan is not a finite number >= 0");
  CASE("negative_quality", a->models[0].quality = -0.5,
       "model 0 (acme.big): quality -0.5 is not a finite number >= 0");
  CASE("nonstd_fields", a->fields[0].name = a->fields[1].name,
       "field 0: expected standard field task (string), found tier (string)");
  CASE("fret_stack", a->code[pc_fge].op = BC_OP_PUSH_B; a->code[pc_fge].a = 1,
       "instruction %u (FRET): needs exactly one bool on the stack, found double, double, bool",
       (unsigned)pc_fret);
  CASE("cand_in_filter", a->code[pc_fm].op = BC_OP_CAND,
       "instruction %u (CAND): not allowed in a filter", (unsigned)pc_fm);
  CASE("model_op_in_route", a->code[pc_load_images].op = BC_OP_M_COST;
       a->code[pc_load_images].c = 0,
       "instruction %u (M_COST): not allowed in a route", (unsigned)pc_load_images);
  CASE("unused_operand", a->code[pc_endrule0].a = 3,
       "instruction %u (ENDRULE): unused operand a is 3, must be 0", (unsigned)pc_endrule0);
  CASE("code_not_covered", a->filters[0].end = pc_fret,
       "instruction %u belongs to no route or filter", (unsigned)pc_fret);
  CASE("rule_next", a->rules[0].next = pc_load_images,
       "route chat rule 0: resumes at instruction %u, which is not a RULE or the "
       "route's NOMATCH", (unsigned)pc_load_images);
  CASE("rule_out_of_range", a->code[pc_rule1].c = 7,
       "instruction %u (RULE): rule 7 out of range (3)", (unsigned)pc_rule1);
  CASE("not_rule_zero", a->code[pc_rule0].c = 1,
       "route chat: does not start with RULE 0");
  CASE("rule_needs_empty_stack", a->code[pc_jf0].op = BC_OP_JMP;
       a->code[pc_jf0].c = pc_rule1,
       "instruction %u (RULE): needs an empty stack, found 1 value", (unsigned)pc_rule1);
  CASE("paths_disagree", a->code[pc_jf0].op = BC_OP_JF_KEEP,
       "instruction %u (RULE): paths reach it with different stacks: [bool] and [nothing]",
       (unsigned)pc_rule1);
  CASE("best_unsorted", a->code[pc_rule2 + 1].a = BC_ORD_BEST;
       a->members[0] = 1 | BC_MEMBER_CHECK; a->members[1] = 0,
       "instruction %u (CAND): pool 0 for best() is not sorted by quality",
       (unsigned)pc_rule2 + 1);
  CASE("endtry_without_try", a->code[pc_endrule0].op = BC_OP_ENDTRY,
       "instruction %u (ENDTRY): ENDTRY without a TRY", (unsigned)pc_endrule0);
  CASE("try_paths_disagree", a->code[pc_endrule0].op = BC_OP_TRY;
       a->code[pc_endrule0].c = pc_rule1,
       "instruction %u (RULE): paths reach it inside different TRY handlers (0 and 1 "
       "active)", (unsigned)pc_rule1);
  CASE("try_pop_below_handler", a->code[pc_load_images].op = BC_OP_PUSH_B;
       a->code[pc_load_images].a = 1; a->code[pc_load_images].c = 0;
       a->code[pc_push0].op = BC_OP_TRY; a->code[pc_push0].c = pc_rule1;
       a->code[pc_gt].op = BC_OP_NOT,
       "instruction %u (NOT): pops values its TRY handler restores", (unsigned)pc_gt);
  CASE("bad_flags", a->im.flags = 1, "unknown header flags 0x0001");
  {
    static uint32_t caps[33];
    CASE("too_many_caps", a->im.ncaps = 33; a->im.caps = caps, "33 capabilities, at most 32");
  }
#undef CASE
}

/* A route indexed by a SWITCH on req.tier, as the emitter writes it for a
 * run of rules: case "a" continues after the SWITCH (rule 0), case "b"
 * goes to rule 1, anything else to rule 2 (otherwise). */
static bc_switch sw_tab[1];
static bc_case sw_cases[2];
static uint32_t pc_sw, pc_sw_rule1, pc_sw_rule2, pc_sw_end;

static la *switch_base(void) {
  la *a = la_new();
  uint32_t m = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m }), j0, j1;
  la_route(a, "indexed", 0);
  a->line = 20;
  la_rule(a, "req.tier == \"a\"");
  pc_sw = la_op(a, BC_OP_SWITCH, 0, 0, 0);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_TIER);
  la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, "a"));
  la_op(a, BC_OP_EQ_S, 0, 0, 0);
  j0 = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  a->line = 21;
  pc_sw_rule1 = la_rule(a, "req.tier == \"b\"");
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_TIER);
  la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, "b"));
  la_op(a, BC_OP_EQ_S, 0, 0, 0);
  j1 = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  a->line = 22;
  pc_sw_rule2 = la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  pc_sw_end = a->im.ncode;
  a->code[j0].c = pc_sw_rule2;     /* rule 0 does not decide: the run's end */
  a->code[j1].c = pc_sw_rule2;
  a->rules[0].next = pc_sw_rule2;
  sw_cases[0] = (bc_case){ la_str(a, "a"), pc_sw + 1 };
  sw_cases[1] = (bc_case){ la_str(a, "b"), pc_sw_rule1 };
  sw_tab[0] = (bc_switch){ BC_F_TIER, 0, 2, pc_sw_rule2 };
  a->im.switches = sw_tab;
  a->im.nswitches = 1;
  a->im.cases = sw_cases;
  a->im.ncases = 2;
  return a;
}

/* Cases that break the SWITCH tables (the rule index). */
static void switch_cases(void) {
  la *a;
  unsigned char *b;
  size_t n;
  lane_error err;
  lane_program *p;

  a = switch_base();   /* the base must load, or every case below is moot */
  p = la_load(a, &err);
  if (!p) {
    fprintf(stderr, "gen: the SWITCH base does not load: %s\n", err.message);
    exit(1);
  }
  lane_program_free(p);
  free(a);
#define CASE(name, mutate, ...) \
  do { a = switch_base(); mutate; b = encode(a, &n); emit(name, b, n, __VA_ARGS__); free(b); } while (0)
  CASE("switch_unsorted", bc_case t = sw_cases[0]; sw_cases[0] = sw_cases[1]; sw_cases[1] = t,
       "switch 0: cases are not in strictly ascending order");
  CASE("switch_duplicate_case", sw_cases[1].str = sw_cases[0].str,
       "switch 0: cases are not in strictly ascending order");
  CASE("switch_target_before", sw_cases[1].target = pc_sw,
       "instruction %u (SWITCH): switch target %u is not after the instruction in its "
       "region [0,%u)", (unsigned)pc_sw, (unsigned)pc_sw, (unsigned)pc_sw_end);
  CASE("switch_target_outside", sw_tab[0].otherwise = pc_sw_end,
       "instruction %u (SWITCH): switch target %u is not after the instruction in its "
       "region [0,%u)", (unsigned)pc_sw, (unsigned)pc_sw_end, (unsigned)pc_sw_end);
  CASE("switch_field_not_string", sw_tab[0].field = BC_F_IMAGES,
       "switch 0: field %u is not a string field", (unsigned)BC_F_IMAGES);
  CASE("switch_field_out_of_range", sw_tab[0].field = 64,
       "switch 0: field 64 is not a string field");
  CASE("switch_cases_out_of_range", sw_tab[0].count = 3,
       "switch 0: cases [0,+3) out of range (2 cases)");
  CASE("switch_case_string", sw_cases[0].str = 999,
       "switch 0 case 0: string 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("switch_index", a->code[pc_sw].c = 1,
       "instruction %u (SWITCH): switch 1 out of range (1)", (unsigned)pc_sw);
#undef CASE
}

/* A program whose worst case is over the default limit: a pool of 20000
 * checked members, each running a 60-instruction filter. */
static void steps_case(void) {
  la *a = la_new();
  uint32_t m = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0), f, pool;
  static uint32_t members[20000];
  unsigned char *b;
  size_t n;
  for (int i = 0; i < 20000; i++) members[i] = m | BC_MEMBER_CHECK;
  pool = la_pool(a, 20000, members);
  f = la_filter(a);
  la_op(a, BC_OP_PUSH_B, 1, 0, 0);
  for (int i = 0; i < 58; i++) la_op(a, BC_OP_NOT, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "big", 0);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  b = encode(a, &n);
  /* RULE + CAND (1 + 20000 * (1 + 60)) + ENDRULE + NOMATCH */
  emit("steps_over_limit", b, n,
       "route big: worst case of 1220004 instructions exceeds the limit of 1000000");
  free(b);
}

/* Cases that break the bytes after encoding. */
static void byte_cases(void) {
  la *a = base();
  size_t n, i;
  unsigned char *v = la_bytes(a, &n), *b = malloc(n + 64), *e;
  uint32_t idx, off, size;
  base_nstr_cache = a->im.nstr;
  free(a);

#define FRESH() memcpy(b, v, n)
  FRESH(); b[1] = 'X';
  emit("bad_magic", b, n, "bad magic: not a .lanec file");
  emit("truncated_header", v, 20, "truncated: 20 bytes, header needs 32");
  emit("empty", v, 0, "truncated: 0 bytes, header needs 32");
  FRESH(); b[8] = LANE_FORMAT_VERSION + 1; reseal(b, n);
  emit("wrong_version", b, n, "unsupported format version %d (this VM reads version %d)",
       LANE_FORMAT_VERSION + 1, LANE_FORMAT_VERSION);
  emit("size_mismatch", v, n - 8, "size mismatch: header says %zu bytes, file has %zu",
       n, n - 8);
  FRESH(); e = entry(b, BC_SEC_CODE, NULL); b[get32(e + 4) + 1] ^= 0x40;
  emit("checksum_mismatch", b, n, "checksum mismatch: file is corrupted");
  FRESH(); put32(b + 12, 1000); reseal(b, n);
  emit("section_table_past_end", b, n,
       "section table: 1000 sections need 12032 bytes, file has %zu", n);
  FRESH(); e = entry(b, BC_SEC_CODE, NULL); size = get32(e + 8);
  put32(e + 4, (uint32_t)n - 8); reseal(b, n);
  emit("section_past_end", b, n,
       "section CODE: offset %zu + size %u is past the end of the file (%zu bytes)",
       n - 8, (unsigned)size, n);
  FRESH(); off = get32(entry(b, BC_SEC_MODELS, NULL) + 4);
  e = entry(b, BC_SEC_CODE, NULL); put32(e + 4, off); reseal(b, n);
  emit("section_overlap", b, n, "sections MODELS and CODE overlap");
  FRESH(); e = entry(b, BC_SEC_KINT, NULL); put32(e + 4, 40); reseal(b, n);
  emit("section_in_header", b, n,
       "section KINT: offset 40 is inside the header or section table");
  FRESH(); e = entry(b, BC_SEC_RULES, NULL); put32(e, BC_SEC_ROUTES); reseal(b, n);
  emit("section_duplicate", b, n, "section ROUTES appears twice");
  FRESH(); e = entry(b, BC_SEC_LINES, &idx); put32(e, 30); reseal(b, n);
  emit("unknown_section", b, n, "section table entry %u: unknown section id 30",
       (unsigned)idx);
  FRESH(); e = entry(b, BC_SEC_MODELS, NULL); size = get32(e + 8);
  put32(e + 8, size - 1); reseal(b, n);
  emit("record_size", b, n,
       "section MODELS: size %u is not a whole number of 144-byte records",
       (unsigned)size - 1);
  FRESH(); e = entry(b, BC_SEC_LINES, NULL); size = get32(e + 8);
  put32(e + 8, size - 4); reseal(b, n);
  emit("lines_count", b, n, "section LINES: %u entries for %u instructions",
       (unsigned)(size / 4 - 1), (unsigned)(size / 4));
  FRESH(); e = entry(b, BC_SEC_STRDATA, NULL);
  b[get32(e + 4) + get32(e + 8) - 1] = 'x'; reseal(b, n);
  emit("string_unterminated", b, n, "string %u: not NUL-terminated",
       (unsigned)base_nstr_cache - 1);
  FRESH(); e = entry(b, BC_SEC_STRIDX, NULL); put32(b + get32(e + 4), 5000); reseal(b, n);
  {
    uint32_t sd = get32(entry(b, BC_SEC_STRDATA, NULL) + 8);
    emit("string_past_end", b, n,
         "string 0: offset 5000 + length %u is past the end of STRDATA (%u bytes)",
         (unsigned)get32(b + get32(e + 4) + 4), (unsigned)sd);
  }
  FRESH(); e = entry(b, BC_SEC_FIELDS, NULL); b[get32(e + 4) + 6] = 1; reseal(b, n);
  emit("field_reserved", b, n, "field 0: reserved bytes must be 0");
  (void)i;
#undef FRESH
  free(b);
  free(v);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s tests/golden/lanec\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  byte_cases();
  image_cases();
  switch_cases();
  steps_case();
  fprintf(stderr, "gen: wrote %d cases to %s\n", ncases, dir);
  return 0;
}
