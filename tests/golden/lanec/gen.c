/*
 * gen.c -- writes the hostile .lanec files of this folder and the exact
 * error message lane_load must give for each (NAME.lanec, NAME.expect).
 *
 * Each case starts from one valid program, built with asm.h and encoded by
 * bc_encode, and breaks one thing: in the image before encoding, or in the
 * bytes after, resealing the checksum so the loader's deeper checks are
 * reached. The expected messages are written here by hand, not taken from
 * the loader. Every rejection message of vm/load.c has a case here
 * (t_verify checks it). See README.md for how to rebuild.
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
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
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

/* The expected message may read the mutated image, so a is freed after it. */
#define CASE(name, mutate, ...) \
  do { a = base(); mutate; b = la_bytes(a, &n); emit(name, b, n, __VA_ARGS__); free(b); \
       free(a); } while (0)
  CASE("string_index", a->routes[0].name = 999,
       "route 0 name: string index 999 out of range (%u strings)", (unsigned)base_nstr());
  CASE("unknown_opcode", a->code[pc_gt].op = 200,
       "instruction %u: unknown opcode 200", (unsigned)pc_gt);
  CASE("backward_jump", a->code[pc_jf0].c = pc_load_images,
       "instruction %u (JF): jump target %u is not after the instruction",
       (unsigned)pc_jf0, (unsigned)pc_load_images);
  /* A jump to itself is not after the instruction either: with it the VM
   * would loop for ever. */
  CASE("jump_to_itself", a->code[pc_jf0].c = pc_jf0,
       "instruction %u (JF): jump target %u is not after the instruction",
       (unsigned)pc_jf0, (unsigned)pc_jf0);
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
  CASE("route_out_count", a->im.nroute_out = 2; a->route_out[0] = 500,
       "ROUTEOUT has 2 entries for 1 routes");
  CASE("route_out_negative", a->im.nroute_out = 1; a->route_out[0] = -1,
       "route chat: output estimate -1 is not between 0 and 100000000 tokens");
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

  /* Tables: every string index the loader checks, counts, ranges. */
  CASE("cap_name_index", a->caps[0] = 999,
       "capability 0 name: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("model_name_index", a->models[1].name = 999,
       "model 1 name: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("model_provider_index", a->models[1].provider = 999,
       "model 1 provider: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("model_id_index", a->models[1].id = 999,
       "model 1 id: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("model_region_index", a->models[1].region = 999,
       "model 1 region: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("model_deprecated_index", a->models[1].deprecated = 999,
       "model 1 deprecated: string index 999 out of range (%u strings)",
       (unsigned)a->im.nstr);
  CASE("negative_context", a->models[1].context = -1,
       "model 1 (acme.small): negative context");
  CASE("caps_beyond", a->models[1].caps = 1u << 3,
       "model 1 (acme.small): capability bits 0x8 beyond the 1 capabilities");
  {
    /* 4097 models: a 590 KB file (git stores it compressed: the records repeat). */
    static bc_model models[LANE_MAX_MODELS + 1];
    CASE("too_many_models",
         for (int i = 0; i <= LANE_MAX_MODELS; i++) models[i] = a->models[i & 1];
         a->im.models = models; a->im.nmodels = LANE_MAX_MODELS + 1,
         "%d models, at most %d", LANE_MAX_MODELS + 1, LANE_MAX_MODELS);
  }
  {
    static bc_field fields[LANE_MAX_FIELDS + 1];
    CASE("too_many_fields",
         for (int i = 0; i <= LANE_MAX_FIELDS; i++)
           fields[i] = a->fields[i < BC_NSTD ? i : BC_NSTD];
         a->im.fields = fields; a->im.nfields = LANE_MAX_FIELDS + 1,
         "%d request fields, at most %d", LANE_MAX_FIELDS + 1, LANE_MAX_FIELDS);
  }
  CASE("too_few_fields", a->im.nfields = BC_NSTD - 1,
       "%d request fields, the %d standard ones are required", BC_NSTD - 1, BC_NSTD);
  CASE("field_name_index", a->fields[BC_NSTD].name = 999,
       "field %d name: string index 999 out of range (%u strings)", BC_NSTD,
       (unsigned)a->im.nstr);
  CASE("field_unknown_unit", a->fields[BC_NSTD].unit = 99,
       "field %d (team): unknown unit 99", BC_NSTD);
  CASE("field_type_unit", a->fields[BC_NSTD].type = LANE_T_INT,
       "field %d (team): type 1 does not match unit string", BC_NSTD);
  CASE("field_duplicate", a->fields[BC_NSTD].name = a->fields[BC_F_TIER].name,
       "field %d: name tier is already field %d", BC_NSTD, BC_F_TIER);
  CASE("pool_out_of_range", a->pools[0].count = 3,
       "pool 0: members [0,+3) out of range (2 members)");
  CASE("list_bad_type", a->lists[0].type = LANE_T_BOOL, "list 0: bad element type 4");
  CASE("list_out_of_range", a->lists[0].count = 3,
       "list 0: elements [0,+3) out of range (2 elements)");
  CASE("list_element", a->listelems[1] = 999,
       "list 0 element 1: string 999 out of range (%u)", (unsigned)a->im.nstr);
  CASE("budget_name_index", la_budget(a, "daily", BC_NONE, 100); a->budgets[0].name = 999,
       "budget 0 name: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("budget_key_field", la_budget(a, "daily", 99, 100),
       "budget 0 (daily): key field 99 out of range (%d fields)", BC_NSTD + 1);
  CASE("budget_key_map", la_budget(a, "daily", BC_NSTD, 100); a->fields[BC_NSTD].type = LANE_T_MAP,
       "budget 0 (daily): key field team is a map");
  CASE("load_map_field", a->fields[BC_NSTD].type = LANE_T_MAP,
       "instruction %u (LOAD): field team is a map", (unsigned)pc_in_list - 1);
  CASE("map_op_not_map", a->code[pc_load_images].op = BC_OP_MAP_SIZE,
       "instruction %u (MAP_SIZE): field images is neither a map nor a list",
       (unsigned)pc_load_images);
  CASE("budget_flags", la_budget(a, "daily", BC_NONE, 100); a->budgets[0].flags = 9,
       "budget 0 (daily): unknown flags 0x9");
  CASE("budget_full_both", la_budget(a, "daily", BC_NONE, 100); a->budgets[0].flags = 6,
       "budget 0 (daily): on_full is both closed and open");
  CASE("budget_limit", la_budget(a, "daily", BC_NONE, -1),
       "budget 0 (daily): limit -1 is not a finite number >= 0");
  CASE("rule_name_index", a->rules[1].name = 999,
       "rule 1 name: string index 999 out of range (%u strings)", (unsigned)a->im.nstr);
  CASE("route_duplicate",
       la_route(a, "chat", 0); la_rule(a, "otherwise");
       la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, 0); la_op(a, BC_OP_ENDRULE, 0, 0, 0);
       la_route_end(a),
       "route 1: name chat is already route 0");
  CASE("route_no_rules", a->routes[0].nrules = 0, "route chat: has no rules");
  CASE("route_rules_out_of_range", a->routes[0].nrules = 4,
       "route chat: rules [0,+4) out of range (3 rules)");

  /* Code regions. */
  CASE("region_empty", a->filters[0].end = a->filters[0].start,
       "filter 0: empty code region [0,0)");
  CASE("region_past_end", a->routes[0].end = pc_nomatch + 2,
       "route chat: code region [%u,%u) is past the end of the code (%u instructions)",
       (unsigned)pc_rule0, (unsigned)pc_nomatch + 2, (unsigned)pc_nomatch + 1);
  CASE("region_overlap", a->filters[0].end = pc_rule0 + 1,
       "filter 0: code region [0,%u) overlaps route chat", (unsigned)pc_rule0 + 1);

  /* Operands, per format (bc.h), in the order check_operands reads them. */
  CASE("unused_operand_b", a->code[pc_endrule0].b = 5,
       "instruction %u (ENDRULE): unused operand b is 5, must be 0", (unsigned)pc_endrule0);
  CASE("unused_operand_c", a->code[pc_endrule0].c = 7,
       "instruction %u (ENDRULE): unused operand c is 7, must be 0", (unsigned)pc_endrule0);
  CASE("int_constant_range", a->code[pc_push0].c = 99,
       "instruction %u (PUSH_I): int constant 99 out of range (1)", (unsigned)pc_push0);
  CASE("double_constant_range", a->code[pc_fm + 1].c = 99,
       "instruction %u (PUSH_D): double constant 99 out of range (1)", (unsigned)pc_fm + 1);
  CASE("string_operand_range", a->code[pc_push0].op = BC_OP_PUSH_S; a->code[pc_push0].c = 999,
       "instruction %u (PUSH_S): string 999 out of range (%u)", (unsigned)pc_push0,
       (unsigned)a->im.nstr);
  CASE("bool_operand", a->code[pc_fm + 1].op = BC_OP_PUSH_B; a->code[pc_fm + 1].a = 2;
       a->code[pc_fm + 1].c = 0,
       "instruction %u (PUSH_B): operand a is 2, must be 0 or 1", (unsigned)pc_fm + 1);
  CASE("field_operand_range", a->code[pc_load_images].c = BC_NSTD + 1,
       "instruction %u (LOAD): field %d out of range (%d)", (unsigned)pc_load_images,
       BC_NSTD + 1, BC_NSTD + 1);
  CASE("model_field_range", a->code[pc_fm].a = BC_NMFIELDS,
       "instruction %u (M_FIELD): model field %d out of range (%d)", (unsigned)pc_fm,
       BC_NMFIELDS, BC_NMFIELDS);
  CASE("cap_operand_range", a->code[pc_fm].op = BC_OP_M_CAP; a->code[pc_fm].a = 0;
       a->code[pc_fm].c = 1,
       "instruction %u (M_CAP): capability 1 out of range (1)", (unsigned)pc_fm);
  CASE("list_operand_range", a->code[pc_in_list].c = 1,
       "instruction %u (IN_LIST): list 1 out of range (1)", (unsigned)pc_in_list);
  CASE("budget_selector", la_budget(a, "daily", BC_NONE, 100);
       a->code[pc_fm + 1].op = BC_OP_BUDGET; a->code[pc_fm + 1].a = 3; a->code[pc_fm + 1].c = 0,
       "instruction %u (BUDGET): budget selector 3, must be 0, 1 or 2", (unsigned)pc_fm + 1);
  CASE("budget_operand_range", la_budget(a, "daily", BC_NONE, 100);
       a->code[pc_fm + 1].op = BC_OP_BUDGET; a->code[pc_fm + 1].c = 1,
       "instruction %u (BUDGET): budget 1 out of range (1)", (unsigned)pc_fm + 1);
  CASE("cand_order", a->code[pc_rule2 + 1].a = BC_CAND_HEALTHY << 1,
       "instruction %u (CAND): order and checks %u out of range", (unsigned)pc_rule2 + 1,
       BC_CAND_HEALTHY << 1);
  CASE("cand_filter_range", a->code[pc_rule2 + 1].b = 3,
       "instruction %u (CAND): filter 2 out of range (1)", (unsigned)pc_rule2 + 1);
  CASE("cand_pool_range", a->code[pc_rule2 + 1].c = 1,
       "instruction %u (CAND): pool 1 out of range (1)", (unsigned)pc_rule2 + 1);
  CASE("shadow_percent", a->code[pc_in_list + 2].op = BC_OP_SHADOW;
       a->code[pc_in_list + 2].a = 0; a->code[pc_in_list + 2].b = 101;
       a->code[pc_in_list + 2].c = 0,
       "instruction %u (SHADOW): sampled percent 101 above 100", (unsigned)pc_in_list + 2);
  CASE("shadow_model_range", a->code[pc_in_list + 2].op = BC_OP_SHADOW;
       a->code[pc_in_list + 2].a = 0; a->code[pc_in_list + 2].c = 2,
       "instruction %u (SHADOW): model 2 out of range (2)", (unsigned)pc_in_list + 2);

  /* Rule 0 computes true && true with AND_E, which can fail, but resumes
   * after an error at its own RULE: the error edge would go backwards. */
  CASE("error_resumes_before",
       a->code[pc_load_images].op = BC_OP_PUSH_B; a->code[pc_load_images].a = 1;
       a->code[pc_load_images].c = 0;
       a->code[pc_push0].op = BC_OP_PUSH_B; a->code[pc_push0].a = 1; a->code[pc_push0].c = 0;
       a->code[pc_gt].op = BC_OP_AND_E; a->rules[0].next = pc_rule0,
       "instruction %u (AND_E): rule 0 resumes at instruction %u after an error, which is "
       "not after the instruction", (unsigned)pc_gt, (unsigned)pc_rule0);
#undef CASE
}

/* A route indexed by a SWITCH on req.tier, as the emitter writes it for a
 * run of rules: case "a" continues after the SWITCH (rule 0), case "b"
 * goes to rule 1, anything else to rule 2 (otherwise). */
static bc_switch sw_tab[2];
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
  do { a = switch_base(); mutate; b = la_bytes(a, &n); emit(name, b, n, __VA_ARGS__); \
       free(b); free(a); } while (0)
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
  /* A second switch over the first one's cases: what the loader learns of
   * a switch is learned once, from cases that are its own. */
  CASE("switch_cases_overlap", sw_tab[1] = sw_tab[0]; a->im.nswitches = 2,
       "switch 1: cases [0,+2) overlap those of switch 0");
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

/* A program whose worst case is over the default limit only because
 * string work counts (vm/README.md, "Cost model"): req.user.contains(K),
 * for a constant K of 65536 bytes, repeated until over. Each contains()
 * may read 4096 (LANE_MAX_STRING) + 65536 bytes, a step per BC_COST_FIND,
 * and counts one more; with LOAD, PUSH_S and JF a condition costs 3 more.
 * Counted as instructions the program is a few hundred. */
static void weights_case(void) {
  static char k[65537];
  const uint32_t per = 4 + (4096 + 65536) / BC_COST_FIND, reps = 1000000 / per + 1;
  la *a = la_new();
  uint32_t m = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m }), ks;
  unsigned char *b;
  size_t n;
  memset(k, 'a', sizeof k - 1);
  ks = la_str(a, k);
  la_route(a, "r", 0);
  la_rule(a, "req.user.contains(K), repeated");
  for (uint32_t i = 0; i < reps; i++) {
    la_op(a, BC_OP_LOAD, 0, 0, BC_F_USER);
    la_op(a, BC_OP_PUSH_S, 0, 0, ks);
    la_op(a, BC_OP_S_CONTAINS, 0, 0, 0);
    la_op(a, BC_OP_JF, 0, 0, a->im.ncode + 1);
  }
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  b = encode(a, &n);
  /* RULE + reps * per + CAND (1 + 1 member) + ENDRULE + NOMATCH */
  emit("steps_weighted", b, n,
       "route r: worst case of %u instructions exceeds the limit of 1000000",
       (unsigned)(1 + reps * per + 2 + 1 + 1));
  free(b);
}

/* A program of one model, one pool and a route "r" whose code the caller
 * writes, for the cases about control flow. */
static uint32_t mini_pool;

static la *mini(void) {
  la *a = la_new();
  uint32_t m = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 0);
  mini_pool = la_pool(a, 1, (uint32_t[]){ m });
  la_route(a, "r", 0);
  return a;
}

static void emit_la(const char *name, la *a, const char *msg) {
  size_t n;
  unsigned char *b = la_bytes(a, &n);
  emit(name, b, n, "%s", msg);
  free(b);
  free(a);
}

/* Cases about stack depth, TRY handlers and where an error resumes. */
static void flow_cases(void) {
  la *a;
  uint32_t pc, j, t[BC_MAX_TRY + 1];
  char msg[256];

  /* 200 bools pushed, folded by 199 NE_B: a well-formed expression 200
   * slots deep. The verifier's state has room for BC_MAX_STACK slots, so
   * without this check it writes past its own type array. */
  a = mini();
  la_rule(a, "deep");
  for (int i = 0; i < 200; i++) la_op(a, BC_OP_PUSH_B, 1, 0, 0);
  for (int i = 0; i < 199; i++) la_op(a, BC_OP_NE_B, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, mini_pool);
  la_route_end(a);
  snprintf(msg, sizeof msg, "instruction %d (PUSH_B): stack depth exceeds %d",
           1 + BC_MAX_STACK, BC_MAX_STACK);
  emit_la("stack_too_deep", a, msg);

  /* 17 nested TRYs, each closed in turn; handler i resumes after its
   * ENDTRY, with the i handlers outside it still open. */
  a = mini();
  la_rule(a, "otherwise");
  for (int i = 0; i <= BC_MAX_TRY; i++) t[i] = la_op(a, BC_OP_TRY, 0, 0, 0);
  for (int i = BC_MAX_TRY; i >= 0; i--) {
    la_op(a, BC_OP_ENDTRY, 0, 0, 0);
    la_patch(a, t[i]);
  }
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, mini_pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  snprintf(msg, sizeof msg, "instruction %u (TRY): more than %d TRY handlers active",
           (unsigned)t[BC_MAX_TRY], BC_MAX_TRY);
  emit_la("too_many_tries", a, msg);

  /* A TRY left open across CAND, ENDRULE and a NOMATCH; its handler takes
   * another way to the route's end, so the paths never meet. */
  a = mini();
  la_rule(a, "otherwise");
  j = la_op(a, BC_OP_TRY, 0, 0, 0);
  pc = la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, mini_pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_op(a, BC_OP_NOMATCH, 0, 0, 0);
  la_patch(a, j);
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, mini_pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  snprintf(msg, sizeof msg, "instruction %u (CAND): inside a TRY that has not ended",
           (unsigned)pc);
  emit_la("try_not_ended", a, msg);

  /* Rule 0 jumps into rule 1's body past its RULE: the DIV_I there, which
   * can fail, is reached from two rules with different places to resume. */
  a = mini();
  la_rule(a, "req.images / req.images > 0");
  la_op(a, BC_OP_PUSH_B, 1, 0, 0);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, mini_pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_rule(a, "otherwise");
  la_patch(a, j);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  pc = la_op(a, BC_OP_DIV_I, 0, 0, 0);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, mini_pool);
  la_route_end(a);
  snprintf(msg, sizeof msg, "instruction %u (DIV_I): reached from different rules, cannot "
           "resume after an error", (unsigned)pc);
  emit_la("error_from_two_rules", a, msg);
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
  FRESH(); e = entry(b, BC_SEC_FIELDS, NULL); b[get32(e + 4) + 6] = 2; reseal(b, n);
  emit("field_flags", b, n, "field 0: unknown flags 0x2");
  FRESH(); e = entry(b, BC_SEC_FIELDS, NULL); b[get32(e + 4) + 8 * BC_F_INPUT_TOKENS + 6] = 1;
  reseal(b, n);
  emit("field_sensitive_int", b, n, "field %d: only a string field can be sensitive",
       BC_F_INPUT_TOKENS);
  FRESH(); put32(b + 20, 7); reseal(b, n);
  emit("header_reserved", b, n, "reserved header field is 7, must be 0");
  FRESH(); put32(b + 12, BC_SEC_MAX); reseal(b, n);
  emit("too_many_sections", b, n, "section table: %d sections, at most %d", BC_SEC_MAX,
       BC_SEC_MAX - 1);
  FRESH(); e = entry(b, BC_SEC_MODELS, NULL); put32(b + get32(e + 4) + 140, 5); reseal(b, n);
  emit("model_reserved", b, n, "model 0 (acme.big): reserved field is 5, must be 0");
  /* String 1 starts inside string 0 ("task"): strings may not share
   * bytes, so the loader's work per string adds up to the file's size. */
  FRESH(); e = entry(b, BC_SEC_STRIDX, NULL); put32(b + get32(e + 4) + 8, 0); reseal(b, n);
  emit("string_overlap", b, n, "string 1: offset 0 overlaps string 0, which ends at 4");
  (void)i;
#undef FRESH
  free(b);
  free(v);
}

/* The base program with explain tables: rule 0's condition
 * `req.images > 0` as a leaf (region 1) showing `req.images` (region 2),
 * and its CAND's list naming the leaf. deep: region 2 leaves two values. */
static uint32_t pc_xret_leaf, pc_xret_value, pc_cand0;

static la *xbase(int deep) {
  la *a = base();
  uint32_t leaf = la_filter(a);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 0));
  la_op(a, BC_OP_GT_I, 0, 0, 0);
  pc_xret_leaf = la_op(a, BC_OP_XRET, LANE_T_BOOL, 0, 0);
  la_filter_end(a);
  uint32_t value = la_filter(a);
  la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  if (deep) la_op(a, BC_OP_LOAD, 0, 0, BC_F_IMAGES);
  pc_xret_value = la_op(a, BC_OP_XRET, LANE_T_INT, 0, 0);
  la_filter_end(a);
  uint32_t v = la_xnode(a, BC_X_VALUE, BC_U_INT, "req.images", value, BC_NONE, BC_NONE);
  uint32_t l = la_xnode(a, BC_X_LEAF, 0, "req.images > 0", leaf, v, BC_NONE);
  a->im.nxrules = a->im.nrules;
  for (uint32_t i = 0; i < a->im.nrules; i++) a->xrules[i] = i ? BC_NONE : l;
  a->xlist[a->im.nxlist++] = l;
  a->xsels[a->im.nxsels++] = (bc_xsel){0, 0, 0, 1};
  pc_cand0 = pc_jf0 + 1;
  return a;
}

/* Cases about the explain tables and their regions. */
static void explain_cases(void) {
  la *a;
  unsigned char *b;
  size_t n;
#define XCASE(name, mutate, ...) \
  do { a = xbase(0); mutate; b = la_bytes(a, &n); emit(name, b, n, __VA_ARGS__); free(b); \
       free(a); } while (0)
  XCASE("filter_no_fret", a->code[pc_xret_leaf].op = BC_OP_NOT; a->code[pc_xret_leaf].a = 0,
        "filter 1: does not end with FRET, XRET or IRET");
  XCASE("xret_type", a->code[pc_xret_leaf].a = 9,
        "instruction %u (XRET): type 9 out of range (1 to 5)", (unsigned)pc_xret_leaf);
  XCASE("cand_explain_region", a->code[pc_cand0].b = 2,
        "instruction %u (CAND): filter 1 does not end with FRET: an explain region is not a "
        "filter", (unsigned)pc_cand0);
  XCASE("xnode_kind", a->xnodes[0].kind = 9, "explain node 0: kind 9, unit 1, reserved 0");
  XCASE("xnode_text", a->xnodes[0].text = 999,
        "explain node 0 text: string index 999 out of range (%u strings)",
        (unsigned)a->im.nstr);
  XCASE("xnode_region", a->xnodes[0].region = 0,
        "explain node 0: region 0 is not an explain region of its type");
  XCASE("xnode_child", a->xnodes[1].a = 1, "explain node 1: a 1 is not an earlier node of its kind");
  /* a `not` naming itself: a cycle the explainer would recurse on forever */
  XCASE("xnode_cycle", la_xnode(a, BC_X_NOT, 0, "!x", BC_NONE, 2, BC_NONE),
        "explain node 2: a 2 is not an earlier node of its kind");
  XCASE("xrules_count", a->im.nxrules = 2, "XRULES has 2 entries for 3 rules");
  XCASE("xrule_node", a->xrules[0] = 0, "rule 0: explain node 0 is not a condition");
  XCASE("xsel_range", a->xsels[0].count = 5,
        "explained selection 0: rule 0 or conditions [0,+5) out of range");
  XCASE("xlist_node", a->xlist[0] = 0, "explained condition 0: node 0 is not a condition");
#undef XCASE
  a = xbase(1);
  b = la_bytes(a, &n);
  emit("xret_depth", b, n, "instruction %u (XRET): needs exactly one value on the stack, "
       "found int, int", (unsigned)pc_xret_value);
  free(b);
  free(a);
}

/* Iteration regions (a macro over a request's map): rule 1's ITER runs
 * region 1, whose ITER runs region 0 (before it); rule 2's runs region 1
 * too, at the same depth. Region 0 reads the key of the depth-1 entry. */
static uint32_t pc_iter_r1, pc_iter_r2, pc_iter_in1, pc_mvar, pc_push_b, pc_jf_r1;

static uint32_t f_meta2;

static la *ibase(void) {
  la *a = la_new();
  uint32_t mf = la_field(a, "meta", BC_U_STRING);
  a->fields[mf].type = LANE_T_MAP;
  f_meta2 = la_field(a, "meta2", BC_U_STRING);
  a->fields[f_meta2].type = LANE_T_MAP;
  la_cap(a, "vision");
  uint32_t m0 = la_model(a, "acme.m", 1, 1, 1000, 100, 0.5, 100, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m0 });
  la_filter(a);
  pc_mvar = la_op(a, BC_OP_MVAR, 1, 0, mf);
  pc_push_b = la_op(a, BC_OP_PUSH_S, 0, 0, la_str(a, "b"));
  la_op(a, BC_OP_EQ_S, 0, 0, 0);
  la_op(a, BC_OP_IRET, 0, 0, 0);
  la_filter_end(a);
  la_filter(a);
  pc_iter_in1 = la_op(a, BC_OP_ITER, 1, 1, mf);
  la_op(a, BC_OP_IRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 0);
  la_rule(a, "req.meta.all(k, req.meta.exists(j, j == \"b\"))");
  pc_iter_r1 = la_op(a, BC_OP_ITER, 0, 2, mf);
  pc_jf_r1 = la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_rule(a, "req.meta.exists(k, req.meta.exists(j, j == \"b\"))");
  pc_iter_r2 = la_op(a, BC_OP_ITER, 1, 2, mf);
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}

/* A chain of n iteration regions, each running the one before it. */
static la *ichain(int n) {
  la *a = la_new();
  uint32_t mf = la_field(a, "meta", BC_U_STRING);
  a->fields[mf].type = LANE_T_MAP;
  uint32_t m0 = la_model(a, "acme.m", 1, 1, 1000, 100, 0.5, 100, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m0 });
  for (int i = 0; i < n; i++) {
    la_filter(a);
    if (i == 0) la_op(a, BC_OP_PUSH_B, 1, 0, 0);
    else la_op(a, BC_OP_ITER, 1, i, mf);
    la_op(a, BC_OP_IRET, 0, 0, 0);
    la_filter_end(a);
  }
  la_route(a, "chat", 0);
  la_rule(a, "deep");
  la_op(a, BC_OP_ITER, 1, n, mf);
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_route_end(a);
  return a;
}

static void iter_cases(void) {
  la *a;
  unsigned char *b;
  size_t n;
  lane_error err;
  lane_program *ok = la_load(a = ibase(), &err);   /* the base is sound */
  if (!ok) {
    fprintf(stderr, "gen: the iteration base does not load: %s\n", err.message);
    exit(1);
  }
  lane_program_free(ok);
  free(a);
  ok = la_load(a = ichain(BC_MAX_ITER), &err);   /* nests as deep as allowed: only too long */
  if (ok || !strstr(err.message, "worst case")) {
    fprintf(stderr, "gen: a chain of %d: %s\n", BC_MAX_ITER, ok ? "loads" : err.message);
    exit(1);
  }
  free(a);
#define ICASE(name, mutate, ...) \
  do { a = ibase(); mutate; b = la_bytes(a, &n); emit(name, b, n, __VA_ARGS__); free(b); \
       free(a); } while (0)
  ICASE("iter_not_region", a->code[pc_iter_r1].b = 6,
        "instruction %u (ITER): region 5 is not an iteration region (a filter ending in IRET)",
        (unsigned)pc_iter_r1);
  ICASE("iter_runs_itself", a->code[pc_iter_in1].b = 2,
        "instruction %u (ITER): runs region 1 from region 1: an iteration region runs only "
        "regions before it", (unsigned)pc_iter_in1);
  ICASE("iter_two_depths", a->code[pc_iter_r2].b = 1,
        "instruction %u (ITER): runs region 0 at depth 2, another ITER at 1",
        (unsigned)pc_iter_in1);
  ICASE("iter_not_map", a->code[pc_iter_r1].c = BC_F_TIER; a->code[pc_iter_r2].c = BC_F_TIER,
        "instruction %u (ITER): iterates field tier, which is not a map or a list",
        (unsigned)pc_iter_r1);
  ICASE("iter_other_maps", a->code[pc_iter_r2].c = f_meta2,
        "instruction %u (ITER): runs region 1 over other maps than another ITER does",
        (unsigned)pc_iter_r2);
  ICASE("mvar_other_map", a->code[pc_mvar].c = f_meta2,
        "instruction %u (MVAR): reads field meta2, but the ITER at depth 1 walks meta",
        (unsigned)pc_mvar);
  /* a region no ITER runs is still checked: its ITER's region index too */
  ICASE("iter_unrun_region", a->code[pc_iter_r1].b = 1; a->code[pc_iter_r2].b = 1;
        a->code[pc_iter_in1].b = 0,
        "instruction %u (ITER): region 4294967295 is not an iteration region (a filter "
        "ending in IRET)", (unsigned)pc_iter_in1);
  ICASE("std_field_map", a->fields[BC_F_USER].type = LANE_T_MAP,
        "field %d (user): type 6 does not match unit string", BC_F_USER);
  ICASE("list_op_not_list", a->code[pc_push_b].op = BC_OP_LIST_HAS; a->code[pc_push_b].c = 0,
        "instruction %u (LIST_HAS): field %s is not a list", (unsigned)pc_push_b, "task");
  ICASE("iter_kind", a->code[pc_iter_r1].a = 3,
        "instruction %u (ITER): iteration kind 3 out of range (0 to 2)", (unsigned)pc_iter_r1);
  ICASE("mvar_which", a->code[pc_mvar].b = 2,
        "instruction %u (MVAR): MVAR reads 0 a key or 1 a value, not 2", (unsigned)pc_mvar);
  ICASE("mvar_depth", a->code[pc_mvar].a = 2,
        "instruction %u (MVAR): depth 2 is not an ITER's around this code", (unsigned)pc_mvar);
  ICASE("iter_model_op", a->code[pc_push_b].op = BC_OP_M_CAP; a->code[pc_push_b].c = 0,
        "instruction %u (M_CAP): not allowed in an iteration region, which reads no model",
        (unsigned)pc_push_b);
  ICASE("iret_in_route", a->code[pc_jf_r1].op = BC_OP_IRET; a->code[pc_jf_r1].c = 0,
        "instruction %u (IRET): only an iteration region ends in IRET", (unsigned)pc_jf_r1);
  a = ichain(BC_MAX_ITER + 1);
  b = la_bytes(a, &n);
  emit("iter_too_deep", b, n, "instruction %u (ITER): ITERs nest more than %d deep", 2u,
       BC_MAX_ITER);
  free(b);
  free(a);
}

/* TS_PART and DUR_PART: a route reading now's hour in a zone. */
static uint32_t pc_tspart;

static la *tbase(void) {
  la *a = la_new();
  uint32_t m0 = la_model(a, "acme.m", 1, 1, 1000, 100, 0.5, 100, 0);
  uint32_t pool = la_pool(a, 1, (uint32_t[]){ m0 });
  la_route(a, "chat", 0);
  la_rule(a, "now.getHours(\"America/New_York\") < 7");
  la_op(a, BC_OP_NOW, 0, 0, 0);
  pc_tspart = la_op(a, BC_OP_TS_PART, 6, 0, la_str(a, "EST5EDT,M3.2.0,M11.1.0"));
  la_op(a, BC_OP_PUSH_I, 0, 0, la_kint(a, 7));
  la_op(a, BC_OP_LT_I, 0, 0, 0);
  la_then_cand(a, BC_ORD_LISTED, 0, pool);
  la_route_end(a);
  return a;
}

static void time_cases(void) {
  la *a;
  unsigned char *b;
  size_t n;
  lane_error err;
  lane_program *ok = la_load(a = tbase(), &err);
  if (!ok) {
    fprintf(stderr, "gen: the time base does not load: %s\n", err.message);
    exit(1);
  }
  lane_program_free(ok);
  free(a);
#define TCASE(name, mutate, ...) \
  do { a = tbase(); mutate; b = la_bytes(a, &n); emit(name, b, n, __VA_ARGS__); free(b); \
       free(a); } while (0)
  TCASE("tspart_part", a->code[pc_tspart].a = 10,
        "instruction %u (TS_PART): part 10 of a timestamp out of range", (unsigned)pc_tspart);
  TCASE("tspart_zone_index", a->code[pc_tspart].c = 999,
        "instruction %u (TS_PART): zone string 999 out of range (%u)", (unsigned)pc_tspart,
        (unsigned)a->im.nstr);
  TCASE("match_string", a->code[pc_tspart].op = BC_OP_S_MATCH; a->code[pc_tspart].a = 0;
        a->code[pc_tspart].c = 999,
        "instruction %u (S_MATCH): pattern string 999 out of range (%u)", (unsigned)pc_tspart,
        (unsigned)a->im.nstr);
  TCASE("tspart_zone_long",
        a->code[pc_tspart].c = la_str(a, "<AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA>5"),
        "instruction %u (TS_PART): zone rule of 69 bytes, at most 64", (unsigned)pc_tspart);
  TCASE("tspart_zone_rule", a->code[pc_tspart].c = la_str(a, "Mars/Olympus"),
        "instruction %u (TS_PART): zone \"Mars/Olympus\" is not a POSIX TZ rule",
        (unsigned)pc_tspart);
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
  weights_case();
  flow_cases();
  explain_cases();
  iter_cases();
  time_cases();
  fprintf(stderr, "gen: wrote %d cases to %s\n", ncases, dir);
  return 0;
}
