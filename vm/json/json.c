/*
 * json.c -- request adapters: an OpenAI Chat Completions or Anthropic
 * Messages request body becomes the standard fields of a lane_request.
 *
 * Built into liblane-json (with jansson), never into liblane, so the VM
 * core keeps depending on libc only. Exports one function,
 * lane_request_from_json.
 *
 * Fields set. input_tokens, images, tools, json, stream and reasoning are
 * always set (the body decides them, absent means 0 or false);
 * max_output_tokens, user and model only when the body has them; then
 * every `metadata` key that names a string field of the policy and was not
 * set from the body; and when the policy declares a field `metadata:
 * map(string, T)`, the whole metadata object (each value a T, the map
 * within LANE_MAX_MAP and the text room, else the body is refused). The
 * body's fields:
 *
 *   field              OpenAI chat                       Anthropic messages
 *   max_output_tokens  max_completion_tokens, else       max_tokens
 *                      max_tokens
 *   images             image_url parts                   image blocks (also inside
 *                                                        tool results, documents)
 *   tools              tools or functions non-empty      tools or mcp_servers non-empty
 *   json               response_format.type json_object  output_config.format.type
 *                      or json_schema                    (or output_format.type)
 *                                                        json_schema
 *   stream             stream                            stream
 *   reasoning          reasoning_effort (or              thinking.type "enabled" or
 *                      reasoning.effort) not "none"      "adaptive"
 *   user               user, else safety_identifier      metadata.user_id
 *   model              model                             model
 *
 * A model that reasons by itself (o3, deepseek-reasoner) without a
 * parameter asking for it leaves reasoning false: route on req.model.
 *
 * input_tokens, an estimate that needs no tokenizer:
 *
 *   ceil(T / 4) + 4 * M + 3 + media
 *
 *   T      bytes of text: message text (string content, text and refusal
 *          parts, thinking blocks, text documents, tool results), message
 *          names, tool calls (name and arguments; Anthropic tool_use name
 *          and its input as compact JSON), the system prompt, each tool
 *          definition as compact JSON, and a requested JSON schema as
 *          compact JSON. About 4 bytes a token for English and code.
 *   M      messages, plus one for an Anthropic top-level system prompt: 4
 *          tokens each for the role and separators, and 3 to prime the
 *          reply (OpenAI's published counting recipe, rounded up).
 *   media  images, audio and PDF documents:
 *     image, Anthropic  ceil(w*h / 750), at most 1,600 (Anthropic's vision
 *                       docs: larger images are scaled down to about that);
 *                       size unknown (a URL or file id): 1,600.
 *     image, OpenAI     detail "low": 85; otherwise (high, auto) fit in
 *                       2048x2048, shortest side down to 768, then 85 + 170
 *                       per 512-pixel tile; size unknown: 1,445, the most
 *                       a high-detail image can cost (2048x768, 8 tiles).
 *     size known        base64 data (Anthropic source.data, an OpenAI
 *                       data: URL) of a PNG, GIF, JPEG or WebP: read from
 *                       its header, decoding only the bytes needed (base64
 *                       broken into lines reads as size unknown).
 *     audio             1 token per 100 ms (OpenAI's rate for user audio);
 *                       duration from the decoded size and the byte rate of
 *                       a WAV header or the first MP3 frame's bitrate, else
 *                       128 kbit/s.
 *     PDF               3,000 tokens a page (the top of Anthropic's 1,500 to
 *                       3,000 text tokens per page); pages counted as
 *                       "/Type /Page" objects in the decoded file, at least
 *                       1; a PDF by URL or file id counts as 1 page.
 *
 * Limits, each a LANE_EJSON whose message names it: bodies over 32 MiB;
 * before anything is parsed, in one pass over the bytes, nesting deeper
 * than 64 arrays and objects and more than 100,000 values in the whole
 * body (objects, arrays, strings, numbers, literals; an object member
 * counts once), so the parsed tree stays near 220 bytes a value (100,000
 * empty objects: 22 MB) plus about twice the bytes of its strings (jansson
 * copies each while parsing; one 30 MB string: 60 MB); then more
 * than 10,000 entries in any array or object the adapter reads (messages,
 * content parts, tools, ...), content blocks nested deeper than 4 levels
 * (tool results, documents), strings longer than the request's free text
 * room (LANE_REQUEST_TEXT bytes in all for a lane_request variable; what
 * the host gave lane_request_init_in for a compact one).
 *
 * Format. A body is either format by the endpoint it came to or by its
 * shape. With one format allowed the host knows the endpoint (a gateway
 * that received the body at POST /v1/messages passes
 * LANE_FORMAT_ANTHROPIC_MESSAGES) and the body is read as that format,
 * whatever it holds. With both, the shape decides, strongest signal first.
 * Each provider refuses fields it does not know (OpenAI: "Unrecognized
 * request argument supplied"; Anthropic: "Extra inputs are not
 * permitted"), so a field only one API takes is a signal:
 *
 *   strong OpenAI      a message with role developer, tool or function, or
 *                      with tool_calls / tool_call_id; an image_url,
 *                      input_audio, file or refusal part; a tool with a
 *                      "function" object; a top-level key only OpenAI takes
 *                      (openai_keys[] below: max_completion_tokens,
 *                      response_format, stream_options, user, stop, ...)
 *   strong Anthropic   a tool_use, tool_result, server_tool_use,
 *                      search_result, web_search_tool_result or mcp_tool_*
 *                      block, or an image or document block with a source
 *                      object (at any depth of tool results); a tool with
 *                      input_schema; a top-level key only Anthropic takes
 *                      (system, stop_sequences, mcp_servers, output_config,
 *                      output_format, container, context_management) in a
 *                      body with max_tokens, which Anthropic requires
 *   weak OpenAI        a system message first in messages. Anthropic takes
 *                      role system in messages only as a "mid-conversation
 *                      system message" (Claude Opus 4.8; other models answer
 *                      400): never first, right after a user turn (or a
 *                      server tool use), text only. Frameworks still leave
 *                      one first in bodies they build for Anthropic.
 *   weak Anthropic     such a top-level key without max_tokens; a thinking
 *                      or redacted_thinking block (OpenAI-compatible proxies
 *                      carry them in Chat Completions assistant messages,
 *                      as the OpenAI Agents SDK does for LiteLLM)
 *   no signal          a system message later in messages (both APIs take
 *                      it; the Vercel AI SDK and the Claude Agent SDK send
 *                      them to Anthropic), max_tokens (Anthropic requires it, OpenAI takes
 *                      it as the older name of max_completion_tokens), text
 *                      parts, metadata, stream, temperature, top_p,
 *                      tool_choice; top_k and thinking too, which
 *                      OpenAI-compatible servers take (vLLM top_k;
 *                      DeepSeek, Kimi thinking)
 *
 * Strong signals of one format only: that format. Strong signals of both,
 * or no strong signal and weak ones of both: an error naming one of each.
 * Otherwise the weak signals decide; with none, Anthropic if max_tokens is
 * present, else OpenAI (such a body reads the same either way, but for
 * metadata.user_id, Anthropic's user).
 *
 * Atomic: every value is staged in an adapter and written into the request
 * only when the whole body has been read, so an error leaves it untouched.
 * Strings (model, user, metadata values) are appended to r's text room,
 * after what earlier calls put there; they are staged in the adapter (on
 * the stack, then on the heap as they outgrow it, never past the room) and
 * copied in on success. Returns LANE_OK; LANE_EJSON for a body it cannot
 * read; LANE_EARG for a NULL request or body, or formats that are 0 or
 * have unknown bits; LANE_ENOMEM when jansson, or the staging, runs out of
 * memory.
 */
#include "lane.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY   ((size_t)32 << 20)   /* bytes of body */
#define MAX_DEPTH  64                   /* nested arrays and objects */
#define MAX_ITEMS  10000                /* entries of one array or object */
#define MAX_VALUES 100000               /* values in the whole body */
#define MAX_BLOCK_DEPTH 4               /* content blocks inside tool results,
                                           documents */

#define IMG_ANTHROPIC_DEFAULT 1600      /* tokens: size unknown, and the cap */
#define IMG_OPENAI_LOW        85
#define IMG_OPENAI_DEFAULT    1445      /* 85 + 170 * 8 tiles */
#define PDF_PAGE_TOKENS       3000
#define AUDIO_DEFAULT_RATE    16000     /* bytes a second: 128 kbit/s */

/* A value waiting to be written into the request. */
typedef struct staged {
  int    field;       /* field index */
  int    type;        /* LANE_T_INT, LANE_T_BOOL or LANE_T_STRING: selects */
  int64_t i;          /* ... INT and BOOL */
  size_t off, n;      /* ... STRING: bytes at adapter text + off */
} staged;

typedef struct adapter {
  const lane_program *prog;       /* the request's program */
  int         fmt;                /* LANE_FORMAT_* being read */
  lane_error *err;                /* caller's, may be NULL */
  int         status;             /* first failure; LANE_OK so far */
  uint64_t    text;               /* T: bytes of text */
  uint64_t    messages;           /* M */
  uint64_t    media;              /* tokens of images, audio, PDFs */
  int64_t     images;             /* image parts */
  staged      vals[LANE_MAX_FIELDS]; /* values to commit */
  int         nvals;              /* entries of vals */
  size_t      room;               /* free bytes of the request's text */
  size_t      ntext;              /* bytes of buf in use */
  size_t      cap;                /* bytes of buf */
  char       *buf;                /* staged strings: stack, then malloc'ed
                                     as they outgrow it (up to room) */
  char       *dst;                /* the free part of the request's text room */
  int         compact;            /* the request is compact: its room is the host's */
  int         map_field;          /* a map field named metadata, or -1 */
  lane_entry *map_e;              /* its entries (malloc'ed): key and string value
                                     offsets into the staged text until commit */
  size_t      map_n;              /* entries */
  size_t      map_bytes;          /* what lane_set_map stores for it at commit */
  int         map_str;            /* its values are strings */
  char        stack[LANE_REQUEST_TEXT];
} adapter;

/* Records the first failure; returns -1 so callers can `return fail(...)`.
 * The adapter's one error helper, printf-checked. */
static int fail(adapter *a, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(adapter *a, int code, const char *fmt, ...) {
  if (a->status != LANE_OK) return -1;
  a->status = code;
  if (a->err) {
    va_list ap;
    va_start(ap, fmt);
    a->err->code = code;
    a->err->line = 0;
    vsnprintf(a->err->message, sizeof a->err->message, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const char *kind(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE: case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* ---- staging ------------------------------------------------------- */

static staged *stage(adapter *a, const char *name, int type, int replace) {
  int f = lane_field(a->prog, name);
  if (f < 0 || lane_field_type(a->prog, f) != type) return NULL;
  for (int i = 0; i < a->nvals; i++)
    if (a->vals[i].field == f) return replace ? &a->vals[i] : NULL;
  staged *s = &a->vals[a->nvals++];   /* at most one per field: fits */
  s->field = f;
  s->type = type;
  return s;
}

static void stage_int(adapter *a, const char *name, int type, int64_t v) {
  staged *s = stage(a, name, type, 1);
  if (s) s->i = v;
}

/* Copies n bytes into the staged text (growing it up to the request's
 * room, less `reserve`); their offset, or -1 after a failure naming what. */
static long stage_bytes(adapter *a, const char *what, const char *p, size_t n, size_t reserve) {
  if (a->ntext > a->room || n > a->room - a->ntext || reserve > a->room - a->ntext - n)
    return a->compact
      ? fail(a, LANE_EJSON, "%s: %zu bytes do not fit the request's text room (a compact "
             "request's room: what lane_request_init_in was given past lane_request_size)",
             what, n)
      : fail(a, LANE_EJSON, "%s: %zu bytes do not fit the request's text room "
             "(LANE_REQUEST_TEXT %d)", what, n, LANE_REQUEST_TEXT);
  if (n > a->cap - a->ntext) {   /* fits the room: grow the staging to it */
    size_t cap = a->cap * 2 > a->ntext + n ? a->cap * 2 : a->ntext + n;
    if (cap > a->room) cap = a->room;
    char *buf = a->buf == a->stack ? malloc(cap) : realloc(a->buf, cap);
    if (!buf) return fail(a, LANE_ENOMEM, "out of memory staging %zu bytes of text", cap);
    if (a->buf == a->stack) memcpy(buf, a->stack, a->ntext);
    a->buf = buf;
    a->cap = cap;
  }
  if (n) memcpy(a->buf + a->ntext, p, n);
  a->ntext += n;
  return (long)(a->ntext - n);
}

/* The body's metadata object as the policy's map field `metadata`
 * (map(string, T)): every entry, its value of type T. Keys and string
 * values are staged as text; lane_set_map copies them again at commit, so
 * the room keeps map_bytes for that. */
static int stage_map(adapter *a, const json_t *meta) {
  const char *unit = lane_field_unit(a->prog, a->map_field);
  if (strncmp(unit, "map(string, ", 12))
    return fail(a, LANE_EJSON, "metadata: the policy's map has an unknown value type");
  unit += 12;
  int str = !strncmp(unit, "string", 6), flag = !strncmp(unit, "bool", 4);
  int whole = !strncmp(unit, "int", 3) || !strncmp(unit, "tokens", 6);
  int uns = !strncmp(unit, "uint", 4);
  size_t n = json_object_size(meta), bytes = 4;
  if (n > LANE_MAX_MAP_ENTRIES)
    return fail(a, LANE_EJSON, "metadata has %zu entries; a map has at most "
                "LANE_MAX_MAP_ENTRIES (%d)", n, LANE_MAX_MAP_ENTRIES);
  a->map_e = calloc(n + 1, sizeof *a->map_e);
  if (!a->map_e) return fail(a, LANE_ENOMEM, "out of memory reading metadata");
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)meta, key, v) {
    lane_entry *e = &a->map_e[a->map_n];
    size_t kn = strlen(key), vn = str && json_is_string(v) ? json_string_length(v) : 0;
    if (str ? !json_is_string(v) : flag ? !json_is_boolean(v)
        : whole || uns ? !json_is_integer(v) || (uns && json_integer_value(v) < 0)
        : !json_is_number(v))
      return fail(a, LANE_EJSON, "metadata.%s must be %s (the policy's metadata is %s), found %s",
                  key, str ? "a string" : flag ? "a boolean" : uns ? "an integer >= 0"
                  : whole ? "an integer" : "a number", lane_field_unit(a->prog, a->map_field),
                  kind(v));
    if (kn > LANE_MAX_STRING || vn > LANE_MAX_STRING)
      return fail(a, LANE_EJSON, "metadata.%.40s: a %s of %zu bytes; a map's keys and strings "
                  "are at most LANE_MAX_STRING (%d bytes)", key, kn > LANE_MAX_STRING ? "key"
                  : "value", kn > vn ? kn : vn, LANE_MAX_STRING);
    bytes += 4 + kn + (str ? 4 + vn : 8);
    if (bytes > LANE_MAX_MAP)
      return fail(a, LANE_EJSON, "metadata takes more than LANE_MAX_MAP (%d bytes) as a map",
                  LANE_MAX_MAP);
    long ko = stage_bytes(a, "metadata", key, kn, bytes), vo = 0;
    if (ko < 0) return -1;
    if (str && (vo = stage_bytes(a, "metadata", json_string_value(v), vn, bytes)) < 0) return -1;
    e->key = (const char *)(uintptr_t)ko;
    e->klen = kn;
    if (str) { e->v.s.p = (const char *)(uintptr_t)vo; e->v.s.n = vn; }
    else if (flag) e->v.i = json_is_true(v);
    else if (whole || uns) e->v.i = json_integer_value(v);
    else e->v.d = json_number_value(v);
    a->map_n++;
  }
  if (bytes > a->room - a->ntext)   /* the stored map after the staged text */
    return fail(a, LANE_EJSON, "metadata as a map takes %zu bytes, the request's text room "
                "has %zu left", bytes, a->room - a->ntext);
  a->map_bytes = bytes;
  a->map_str = str;
  return 0;
}

/* Stages a string field; replace 0 keeps a value staged before. */
static int stage_str(adapter *a, const char *name, const char *p, size_t n, int replace) {
  int f = lane_field(a->prog, name);
  if (f < 0 || lane_field_type(a->prog, f) != LANE_T_STRING) return 0;
  for (int i = 0; i < a->nvals; i++)
    if (a->vals[i].field == f && !replace) return 0;
  if (n > LANE_MAX_STRING)   /* lane_set_str would refuse it at commit */
    return fail(a, LANE_EJSON, "%s is %zu bytes; a request string is at most LANE_MAX_STRING "
                "(%d bytes)", name, n, LANE_MAX_STRING);
  if (n > a->room - a->ntext || a->map_bytes > a->room - a->ntext - n)   /* the map's room kept */
    return a->compact
      ? fail(a, LANE_EJSON, "%s is %zu bytes; the request has room for %zu more bytes of "
             "text (a compact request's room: what lane_request_init_in was given past "
             "lane_request_size)", name, n, a->room - a->ntext)
      : fail(a, LANE_EJSON, "%s is %zu bytes; the request has room for %zu more bytes of "
             "text (LANE_REQUEST_TEXT %d)", name, n, a->room - a->ntext, LANE_REQUEST_TEXT);
  long off = stage_bytes(a, name, p, n, a->map_bytes);   /* fits: checked above */
  if (off < 0) return -1;
  staged *s = stage(a, name, LANE_T_STRING, 1);
  s->off = (size_t)off;
  s->n = n;
  return 0;
}

/* ---- typed access --------------------------------------------------- */

/* Member k of o if present and not null; NULL otherwise. */
static json_t *get(const json_t *o, const char *k) {
  json_t *v = json_is_object(o) ? json_object_get(o, k) : NULL;
  return json_is_null(v) ? NULL : v;
}

/* Member k as a string: 1 found, 0 absent or null, -1 wrong type. */
static int get_str(adapter *a, const json_t *o, const char *k, const char *where,
                   const char **p, size_t *n) {
  json_t *v = get(o, k);
  if (!v) return 0;
  if (!json_is_string(v))
    return fail(a, LANE_EJSON, "%s%s must be a string, found %s", where, k, kind(v));
  *p = json_string_value(v);
  *n = json_string_length(v);
  return 1;
}

/* Member k as an array of at most MAX_ITEMS: 1 found, 0 absent, -1 wrong. */
static int get_array(adapter *a, const json_t *o, const char *k, const char *where,
                     json_t **out) {
  json_t *v = get(o, k);
  if (!v) return 0;
  if (!json_is_array(v))
    return fail(a, LANE_EJSON, "%s%s must be an array, found %s", where, k, kind(v));
  if (json_array_size(v) > MAX_ITEMS)
    return fail(a, LANE_EJSON, "%s%s has %zu entries, at most %d", where, k,
                json_array_size(v), MAX_ITEMS);
  *out = v;
  return 1;
}

static int get_object(adapter *a, const json_t *o, const char *k, const char *where,
                      json_t **out) {
  json_t *v = get(o, k);
  if (!v) return 0;
  if (!json_is_object(v))
    return fail(a, LANE_EJSON, "%s%s must be an object, found %s", where, k, kind(v));
  if (json_object_size(v) > MAX_ITEMS)
    return fail(a, LANE_EJSON, "%s%s has %zu keys, at most %d", where, k,
                json_object_size(v), MAX_ITEMS);
  *out = v;
  return 1;
}

/* Adds the compact JSON size of v to the text. */
static int add_json(adapter *a, const json_t *v) {
  size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
  if (n == 0) return fail(a, LANE_ENOMEM, "out of memory measuring a JSON value");
  a->text += n;
  return 0;
}

/* ---- base64 and media headers ---------------------------------------- */

typedef struct b64 { const char *s; size_t n; } b64;   /* base64 text */

static int b64val(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Decodes bytes [off, off + len) of the data into out, reading only the
 * quads that hold them; returns how many it could (short at the end or at
 * a character that is not base64). */
static size_t b64_read(const b64 *b, uint64_t off, unsigned char *out, size_t len) {
  size_t got = 0;
  while (got < len) {
    uint64_t q = (off + got) / 3 * 4;
    if (q + 4 > b->n) break;
    int v[4];
    for (int i = 0; i < 4; i++) v[i] = b64val((unsigned char)b->s[q + i]);
    if (v[0] < 0 || v[1] < 0) break;
    unsigned char t[3] = {(unsigned char)(v[0] << 2 | v[1] >> 4),
                          (unsigned char)((v[1] & 15) << 4 | (v[2] < 0 ? 0 : v[2] >> 2)),
                          (unsigned char)((v[2] < 0 ? 0 : v[2] & 3) << 6 | (v[3] < 0 ? 0 : v[3]))};
    int have = v[2] < 0 ? 1 : v[3] < 0 ? 2 : 3;
    for (int i = (int)((off + got) % 3); i < have && got < len; i++) out[got++] = t[i];
    if (have < 3) break;
  }
  return got;
}

static uint64_t b64_size(const b64 *b) {
  size_t n = b->n;
  while (n > 0 && b->s[n - 1] == '=') n--;
  return (uint64_t)n * 3 / 4;
}

static uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t le16(const unsigned char *p) { return (uint32_t)p[1] << 8 | p[0]; }
static uint32_t be32(const unsigned char *p) { return be16(p) << 16 | be16(p + 2); }
static uint32_t le32(const unsigned char *p) { return le16(p + 2) << 16 | le16(p); }

/* JPEG: walks the segments to the first frame header. */
static int jpeg_size(const b64 *b, uint32_t *w, uint32_t *h) {
  uint64_t off = 2;
  for (int seg = 0; seg < 1024; seg++) {
    unsigned char m[9];
    if (b64_read(b, off, m, 4) < 4 || m[0] != 0xFF) return 0;
    if (m[1] == 0xFF) { off++; continue; }                 /* fill byte */
    if (m[1] == 0xD8 || m[1] == 0x01 || (m[1] >= 0xD0 && m[1] <= 0xD7)) { off += 2; continue; }
    if (m[1] == 0xDA || m[1] == 0xD9) return 0;             /* scan data, end */
    if (m[1] >= 0xC0 && m[1] <= 0xCF && m[1] != 0xC4 && m[1] != 0xC8 && m[1] != 0xCC) {
      if (b64_read(b, off, m, 9) < 9) return 0;
      *h = be16(m + 5);
      *w = be16(m + 7);
      return *w && *h;
    }
    off += 2 + be16(m + 2);
  }
  return 0;
}

/* Width and height of a PNG, GIF, WebP or JPEG image; 0 if unknown. */
static int image_size(const b64 *b, uint32_t *w, uint32_t *h) {
  unsigned char p[32];
  size_t n = b64_read(b, 0, p, sizeof p);
  if (n >= 24 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8)) {
    *w = be32(p + 16), *h = be32(p + 20);
  } else if (n >= 10 && !memcmp(p, "GIF8", 4)) {
    *w = le16(p + 6), *h = le16(p + 8);
  } else if (n >= 32 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4)) {
    if (!memcmp(p + 12, "VP8 ", 4)) *w = le16(p + 26) & 0x3FFF, *h = le16(p + 28) & 0x3FFF;
    else if (!memcmp(p + 12, "VP8L", 4)) {
      uint32_t v = le32(p + 21);
      *w = (v & 0x3FFF) + 1, *h = (v >> 14 & 0x3FFF) + 1;
    } else if (!memcmp(p + 12, "VP8X", 4)) {
      *w = (le32(p + 24) & 0xFFFFFF) + 1, *h = (le32(p + 27) & 0xFFFFFF) + 1;
    } else return 0;
  } else if (n >= 4 && p[0] == 0xFF && p[1] == 0xD8) {
    return jpeg_size(b, w, h);
  } else return 0;
  return *w && *h;
}

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Anthropic: (w*h)/750 after scaling the long edge to 1568, capped. */
static uint64_t anthropic_image(uint64_t w, uint64_t h) {
  uint64_t lng = w > h ? w : h;
  if (lng > 1568) w = w * 1568 / lng, h = h * 1568 / lng;
  uint64_t t = ceil_div(w * h, 750);
  return t > IMG_ANTHROPIC_DEFAULT ? IMG_ANTHROPIC_DEFAULT : t;
}

/* OpenAI high detail: fit 2048x2048, shortest side to 768, 512-px tiles. */
static uint64_t openai_image(uint64_t w, uint64_t h) {
  uint64_t lng = w > h ? w : h;
  if (lng > 2048) w = w * 2048 / lng, h = h * 2048 / lng;
  uint64_t sht = w < h ? w : h;
  if (sht > 768) w = w * 768 / sht, h = h * 768 / sht;
  if (!w) w = 1;
  if (!h) h = 1;
  return IMG_OPENAI_LOW + 170 * ceil_div(w, 512) * ceil_div(h, 512);
}

/* Tokens of one image: data may be NULL (a URL, a file id); detail is
 * OpenAI's image_url.detail or NULL. */
static void add_image(adapter *a, const b64 *data, const char *detail) {
  uint32_t w = 0, h = 0;
  int known = data && image_size(data, &w, &h);
  a->images++;
  if (a->fmt == LANE_FORMAT_ANTHROPIC_MESSAGES)
    a->media += known ? anthropic_image(w, h) : IMG_ANTHROPIC_DEFAULT;
  else if (detail && !strcmp(detail, "low"))
    a->media += IMG_OPENAI_LOW;
  else
    a->media += known ? openai_image(w, h) : IMG_OPENAI_DEFAULT;
}

static const uint16_t mp3_v1[16] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224,
                                    256, 320, 0};
static const uint16_t mp3_v2[16] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144,
                                    160, 0};

/* Bytes a second of a WAV or MP3 (Layer III) file, or the default. */
static uint64_t audio_rate(const b64 *b) {
  unsigned char p[32];
  size_t n = b64_read(b, 0, p, sizeof p);
  if (n >= 32 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WAVE", 4) &&
      !memcmp(p + 12, "fmt ", 4) && le32(p + 28) > 0)
    return le32(p + 28);
  uint64_t off = 0;
  if (n >= 10 && !memcmp(p, "ID3", 3))   /* skip an ID3v2 tag: syncsafe size */
    off = 10 + ((uint64_t)(p[6] & 127) << 21 | (p[7] & 127) << 14 | (p[8] & 127) << 7 |
                (p[9] & 127));
  if (off && b64_read(b, off, p, 4) < 4) return AUDIO_DEFAULT_RATE;
  if (p[0] == 0xFF && (p[1] & 0xE0) == 0xE0 && (p[1] >> 1 & 3) == 1) {   /* Layer III */
    int v1 = (p[1] >> 3 & 3) == 3;
    unsigned kbps = (v1 ? mp3_v1 : mp3_v2)[p[2] >> 4];
    if (kbps) return (uint64_t)kbps * 125;
  }
  return AUDIO_DEFAULT_RATE;
}

static void add_audio(adapter *a, const b64 *data) {
  uint64_t ms = ceil_div(b64_size(data) * 1000, audio_rate(data));
  a->media += ceil_div(ms, 100);
}

/* "/Type /Page" (not /Pages) at p, with up to 8 spaces between. */
static int page_at(const unsigned char *p, size_t n) {
  if (n < 10 || memcmp(p, "/Type", 5)) return 0;
  size_t i = 5;
  while (i < 13 && i < n && (p[i] == ' ' || p[i] == '\r' || p[i] == '\n' || p[i] == '\t'))
    i++;
  if (i + 5 > n || memcmp(p + i, "/Page", 5)) return 0;
  i += 5;
  return i >= n || !((p[i] | 32) >= 'a' && (p[i] | 32) <= 'z');
}

/* Pages of a base64 PDF: decoded in chunks, at least 1. */
static uint64_t pdf_pages(const b64 *b) {
  enum { CHUNK = 3072, TAIL = 24 };
  unsigned char buf[CHUNK + TAIL];
  size_t keep = 0;
  uint64_t off = 0, pages = 0;
  for (;;) {
    size_t got = b64_read(b, off, buf + keep, CHUNK);
    off += got;
    size_t total = keep + got, limit = got == CHUNK ? total - TAIL : total;
    for (size_t i = 0; i < limit; i++)
      if (buf[i] == '/' && page_at(buf + i, total - i)) pages++;
    if (got < CHUNK) break;
    keep = total - limit;
    memmove(buf, buf + limit, keep);
  }
  return pages ? pages : 1;
}

static void add_pdf(adapter *a, const b64 *data) {
  a->media += (data ? pdf_pages(data) : 1) * PDF_PAGE_TOKENS;
}

/* The base64 part of a data: URL, or 0. */
static int data_url(const char *url, size_t n, b64 *out) {
  const char *c = n > 5 && !memcmp(url, "data:", 5) ? memchr(url, ',', n) : NULL;
  if (!c || c - url < 12 || memcmp(c - 7, ";base64", 7)) return 0;
  out->s = c + 1;
  out->n = n - (size_t)(c + 1 - url);
  return 1;
}

/* ---- messages --------------------------------------------------------- */

static int walk_blocks(adapter *a, const json_t *arr, const char *where, int depth);

/* Adds a string member's bytes to the text: 0 absent, 1 found, -1 wrong. */
static int add_str(adapter *a, const json_t *o, const char *k, const char *where) {
  const char *s;
  size_t n;
  int r = get_str(a, o, k, where, &s, &n);
  if (r > 0) a->text += n;
  return r;
}

/* An Anthropic source {type base64|url|file|text|content} of an image or a
 * document block; pre is the block's "where." prefix. */
static int read_source(adapter *a, const json_t *blk, const char *pre, int image,
                       int depth) {
  json_t *src = NULL, *content = NULL;
  const char *type = "", *data = NULL;
  size_t tn = 0, dn = 0;
  char at[176];
  snprintf(at, sizeof at, "%.160ssource.", pre);
  if (get_object(a, blk, "source", pre, &src) < 0) return -1;
  if (src && (get_str(a, src, "type", at, &type, &tn) < 0 ||
              get_str(a, src, "data", at, &data, &dn) < 0))
    return -1;
  b64 b = {data, dn};
  if (image) { add_image(a, data && !strcmp(type, "base64") ? &b : NULL, NULL); return 0; }
  if (!strcmp(type, "text")) { a->text += dn; return 0; }
  if (!strcmp(type, "content")) {
    json_t *c = get(src, "content");
    if (json_is_string(c)) { a->text += json_string_length(c); return 0; }
    if (get_array(a, src, "content", at, &content) < 0) return -1;
    snprintf(at, sizeof at, "%.160ssource.content", pre);
    return content ? walk_blocks(a, content, at, depth + 1) : 0;
  }
  add_pdf(a, data && !strcmp(type, "base64") ? &b : NULL);
  return 0;
}

/* An OpenAI tool call or legacy function_call: name and arguments. */
static int read_call(adapter *a, const json_t *fn, const char *where) {
  return add_str(a, fn, "name", where) < 0 || add_str(a, fn, "arguments", where) < 0 ? -1 : 0;
}

/* OpenAI media parts: image_url, input_audio, file (a PDF). */
static int read_openai_media(adapter *a, const json_t *part, const char *type,
                             const char *pre) {
  const char *url = NULL, *detail = NULL;
  size_t un = 0, n;
  json_t *o = NULL, *iu = get(part, "image_url");
  char at[176];
  b64 b = {"", 0};
  snprintf(at, sizeof at, "%.160s%s.", pre, type);
  if (!strcmp(type, "image_url")) {
    if (json_is_string(iu)) url = json_string_value(iu), un = json_string_length(iu);
    else if (get_object(a, part, type, pre, &o) < 0 || get_str(a, o, "url", at, &url, &un) < 0 ||
             get_str(a, o, "detail", at, &detail, &n) < 0)
      return -1;
    add_image(a, url && data_url(url, un, &b) ? &b : NULL, detail);
  } else if (!strcmp(type, "input_audio")) {
    if (get_object(a, part, type, pre, &o) < 0 || get_str(a, o, "data", at, &b.s, &b.n) < 0)
      return -1;
    add_audio(a, &b);
  } else {
    if (get_object(a, part, type, pre, &o) < 0 ||
        get_str(a, o, "file_data", at, &url, &un) < 0)
      return -1;
    add_pdf(a, url && data_url(url, un, &b) ? &b : NULL);
  }
  return 0;
}

/* One content part / block, of either format; where names it. */
static int read_part(adapter *a, const json_t *part, const char *where, int depth) {
  const char *type;
  size_t tn;
  json_t *o = NULL;
  char pre[176];
  snprintf(pre, sizeof pre, "%.160s.", where);
  if (!json_is_object(part))
    return fail(a, LANE_EJSON, "%s must be an object, found %s", where, kind(part));
  if (get_str(a, part, "type", pre, &type, &tn) <= 0)
    return a->status ? -1 : fail(a, LANE_EJSON, "%s has no type", where);
  if (!strcmp(type, "image_url") || !strcmp(type, "input_audio") || !strcmp(type, "file"))
    return read_openai_media(a, part, type, pre);
  if (!strcmp(type, "image") || !strcmp(type, "document"))
    return read_source(a, part, pre, type[1] == 'm', depth);
  if (!strcmp(type, "tool_use") || !strcmp(type, "server_tool_use")) {
    json_t *in = get(part, "input");
    return add_str(a, part, "name", pre) < 0 || (in && add_json(a, in) < 0) ? -1 : 0;
  }
  if (!strcmp(type, "tool_result") || !strcmp(type, "search_result")) {
    json_t *c = get(part, "content");
    char at[176];
    snprintf(at, sizeof at, "%.160s.content", where);
    if (json_is_string(c)) a->text += json_string_length(c);
    else if (get_array(a, part, "content", pre, &o) < 0) return -1;
    else if (o && walk_blocks(a, o, at, depth + 1) < 0) return -1;
    return add_str(a, part, "title", pre) < 0 ? -1 : 0;
  }
  /* text, refusal, thinking and any other kind: its own text member */
  const char *key = !strcmp(type, "refusal") ? "refusal"
                    : !strcmp(type, "thinking") ? "thinking" : "text";
  int r = add_str(a, part, key, pre);
  if (r == 0 && !strcmp(type, "text"))
    return fail(a, LANE_EJSON, "%s has type text but no text", where);
  return r < 0 ? -1 : 0;
}

static int walk_blocks(adapter *a, const json_t *arr, const char *where, int depth) {
  char at[176];
  if (depth > MAX_BLOCK_DEPTH)
    return fail(a, LANE_EJSON, "%s: content blocks nested deeper than %d levels", where,
                MAX_BLOCK_DEPTH);
  for (size_t i = 0; i < json_array_size(arr); i++) {
    snprintf(at, sizeof at, "%.140s[%zu]", where, i);
    if (read_part(a, json_array_get(arr, i), at, depth) < 0) return -1;
  }
  return 0;
}

/* A message's content: a string, null, or an array of parts. */
static int read_content(adapter *a, const json_t *msg, const char *where) {
  json_t *c = get(msg, "content");
  char at[160];
  if (!c) return 0;
  if (json_is_string(c)) { a->text += json_string_length(c); return 0; }
  if (!json_is_array(c))
    return fail(a, LANE_EJSON, "%scontent must be a string or an array, found %s", where,
                kind(c));
  if (json_array_size(c) > MAX_ITEMS)
    return fail(a, LANE_EJSON, "%scontent has %zu parts, at most %d", where,
                json_array_size(c), MAX_ITEMS);
  snprintf(at, sizeof at, "%.120scontent", where);
  return walk_blocks(a, c, at, 0);
}

static int read_message(adapter *a, const json_t *msg, size_t i) {
  char where[64];
  const char *s;
  size_t n;
  json_t *calls = NULL, *fn = NULL;
  snprintf(where, sizeof where, "messages[%zu].", i);
  if (!json_is_object(msg))
    return fail(a, LANE_EJSON, "messages[%zu] must be an object, found %s", i, kind(msg));
  a->messages++;
  if (get_str(a, msg, "role", where, &s, &n) < 0 || read_content(a, msg, where) < 0)
    return -1;
  if (add_str(a, msg, "name", where) < 0) return -1;
  if (get_array(a, msg, "tool_calls", where, &calls) < 0) return -1;
  for (size_t k = 0; calls && k < json_array_size(calls); k++) {
    char at[96];
    json_t *call = json_array_get(calls, k), *f = NULL;
    snprintf(at, sizeof at, "messages[%zu].tool_calls[%zu].", i, k);
    if (!json_is_object(call))
      return fail(a, LANE_EJSON, "messages[%zu].tool_calls[%zu] must be an object, found %s",
                  i, k, kind(call));
    if (get_object(a, call, "function", at, &f) < 0) return -1;
    snprintf(at, sizeof at, "messages[%zu].tool_calls[%zu].function.", i, k);
    if (f && read_call(a, f, at) < 0) return -1;
  }
  if (get_object(a, msg, "function_call", where, &fn) < 0) return -1;
  snprintf(where, sizeof where, "messages[%zu].function_call.", i);
  return fn ? read_call(a, fn, where) : 0;
}

/* ---- the body --------------------------------------------------------- */

/* An Anthropic system prompt: a string or an array of text blocks. */
static int read_system(adapter *a, const json_t *body) {
  json_t *sys = get(body, "system");
  if (!sys) return 0;
  a->messages++;
  if (json_is_string(sys)) { a->text += json_string_length(sys); return 0; }
  if (!json_is_array(sys))
    return fail(a, LANE_EJSON, "system must be a string or an array, found %s", kind(sys));
  if (json_array_size(sys) > MAX_ITEMS)
    return fail(a, LANE_EJSON, "system has %zu blocks, at most %d", json_array_size(sys),
                MAX_ITEMS);
  return walk_blocks(a, sys, "system", 0);
}

/* Tool definitions count as their compact JSON; sets tools. */
static int read_tools(adapter *a, const json_t *body) {
  static const char *const keys[] = {"tools", "functions", "mcp_servers"};
  int any = 0;
  for (int k = 0; k < 3; k++) {
    json_t *arr = NULL;
    if (get_array(a, body, keys[k], "", &arr) < 0) return -1;
    for (size_t i = 0; arr && i < json_array_size(arr); i++) {
      json_t *t = json_array_get(arr, i);
      if (!json_is_object(t))
        return fail(a, LANE_EJSON, "%s[%zu] must be an object, found %s", keys[k], i,
                    kind(t));
      if (k < 2 && add_json(a, t) < 0) return -1;   /* MCP tools are the server's */
      any = 1;
    }
  }
  stage_int(a, "tools", LANE_T_BOOL, any);
  return 0;
}

/* max_output_tokens from max_completion_tokens or max_tokens. */
static int read_max_tokens(adapter *a, const json_t *body) {
  const char *keys[2] = {"max_completion_tokens", "max_tokens"};
  for (int k = a->fmt == LANE_FORMAT_OPENAI_CHAT ? 0 : 1; k < 2; k++) {
    json_t *v = get(body, keys[k]);
    if (!v) continue;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
      return fail(a, LANE_EJSON, "%s must be an integer >= 0, found %s", keys[k],
                  json_is_integer(v) ? "a negative one" : kind(v));
    stage_int(a, "max_output_tokens", LANE_T_INT, json_integer_value(v));
    return 0;
  }
  return 0;
}

/* json: the type of a response format object; its schema counts as text. */
static int read_format(adapter *a, const json_t *body) {
  const char *path[3][2] = {{"response_format", NULL}, {"output_config", "format"},
                            {"output_format", NULL}};
  int json = 0, oa = a->fmt == LANE_FORMAT_OPENAI_CHAT;
  for (int k = oa ? 0 : 1; k < (oa ? 1 : 3); k++) {
    json_t *f = NULL, *outer = NULL;
    const char *type = NULL;
    size_t n;
    if (path[k][1]) {
      if (get_object(a, body, path[k][0], "", &outer) < 0) return -1;
      if (outer && get_object(a, outer, path[k][1], "output_config.", &f) < 0) return -1;
    } else if (get_object(a, body, path[k][0], "", &f) < 0)
      return -1;
    if (!f) continue;
    if (get_str(a, f, "type", path[k][0], &type, &n) < 0) return -1;
    if (type && (!strcmp(type, "json_object") || !strcmp(type, "json_schema"))) json = 1;
    json_t *schema = get(f, "schema");
    if (!schema) schema = get(get(f, "json_schema"), "schema");
    if (schema && add_json(a, schema) < 0) return -1;
  }
  stage_int(a, "json", LANE_T_BOOL, json);
  return 0;
}

static int read_reasoning(adapter *a, const json_t *body) {
  const char *s = NULL;
  size_t n;
  int on = 0;
  json_t *o = NULL;
  if (a->fmt == LANE_FORMAT_OPENAI_CHAT) {
    int r = get_str(a, body, "reasoning_effort", "", &s, &n);
    if (r == 0 && get_object(a, body, "reasoning", "", &o) >= 0 && o)
      r = get_str(a, o, "effort", "reasoning.", &s, &n);
    if (r < 0 || a->status) return -1;
    on = s && strcmp(s, "none") != 0;
  } else {
    if (get_object(a, body, "thinking", "", &o) < 0 ||
        (o && get_str(a, o, "type", "thinking.", &s, &n) < 0))
      return -1;
    on = s && (!strcmp(s, "enabled") || !strcmp(s, "adaptive"));
  }
  stage_int(a, "reasoning", LANE_T_BOOL, on);
  return 0;
}

/* model, stream, user, then metadata keys naming string fields. */
static int read_scalars(adapter *a, const json_t *body) {
  const char *s;
  size_t n;
  json_t *meta = NULL, *st = get(body, "stream");
  int r;
  if ((r = get_str(a, body, "model", "", &s, &n)) < 0) return -1;
  if (r && stage_str(a, "model", s, n, 1) < 0) return -1;
  if (st && !json_is_boolean(st))
    return fail(a, LANE_EJSON, "stream must be a boolean, found %s", kind(st));
  stage_int(a, "stream", LANE_T_BOOL, json_is_true(st));
  if (get_object(a, body, "metadata", "", &meta) < 0) return -1;
  if (a->fmt == LANE_FORMAT_OPENAI_CHAT) {
    if ((r = get_str(a, body, "user", "", &s, &n)) == 0)
      r = get_str(a, body, "safety_identifier", "", &s, &n);
  } else {
    r = get_str(a, meta, "user_id", "metadata.", &s, &n);
  }
  if (r < 0 || (r && stage_str(a, "user", s, n, 1) < 0)) return -1;
  if (meta && a->map_field >= 0 && stage_map(a, meta) < 0) return -1;
  const char *key;
  json_t *v;
  json_object_foreach(meta, key, v) {
    int f = lane_field(a->prog, key);
    if (f < 0 || lane_field_type(a->prog, f) != LANE_T_STRING || json_is_null(v)) continue;
    if (!json_is_string(v))
      return fail(a, LANE_EJSON, "metadata.%s must be a string (the policy's field %s is "
                  "one), found %s", key, key, kind(v));
    if (stage_str(a, key, json_string_value(v), json_string_length(v), 0) < 0) return -1;
  }
  return 0;
}

/* ---- format detection -------------------------------------------------- */

/* What a body's shape says about its format (comment at the top): the first
 * strong and the first weak signal of one format, as phrases for errors. */
typedef struct signals {
  const char *strong;   /* a field only this format has; NULL if none */
  const char *weak;     /* this format's field the other rejects, or a
                           frameworks' leftover; NULL if none */
  char buf[80];         /* a phrase naming a role or a block type */
} signals;

static int in_list(const char *s, const char *const *list) {
  for (; s && *list; list++)
    if (!strcmp(s, *list)) return 1;
  return 0;
}

/* Top-level keys the other provider's API refuses ("Unrecognized request
 * argument supplied" from OpenAI, "Extra inputs are not permitted" from
 * Anthropic). Not listed, as OpenAI-compatible servers take them too:
 * top_k, thinking (see the top of the file). */
static const char *const openai_keys[] = {"max_completion_tokens", "response_format",
  "reasoning_effort", "stream_options", "logprobs", "top_logprobs", "n",
  "frequency_penalty", "presence_penalty", "logit_bias", "seed", "parallel_tool_calls",
  "functions", "function_call", "modalities", "audio", "prediction", "web_search_options",
  "user", "safety_identifier", "store", "stop", "verbosity", "prompt_cache_key",
  "prompt_cache_retention", NULL};
static const char *const anthropic_keys[] = {"system", "stop_sequences", "mcp_servers",
  "output_config", "output_format", "container", "context_management", NULL};

static void openai_signals(const json_t *body, signals *s) {
  static const char *const roles[] = {"developer", "tool", "function", NULL};
  static const char *const parts[] = {"image_url", "input_audio", "file", "refusal", NULL};
  json_t *msgs = json_object_get(body, "messages"), *tools = json_object_get(body, "tools");
  for (const char *const *k = openai_keys; !s->strong && *k; k++)
    if (json_object_get(body, *k)) s->strong = *k;
  for (size_t i = 0; !s->strong && i < json_array_size(tools); i++)
    if (json_object_get(json_array_get(tools, i), "function"))
      s->strong = "a tool with a function object";
  for (size_t i = 0; !s->strong && i < json_array_size(msgs); i++) {
    json_t *m = json_array_get(msgs, i), *c = json_object_get(m, "content");
    const char *role = json_string_value(json_object_get(m, "role"));
    if (in_list(role, roles)) {
      snprintf(s->buf, sizeof s->buf, "a message with role %s", role);
      s->strong = s->buf;
    } else if (json_object_get(m, "tool_calls") || json_object_get(m, "tool_call_id")) {
      s->strong = "a message with tool_calls";
    } else if (i == 0 && role && !strcmp(role, "system")) {
      s->weak = "a system message first";
    }
    for (size_t j = 0; !s->strong && j < json_array_size(c); j++) {
      const char *t = json_string_value(json_object_get(json_array_get(c, j), "type"));
      if (in_list(t, parts)) {
        snprintf(s->buf, sizeof s->buf, "a content part of type %.40s", t);
        s->strong = s->buf;
      }
    }
  }
}

/* Blocks of one content array, recursing into tool results. */
static void anthropic_blocks(const json_t *c, signals *s, int depth) {
  static const char *const blocks[] = {"tool_use", "tool_result", "server_tool_use",
    "web_search_tool_result", "search_result", "mcp_tool_use", "mcp_tool_result", NULL};
  static const char *const sourced[] = {"image", "document", NULL};
  static const char *const thinking[] = {"thinking", "redacted_thinking", NULL};
  for (size_t j = 0; !s->strong && j < json_array_size(c); j++) {
    json_t *b = json_array_get(c, j);
    const char *t = json_string_value(json_object_get(b, "type"));
    int sourced_block = in_list(t, sourced) && json_is_object(json_object_get(b, "source"));
    if (in_list(t, blocks) || sourced_block) {
      snprintf(s->buf, sizeof s->buf, "a content block of type %.40s", t);
      s->strong = s->buf;
    } else if (in_list(t, thinking) && !s->weak) {
      s->weak = "a thinking block";
    } else if (depth < MAX_BLOCK_DEPTH) {
      anthropic_blocks(json_object_get(b, "content"), s, depth + 1);
    }
  }
}

static void anthropic_signals(const json_t *body, signals *s) {
  json_t *msgs = json_object_get(body, "messages"), *tools = json_object_get(body, "tools");
  int max_tokens = json_object_get(body, "max_tokens") != NULL;
  for (const char *const *k = anthropic_keys; *k; k++) {
    if (!json_object_get(body, *k)) continue;
    if (max_tokens) s->strong = *k;   /* Anthropic requires max_tokens */
    else s->weak = *k;
    break;
  }
  for (size_t i = 0; !s->strong && i < json_array_size(tools); i++)
    if (json_object_get(json_array_get(tools, i), "input_schema"))
      s->strong = "a tool with input_schema";
  for (size_t i = 0; !s->strong && i < json_array_size(msgs); i++)
    anthropic_blocks(json_object_get(json_array_get(msgs, i), "content"), s, 0);
}

/* The format to read: the host's when it allows one (it knows the endpoint),
 * else by the strongest signals. */
static int detect(adapter *a, const json_t *body, int formats) {
  signals oa = {NULL, NULL, ""}, an = {NULL, NULL, ""};
  if (formats == LANE_FORMAT_OPENAI_CHAT || formats == LANE_FORMAT_ANTHROPIC_MESSAGES)
    return a->fmt = formats;
  openai_signals(body, &oa);
  anthropic_signals(body, &an);
  if ((oa.strong && an.strong) || (!oa.strong && !an.strong && oa.weak && an.weak))
    return fail(a, LANE_EJSON, "the body has both OpenAI (%s) and Anthropic (%s) fields; "
                "allow only the format of the endpoint it came to",
                oa.strong ? oa.strong : oa.weak, an.strong ? an.strong : an.weak);
  if (oa.strong || (!an.strong && oa.weak)) return a->fmt = LANE_FORMAT_OPENAI_CHAT;
  if (an.strong || an.weak || json_object_get(body, "max_tokens"))
    return a->fmt = LANE_FORMAT_ANTHROPIC_MESSAGES;
  return a->fmt = LANE_FORMAT_OPENAI_CHAT;
}

/* ---- entry -------------------------------------------------------------- */

/* The index of the quote closing a string whose text starts at i, or n: a
 * quote is escaped when an odd run of backslashes precedes it. */
static size_t string_end(const char *s, size_t i, size_t n) {
  for (;;) {
    const char *q = i < n ? memchr(s + i, '"', n - i) : NULL;
    if (!q) return n;
    size_t k = (size_t)(q - s), b = k;
    while (b > i && s[b - 1] == '\\') b--;
    if ((k - b) % 2 == 0) return k;
    i = k + 1;
  }
}

/* One pass over the bytes before jansson builds anything, because the tree
 * costs far more than the text: an empty object is 3 bytes of body and about
 * 220 bytes of jansson (30 MB of them took 2.2 GB and 6 s to build). Refuses
 * nesting deeper than MAX_DEPTH and more than MAX_VALUES values. Outside
 * strings, a container's first entry and every comma inside a container
 * start a value (an object member counts once); with the root that is
 * exactly the tree's values. Bytes that are not JSON are left to jansson. */
static int prescan(adapter *a, const char *s, size_t n) {
  size_t depth = 0, values = 1;
  int fresh = 0;                    /* just opened: the next byte may be its first entry */
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (fresh && c != ']' && c != '}') values++;
    fresh = 0;
    if (c == '"') {
      i = string_end(s, i + 1, n);
    } else if (c == '[' || c == '{') {
      if (++depth > MAX_DEPTH)
        return fail(a, LANE_EJSON, "nesting deeper than %d levels at byte %zu", MAX_DEPTH, i);
      fresh = 1;
    } else if (c == ']' || c == '}') {
      if (depth > 0) depth--;
    } else if (c == ',' && depth > 0) {
      values++;
    }
    if (values > MAX_VALUES)
      return fail(a, LANE_EJSON, "more than %d values (objects, arrays, strings, numbers, "
                  "literals) by byte %zu; the limit is %d", MAX_VALUES, i, MAX_VALUES);
  }
  return 0;
}

static int read_body(adapter *a, const json_t *body, int formats) {
  json_t *msgs = NULL;
  if (!json_is_object(body))
    return fail(a, LANE_EJSON, "the body must be a JSON object, found %s", kind(body));
  if (detect(a, body, formats) < 0) return -1;
  if (get_array(a, body, "messages", "", &msgs) < 0) return -1;
  if (!msgs) return fail(a, LANE_EJSON, "the body has no messages array");
  for (size_t i = 0; i < json_array_size(msgs); i++)
    if (read_message(a, json_array_get(msgs, i), i) < 0) return -1;
  if (a->fmt == LANE_FORMAT_ANTHROPIC_MESSAGES && read_system(a, body) < 0) return -1;
  if (read_tools(a, body) < 0 || read_max_tokens(a, body) < 0 || read_format(a, body) < 0 ||
      read_reasoning(a, body) < 0 || read_scalars(a, body) < 0)
    return -1;
  uint64_t tokens = ceil_div(a->text, 4) + 4 * a->messages + 3 + a->media;
  stage_int(a, "input_tokens", LANE_T_INT, (int64_t)tokens);
  stage_int(a, "images", LANE_T_INT, a->images);
  return 0;
}

/* Writes every staged value; cannot fail (types and string lengths were
 * checked when they were staged). */
static void commit(const adapter *a, lane_request *r) {
  if (a->ntext) memcpy(a->dst, a->buf, a->ntext);
  lane_request_text_used(r, a->ntext);   /* staged within the room: fits */
  for (int i = 0; i < a->nvals; i++) {
    const staged *s = &a->vals[i];
    if (s->type == LANE_T_STRING) lane_set_str(r, s->field, a->dst + s->off, s->n);
    else if (s->type == LANE_T_BOOL) lane_set_bool(r, s->field, (int)s->i);
    else lane_set_int(r, s->field, s->i);
  }
  if (a->map_e && a->map_field >= 0) {   /* fits: stage_map kept map_bytes of room */
    for (size_t i = 0; i < a->map_n; i++) {
      lane_entry *e = &a->map_e[i];
      e->key = a->dst + (uintptr_t)e->key;
      if (a->map_str) e->v.s.p = a->dst + (uintptr_t)e->v.s.p;
    }
    if (lane_set_map(r, a->map_field, a->map_e, a->map_n) != LANE_OK)   /* room was kept */
      r->set &= ~((uint64_t)1 << a->map_field);
  }
}

int lane_request_from_json(lane_request *r, const char *body, size_t len, int formats,
                           lane_error *err) {
  adapter a;
  memset(&a, 0, sizeof a);
  a.err = err;
  a.map_field = -1;
  if (!r || !r->prog || r->ntext > r->room || (!body && len))
    fail(&a, LANE_EARG, "lane_request_from_json: no request, program or body");
  else if (formats <= 0 ||
           formats & ~(LANE_FORMAT_OPENAI_CHAT | LANE_FORMAT_ANTHROPIC_MESSAGES))
    fail(&a, LANE_EARG, "formats must be LANE_FORMAT_OPENAI_CHAT, "
         "LANE_FORMAT_ANTHROPIC_MESSAGES or both, not %d", formats);
  else if (len > MAX_BODY)
    fail(&a, LANE_EJSON, "the body is %zu bytes, at most %zu", len, MAX_BODY);
  else if (prescan(&a, body, len) == 0) {
    a.prog = r->prog;
    a.dst = lane_request_text(r, &a.room);
    a.compact = r->compact != 0;
    a.map_field = lane_field(r->prog, "metadata");
    if (a.map_field >= 0 && lane_field_type(r->prog, a.map_field) != LANE_T_MAP) a.map_field = -1;
  }
  a.buf = a.stack;
  a.cap = sizeof a.stack;
  if (a.status == LANE_OK) {
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", len,
                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root && json_error_code(&jerr) == json_error_out_of_memory)
      fail(&a, LANE_ENOMEM, "out of memory reading the body");
    else if (!root)
      fail(&a, LANE_EJSON, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
           jerr.column);
    else {
      read_body(&a, root, formats);
      json_decref(root);
    }
  }
  if (a.status == LANE_OK) commit(&a, r);
  if (a.buf != a.stack) free(a.buf);
  free(a.map_e);
  return a.status;
}
