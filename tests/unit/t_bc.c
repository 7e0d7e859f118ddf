/*
 * t_bc.c -- the .lanec format: encode -> load round trip, checksum, hashes.
 */
#include "tap.h"

#include "golden/lanec/asm.h"
#include "vm.h"

static la *sample(void) {
  la *a = la_new();
  uint32_t vision = la_cap(a, "vision");
  uint32_t m0 = la_model(a, "acme.big", 10, 30, 200000, 8000, 0.9, 2000, 1u << vision);
  uint32_t m1 = la_model(a, "acme.small", 1, 2, 16000, 4000, 0.6, 500, 0);
  uint32_t pool = la_pool(a, 2, (uint32_t[]){ m0, m1 | BC_MEMBER_CHECK });
  uint32_t team = la_field(a, "team", BC_U_STRING);
  uint32_t f, j;
  la_list_str(a, 2, (const char *const[]){ "red", "blue" });
  la_budget(a, "daily", BC_F_TENANT, 200);
  f = la_filter(a);
  la_op(a, BC_OP_M_FIELD, BC_MF_QUALITY, 0, 0);
  la_op(a, BC_OP_PUSH_D, 0, 0, la_kdbl(a, 0.5));
  la_op(a, BC_OP_GE_D, 0, 0, 0);
  la_op(a, BC_OP_FRET, 0, 0, 0);
  la_filter_end(a);
  la_route(a, "chat", 1);
  a->line = 10;
  la_rule(a, "req.team in [\"red\", \"blue\"]");
  la_op(a, BC_OP_LOAD, 0, 0, team);
  la_op(a, BC_OP_IN_LIST, 0, 0, 0);
  j = la_op(a, BC_OP_JF, 0, 0, 0);
  la_op(a, BC_OP_CAND, BC_ORD_CHEAPEST, (int)f + 1, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_patch(a, j);
  a->line = 11;
  la_rule(a, "otherwise");
  la_op(a, BC_OP_CAND, BC_ORD_LISTED, 0, pool);
  la_op(a, BC_OP_ENDRULE, 0, 0, 0);
  la_route_end(a);
  return a;
}

static uint64_t ref_bucket_s(const char *s) {
  return bc_splitmix64(bc_fnv1a64(s, strlen(s), BC_FNV_OFFSET)) % 100;
}

int main(void) {
  la *a = sample();
  size_t n, n2;
  unsigned char *b = la_bytes(a, &n), *b2;
  lane_error err;
  lane_program *p;

  /* hashes */
  is_int(bc_splitmix64(0) == 0xe220a8397b1dcdafull, 1, "splitmix64(0)");
  is_int(bc_splitmix64(1) == 0x910a2dec89025cc1ull, 1, "splitmix64(1)");
  is_int(bc_splitmix64(0) % 100, 35, "bucket(0) = 35%%");
  is_int(bc_splitmix64(42) % 100, 13, "bucket(42) = 13%%");
  is_int(bc_splitmix64((uint64_t)-1) % 100, 36, "bucket(-1) = 36%%");
  is_int(bc_fnv1a64("", 0, BC_FNV_OFFSET) == BC_FNV_OFFSET, 1, "fnv1a64 of nothing");
  is_int(bc_fnv1a64("alice", 5, BC_FNV_OFFSET) == 0x508b2abb65a03907ull, 1, "fnv1a64(alice)");
  is_int(ref_bucket_s(""), 8, "bucket(\"\") = 8%%");
  is_int(ref_bucket_s("alice"), 41, "bucket(\"alice\") = 41%%");
  is_int(ref_bucket_s("bob"), 56, "bucket(\"bob\") = 56%%");
  is_int(ref_bucket_s("user-123"), 13, "bucket(\"user-123\") = 13%%");

  /* file layout */
  ok(n > BC_HEADER_SIZE && memcmp(b, BC_MAGIC, 8) == 0, "magic");
  is_int(b[8] | b[9] << 8, LANE_FORMAT_VERSION, "version");
  is_int((size_t)(b[16] | b[17] << 8 | b[18] << 16 | (uint32_t)b[19] << 24), n, "size field");
  {
    uint64_t sum = 0;
    for (int i = 7; i >= 0; i--) sum = sum << 8 | b[24 + i];
    is_int(sum == bc_checksum(b, n), 1, "checksum stored at 24");
    memset(b + 24, 0xAB, 8);
    is_int(sum == bc_checksum(b, n), 1, "checksum ignores bytes 24..31");
    for (int i = 0; i < 8; i++) b[24 + i] = (unsigned char)(sum >> (8 * i));
  }

  /* round trip */
  p = lane_load(b, n, &err);
  ok(p != NULL, "valid file loads: %s", p ? "" : err.message);
  if (!p) bail("cannot continue");
  is_int(err.code, LANE_OK, "err cleared on success");
  is_int(lane_route_count(p), 1, "one route");
  is_str(lane_route_name(p, 0), "chat", "route name");
  is_int(lane_route(p, "chat"), 0, "route by name");
  is_int(lane_route(p, "nope"), -1, "unknown route");
  is_int(lane_rule_count(p, 0), 2, "two rules");
  is_str(lane_rule_name(p, 0, 2), "otherwise", "rule 2 name");
  ok(lane_rule_name(p, 0, 0) == NULL && lane_rule_name(p, 0, 3) == NULL, "rule out of range");
  is_int(lane_model_count(p), 2, "two models");
  is_str(lane_model_name(p, 1), "acme.small", "model name");
  is_str(lane_model_provider(p, 1), "acme", "model provider");
  is_str(lane_model_id(p, 1), "small", "model id");
  ok(lane_model_name(p, 2) == NULL && lane_model_name(p, -1) == NULL, "model out of range");
  is_int(lane_field_count(p), BC_NSTD + 1, "fields");
  is_int(lane_field(p, "team"), BC_NSTD, "custom field index");
  is_int(lane_field(p, "input_tokens"), BC_F_INPUT_TOKENS, "standard field index");
  is_int(lane_field_type(p, BC_F_INPUT_TOKENS), LANE_T_INT, "tokens are int");
  is_str(lane_field_unit(p, BC_F_INPUT_TOKENS), "tokens", "tokens unit");
  is_str(lane_field_unit(p, BC_F_LATENCY_BUDGET), "duration", "duration unit");
  is_str(lane_field_name(p, BC_F_TIER), "tier", "field name");
  is_int(lane_field_type(p, 99), 0, "field type out of range");
  /* worst case: rule 0: RULE LOAD IN_LIST JF CAND(1 + 2 * (1 + 4)) ENDRULE,
   * then rule 1: RULE CAND(1 + 2) ENDRULE NOMATCH */
  is_int(lane_program_max_steps(p), 4 + 11 + 1 + 1 + 3 + 1 + 1, "worst case");
  is_int(memcmp(p->im.models, a->im.models, sizeof(bc_model) * 2), 0, "models decoded");
  is_int(memcmp(p->im.code, a->im.code, sizeof(bc_insn) * a->im.ncode), 0, "code decoded");
  ok(p->im.lines && p->im.lines[0] == 1 && p->im.lines[4] == 10 && p->im.lines[a->im.ncode - 1] == 11, "lines decoded");
  ok(bc_encode(&p->im, &b2, &n2) == 0, "re-encode");
  ok(n2 == n && memcmp(b, b2, n) == 0, "re-encoded file is byte-identical");
  free(b2);
  lane_program_free(p);

  is_str(lane_status_name(LANE_EFORMAT), "LANE_EFORMAT", "status name");
  is_str(lane_status_name(LANE_ENOMATCH), "LANE_ENOMATCH", "status name");
  is_str(lane_status_name(99), "LANE_E?", "unknown status name");
  is_str(bc_ops[BC_OP_ADD_I].name, "ADD_I", "opcode table names");
  is_int(bc_ops[BC_OP_CAND].region, 'R', "opcode table regions");
  is_int(bc_ops[BC_OP_LOAD].fmt, BC_FMT_FIELD, "opcode table formats");

  /* BC_MPROPS: the stored rows tile the model record, none overlapping */
  {
    int owner[BC_RECORD_MODELS], tiled = 1;
    for (int i = 0; i < BC_RECORD_MODELS; i++) owner[i] = -1;
    for (int k = 0; k < BC_NMPROPS; k++) {
      const bc_mpinfo *mp = &bc_mprops[k];
      int size = mp->mt == 'D' || mp->mt == 'I' ? 8 : 4;
      if (mp->off < 0) continue;
      for (int i = mp->off; i < mp->off + size; i++) {
        if (i >= BC_RECORD_MODELS || owner[i] >= 0) {
          diag("%s overlaps %s at byte %d", mp->id, i < BC_RECORD_MODELS ? bc_mprops[owner[i]].id : "the end", i);
          tiled = 0;
        } else owner[i] = k;
      }
    }
    for (int i = 0; i < BC_RECORD_MODELS; i++) tiled &= owner[i] >= 0;
    ok(tiled, "model properties tile the %d-byte record", BC_RECORD_MODELS);
    ok(bc_mfield_row[BC_MF_QUALITY] == BC_MP_QUALITY && bc_mprops[BC_MP_QUALITY].mf == BC_MF_QUALITY &&
       BC_MF_DEPRECATED == 16 && BC_NMFIELDS == 17, "M_FIELD operands keep their numbers");
    is_str(bc_mprops[BC_MP_NAME].member, "id", "the language's name is the provider's id");
  }

  free(b);
  free(a);
  return done_testing();
}
