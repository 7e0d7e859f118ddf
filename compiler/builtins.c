/* builtins.c -- the builtin function table (see builtins.h). */
#include "builtins.h"
#include "sema.h"

#define NOOP (-2)
#define CONST_ONLY (-1)

const sema_builtin sema_builtins[] = {
  {"size", 0, 1, {TY_STRING}, TY_INT, BF_SIZE, BC_OP_S_SIZE, "code points in a string"},
  {"size", 1, 1, {TY_STRING}, TY_INT, BF_SIZE, BC_OP_S_SIZE, "code points in a string"},
  {"size", 0, 1, {TY_LIST}, TY_INT, BF_SIZE, CONST_ONLY, "items in a constant list"},
  {"size", 1, 1, {TY_LIST}, TY_INT, BF_SIZE, CONST_ONLY, "items in a constant list"},
  {"startsWith", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_STARTS, BC_OP_S_STARTS, "prefix test"},
  {"endsWith", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_ENDS, BC_OP_S_ENDS, "suffix test"},
  {"contains", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_CONTAINS, BC_OP_S_CONTAINS, "substring test"},
  {"bucket", 0, 1, {TY_STRING}, TY_FRACTION, BF_BUCKET, BC_OP_BUCKET_S,
   "sticky bucket 0%..99%: splitmix64(fnv1a64(s)) % 100"},
  {"bucket", 0, 1, {TY_INT}, TY_FRACTION, BF_BUCKET, BC_OP_BUCKET_I,
   "sticky bucket 0%..99%: splitmix64(i) % 100"},
  {"bucket", 0, 1, {TY_UINT}, TY_FRACTION, BF_BUCKET, BC_OP_BUCKET_U,
   "sticky bucket 0%..99%: splitmix64(u) % 100 (an int and a uint with the same bits agree)"},
  {"has", 0, 1, {TY_ERROR}, TY_BOOL, BF_HAS, BC_OP_HAS,
   "whether the request set field `req.f` (an unset field reads as 0, \"\" or false)"},
  {"int", 0, 1, {TY_INT}, TY_INT, BF_INT, NOOP, "identity"},
  {"int", 0, 1, {TY_TOKENS}, TY_INT, BF_INT, NOOP, "token count as an int"},
  {"int", 0, 1, {TY_UINT}, TY_INT, BF_INT, BC_OP_U2I, "error above 2^63-1"},
  {"int", 0, 1, {TY_DOUBLE}, TY_INT, BF_INT, BC_OP_D2I, "truncates; error out of range"},
  {"int", 0, 1, {TY_STRING}, TY_INT, BF_INT, CONST_ONLY, "parses a constant"},
  {"uint", 0, 1, {TY_UINT}, TY_UINT, BF_UINT, NOOP, "identity"},
  {"uint", 0, 1, {TY_INT}, TY_UINT, BF_UINT, BC_OP_I2U, "error if negative"},
  {"uint", 0, 1, {TY_DOUBLE}, TY_UINT, BF_UINT, BC_OP_D2U, "truncates; error out of range"},
  {"uint", 0, 1, {TY_STRING}, TY_UINT, BF_UINT, CONST_ONLY, "parses a constant"},
  {"double", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_DOUBLE, NOOP, "identity"},
  {"double", 0, 1, {TY_INT}, TY_DOUBLE, BF_DOUBLE, BC_OP_I2D, "int to double"},
  {"double", 0, 1, {TY_UINT}, TY_DOUBLE, BF_DOUBLE, BC_OP_U2D, "uint to double"},
  {"double", 0, 1, {TY_TOKENS}, TY_DOUBLE, BF_DOUBLE, BC_OP_I2D, "token count as a double"},
  {"double", 0, 1, {TY_MONEY}, TY_DOUBLE, BF_DOUBLE, NOOP, "dollars as a plain double"},
  {"double", 0, 1, {TY_PRICE}, TY_DOUBLE, BF_DOUBLE, NOOP, "dollars per token"},
  {"double", 0, 1, {TY_DURATION}, TY_DOUBLE, BF_DOUBLE, NOOP, "milliseconds"},
  {"double", 0, 1, {TY_FRACTION}, TY_DOUBLE, BF_DOUBLE, NOOP, "0..1"},
  {"double", 0, 1, {TY_STRING}, TY_DOUBLE, BF_DOUBLE, CONST_ONLY, "parses a constant"},
  {"string", 0, 1, {TY_STRING}, TY_STRING, BF_STRING, NOOP, "identity"},
  {"string", 0, 1, {TY_INT}, TY_STRING, BF_STRING, CONST_ONLY, "formats a constant"},
  {"string", 0, 1, {TY_UINT}, TY_STRING, BF_STRING, CONST_ONLY, "formats a constant"},
  {"string", 0, 1, {TY_DOUBLE}, TY_STRING, BF_STRING, CONST_ONLY,
   "formats a constant, shortest exact form"},
  {"string", 0, 1, {TY_BOOL}, TY_STRING, BF_STRING, CONST_ONLY, "\"true\" or \"false\""},
};
const int sema_nbuiltins = (int)(sizeof sema_builtins / sizeof *sema_builtins);
