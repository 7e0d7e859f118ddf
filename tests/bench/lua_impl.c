/*
 * lua_impl.c -- the reference route in Lua, embedded through the C API.
 *
 * Built twice as a plugin that bench_main dlopens with RTLD_LOCAL:
 * build/bench/lua54.so against Lua 5.4 and build/bench/luajit.so (with
 * -DBENCH_LUAJIT) against LuaJIT 2.1, whose lua_* symbols would clash in
 * one executable. The host side is what an embedder writes: one state,
 * the catalog and live state pushed as tables once, then per request the
 * decide function and ten arguments pushed (strings with lua_pushlstring),
 * a lua_pcall, six results read back. bench_main interleaves the passes
 * of every implementation, so a noisy machine skews them alike.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#ifdef BENCH_LUAJIT
#include <luajit.h>
#endif

#include "bench.h"

#define EXPORT __attribute__((visibility("default")))

static void setnum(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

static void setint(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void setbool(lua_State *L, const char *k, int v) {
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

typedef struct state {
  lua_State          *L;
  const bench_lua_ctx *ctx;
  int                 fn;     /* stack index of decide */
} state;

static void *fail(lua_State *L, const char *what, char *err, size_t errlen) {
  snprintf(err, errlen, "%s: %s", what, lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)");
  lua_close(L);
  return NULL;
}

static void *open_state(const bench_lua_ctx *ctx, char *err, size_t errlen) {
  char path[4096];
  lua_State *L = luaL_newstate();
  state *st;
  if (!L) {
    snprintf(err, errlen, "luaL_newstate failed");
    return NULL;
  }
  luaL_openlibs(L);

  /* policy chunk and its arguments: models, state, bucket */
  snprintf(path, sizeof path, "%s/policy.lua", ctx->dir);
  if (luaL_loadfile(L, path)) return fail(L, "policy.lua", err, errlen);
  lua_createtable(L, ctx->nmodels, 0);
  for (int i = 0; i < ctx->nmodels; i++) {
    const bmodel *m = &ctx->models[i];
    lua_createtable(L, 0, 20);
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    setint(L, "idx", i);
    setnum(L, "input", m->input);
    setnum(L, "output", m->output);
    setint(L, "long_above", m->long_above);
    setnum(L, "long_input", m->long_input);
    setnum(L, "long_output", m->long_output);
    setint(L, "context", m->context);
    setint(L, "max_output", m->max_output);
    setnum(L, "quality", m->quality);
    setnum(L, "p95", ctx->state->p95[i]);
    setbool(L, "healthy", ctx->state->healthy[i]);
    setbool(L, "vision", (m->caps & CAP_VISION) != 0);
    setbool(L, "tools", (m->caps & CAP_TOOLS) != 0);
    setbool(L, "json", (m->caps & CAP_JSON) != 0);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 2);
  lua_createtable(L, 0, BENCH_TENANTS);
  for (int t = 0; t < BENCH_TENANTS; t++)
    if (ctx->state->spent[t] > 0) {
      uint8_t n;
      const char *name = bench_tenant(t, &n);
      lua_pushlstring(L, name, n);
      lua_pushnumber(L, ctx->state->spent[t]);
      lua_rawset(L, -3);
    }
  lua_setfield(L, -2, "spent");
  setnum(L, "limit", ctx->state->budget_limit);
#ifdef BENCH_LUAJIT
  snprintf(path, sizeof path, "%s/bucketjit.lua", ctx->dir);
#else
  snprintf(path, sizeof path, "%s/bucket54.lua", ctx->dir);
#endif
  if (luaL_loadfile(L, path) || lua_pcall(L, 0, 1, 0)) return fail(L, "bucket", err, errlen);
  if (lua_pcall(L, 3, 1, 0)) return fail(L, "policy.lua", err, errlen);
  if (!lua_isfunction(L, -1)) {
    lua_pushstring(L, "did not return a function");
    return fail(L, "policy.lua", err, errlen);
  }
  if (!(st = malloc(sizeof *st))) {
    lua_pushstring(L, "out of memory");
    return fail(L, "open", err, errlen);
  }
  st->L = L;
  st->ctx = ctx;
  st->fn = lua_gettop(L);
  return st;
}

static double pass(void *h, bsum *s, char *err, size_t errlen) {
  state *st = h;
  lua_State *L = st->L;
  const bench_lua_ctx *ctx = st->ctx;
  int fn = st->fn;
  uint64_t t0;
  bsum_init(s);
  t0 = bench_ns();
  for (int i = 0; i < ctx->nreq; i++) {
    const breq *q = &ctx->reqs[i];
    int c[BENCH_MAXC], rule, n;
    lua_pushvalue(L, fn);
    lua_pushlstring(L, q->task, q->ntask);
    lua_pushlstring(L, q->tier, q->ntier);
    lua_pushlstring(L, q->tenant, q->ntenant);
    lua_pushlstring(L, q->user, q->nuser);
    lua_pushinteger(L, q->in);
    lua_pushinteger(L, q->out);
    lua_pushinteger(L, q->images);
    lua_pushboolean(L, q->tools);
    lua_pushboolean(L, q->json);
    lua_pushinteger(L, q->latency_ms);
    if (lua_pcall(L, 10, 6, 0)) {
      snprintf(err, errlen, "decide: %s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
      lua_settop(L, fn);
      return -1;
    }
    rule = (int)lua_tointeger(L, -6);
    n = (int)lua_tointeger(L, -5);
    for (int k = 0; k < n && k < BENCH_MAXC; k++) c[k] = (int)lua_tointeger(L, -4 + k);
    bsum_add(s, rule, n, c, lua_tonumber(L, -1));
    lua_settop(L, fn);
  }
  return (double)(bench_ns() - t0) / ctx->nreq;
}

static void close_state(void *h) {
  state *st = h;
  if (!st) return;
  lua_close(st->L);
  free(st);
}

EXPORT const bench_lua_api *bench_lua_api_get(void);

const bench_lua_api *bench_lua_api_get(void) {
#ifdef BENCH_LUAJIT
  static const bench_lua_api api = { LUAJIT_VERSION, open_state, pass, close_state };
#else
  static const bench_lua_api api = { LUA_RELEASE, open_state, pass, close_state };
#endif
  return &api;
}
