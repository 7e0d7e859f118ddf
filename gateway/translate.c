/*
 * translate.c -- OpenAI Chat Completions <-> Anthropic Messages: system
 * prompts, text, images (base64 and URLs), tool definitions, tool_choice,
 * tool calls and their results, max_tokens, stop sequences, temperature,
 * top_p, user, stream; answers (text and tool calls), usage, stop reasons,
 * error bodies and server-sent event streams (text and tool calls). What
 * is not translated (audio and files, documents, server tools, legacy
 * functions, response_format, n > 1, extended thinking asked for) makes
 * gw_translate_request refuse, and the gateway then skips that candidate
 * rather than send a body that means something else. README.md lists the
 * details.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "gateway.h"

int gw_buf_add(gw_buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

void gw_buf_free(gw_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* ---- request bodies ---- */

/* Text of an OpenAI content (string or array of text parts) or an Anthropic
 * content (string or array of text blocks) appended to out; -1 when a part
 * is not text. */
static int content_text(const json_t *c, gw_buf *out) {
  if (json_is_string(c)) return gw_buf_add(out, json_string_value(c), json_string_length(c));
  if (!json_is_array(c)) return -1;
  size_t i;
  json_t *part;
  json_array_foreach(c, i, part) {
    const char *type = json_string_value(json_object_get(part, "type"));
    json_t *text = json_object_get(part, "text");
    if (!type || strcmp(type, "text") || !json_is_string(text)) return -1;
    if (gw_buf_add(out, json_string_value(text), json_string_length(text))) return -1;
  }
  return 0;
}

static int has(const json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return v && !json_is_null(v);
}

static int is(const json_t *o, const char *key, const char *value) {
  const char *v = json_string_value(json_object_get(o, key));
  return v && !strcmp(v, value);
}

/* An OpenAI image_url part as an Anthropic image block: a data: URL as
 * base64 with its media type, an http(s) URL as a url source. NULL if it
 * is neither. */
static json_t *image_to_anthropic(const json_t *part) {
  const char *url = json_string_value(json_object_get(json_object_get(part, "image_url"), "url"));
  if (!url) return NULL;
  if (!strncmp(url, "data:", 5)) {
    const char *semi = strchr(url, ';'), *comma = strchr(url, ',');
    if (!semi || !comma || semi > comma || strncmp(semi, ";base64,", 8)) return NULL;
    return json_pack("{s:s, s:{s:s, s:s%, s:s}}", "type", "image", "source", "type", "base64",
                     "media_type", url + 5, (size_t)(semi - url - 5), "data", comma + 1);
  }
  if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) return NULL;
  return json_pack("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url", url);
}

/* An OpenAI message content as Anthropic blocks appended to blocks: text
 * and images. -1 (with *why) for anything else. */
static int parts_to_anthropic(const json_t *c, json_t *blocks, const char **why) {
  if (json_is_string(c)) {
    if (json_string_length(c))
      json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "text", "text", c));
    return 0;
  }
  if (json_is_null(c) || !c) return 0;
  if (!json_is_array(c)) return *why = "a content that is neither text nor parts", -1;
  size_t i;
  json_t *part;
  json_array_foreach(c, i, part) {
    if (is(part, "type", "text") && json_is_string(json_object_get(part, "text"))) {
      json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "text", "text",
                                              json_object_get(part, "text")));
    } else if (is(part, "type", "image_url")) {
      json_t *img = image_to_anthropic(part);
      if (!img) return *why = "an image that is neither a data: URL in base64 nor an http(s) URL", -1;
      json_array_append_new(blocks, img);
    } else {
      return *why = "a content part other than text and images (audio, files)", -1;
    }
  }
  return 0;
}

/* The arguments of an OpenAI tool call (a JSON text) as an object. */
static json_t *arguments_object(const json_t *fn) {
  const char *a = json_string_value(json_object_get(fn, "arguments"));
  if (!a || !*a) return json_object();
  json_t *v = json_loads(a, JSON_ALLOW_NUL, NULL);
  if (json_is_object(v)) return v;
  json_decref(v);
  return NULL;
}

static json_t *openai_to_anthropic(const json_t *b, long default_max, const char **why) {
  static const char *const refused[] = {"functions", "function_call", "audio", "logprobs",
                                        "prediction", NULL};
  for (int i = 0; refused[i]; i++)
    if (has(b, refused[i])) return *why = refused[i], NULL;
  json_t *rf = json_object_get(b, "response_format");
  const char *rft = json_string_value(json_object_get(rf, "type"));
  if (rf && !json_is_null(rf) && (!rft || strcmp(rft, "text"))) return *why = "response_format", NULL;
  json_t *n = json_object_get(b, "n");
  if (json_is_integer(n) && json_integer_value(n) != 1) return *why = "n > 1", NULL;

  json_t *o = json_object(), *msgs = json_array();
  json_object_set_new(o, "messages", msgs);
  gw_buf sys = {0};
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(b, "messages"), i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    if (role && (!strcmp(role, "system") || !strcmp(role, "developer"))) {
      gw_buf text = {0};
      int bad = content_text(content, &text);
      if (!bad && sys.n) gw_buf_add(&sys, "\n\n", 2);
      if (!bad) gw_buf_add(&sys, text.p ? text.p : "", text.n);
      gw_buf_free(&text);
      if (bad) { *why = "a system message that is not text"; goto fail; }
    } else if (role && !strcmp(role, "tool")) {
      /* a tool's result: a user turn with a tool_result block (Anthropic
       * joins consecutive user turns into one) */
      gw_buf text = {0};
      const char *id = json_string_value(json_object_get(m, "tool_call_id"));
      int bad = !id || content_text(content, &text);
      if (!bad)
        json_array_append_new(msgs, json_pack("{s:s, s:[{s:s, s:s, s:s%}]}", "role", "user",
                                              "content", "type", "tool_result", "tool_use_id", id,
                                              "content", text.p ? text.p : "", text.n));
      gw_buf_free(&text);
      if (bad) { *why = "a tool message without tool_call_id or with non-text content"; goto fail; }
    } else if (role && (!strcmp(role, "user") || !strcmp(role, "assistant"))) {
      json_t *blocks = json_array();
      json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", blocks));
      if (parts_to_anthropic(content, blocks, why)) goto fail;
      size_t k;
      json_t *tc;
      json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *input = id && name ? arguments_object(fn) : NULL;
        if (!input) { *why = "a tool call without id and name, or whose arguments are not a JSON object"; goto fail; }
        json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                                id, "name", name, "input", input));
      }
      if (!json_array_size(blocks))   /* Anthropic refuses an empty content */
        json_array_append_new(blocks, json_pack("{s:s, s:s}", "type", "text", "text", ""));
    } else {
      *why = "a message role other than system, developer, user, assistant and tool";
      goto fail;
    }
  }
  if (sys.n) json_object_set_new(o, "system", json_stringn(sys.p, sys.n));
  gw_buf_free(&sys);

  json_t *tools = json_object_get(b, "tools");
  if (json_is_array(tools) && json_array_size(tools)) {
    json_t *out = json_array();
    json_object_set_new(o, "tools", out);
    json_t *t;
    json_array_foreach(tools, i, t) {
      json_t *fn = json_object_get(t, "function");
      const char *name = json_string_value(json_object_get(fn, "name"));
      if (!is(t, "type", "function") || !name) {
        *why = "a tool that is not a function";
        json_decref(o);
        return NULL;
      }
      json_t *params = json_object_get(fn, "parameters");
      json_t *d = json_pack("{s:s, s:O}", "name", name, "input_schema",
                            json_is_object(params) ? params : json_pack("{s:s}", "type", "object"));
      if (!json_is_object(params)) json_decref(json_object_get(d, "input_schema"));
      if (json_is_string(json_object_get(fn, "description")))
        json_object_set(d, "description", json_object_get(fn, "description"));
      json_array_append_new(out, d);
    }
  }
  json_t *tc = json_object_get(b, "tool_choice"), *choice = NULL;
  if (json_is_string(tc)) {
    const char *v = json_string_value(tc);
    choice = !strcmp(v, "required") ? json_pack("{s:s}", "type", "any")
           : !strcmp(v, "none")     ? json_pack("{s:s}", "type", "none")
                                    : json_pack("{s:s}", "type", "auto");
  } else if (json_is_object(tc)) {
    const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
    if (!name) { *why = "a tool_choice that names no function"; json_decref(o); return NULL; }
    choice = json_pack("{s:s, s:s}", "type", "tool", "name", name);
  }
  if (json_is_false(json_object_get(b, "parallel_tool_calls")) && has(b, "tools")) {
    if (!choice) choice = json_pack("{s:s}", "type", "auto");
    json_object_set_new(choice, "disable_parallel_tool_use", json_true());
  }
  if (choice) json_object_set_new(o, "tool_choice", choice);

  json_t *mt = json_object_get(b, "max_completion_tokens");
  if (!json_is_integer(mt)) mt = json_object_get(b, "max_tokens");
  json_object_set_new(o, "max_tokens", json_integer(json_is_integer(mt) ? json_integer_value(mt)
                                                                        : default_max));
  json_t *stop = json_object_get(b, "stop");
  if (json_is_string(stop)) json_object_set_new(o, "stop_sequences", json_pack("[O]", stop));
  else if (json_is_array(stop)) json_object_set(o, "stop_sequences", stop);
  if (json_is_number(json_object_get(b, "temperature"))) {
    double t = json_number_value(json_object_get(b, "temperature"));
    json_object_set_new(o, "temperature", json_real(t > 1 ? 1 : t));  /* 0..2 vs 0..1 */
  }
  if (json_is_number(json_object_get(b, "top_p")))
    json_object_set(o, "top_p", json_object_get(b, "top_p"));
  if (json_is_string(json_object_get(b, "user")))
    json_object_set_new(o, "metadata", json_pack("{s:O}", "user_id", json_object_get(b, "user")));
  if (json_is_true(json_object_get(b, "stream"))) json_object_set_new(o, "stream", json_true());
  return o;
fail:
  gw_buf_free(&sys);
  json_decref(o);
  return NULL;
}

/* An Anthropic image block as an OpenAI image_url part. */
static json_t *image_to_openai(const json_t *blk) {
  json_t *src = json_object_get(blk, "source");
  if (is(src, "type", "url") && json_is_string(json_object_get(src, "url")))
    return json_pack("{s:s, s:{s:O}}", "type", "image_url", "image_url", "url",
                     json_object_get(src, "url"));
  const char *mt = json_string_value(json_object_get(src, "media_type"));
  const char *data = json_string_value(json_object_get(src, "data"));
  if (!is(src, "type", "base64") || !mt || !data) return NULL;
  size_t n = strlen(mt) + strlen(data) + 16;
  char *url = malloc(n);
  if (!url) return NULL;
  snprintf(url, n, "data:%s;base64,%s", mt, data);
  json_t *o = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
  free(url);
  return o;
}

static json_t *anthropic_to_openai(const json_t *b, const gw_provider *prov, const char **why) {
  static const char *const refused[] = {"mcp_servers", NULL};
  for (int i = 0; refused[i]; i++)
    if (has(b, refused[i])) return *why = refused[i], NULL;
  const char *think = json_string_value(json_object_get(json_object_get(b, "thinking"), "type"));
  if (think && strcmp(think, "disabled")) return *why = "thinking", NULL;

  json_t *o = json_object(), *msgs = json_array();
  json_object_set_new(o, "messages", msgs);
  json_t *sys = json_object_get(b, "system");
  if (sys && !json_is_null(sys)) {
    gw_buf text = {0};
    if (content_text(sys, &text)) {
      gw_buf_free(&text);
      json_decref(o);
      return *why = "a system prompt that is not text", NULL;
    }
    json_array_append_new(msgs, json_pack("{s:s, s:s%}", "role", "system", "content",
                                          text.p ? text.p : "", text.n));
    gw_buf_free(&text);
  }
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(b, "messages"), i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    if (!role || (strcmp(role, "user") && strcmp(role, "assistant"))) {
      *why = "a message role other than user and assistant";
      goto fail;
    }
    if (json_is_string(content)) {
      json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", role, "content", content));
      continue;
    }
    if (!json_is_array(content)) { *why = "a content that is neither text nor blocks"; goto fail; }
    /* user: tool results become tool messages (first, as OpenAI wants them
     * right after the assistant's tool calls), the rest one user message;
     * assistant: text, and tool_use blocks as tool_calls */
    json_t *parts = json_array(), *calls = json_array();
    gw_buf text = {0};
    int is_user = !strcmp(role, "user"), bad = 0;
    size_t k;
    json_t *blk;
    json_array_foreach(content, k, blk) {
      if (is(blk, "type", "text") && json_is_string(json_object_get(blk, "text"))) {
        json_t *t = json_object_get(blk, "text");
        if (is_user) json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", t));
        else gw_buf_add(&text, json_string_value(t), json_string_length(t));
      } else if (is_user && is(blk, "type", "image")) {
        json_t *img = image_to_openai(blk);
        if (!img) { *why = "an image whose source is neither base64 nor a URL"; bad = 1; break; }
        json_array_append_new(parts, img);
      } else if (is_user && is(blk, "type", "tool_result")) {
        gw_buf rt = {0};
        const char *id = json_string_value(json_object_get(blk, "tool_use_id"));
        json_t *rc = json_object_get(blk, "content");
        if (!id || (rc && !json_is_null(rc) && content_text(rc, &rt))) {
          gw_buf_free(&rt);
          *why = "a tool_result without tool_use_id or with content other than text";
          bad = 1;
          break;
        }
        if (json_is_true(json_object_get(blk, "is_error"))) {
          gw_buf pre = {0};
          gw_buf_add(&pre, "Error: ", 7);
          gw_buf_add(&pre, rt.p ? rt.p : "", rt.n);
          gw_buf_free(&rt);
          rt = pre;
        }
        json_array_append_new(msgs, json_pack("{s:s, s:s, s:s%}", "role", "tool", "tool_call_id",
                                              id, "content", rt.p ? rt.p : "", rt.n));
        gw_buf_free(&rt);
      } else if (!is_user && is(blk, "type", "tool_use")) {
        const char *id = json_string_value(json_object_get(blk, "id"));
        const char *name = json_string_value(json_object_get(blk, "name"));
        json_t *input = json_object_get(blk, "input");
        char *args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
        if (!id || !name || !args) {
          free(args);
          *why = "a tool_use block without id, name or an input object";
          bad = 1;
          break;
        }
        json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type",
                                               "function", "function", "name", name,
                                               "arguments", args));
        free(args);
      } else if (!is_user && (is(blk, "type", "thinking") || is(blk, "type", "redacted_thinking"))) {
        continue;   /* the model's own reasoning in the history: an OpenAI model takes none */
      } else {
        *why = "a content block other than text, image, tool_use and tool_result (documents, "
               "server tools)";
        bad = 1;
        break;
      }
    }
    if (!bad && is_user && json_array_size(parts)) {
      json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "user", "content", parts));
    } else if (!bad && !is_user) {
      json_t *am = json_pack("{s:s}", "role", "assistant");
      json_object_set_new(am, "content", text.n || !json_array_size(calls)
                                             ? json_stringn(text.p ? text.p : "", text.n)
                                             : json_null());
      if (json_array_size(calls)) json_object_set(am, "tool_calls", calls);
      json_array_append_new(msgs, am);
    }
    json_decref(parts);
    json_decref(calls);
    gw_buf_free(&text);
    if (bad) goto fail;
  }
  json_t *tools = json_object_get(b, "tools");
  if (json_is_array(tools) && json_array_size(tools)) {
    json_t *out = json_array(), *t;
    json_object_set_new(o, "tools", out);
    json_array_foreach(tools, i, t) {
      const char *name = json_string_value(json_object_get(t, "name"));
      json_t *schema = json_object_get(t, "input_schema");
      if (!name || !json_is_object(schema) || (has(t, "type") && !is(t, "type", "custom"))) {
        *why = "a tool that is not a custom tool with an input_schema (server tools)";
        goto fail;
      }
      json_t *fn = json_pack("{s:s, s:O}", "name", name, "parameters", schema);
      if (json_is_string(json_object_get(t, "description")))
        json_object_set(fn, "description", json_object_get(t, "description"));
      json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", fn));
    }
  }
  json_t *tc = json_object_get(b, "tool_choice");
  if (json_is_object(tc)) {
    if (is(tc, "type", "any")) json_object_set_new(o, "tool_choice", json_string("required"));
    else if (is(tc, "type", "none")) json_object_set_new(o, "tool_choice", json_string("none"));
    else if (is(tc, "type", "tool") && json_is_string(json_object_get(tc, "name")))
      json_object_set_new(o, "tool_choice",
                          json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name",
                                    json_object_get(tc, "name")));
    else json_object_set_new(o, "tool_choice", json_string("auto"));
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
      json_object_set_new(o, "parallel_tool_calls", json_false());
  }
  json_t *mt = json_object_get(b, "max_tokens");
  if (json_is_integer(mt))
    json_object_set(o, prov->completion_tokens ? "max_completion_tokens" : "max_tokens", mt);
  if (json_is_array(json_object_get(b, "stop_sequences")))
    json_object_set(o, "stop", json_object_get(b, "stop_sequences"));
  if (json_is_number(json_object_get(b, "temperature")))
    json_object_set(o, "temperature", json_object_get(b, "temperature"));
  if (json_is_number(json_object_get(b, "top_p")))
    json_object_set(o, "top_p", json_object_get(b, "top_p"));
  json_t *user = json_object_get(json_object_get(b, "metadata"), "user_id");
  if (json_is_string(user)) json_object_set(o, "user", user);
  if (json_is_true(json_object_get(b, "stream"))) {
    json_object_set_new(o, "stream", json_true());
    json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
  }
  return o;
fail:
  json_decref(o);
  return NULL;
}

/* ---- the body's bytes, without parsing them again ---- */

static size_t skip_ws(const char *p, size_t n, size_t i) {
  while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) i++;
  return i;
}

/* Past the string starting at p[i] == '"'; *esc set if it holds an escape.
 * n if it does not end. */
static size_t skip_str(const char *p, size_t n, size_t i, int *esc) {
  for (i++; i < n; i++) {
    if (p[i] == '\\') {
      if (esc) *esc = 1;
      i++;
    } else if (p[i] == '"') {
      return i + 1;
    }
  }
  return n;
}

/* Past the value starting at p[i] (the body is valid JSON: it was parsed). */
static size_t skip_value(const char *p, size_t n, size_t i) {
  if (i >= n) return n;
  if (p[i] == '"') return skip_str(p, n, i, NULL);
  if (p[i] == '{' || p[i] == '[') {
    int depth = 0;
    for (; i < n; i++) {
      if (p[i] == '"') {
        i = skip_str(p, n, i, NULL) - 1;
      } else if (p[i] == '{' || p[i] == '[') {
        depth++;
      } else if ((p[i] == '}' || p[i] == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return n;
  }
  while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' &&
         p[i] != '\n' && p[i] != '\r')
    i++;
  return i;
}

int gw_json_member(const char *p, size_t n, const char *key, size_t *off, size_t *len) {
  size_t i = skip_ws(p, n, 0), klen = strlen(key);
  if (i >= n || p[i] != '{') return -1;
  for (i = skip_ws(p, n, i + 1); i < n && p[i] != '}';) {
    if (p[i] != '"') return -1;
    int esc = 0;
    size_t k0 = i + 1, k1 = skip_str(p, n, i, &esc);
    if (esc) return -1;   /* "mod\u0065l" is "model": not told apart here */
    i = skip_ws(p, n, k1);
    if (i >= n || p[i] != ':') return -1;
    i = skip_ws(p, n, i + 1);
    size_t v1 = skip_value(p, n, i);
    if (k1 - 1 - k0 == klen && !memcmp(p + k0, key, klen)) {
      *off = i;
      *len = v1 - i;
      return 1;
    }
    i = skip_ws(p, n, v1);
    if (i < n && p[i] == ',') i = skip_ws(p, n, i + 1);
  }
  return i < n ? 0 : -1;
}

char *gw_splice_model(const char *p, size_t n, const char *model_id, size_t *outlen) {
  size_t off, len;
  int found = gw_json_member(p, n, "model", &off, &len);
  if (found < 0) return NULL;
  json_t *s = json_string(model_id);   /* its JSON text, escaped as jansson does */
  char *v = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
  json_decref(s);
  if (!v) return NULL;
  size_t vn = strlen(v);
  if (!found) {   /* no "model": the first member */
    off = skip_ws(p, n, 0) + 1;
    len = 0;
  }
  size_t extra = found ? 0 : 9 + (skip_ws(p, n, off) < n && p[skip_ws(p, n, off)] != '}');
  char *out = malloc(n - len + vn + extra + 1);
  if (out) {
    size_t k = 0;
    memcpy(out, p, off);
    k = off;
    if (!found) memcpy(out + k, "\"model\": ", 9), k += 9;
    memcpy(out + k, v, vn);
    k += vn;
    if (!found && extra == 10) out[k++] = ',';
    memcpy(out + k, p + off + len, n - off - len);
    k += n - off - len;
    out[k] = 0;
    *outlen = k;
  }
  free(v);
  return out;
}

json_t *gw_translate_request(const json_t *body, int from, int to, const char *model_id,
                             const gw_provider *prov, long default_max_tokens,
                             const char **why) {
  json_t *o;
  *why = NULL;
  if (from == to) o = json_deep_copy(body);
  else if (from == GW_OPENAI) o = openai_to_anthropic(body, default_max_tokens, why);
  else o = anthropic_to_openai(body, prov, why);
  if (o) json_object_set_new(o, "model", json_string(model_id));
  return o;
}

/* ---- responses ---- */

static const char *stop_to_openai(const char *r) {
  if (!r) return "stop";
  if (!strcmp(r, "max_tokens")) return "length";
  if (!strcmp(r, "tool_use")) return "tool_calls";
  if (!strcmp(r, "refusal")) return "content_filter";
  return "stop";
}

static const char *stop_to_anthropic(const char *r) {
  if (!r) return "end_turn";
  if (!strcmp(r, "length")) return "max_tokens";
  if (!strcmp(r, "tool_calls")) return "tool_use";
  if (!strcmp(r, "content_filter")) return "refusal";
  return "end_turn";
}

int gw_usage(const json_t *resp, int fmt, long *in, long *cached, long *out) {
  json_t *u = json_object_get(resp, "usage");
  if (!json_is_object(u)) return -1;
  if (fmt == GW_OPENAI) {
    json_t *p = json_object_get(u, "prompt_tokens"), *c = json_object_get(u, "completion_tokens");
    if (!json_is_integer(p) && !json_is_integer(c)) return -1;
    *in = (long)json_integer_value(p);
    *out = (long)json_integer_value(c);
    *cached = (long)json_integer_value(
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens"));
    return 0;
  }
  json_t *i = json_object_get(u, "input_tokens"), *o = json_object_get(u, "output_tokens");
  if (!json_is_integer(i) && !json_is_integer(o)) return -1;
  /* Anthropic counts cache reads and writes apart from input_tokens. */
  *cached = (long)json_integer_value(json_object_get(u, "cache_read_input_tokens"));
  *in = (long)json_integer_value(i) + *cached +
        (long)json_integer_value(json_object_get(u, "cache_creation_input_tokens"));
  *out = (long)json_integer_value(o);
  return 0;
}

int gw_answer_shape(const json_t *r, int fmt, const char **why) {
  if (!json_is_object(r)) return *why = "the answer is not a JSON object", -1;
  if (fmt == GW_ANTHROPIC) {
    const char *type = json_string_value(json_object_get(r, "type"));
    if (!type || strcmp(type, "message"))
      return *why = "not a Messages answer (no \"type\": \"message\")", -1;
    if (!json_is_array(json_object_get(r, "content")))
      return *why = "not a Messages answer (no \"content\" array)", -1;
    return 0;
  }
  json_t *choices = json_object_get(r, "choices");
  if (!json_is_array(choices) || !json_array_size(choices))
    return *why = "not a chat completion (no \"choices\")", -1;
  if (!json_is_object(json_object_get(json_array_get(choices, 0), "message")))
    return *why = "not a chat completion (its first choice has no \"message\")", -1;
  return 0;
}

json_t *gw_translate_response(const json_t *r, int from, int to) {
  if (from == to) return json_deep_copy(r);
  long in = 0, cached = 0, out = 0;
  gw_usage(r, from, &in, &cached, &out);
  if (from == GW_ANTHROPIC) {   /* text blocks joined; tool_use blocks as tool_calls */
    gw_buf text = {0};
    json_t *calls = json_array();
    size_t i;
    json_t *blk;
    json_array_foreach(json_object_get(r, "content"), i, blk) {
      json_t *t = json_object_get(blk, "text");
      if (is(blk, "type", "text") && json_is_string(t)) {
        gw_buf_add(&text, json_string_value(t), json_string_length(t));
      } else if (is(blk, "type", "tool_use")) {
        char *args = json_dumps(json_object_get(blk, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
        json_array_append_new(calls, json_pack("{s:O?, s:s, s:{s:O?, s:s}}", "id",
                                               json_object_get(blk, "id"), "type", "function",
                                               "function", "name", json_object_get(blk, "name"),
                                               "arguments", args ? args : "{}"));
        free(args);
      }
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(msg, "content", text.n || !json_array_size(calls)
                                            ? json_stringn(text.p ? text.p : "", text.n)
                                            : json_null());
    if (json_array_size(calls)) json_object_set(msg, "tool_calls", calls);
    json_decref(calls);
    json_t *o = json_pack(
        "{s:O?, s:s, s:I, s:O?, s:[{s:i, s:o, s:s}], s:{s:I, s:I, s:I}}",
        "id", json_object_get(r, "id"), "object", "chat.completion", "created",
        (json_int_t)time(NULL), "model", json_object_get(r, "model"), "choices", "index", 0,
        "message", msg,
        "finish_reason", stop_to_openai(json_string_value(json_object_get(r, "stop_reason"))),
        "usage", "prompt_tokens", (json_int_t)in, "completion_tokens", (json_int_t)out,
        "total_tokens", (json_int_t)(in + out));
    gw_buf_free(&text);
    return o;
  }
  json_t *choice = json_array_get(json_object_get(r, "choices"), 0);
  json_t *msg = json_object_get(choice, "message");
  json_t *content = json_object_get(msg, "content");
  if (!json_is_object(msg)) return NULL;
  json_t *blocks = json_array();
  if (json_is_string(content) && (json_string_length(content) || !has(msg, "tool_calls")))
    json_array_append_new(blocks, json_pack("{s:s, s:O}", "type", "text", "text", content));
  size_t i;
  json_t *tc;
  json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
    json_t *fn = json_object_get(tc, "function");
    json_t *input = arguments_object(fn);
    if (!input) {   /* arguments that are not a JSON object: not an answer to pass on */
      json_decref(blocks);
      return NULL;
    }
    json_array_append_new(blocks, json_pack("{s:s, s:O?, s:O?, s:o}", "type", "tool_use", "id",
                                            json_object_get(tc, "id"), "name",
                                            json_object_get(fn, "name"), "input", input));
  }
  if (!json_array_size(blocks))
    json_array_append_new(blocks, json_pack("{s:s, s:s}", "type", "text", "text", ""));
  return json_pack("{s:O?, s:s, s:s, s:O?, s:o, s:s, s:n, s:{s:I, s:I}}",
                   "id", json_object_get(r, "id"), "type", "message", "role", "assistant",
                   "model", json_object_get(r, "model"), "content", blocks,
                   "stop_reason",
                   stop_to_anthropic(json_string_value(json_object_get(choice, "finish_reason"))),
                   "stop_sequence", "usage", "input_tokens", (json_int_t)(in - cached),
                   "output_tokens", (json_int_t)out);
}

/* ---- errors ---- */

char *gw_error_body(int format, unsigned status, const char *code, const char *message) {
  json_t *o;
  if (format == GW_ANTHROPIC) {
    const char *type = status == 400 ? "invalid_request_error"
                     : status == 401 ? "authentication_error"
                     : status == 403 ? "permission_error"
                     : status == 404 ? "not_found_error"
                     : status == 413 ? "request_too_large"
                     : status == 429 ? "rate_limit_error"
                     : status == 529 || status == 503 ? "overloaded_error" : "api_error";
    o = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message",
                  message);
  } else {
    const char *type = status < 500 ? "invalid_request_error" : "server_error";
    if (status == 429) type = "rate_limit_error";
    o = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type", type,
                  "param", "code", code);
  }
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

const char *gw_error_message(const json_t *resp, int fmt) {
  (void)fmt;  /* both formats keep it at error.message */
  return json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
}

/* ---- server-sent events ---- */

void gw_sse_init(gw_sse *s, int from, int to, int want_usage) {
  memset(s, 0, sizeof *s);
  s->from = from;
  s->to = to;
  s->want_usage = want_usage;
  s->block = -1;
  s->call_open = -1;
}

void gw_sse_free(gw_sse *s) {
  gw_buf_free(&s->pending);
  gw_buf_free(&s->out);
}

static void emit(gw_sse *s, const char *event, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  json_decref(data);
  if (!text) return;
  if (event) {
    gw_buf_add(&s->out, "event: ", 7);
    gw_buf_add(&s->out, event, strlen(event));
    gw_buf_add(&s->out, "\n", 1);
  }
  gw_buf_add(&s->out, "data: ", 6);
  gw_buf_add(&s->out, text, strlen(text));
  gw_buf_add(&s->out, "\n\n", 2);
  free(text);
}

static void copy_str(char *dst, size_t cap, const json_t *v) {
  if (json_is_string(v)) snprintf(dst, cap, "%s", json_string_value(v));
}

static json_t *oa_chunk(gw_sse *s, json_t *delta, const char *finish) {
  return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", s->id, "object",
                   "chat.completion.chunk", "created", (json_int_t)time(NULL), "model",
                   s->model, "choices", "index", 0, "delta", delta, "finish_reason", finish);
}

/* Anthropic client: the open content block ends. */
static void close_block(gw_sse *s) {
  if (s->block < 0 || s->block_tool < 0) return;
  emit(s, "content_block_stop", json_pack("{s:s, s:i}", "type", "content_block_stop", "index",
                                          s->block));
  s->block_tool = -1;   /* closed; s->block keeps its number */
}

/* Anthropic client: a new content block, text (tool NULL) or tool_use. */
static void open_block(gw_sse *s, int tool, const char *id, const char *name) {
  if (s->block >= 0) close_block(s);
  s->block++;
  s->block_tool = tool;
  json_t *cb = tool ? json_pack("{s:s, s:s, s:s, s:{}}", "type", "tool_use", "id", id ? id : "",
                                "name", name ? name : "", "input")
                    : json_pack("{s:s, s:s}", "type", "text", "text", "");
  emit(s, "content_block_start", json_pack("{s:s, s:i, s:o}", "type", "content_block_start",
                                           "index", s->block, "content_block", cb));
}

/* Closing events of a translated stream, once. */
static void close_translated(gw_sse *s) {
  if (s->finished || !s->started) return;
  s->finished = 1;
  if (s->to == GW_OPENAI) {
    emit(s, NULL, oa_chunk(s, json_object(), s->stop[0] ? s->stop : "stop"));
    if (s->want_usage)
      emit(s, NULL, json_pack("{s:s, s:s, s:I, s:s, s:[], s:{s:I, s:I, s:I}}", "id", s->id,
                              "object", "chat.completion.chunk", "created",
                              (json_int_t)time(NULL), "model", s->model, "choices", "usage",
                              "prompt_tokens", (json_int_t)s->in, "completion_tokens",
                              (json_int_t)s->outtok, "total_tokens",
                              (json_int_t)(s->in + s->outtok)));
    gw_buf_add(&s->out, "data: [DONE]\n\n", 14);
    return;
  }
  if (s->block < 0) open_block(s, 0, NULL, NULL);   /* a message has at least one block */
  close_block(s);
  emit(s, "message_delta",
       json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type", "message_delta", "delta", "stop_reason",
                 s->stop[0] ? s->stop : "end_turn", "stop_sequence", "usage", "output_tokens",
                 (json_int_t)s->outtok));
  emit(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

/* One Anthropic event read from upstream, for an OpenAI client (or for its
 * usage only when passing through). */
static void from_anthropic(gw_sse *s, json_t *d, int translate) {
  const char *type = json_string_value(json_object_get(d, "type"));
  if (!type) return;
  json_t *u = NULL;
  if (!strcmp(type, "message_start")) {
    json_t *msg = json_object_get(d, "message");
    copy_str(s->id, sizeof s->id, json_object_get(msg, "id"));
    copy_str(s->model, sizeof s->model, json_object_get(msg, "model"));
    u = json_object_get(msg, "usage");
    if (translate && !s->started) {
      s->started = 1;
      emit(s, NULL, oa_chunk(s, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
    }
  } else if (!strcmp(type, "content_block_start")) {
    json_t *cb = json_object_get(d, "content_block");
    if (translate && s->started && is(cb, "type", "tool_use")) {
      s->call_open = s->ncalls++;
      emit(s, NULL, oa_chunk(s, json_pack("{s:[{s:i, s:O?, s:s, s:{s:O?, s:s}}]}", "tool_calls",
                                          "index", s->call_open, "id", json_object_get(cb, "id"),
                                          "type", "function", "function", "name",
                                          json_object_get(cb, "name"), "arguments", ""), NULL));
    }
  } else if (!strcmp(type, "content_block_stop")) {
    s->call_open = -1;
  } else if (!strcmp(type, "content_block_delta")) {
    json_t *delta = json_object_get(d, "delta");
    json_t *text = json_object_get(delta, "text");
    json_t *pj = json_object_get(delta, "partial_json");
    if (translate && s->started && json_is_string(text))
      emit(s, NULL, oa_chunk(s, json_pack("{s:O}", "content", text), NULL));
    else if (translate && s->started && s->call_open >= 0 && json_is_string(pj))
      emit(s, NULL, oa_chunk(s, json_pack("{s:[{s:i, s:{s:O}}]}", "tool_calls", "index",
                                          s->call_open, "function", "arguments", pj), NULL));
  } else if (!strcmp(type, "message_delta")) {
    const char *r = json_string_value(json_object_get(json_object_get(d, "delta"), "stop_reason"));
    if (r) snprintf(s->stop, sizeof s->stop, "%s", stop_to_openai(r));
    u = json_object_get(d, "usage");
  } else if (!strcmp(type, "message_stop")) {
    if (translate) close_translated(s);
  } else if (!strcmp(type, "error") && translate) {
    emit(s, NULL, json_pack("{s:O?}", "error", json_object_get(d, "error")));
  }
  if (json_is_object(u)) {
    long in = 0, cached = 0, out = 0;
    json_t *wrap = json_pack("{s:O}", "usage", u);
    if (gw_usage(wrap, GW_ANTHROPIC, &in, &cached, &out) == 0) {
      if (json_object_get(u, "input_tokens")) s->in = in, s->cached = cached;
      if (json_object_get(u, "output_tokens")) s->outtok = out;
      s->have_usage = 1;
    }
    json_decref(wrap);
  }
}

/* One OpenAI chunk read from upstream, for an Anthropic client (or for its
 * usage only). */
static void from_openai(gw_sse *s, json_t *d, int translate) {
  long in, cached, out;
  if (gw_usage(d, GW_OPENAI, &in, &cached, &out) == 0) {
    s->in = in, s->cached = cached, s->outtok = out, s->have_usage = 1;
  }
  if (!translate) return;
  if (json_object_get(d, "error")) {
    emit(s, "error", json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                               "api_error", "message",
                               gw_error_message(d, GW_OPENAI) ? gw_error_message(d, GW_OPENAI)
                                                              : "upstream error"));
    return;
  }
  if (!s->started) {
    s->started = 1;
    copy_str(s->id, sizeof s->id, json_object_get(d, "id"));
    copy_str(s->model, sizeof s->model, json_object_get(d, "model"));
    emit(s, "message_start",
         json_pack("{s:s, s:{s:s, s:s, s:s, s:s, s:[], s:n, s:n, s:{s:i, s:i}}}", "type",
                   "message_start", "message", "id", s->id, "type", "message", "role",
                   "assistant", "model", s->model, "content", "stop_reason", "stop_sequence",
                   "usage", "input_tokens", 0, "output_tokens", 0));
  }
  json_t *choice = json_array_get(json_object_get(d, "choices"), 0);
  json_t *delta = json_object_get(choice, "delta");
  json_t *text = json_object_get(delta, "content");
  if (json_is_string(text) && json_string_length(text)) {
    if (s->block < 0 || s->block_tool != 0) open_block(s, 0, NULL, NULL);
    emit(s, "content_block_delta",
         json_pack("{s:s, s:i, s:{s:s, s:O}}", "type", "content_block_delta", "index", s->block,
                   "delta", "type", "text_delta", "text", text));
  }
  size_t i;
  json_t *tc;
  json_array_foreach(json_object_get(delta, "tool_calls"), i, tc) {
    json_t *fn = json_object_get(tc, "function");
    json_t *ix = json_object_get(tc, "index");
    int k = json_is_integer(ix) ? (int)json_integer_value(ix) : 0;
    if (s->block_tool != 1 || s->block_call != k) {   /* a new call: a tool_use block */
      open_block(s, 1, json_string_value(json_object_get(tc, "id")),
                 json_string_value(json_object_get(fn, "name")));
      s->block_call = k;
    }
    json_t *args = json_object_get(fn, "arguments");
    if (json_is_string(args) && json_string_length(args))
      emit(s, "content_block_delta",
           json_pack("{s:s, s:i, s:{s:s, s:O}}", "type", "content_block_delta", "index",
                     s->block, "delta", "type", "input_json_delta", "partial_json", args));
  }
  const char *fin = json_string_value(json_object_get(choice, "finish_reason"));
  if (fin) snprintf(s->stop, sizeof s->stop, "%s", stop_to_anthropic(fin));
}

/* One complete event (its lines, without the blank line ending it). */
static void event(gw_sse *s, char *ev) {
  gw_buf data = {0};
  for (char *line = ev, *next; line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r') line[--n] = 0;
    if (!strncmp(line, "data:", 5)) {
      const char *v = line + 5 + (line[5] == ' ');
      if (data.n) gw_buf_add(&data, "\n", 1);
      gw_buf_add(&data, v, strlen(v));
    }
  }
  int translate = s->from != s->to;
  if (data.n && !strcmp(data.p, "[DONE]")) {
    if (translate) close_translated(s);
  } else if (data.n) {
    json_t *d = json_loadb(data.p, data.n, JSON_ALLOW_NUL, NULL);
    if (d && s->from == GW_ANTHROPIC) from_anthropic(s, d, translate);
    else if (d) from_openai(s, d, translate);
    json_decref(d);
  }
  gw_buf_free(&data);
}

void gw_sse_feed(gw_sse *s, const char *p, size_t n) {
  if (s->from == s->to) gw_buf_add(&s->out, p, n);  /* verbatim; parsed for usage */
  if (s->pending.n > (1u << 20)) s->pending.n = 0;  /* not SSE: stop looking */
  gw_buf_add(&s->pending, p, n);
  for (;;) {
    char *end = NULL, *a = strstr(s->pending.p ? s->pending.p : "", "\n\n");
    char *b = strstr(s->pending.p ? s->pending.p : "", "\r\n\r\n");
    size_t skip = 2;
    end = a;
    if (b && (!a || b < a)) end = b, skip = 4;
    if (!end) break;
    *end = 0;
    event(s, s->pending.p);
    size_t used = (size_t)(end - s->pending.p) + skip;
    memmove(s->pending.p, s->pending.p + used, s->pending.n - used + 1);
    s->pending.n -= used;
  }
}

void gw_sse_end(gw_sse *s) {
  if (s->pending.n) {  /* a last event without its blank line */
    gw_buf_add(&s->pending, "\n\n", 2);
    gw_sse_feed(s, "", 0);
  }
  if (s->from != s->to) close_translated(s);
}
