/* builtins.c -- the builtin function table (see builtins.h). */
#include "builtins.h"
#include "sema.h"
#include "sem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOOP (-2)
#define CONST_ONLY (-1)

const sema_builtin sema_builtins[] = {
  {"size", 0, 1, {TY_STRING}, TY_INT, BF_SIZE, BC_OP_S_SIZE, "code points in a string"},
  {"size", 1, 1, {TY_STRING}, TY_INT, BF_SIZE, BC_OP_S_SIZE, "code points in a string"},
  {"size", 0, 1, {TY_LIST}, TY_INT, BF_SIZE, CONST_ONLY, "items in a constant list"},
  {"size", 1, 1, {TY_LIST}, TY_INT, BF_SIZE, CONST_ONLY, "items in a constant list"},
  {"size", 0, 1, {TY_MAP}, TY_INT, BF_SIZE, BC_OP_MAP_SIZE, "entries in a map"},
  {"size", 1, 1, {TY_MAP}, TY_INT, BF_SIZE, BC_OP_MAP_SIZE, "entries in a map"},
  {"startsWith", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_STARTS, BC_OP_S_STARTS, "prefix test"},
  {"endsWith", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_ENDS, BC_OP_S_ENDS, "suffix test"},
  {"contains", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_CONTAINS, BC_OP_S_CONTAINS, "substring test"},
  {"charAt", 1, 2, {TY_STRING, TY_INT}, TY_STRING, BF_CHARAT, BC_OP_S_CHARAT,
   "the code point at index y (\"\" at size(x)); error out of range (CEL's strings extension)"},
  {"indexOf", 1, 2, {TY_STRING, TY_STRING}, TY_INT, BF_INDEX, BC_OP_S_INDEX,
   "code point index of y's first occurrence in x, -1 none"},
  {"indexOf", 1, 3, {TY_STRING, TY_STRING, TY_INT}, TY_INT, BF_INDEX, BC_OP_S_INDEX_AT,
   "y's first occurrence at or after index z; error for z out of range"},
  {"lastIndexOf", 1, 2, {TY_STRING, TY_STRING}, TY_INT, BF_LASTINDEX, BC_OP_S_LASTINDEX,
   "code point index of y's last occurrence in x, -1 none"},
  {"lastIndexOf", 1, 3, {TY_STRING, TY_STRING, TY_INT}, TY_INT, BF_LASTINDEX,
   BC_OP_S_LASTINDEX_AT, "y's last occurrence starting at or before index z; error for z out of range"},
  {"substring", 1, 2, {TY_STRING, TY_INT}, TY_STRING, BF_SUBSTR, BC_OP_S_SUBSTR,
   "code points from index y to the end; error out of range"},
  {"substring", 1, 3, {TY_STRING, TY_INT, TY_INT}, TY_STRING, BF_SUBSTR, BC_OP_S_SUBSTR2,
   "code points [y, z); error out of range or y > z"},
  {"trim", 1, 1, {TY_STRING}, TY_STRING, BF_TRIM, BC_OP_S_TRIM,
   "without leading and trailing Unicode white space"},
  {"bucket", 0, 1, {TY_STRING}, TY_FRACTION, BF_BUCKET, BC_OP_BUCKET_S,
   "sticky bucket 0%..99%: splitmix64(fnv1a64(s)) % 100"},
  {"bucket", 0, 1, {TY_INT}, TY_FRACTION, BF_BUCKET, BC_OP_BUCKET_I,
   "sticky bucket 0%..99%: splitmix64(i) % 100"},
  {"bucket", 0, 1, {TY_UINT}, TY_FRACTION, BF_BUCKET, BC_OP_BUCKET_U,
   "sticky bucket 0%..99%: splitmix64(u) % 100 (an int and a uint with the same bits agree)"},
  {"has", 0, 1, {TY_ERROR}, TY_BOOL, BF_HAS, BC_OP_HAS,
   "whether the request set field `req.f` (an unset field reads as 0, \"\" or false)"},
  {"matches", 1, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_MATCHES, BC_OP_S_MATCH,
   "whether x holds a match of y, a constant regular expression in RE2's syntax, anywhere"},
  {"matches", 0, 2, {TY_STRING, TY_STRING}, TY_BOOL, BF_MATCHES, BC_OP_S_MATCH,
   "matches(x, y) is x.matches(y)"},
  {"type", 0, 1, {TY_ERROR}, TY_TYPE, BF_TYPE, CONST_ONLY,
   "x's type, known when compiling (x is not evaluated unless constant): int, list, map, "
   "null_type, google.protobuf.Timestamp ..., compared with == to the names int, uint, "
   "double, bool, string, bytes, list, map, null_type, type"},
  {"dyn", 0, 1, {TY_ERROR}, TY_ERROR, BF_DYN, NOOP,
   "x itself, typed as CEL's dyn: == and != with a value of another type are false and true "
   "(CEL's heterogeneous equality) rather than a type error; the result has x's type"},
  {"int", 0, 1, {TY_INT}, TY_INT, BF_INT, NOOP, "identity"},
  {"int", 0, 1, {TY_TOKENS}, TY_INT, BF_INT, NOOP, "token count as an int"},
  {"int", 0, 1, {TY_UINT}, TY_INT, BF_INT, BC_OP_U2I, "error above 2^63-1"},
  {"int", 0, 1, {TY_DOUBLE}, TY_INT, BF_INT, BC_OP_D2I, "truncates; error out of range"},
  {"int", 0, 1, {TY_STRING}, TY_INT, BF_INT, BC_OP_S2I,
   "an optional sign and decimal digits, nothing else; else an error"},
  {"uint", 0, 1, {TY_UINT}, TY_UINT, BF_UINT, NOOP, "identity"},
  {"uint", 0, 1, {TY_INT}, TY_UINT, BF_UINT, BC_OP_I2U, "error if negative"},
  {"uint", 0, 1, {TY_DOUBLE}, TY_UINT, BF_UINT, BC_OP_D2U, "truncates; error out of range"},
  {"uint", 0, 1, {TY_STRING}, TY_UINT, BF_UINT, BC_OP_S2U, "decimal digits only; else an error"},
  {"double", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_DOUBLE, NOOP, "identity"},
  {"double", 0, 1, {TY_INT}, TY_DOUBLE, BF_DOUBLE, BC_OP_I2D, "int to double"},
  {"double", 0, 1, {TY_UINT}, TY_DOUBLE, BF_DOUBLE, BC_OP_U2D, "uint to double"},
  {"double", 0, 1, {TY_TOKENS}, TY_DOUBLE, BF_DOUBLE, BC_OP_I2D, "token count as a double"},
  {"double", 0, 1, {TY_MONEY}, TY_DOUBLE, BF_DOUBLE, NOOP, "dollars as a plain double"},
  {"double", 0, 1, {TY_PRICE}, TY_DOUBLE, BF_DOUBLE, NOOP, "dollars per token"},
  {"double", 0, 1, {TY_DURATION}, TY_DOUBLE, BF_DOUBLE, NOOP, "milliseconds"},
  {"double", 0, 1, {TY_FRACTION}, TY_DOUBLE, BF_DOUBLE, NOOP, "0..1"},
  {"double", 0, 1, {TY_STRING}, TY_DOUBLE, BF_DOUBLE, BC_OP_S2D,
   "the whole string a number as C's strtod reads it (at most 63 bytes); else an error"},
  {"bool", 0, 1, {TY_BOOL}, TY_BOOL, BF_BOOL, NOOP, "identity"},
  {"bool", 0, 1, {TY_STRING}, TY_BOOL, BF_BOOL, BC_OP_S2B,
   "1 t T true TRUE True, or 0 f F false FALSE False; else an error"},
  {"string", 0, 1, {TY_STRING}, TY_STRING, BF_STRING, NOOP, "identity"},
  {"string", 0, 1, {TY_INT}, TY_STRING, BF_STRING, BC_OP_I2S, "decimal"},
  {"string", 0, 1, {TY_UINT}, TY_STRING, BF_STRING, BC_OP_U2S, "decimal"},
  {"string", 0, 1, {TY_DOUBLE}, TY_STRING, BF_STRING, BC_OP_D2S,
   "the shortest %g form that reads back as x"},
  {"string", 0, 1, {TY_BOOL}, TY_STRING, BF_STRING, BC_OP_B2S, "\"true\" or \"false\""},
  {"lowerAscii", 1, 1, {TY_STRING}, TY_STRING, BF_LOWER, BC_OP_S_LOWER,
   "A-Z as a-z, every other byte kept (CEL's strings extension)"},
  {"upperAscii", 1, 1, {TY_STRING}, TY_STRING, BF_UPPER, BC_OP_S_UPPER, "a-z as A-Z"},
  {"replace", 1, 3, {TY_STRING, TY_STRING, TY_STRING}, TY_STRING, BF_REPLACE, BC_OP_S_REPLACE,
   "every y in x replaced by z, left to right"},
  {"replace", 1, 4, {TY_STRING, TY_STRING, TY_STRING, TY_INT}, TY_STRING, BF_REPLACE,
   BC_OP_S_REPLACE_N, "the first n (all when n < 0)"},
  {"split", 1, 2, {TY_STRING, TY_STRING}, TY_LIST | TY_STRING, BF_SPLIT, CONST_ONLY,
   "the parts of x between each y (an empty y: each code point)"},
  {"split", 1, 3, {TY_STRING, TY_STRING, TY_INT}, TY_LIST | TY_STRING, BF_SPLIT, CONST_ONLY,
   "at most n parts, the last the rest (0: none; n < 0: all)"},
  {"join", 1, 1, {TY_LIST | TY_STRING}, TY_STRING, BF_JOIN, CONST_ONLY, "the items end to end"},
  {"join", 1, 2, {TY_LIST | TY_STRING, TY_STRING}, TY_STRING, BF_JOIN, CONST_ONLY,
   "the items with y between them"},
  {"all", 1, 2, {TY_LIST}, TY_BOOL, BF_ALL, CONST_ONLY,
   "x.all(v, p): whether p holds for every item v of a list (a map: every key); with two "
   "variables, x.all(i, v, p), i is the index (a map: the key) and v the item (the value). "
   "false wins over an error, an error over true"},
  {"exists", 1, 2, {TY_LIST}, TY_BOOL, BF_EXISTS, CONST_ONLY,
   "x.exists(v, p): whether p holds for some item; true wins over an error, an error over "
   "false; two variables as all()"},
  {"exists_one", 1, 2, {TY_LIST}, TY_BOOL, BF_EXISTS_ONE, CONST_ONLY,
   "x.exists_one(v, p): whether p holds for exactly one item; an error is the result"},
  {"existsOne", 1, 2, {TY_LIST}, TY_BOOL, BF_EXISTS_ONE, CONST_ONLY,
   "exists_one, as CEL's two-variable extension spells it"},
  {"map", 1, 2, {TY_LIST}, TY_LIST, BF_MAP, CONST_ONLY,
   "x.map(v, e): the list of e for each item; x.map(v, p, e) for the items where p holds"},
  {"filter", 1, 2, {TY_LIST}, TY_LIST, BF_FILTER, CONST_ONLY,
   "x.filter(v, p): the items (a map: the keys) where p holds"},
  {"transformList", 1, 2, {TY_LIST}, TY_LIST, BF_TLIST, CONST_ONLY,
   "x.transformList(i, v, e): the list of e for each index (key) i and item (value) v; with "
   "(i, v, p, e) where p holds"},
  {"transformMap", 1, 2, {TY_LIST}, TY_LIST, BF_TMAP, CONST_ONLY,
   "x.transformMap(k, v, e): a map of each key (index) k to e; with (k, v, p, e) where p holds"},
  {"timestamp", 0, 1, {TY_STRING}, TY_TIMESTAMP, BF_TIME, BC_OP_TS_PARSE,
   "RFC 3339, years 1 to 9999 (2025-01-31T22:00:00Z, -08:00 offsets); digits past ms dropped"},
  {"duration", 0, 1, {TY_STRING}, TY_DURATION, BF_TIME, BC_OP_DUR_PARSE,
   "Go's form: 1h30m, 1.5s, 300ms, 2us, within 10,000 years"},
  {"timestamp", 0, 1, {TY_INT}, TY_TIMESTAMP, BF_TIME, BC_OP_SEC2TS,
   "x seconds since the Unix epoch, within years 1 to 9999"},
  {"timestamp", 0, 1, {TY_TIMESTAMP}, TY_TIMESTAMP, BF_TIME, NOOP, "identity"},
  {"duration", 0, 1, {TY_DURATION}, TY_DURATION, BF_TIME, NOOP, "identity"},
  {"int", 0, 1, {TY_TIMESTAMP}, TY_INT, BF_TIME, BC_OP_TS2I, "seconds since the Unix epoch"},
  {"string", 0, 1, {TY_TIMESTAMP}, TY_STRING, BF_TIME, BC_OP_TS2S, "RFC 3339 in UTC"},
  {"string", 0, 1, {TY_DURATION}, TY_STRING, BF_TIME, BC_OP_DUR2S, "seconds: \"1.5s\""},
  {"getFullYear", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the year, in UTC"},
  {"getFullYear", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the year in time zone y, a constant: an IANA name or +hh:mm"},
  {"getMonth", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the month, 0 for January, in UTC"},
  {"getMonth", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the month, 0 for January in time zone y, a constant: an IANA name or +hh:mm"},
  {"getDate", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the day of the month, from 1, in UTC"},
  {"getDate", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the day of the month, from 1 in time zone y, a constant: an IANA name or +hh:mm"},
  {"getDayOfMonth", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the day of the month, from 0, in UTC"},
  {"getDayOfMonth", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the day of the month, from 0 in time zone y, a constant: an IANA name or +hh:mm"},
  {"getDayOfWeek", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the day of the week, 0 for Sunday, in UTC"},
  {"getDayOfWeek", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the day of the week, 0 for Sunday in time zone y, a constant: an IANA name or +hh:mm"},
  {"getDayOfYear", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the day of the year, from 0, in UTC"},
  {"getDayOfYear", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the day of the year, from 0 in time zone y, a constant: an IANA name or +hh:mm"},
  {"getHours", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the hour, 0-23, in UTC"},
  {"getHours", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the hour, 0-23 in time zone y, a constant: an IANA name or +hh:mm"},
  {"getMinutes", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the minute, in UTC"},
  {"getMinutes", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the minute in time zone y, a constant: an IANA name or +hh:mm"},
  {"getSeconds", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the second, in UTC"},
  {"getSeconds", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the second in time zone y, a constant: an IANA name or +hh:mm"},
  {"getMilliseconds", 1, 1, {TY_TIMESTAMP}, TY_INT, BF_TSPART, BC_OP_TS_PART, "the millisecond, in UTC"},
  {"getMilliseconds", 1, 2, {TY_TIMESTAMP, TY_STRING}, TY_INT, BF_TSPART, BC_OP_TS_PART,
   "the millisecond in time zone y, a constant: an IANA name or +hh:mm"},
  {"getHours", 1, 1, {TY_DURATION}, TY_INT, BF_DURPART, BC_OP_DUR_PART, "whole hours, toward zero"},
  {"getMinutes", 1, 1, {TY_DURATION}, TY_INT, BF_DURPART, BC_OP_DUR_PART, "whole minutes, toward zero"},
  {"getSeconds", 1, 1, {TY_DURATION}, TY_INT, BF_DURPART, BC_OP_DUR_PART, "whole seconds, toward zero"},
  {"getMilliseconds", 1, 1, {TY_DURATION}, TY_INT, BF_DURPART, BC_OP_DUR_PART, "whole milliseconds, toward zero"},
  {"math.greatest", 0, 1, {TY_ERROR}, TY_ERROR, BF_GREATEST, NOOP,
   "the largest of one or more numbers of one type (int, uint, double, tokens, money, ...), or of "
   "constants of mixed number types or a constant list, as CEL's math.greatest; a NaN makes it NaN"},
  {"math.least", 0, 1, {TY_ERROR}, TY_ERROR, BF_LEAST, NOOP,
   "the smallest, as math.greatest"},
  {"math.ceil", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_MATH, BC_OP_CEIL, "the least whole value >= x"},
  {"math.floor", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_MATH, BC_OP_FLOOR, "the greatest whole value <= x"},
  {"math.round", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_MATH, BC_OP_ROUND,
   "the nearest whole value, halves away from zero"},
  {"math.trunc", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_MATH, BC_OP_TRUNC, "x without its fraction"},
  {"math.abs", 0, 1, {TY_INT}, TY_INT, BF_MATH, BC_OP_ABS_I, "|x|; error for -2^63"},
  {"math.abs", 0, 1, {TY_UINT}, TY_UINT, BF_MATH, NOOP, "x"},
  {"math.abs", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_MATH, BC_OP_ABS_D, "|x|"},
  {"math.sign", 0, 1, {TY_INT}, TY_INT, BF_MATH, BC_OP_SIGN_I, "-1, 0 or 1"},
  {"math.sign", 0, 1, {TY_UINT}, TY_UINT, BF_MATH, BC_OP_SIGN_U, "0u or 1u"},
  {"math.sign", 0, 1, {TY_DOUBLE}, TY_DOUBLE, BF_MATH, BC_OP_SIGN_D,
   "-1.0 or 1.0; x itself for zeros and NaN"},
  {"math.isNaN", 0, 1, {TY_DOUBLE}, TY_BOOL, BF_MATH, BC_OP_ISNAN, "whether x is NaN"},
  {"math.isInf", 0, 1, {TY_DOUBLE}, TY_BOOL, BF_MATH, BC_OP_ISINF, "whether x is an infinity"},
  {"math.isFinite", 0, 1, {TY_DOUBLE}, TY_BOOL, BF_MATH, BC_OP_ISFINITE,
   "whether x is neither NaN nor infinite"},
  {"math.bitAnd", 0, 2, {TY_INT, TY_INT}, TY_INT, BF_MATH, BC_OP_BAND_I, "x & y"},
  {"math.bitAnd", 0, 2, {TY_UINT, TY_UINT}, TY_UINT, BF_MATH, BC_OP_BAND_U, "x & y"},
  {"math.bitOr", 0, 2, {TY_INT, TY_INT}, TY_INT, BF_MATH, BC_OP_BOR_I, "x | y"},
  {"math.bitOr", 0, 2, {TY_UINT, TY_UINT}, TY_UINT, BF_MATH, BC_OP_BOR_U, "x | y"},
  {"math.bitXor", 0, 2, {TY_INT, TY_INT}, TY_INT, BF_MATH, BC_OP_BXOR_I, "x ^ y"},
  {"math.bitXor", 0, 2, {TY_UINT, TY_UINT}, TY_UINT, BF_MATH, BC_OP_BXOR_U, "x ^ y"},
  {"math.bitNot", 0, 1, {TY_INT}, TY_INT, BF_MATH, BC_OP_BNOT_I, "~x"},
  {"math.bitNot", 0, 1, {TY_UINT}, TY_UINT, BF_MATH, BC_OP_BNOT_U, "~x"},
  {"math.bitShiftLeft", 0, 2, {TY_INT, TY_INT}, TY_INT, BF_MATH, BC_OP_SHL_I,
   "x << y: 0 for y >= 64; error for y < 0"},
  {"math.bitShiftLeft", 0, 2, {TY_UINT, TY_INT}, TY_UINT, BF_MATH, BC_OP_SHL_U,
   "x << y: 0 for y >= 64; error for y < 0"},
  {"math.bitShiftRight", 0, 2, {TY_INT, TY_INT}, TY_INT, BF_MATH, BC_OP_SHR_I,
   "x >> y filling with zeros (a negative x too); 0 for y >= 64; error for y < 0"},
  {"math.bitShiftRight", 0, 2, {TY_UINT, TY_INT}, TY_UINT, BF_MATH, BC_OP_SHR_U,
   "x >> y: 0 for y >= 64; error for y < 0"},
};
const int sema_nbuiltins = (int)(sizeof sema_builtins / sizeof *sema_builtins);

int sema_ts_part(const char *name) {
  static const char *const names[SEM_TS_NPARTS] = {
    "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
    "getHours", "getMinutes", "getSeconds", "getMilliseconds"};
  for (int i = 0; i < SEM_TS_NPARTS; i++)
    if (!strcmp(name, names[i])) return i;
  return -1;
}

int sema_tz_rule(const char *name, size_t n, char *out, size_t cap, char *why, size_t whyn) {
  sem_tz z;
  /* a fixed offset: [+-]hh:mm, as a POSIX rule (which counts west) */
  size_t k = n && (name[0] == '+' || name[0] == '-') ? 1 : 0;
  if (n == k + 5 && name[k + 2] == ':' && isdigit((unsigned char)name[k]) &&
      isdigit((unsigned char)name[k + 1]) && isdigit((unsigned char)name[k + 3]) &&
      isdigit((unsigned char)name[k + 4])) {
    int west = k && name[0] == '-';
    snprintf(out, cap, "<%c%.2s%.2s>%c%.2s:%.2s", west ? '-' : '+', name + k, name + k + 3,
             west ? '+' : '-', name + k, name + k + 3);
    if (!sem_tz_parse(out, &z)) return 0;
  }
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)name[i]) || strchr("_-+/", name[i])) ||
        (i == 0 && name[i] == '/')) {
      snprintf(why, whyn, "'%.*s' is not a time zone: an IANA name (America/New_York) or an "
               "offset (+05:30)", (int)(n > 64 ? 64 : n), name);
      return -1;
    }
  if (!n || n > 128 || strstr(name, "..")) {
    snprintf(why, whyn, "'%.*s' is not a time zone name", (int)(n > 64 ? 64 : n), name);
    return -1;
  }
  const char *dir = getenv("TZDIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/%.*s", dir && *dir ? dir : "/usr/share/zoneinfo", (int)n, name);
  FILE *f = fopen(path, "rb");
  if (!f && errno == ENOMEM) return -2;
  if (!f) {
    snprintf(why, whyn, "unknown time zone '%.*s': no %s (install tzdata, or set TZDIR)",
             (int)n, name, path);
    return -1;
  }
  size_t capb = 1 << 20;   /* TZif files are a few KB */
  char *buf = malloc(capb);
  if (!buf) {
    fclose(f);
    return -2;
  }
  size_t got = fread(buf, 1, capb - 1, f);
  fclose(f);
  buf[got] = 0;
  /* the footer: the POSIX rule between the last two newlines of a v2+ file */
  char *end = got && buf[got - 1] == '\n' ? buf + got - 1 : NULL, *start = end;
  while (start && start > buf && start[-1] != '\n') start--;
  if (got < 44 || memcmp(buf, "TZif", 4) || buf[4] < '2' || !end || start == buf ||
      (size_t)(end - start) >= cap) {
    snprintf(why, whyn, "time zone '%.*s': %s is not a TZif file of version 2 or later with a "
             "rule", (int)n, name, path);
    free(buf);
    return -1;
  }
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = 0;
  free(buf);
  if (!out[0] || sem_tz_parse(out, &z)) {
    snprintf(why, whyn, "time zone '%.*s' has no current rule lane reads ('%s')", (int)n, name,
             out);
    return -1;
  }
  return 0;
}
