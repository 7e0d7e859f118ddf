/*
 * t_json.c -- the request adapter (vm/json/json.c, liblane-json): every real body
 * in tests/json/ with its fields written out by hand; image, audio and PDF
 * estimates; format detection; metadata fields; limits and malformed bodies,
 * each of which must leave the request exactly as it was.
 *
 * Run from the repository root (make test does).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "lane.h"
#include "sema.h"

static const char policy[] =
  "model m { provider \"x\" name \"m\" input $1/Mtok output $2/Mtok context 200k "
  "max_output 8k }\n"
  "request { team: string  plan: string  seats: int  spent_frac: fraction }\n"
  "route r { otherwise -> m }\n";

static lane_program *compile_policy(void) {
  lanec_result r;
  if (lanec_compile("t_json.lane", policy, NULL, &r) != LANEC_OK) lanec_print_diags(&r, stdout);
  lane_program *p = r.prog;
  r.prog = NULL;
  lanec_result_free(&r);
  return p;
}

static lane_program *P;

/* ---- reading fields back ---------------------------------------------- */

static int isset(const lane_request *r, const char *name) {
  int f = lane_field(P, name);
  return f >= 0 && (r->set >> f & 1);
}

static long long geti(const lane_request *r, const char *name) {
  int f = lane_field(P, name);
  return isset(r, name) ? (long long)r->v[f].i : -1;
}

/* A string field as a NUL-terminated copy, or NULL when unset. */
static const char *gets_(const lane_request *r, const char *name) {
  static char buf[4][LANE_REQUEST_TEXT + 1];
  static int k;
  int f = lane_field(P, name);
  if (!isset(r, name)) return NULL;
  char *b = buf[k++ & 3];
  memcpy(b, r->v[f].s.p, r->v[f].s.n);
  b[r->v[f].s.n] = 0;
  return b;
}

static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = len >= 0 ? malloc((size_t)len + 1) : NULL;
  *n = b ? fread(b, 1, (size_t)len, f) : 0;
  fclose(f);
  return b;
}

static int parse(lane_request *r, const char *body, int formats, lane_error *err) {
  lane_request_init(r, P);
  return lane_request_from_json(r, body, strlen(body), formats, err);
}

/* ---- the real bodies ---------------------------------------------------- */

typedef struct fixture {
  const char *file;
  int fmt;                 /* LANE_FORMAT_* */
  long long input, max_out, images; /* -1: unset */
  int tools, json, stream, reasoning;
  const char *user, *model;
} fixture;

#define OA LANE_FORMAT_OPENAI_CHAT
#define AN LANE_FORMAT_ANTHROPIC_MESSAGES

/* input_tokens = ceil(T/4) + 4*M + 3 + media (vm/json/json.c), worked by hand:
 * T text bytes, M messages (+1 for an Anthropic system prompt). */
static const fixture fixtures[] = {
  /* T 34 ("You are a helpful assistant." 28 + "Hello!" 6), M 2 */
  {"openai/01.json", OA, 9 + 8 + 3, -1, 0, 0, 0, 0, 0, NULL, "VAR_chat_model_id"},
  {"openai/03.json", OA, 20, -1, 0, 0, 0, 1, 0, NULL, "VAR_chat_model_id"},
  /* "Hello!" */
  {"openai/05.json", OA, 2 + 4 + 3, -1, 0, 0, 0, 0, 0, NULL, "VAR_chat_model_id"},
  /* T 45 + tool 159 + schema 107 = 311, M 1 */
  {"openai/07.json", OA, 78 + 4 + 3, -1, 0, 1, 1, 0, 0, NULL, "gpt-4o"},
  /* T 83 + get_file/{} 10 + "File attached" 13 + tool 144 = 250, M 4, image
   * by URL: 1,445 */
  {"openai/09.json", OA, 63 + 16 + 3 + 1445, -1, 1, 1, 0, 0, 0, NULL, "gpt-5-mini"},
  /* T 37, M 1; 53,856 bytes of MP3 at 96 kbit/s = 4,488 ms = 45 tokens */
  {"openai/11.json", OA, 10 + 4 + 3 + 45, -1, 0, 0, 0, 0, 0, NULL, "gpt-4o-audio-preview"},
  {"openai/13.json", OA, 2 + 4 + 3, 100, 0, 0, 0, 0, 0, NULL, "o3-mini"},
  /* "What is the capital of Mexico?" 30 */
  {"openai/15.json", OA, 8 + 4 + 3, -1, 0, 0, 0, 1, 0, NULL, "gpt-4o"},
  /* 28 + 18 */
  {"openai/17.json", OA, 12 + 8 + 3, -1, 0, 0, 0, 0, 0, NULL, "gpt-4o"},
  /* 28 + get_weather 11 + {"city": "Paris"} 17 + 19 + tool 207 = 282, M 3 */
  {"openai/19.json", OA, 71 + 12 + 3, -1, 0, 1, 0, 0, 0, NULL, "mistral-large-latest"},
  /* "How do I cross the street?" 26: no reasoning parameter */
  {"openai/21.json", OA, 7 + 4 + 3, -1, 0, 0, 0, 0, 0, NULL, "deepseek-reasoner"},
  /* T 12 + system 27 + tool 367 + schema 13 = 419, M 2; thinking adaptive */
  {"anthropic/01.json", AN, 105 + 8 + 3, 1024, 0, 1, 1, 0, 1,
   "13803d75-b4b5-4c3e-b2a2-6f21399b021b", "claude-opus-4-6"},
  /* T 23, M 1, an image by URL: 1,600 */
  {"anthropic/03.json", AN, 6 + 4 + 3 + 1600, 4096, 1, 0, 0, 0, 0, NULL, "claude-haiku-4-5"},
  /* T 42 + system 30 + web_search tool 117 = 189, M 2 */
  {"anthropic/05.json", AN, 48 + 8 + 3, 4096, 0, 1, 0, 1, 0, NULL, "claude-sonnet-4-0"},
  /* 28 + get_weather 11 + {"city":"Paris"} 16 + 19 + tool 196 = 270, M 3 */
  {"anthropic/07.json", AN, 68 + 12 + 3, 4096, 0, 1, 0, 0, 0, NULL, "claude-sonnet-4-5"},
  {"anthropic/09.json", AN, 7 + 4 + 3, 4096, 0, 0, 0, 1, 1, NULL, "claude-sonnet-4-0"},
  /* T 42, M 1, a one-page PDF: 3,000 */
  {"anthropic/11.json", AN, 11 + 4 + 3 + 3000, 4096, 0, 0, 0, 0, 0, NULL, "claude-sonnet-4-5"},
  /* T 80; mcp_servers are tools, their definitions the server's */
  {"anthropic/13.json", AN, 20 + 4 + 3, 4096, 0, 1, 0, 0, 1, NULL, "claude-sonnet-4-0"},
  {"anthropic/15.json", AN, 2 + 4 + 3, 4096, 0, 0, 0, 0, 0, NULL, "claude-haiku-4-5"},
  /* T 32 + system 120 + three tools 617 = 769, M 2 */
  {"anthropic/17.json", AN, 193 + 8 + 3, 4096, 0, 1, 0, 0, 0, NULL, "claude-sonnet-4-5"},

  /* Agent frameworks (tests/json/README.md). The two with a system message
   * inside messages and a top-level system were refused with both formats
   * allowed ("both OpenAI ... and Anthropic (system) fields").
   *
   * T: texts 29 + 13 + 24 + tool_use weather 7 + {"city":"Paris"} 16, tool
   * result 54, system message 29 = 148; system 53; tool 260: 461. M 4 + 1 */
  {"agents/vercel-ai-anthropic-mid-system.json", AN, 116 + 20 + 3, 128000, 0, 1, 0, 0, 0,
   NULL, "claude-opus-4-8"},
  /* T "Hello" 5 + tool 196 = 201, M 1 */
  {"agents/vercel-ai-anthropic-tools.json", AN, 51 + 4 + 3, 4096, 0, 1, 0, 0, 0, NULL,
   "claude-3-haiku-20240307"},
  /* T: texts 107 + 43 + 24, Bash 4 + input 90, tool result 96, system-reminder
   * message 92, Read 4 + input 41, tool result block 54 = 555; system 57 +
   * 161 = 218; tools 538 + 460 = 998: 1771. M 6 + 1; thinking enabled */
  {"agents/claude-agent-sdk-tool-loop.json", AN, 443 + 28 + 3, 32000, 0, 1, 0, 1, 1,
   "user_2f1d5c8e9a7b4c3d_account__session_6b0f9c1e-3d2a-4e5f-8a7b-9c0d1e2f3a4b",
   "claude-opus-4-8"},
  /* T: system 49, user 28, get_weather 11 + {"city":"Tokyo"} 16, tool 30 =
   * 134; tool definition 281: 415. M 4; no max_tokens */
  {"agents/openai-agents-sdk-tool-loop.json", OA, 104 + 16 + 3, -1, 0, 1, 0, 1, 0, NULL,
   "gpt-4.1"},
  /* T: 19, multiply 8 + {"a":21,"b":2} 14, tool result 2 = 43; system 60;
   * tool 252: 355. M 3 + 1 */
  {"agents/llamaindex-anthropic-tool-loop.json", AN, 89 + 16 + 3, 512, 0, 1, 0, 1, 0, NULL,
   "claude-sonnet-4-0"},
};

static void check_fixture(const fixture *x, const lane_request *r, const char *how) {
  is_int(geti(r, "input_tokens"), x->input, "%s %s: input_tokens", x->file, how);
  is_int(geti(r, "max_output_tokens"), x->max_out, "%s %s: max_output_tokens", x->file, how);
  is_int(geti(r, "images"), x->images, "%s %s: images", x->file, how);
  is_int(geti(r, "tools"), x->tools, "%s %s: tools", x->file, how);
  is_int(geti(r, "json"), x->json, "%s %s: json", x->file, how);
  is_int(geti(r, "stream"), x->stream, "%s %s: stream", x->file, how);
  is_int(geti(r, "reasoning"), x->reasoning, "%s %s: reasoning", x->file, how);
  is_str(gets_(r, "user"), x->user, "%s %s: user", x->file, how);
  is_str(gets_(r, "model"), x->model, "%s %s: model", x->file, how);
  ok(!isset(r, "tier") && !isset(r, "task") && !isset(r, "team"),
     "%s %s: nothing else set", x->file, how);
}

static void test_fixtures(void) {
  for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++) {
    const fixture *x = &fixtures[i];
    char path[128];
    size_t n = 0;
    snprintf(path, sizeof path, "tests/json/%s", x->file);
    char *body = slurp(path, &n);
    if (!ok(body != NULL, "read %s", path)) continue;
    lane_request r;
    lane_error err = {0, 0, ""};
    lane_request_init(&r, P);
    int st = lane_request_from_json(&r, body, n, OA | AN, &err);
    if (!is_int(st, LANE_OK, "%s: parsed, format detected", x->file)) diag("%s", err.message);
    check_fixture(x, &r, "auto");
    /* read as its own format only: the same; as the other: still a body */
    lane_request_init(&r, P);
    is_int(lane_request_from_json(&r, body, n, x->fmt, &err), LANE_OK, "%s: parsed as %s",
           x->file, x->fmt == OA ? "OpenAI" : "Anthropic");
    check_fixture(x, &r, "forced");
    free(body);
  }
}

/* ---- media ---------------------------------------------------------------- */

static void b64(const unsigned char *in, size_t n, char *out) {
  static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? in[i + 1] : 0) << 8 |
                 (i + 2 < n ? in[i + 2] : 0);
    out[o++] = A[v >> 18 & 63];
    out[o++] = A[v >> 12 & 63];
    out[o++] = i + 1 < n ? A[v >> 6 & 63] : '=';
    out[o++] = i + 2 < n ? A[v & 63] : '=';
  }
  out[o] = 0;
}

static void put_be(unsigned char *p, uint32_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}
static void put_le(unsigned char *p, uint32_t v, int n) {
  for (int i = 0; i < n; i++, v >>= 8) p[i] = (unsigned char)v;
}

/* Image headers of each kind, w x h; returns bytes written. */
static size_t png(unsigned char *p, uint32_t w, uint32_t h) {
  memcpy(p, "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
  put_be(p + 16, w, 4);
  put_be(p + 20, h, 4);
  memset(p + 24, 0, 9);
  return 33;
}
static size_t gif(unsigned char *p, uint32_t w, uint32_t h) {
  memcpy(p, "GIF89a", 6);
  put_le(p + 6, w, 2);
  put_le(p + 8, h, 2);
  memset(p + 10, 0, 3);
  return 13;
}
static size_t jpeg(unsigned char *p, uint32_t w, uint32_t h) {
  size_t o = 0;
  memcpy(p, "\xFF\xD8\xFF\xE0\x00\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 20);   /* APP0 */
  o = 20;
  memcpy(p + o, "\xFF\xE1\x00\x06" "Exif", 8);                                  /* APP1 */
  o += 8;
  memcpy(p + o, "\xFF\xC2\x00\x11\x08", 5);                                  /* SOF2 */
  put_be(p + o + 5, h, 2);
  put_be(p + o + 7, w, 2);
  memset(p + o + 9, 0, 10);
  return o + 19;
}
static size_t webp(unsigned char *p, uint32_t w, uint32_t h) {
  memcpy(p, "RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0", 24);
  put_le(p + 24, w - 1, 3);
  put_le(p + 27, h - 1, 3);
  memset(p + 30, 0, 4);
  return 34;
}

static char big[1 << 20];

/* One user message holding one part: tokens 0 text + 4 + 3 + media. */
static long long media_tokens(int fmt, const char *part) {
  lane_request r;
  lane_error err;
  snprintf(big, sizeof big, "{\"model\": \"x\", \"max_tokens\": 5, \"messages\": "
           "[{\"role\": \"user\", \"content\": [%s]}]}", part);
  lane_request_init(&r, P);
  int st = lane_request_from_json(&r, big, strlen(big), fmt, &err);
  if (st != LANE_OK) { diag("%s", err.message); return -2; }
  return geti(&r, "input_tokens") - 7;
}

static long long image(int fmt, size_t (*hdr)(unsigned char *, uint32_t, uint32_t),
                       uint32_t w, uint32_t h, const char *detail) {
  unsigned char raw[64];
  char enc[128], part[512];
  b64(raw, hdr(raw, w, h), enc);
  if (fmt == AN)
    snprintf(part, sizeof part, "{\"type\": \"image\", \"source\": {\"type\": \"base64\", "
             "\"media_type\": \"image/png\", \"data\": \"%s\"}}", enc);
  else
    snprintf(part, sizeof part, "{\"type\": \"image_url\", \"image_url\": {\"url\": "
             "\"data:image/png;base64,%s\"%s%s%s}}", enc, detail ? ", \"detail\": \"" : "",
             detail ? detail : "", detail ? "\"" : "");
  return media_tokens(fmt, part);
}

static void test_media(void) {
  /* Anthropic: ceil(w*h/750), long edge to 1568, at most 1,600 */
  is_int(image(AN, png, 800, 600, NULL), 640, "Anthropic PNG 800x600: 640");
  is_int(image(AN, gif, 200, 200, NULL), 54, "Anthropic GIF 200x200: ceil(40000/750) = 54");
  is_int(image(AN, jpeg, 1092, 1092, NULL), 1590, "Anthropic JPEG 1092x1092: 1590");
  is_int(image(AN, webp, 4000, 3000, NULL), 1600, "Anthropic WebP 4000x3000: capped at 1600");
  is_int(image(AN, png, 0, 0, NULL), 1600, "Anthropic PNG of 0x0: size unknown, 1600");
  /* OpenAI: 85 + 170 per 512 tile after fitting 2048 and shortest side 768 */
  is_int(image(OA, png, 800, 600, NULL), 765, "OpenAI PNG 800x600: 4 tiles, 765");
  is_int(image(OA, jpeg, 4096, 2048, NULL), 1105, "OpenAI JPEG 4096x2048: 1536x768, 6 tiles, 1105");
  is_int(image(OA, gif, 100, 100, NULL), 255, "OpenAI GIF 100x100: 1 tile, 255");
  is_int(image(OA, webp, 1024, 1024, NULL), 765, "OpenAI WebP 1024x1024: 768x768, 765");
  is_int(image(OA, png, 800, 600, "low"), 85, "OpenAI detail low: 85");
  is_int(media_tokens(OA, "{\"type\": \"image_url\", \"image_url\": {\"url\": "
                      "\"https://example.com/a.png\", \"detail\": \"low\"}}"), 85,
         "OpenAI URL, detail low: 85");
  is_int(media_tokens(OA, "{\"type\": \"image_url\", \"image_url\": "
                      "\"https://example.com/a.png\"}"), 1445,
         "OpenAI image_url as a bare string, size unknown: 1445");
  is_int(media_tokens(AN, "{\"type\": \"image\", \"source\": {\"type\": \"base64\", "
                      "\"data\": \"not an image\"}}"), 1600,
         "Anthropic image of unreadable data: 1600");

  /* audio: 1 token per 100 ms */
  unsigned char wav[44 + 32000];
  char part[sizeof wav * 2];
  memset(wav, 0, sizeof wav);
  memcpy(wav, "RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0", 28);
  put_le(wav + 28, 32000, 4);       /* 16 kHz, 16-bit mono */
  char *enc = malloc(sizeof wav * 2);
  b64(wav, sizeof wav, enc);
  snprintf(part, sizeof part, "{\"type\": \"input_audio\", \"input_audio\": "
           "{\"data\": \"%s\", \"format\": \"wav\"}}", enc);
  is_int(media_tokens(OA, part), 11, "WAV at 32,000 bytes/s, 32,044 bytes: 1,002 ms, 11");
  memset(wav, 0x55, 16000);         /* no header: 128 kbit/s */
  b64(wav, 16000, enc);
  snprintf(part, sizeof part, "{\"type\": \"input_audio\", \"input_audio\": "
           "{\"data\": \"%s\", \"format\": \"mp3\"}}", enc);
  is_int(media_tokens(OA, part), 10, "unknown audio, 16,000 bytes at 128 kbit/s: 10");

  /* PDF: 3,000 a page */
  const char pdf[] = "%PDF-1.4\n1 0 obj <</Type /Pages /Count 3>> endobj\n"
                     "2 0 obj <</Type /Page>> endobj 3 0 obj <</Type/Page /Parent 1 0 R>>\n"
                     "4 0 obj <</Type  /Page>> endobj 5 0 obj <</Type /PageLabel>>";
  b64((const unsigned char *)pdf, sizeof pdf - 1, enc);
  snprintf(part, sizeof part, "{\"type\": \"document\", \"source\": {\"type\": \"base64\", "
           "\"media_type\": \"application/pdf\", \"data\": \"%s\"}}", enc);
  is_int(media_tokens(AN, part), 9000, "Anthropic PDF of 3 pages: 9000");
  snprintf(part, sizeof part, "{\"type\": \"file\", \"file\": {\"filename\": \"a.pdf\", "
           "\"file_data\": \"data:application/pdf;base64,%s\"}}", enc);
  is_int(media_tokens(OA, part), 9000, "OpenAI file part, PDF of 3 pages: 9000");
  is_int(media_tokens(OA, "{\"type\": \"file\", \"file\": {\"file_id\": \"file-1\"}}"), 3000,
         "OpenAI file by id: one page, 3000");
  /* pages straddling the decoder's chunks are counted once each */
  size_t n = 0;
  char *many = malloc(200000);
  n += (size_t)sprintf(many, "%%PDF-1.7\n");
  for (int i = 0; i < 1000; i++)
    n += (size_t)sprintf(many + n, "%d 0 obj <</Type /Page /Contents %d 0 R>> endobj\n", i, i);
  char *enc2 = malloc(n * 2 + 4);
  b64((const unsigned char *)many, n, enc2);
  char *part2 = malloc(n * 2 + 256);
  sprintf(part2, "{\"type\": \"document\", \"source\": {\"type\": \"base64\", "
          "\"data\": \"%s\"}}", enc2);
  is_int(media_tokens(AN, part2), 3000000, "PDF of 1,000 pages over many chunks: 3,000,000");
  is_int(media_tokens(AN, "{\"type\": \"document\", \"source\": {\"type\": \"text\", "
                      "\"media_type\": \"text/plain\", \"data\": \"12345678\"}}"), 2,
         "a text document counts as text");
  is_int(media_tokens(AN, "{\"type\": \"document\", \"source\": {\"type\": \"content\", "
                      "\"content\": \"12345678\"}}"), 2, "a content document of a string");
  is_int(media_tokens(AN, "{\"type\": \"document\", \"source\": {\"type\": \"content\", "
                      "\"content\": [{\"type\": \"text\", \"text\": \"1234\"}, {\"type\": "
                      "\"image\", \"source\": {\"type\": \"url\", \"url\": \"u\"}}]}}"),
         1 + 1600, "a content document of blocks: text and an image");
  free(many), free(enc2), free(part2), free(enc);

  /* images are counted wherever they are */
  lane_request r;
  lane_error err;
  is_int(parse(&r, "{\"model\": \"x\", \"max_tokens\": 9, \"messages\": [{\"role\": \"user\", "
               "\"content\": [{\"type\": \"tool_result\", \"tool_use_id\": \"t\", \"content\": "
               "[{\"type\": \"text\", \"text\": \"abcd\"}, {\"type\": \"image\", \"source\": "
               "{\"type\": \"url\", \"url\": \"https://x/y.png\"}}]}, {\"type\": \"image\", "
               "\"source\": {\"type\": \"file\", \"file_id\": \"f\"}}]}]}", AN, &err),
         LANE_OK, "images inside a tool result");
  is_int(geti(&r, "images"), 2, "two images");
  is_int(geti(&r, "input_tokens"), 1 + 4 + 3 + 3200, "input_tokens 3208");
}

/* ---- format detection, metadata, text --------------------------------- */

/* Which format the shape picks: every body carries metadata.user_id "an",
 * which only the Anthropic reading takes as the user. */
static const struct { const char *body, *want; } signal_cases[] = {
  /* the issue: top-level system with max_tokens, a system message later */
  {"\"max_tokens\": 9, \"system\": \"s\", \"messages\": [{\"role\": \"user\", "
   "\"content\": \"hi\"}, {\"role\": \"system\", \"content\": \"x\"}]", "AN"},
  {"\"max_tokens\": 9, \"system\": \"s\", \"messages\": [{\"role\": \"system\", "
   "\"content\": \"x\"}, {\"role\": \"user\", \"content\": \"hi\"}]", "AN"},
  {"\"max_tokens\": 9, \"messages\": [{\"role\": \"system\", \"content\": \"x\"}, "
   "{\"role\": \"user\", \"content\": \"hi\"}]", "OA"},
  {"\"max_tokens\": 9, \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, "
   "{\"role\": \"system\", \"content\": \"x\"}]", "AN"},
  {"\"system\": \"s\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]", "AN"},
  {"\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"thinking\", "
   "\"thinking\": \"hm\"}]}]", "AN"},
  /* OpenAI-compatible proxies carry thinking blocks beside tool_calls */
  {"\"messages\": [{\"role\": \"assistant\", \"content\": [{\"type\": \"thinking\", "
   "\"thinking\": \"hm\", \"signature\": \"s\"}], \"tool_calls\": [{\"id\": \"c\", "
   "\"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": \"{}\"}}]}]",
   "OA"},
  {"\"max_tokens\": 9, \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": "
   "\"tool_result\", \"tool_use_id\": \"t\", \"content\": [{\"type\": \"image\", "
   "\"source\": {\"type\": \"url\", \"url\": \"u\"}}]}]}]", "AN"},
  /* an image block without a source is no signal; no max_tokens: OpenAI */
  {"\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\"}]}]", "OA"},
  {"\"context_management\": {}, \"max_tokens\": 1, \"messages\": [{\"role\": \"system\", "
   "\"content\": \"x\"}]", "AN"},
  {"\"top_k\": 5, \"thinking\": {\"type\": \"enabled\"}, \"messages\": []", "OA"},
  /* strong signals of both */
  {"\"messages\": [{\"role\": \"assistant\", \"tool_calls\": []}, {\"role\": \"user\", "
   "\"content\": [{\"type\": \"tool_result\", \"tool_use_id\": \"t\", \"content\": \"r\"}]}]",
   "the body has both OpenAI (a message with tool_calls) and Anthropic (a content block of type "
   "tool_result) fields; allow only the format of the endpoint it came to"},
  {"\"stop\": [\"x\"], \"max_tokens\": 5, \"system\": \"s\", \"messages\": []",
   "the body has both OpenAI (stop) and Anthropic (system) fields; allow only the format of "
   "the endpoint it came to"},
  {"\"tools\": [{\"name\": \"t\", \"input_schema\": {}}], \"messages\": [{\"role\": "
   "\"developer\", \"content\": \"x\"}]", "the body has both OpenAI (a message with role "
   "developer) and Anthropic (a tool with input_schema) fields; allow only the format of the "
   "endpoint it came to"},
  {"\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"input_audio\", "
   "\"input_audio\": {\"data\": \"\"}}, {\"type\": \"document\", \"source\": {}}]}]",
   "the body has both OpenAI (a content part of type input_audio) and Anthropic (a content "
   "block of type document) fields; allow only the format of the endpoint it came to"},
};

static void test_signals(void) {
  lane_request r;
  lane_error err;
  char body[1024];
  for (size_t i = 0; i < sizeof signal_cases / sizeof *signal_cases; i++) {
    const char *want = signal_cases[i].want;
    snprintf(body, sizeof body, "{\"metadata\": {\"user_id\": \"an\"}, %s}",
             signal_cases[i].body);
    int st = parse(&r, body, OA | AN, &err);
    if (strlen(want) > 2) {
      is_int(st, LANE_EJSON, "signals %zu refused: %.60s", i, signal_cases[i].body);
      is_str(err.message, want, "  message");
    } else if (is_int(st, LANE_OK, "signals %zu read: %.60s", i, signal_cases[i].body)) {
      is_str(gets_(&r, "user"), !strcmp(want, "AN") ? "an" : NULL, "  read as %s", want);
    } else {
      diag("%s", err.message);
    }
    /* the endpoint decides whatever the shape */
    is_int(parse(&r, body, AN, &err), LANE_OK, "  as Anthropic when the endpoint says so");
    is_str(gets_(&r, "user"), "an", "  metadata.user_id is the user");
    is_int(parse(&r, body, OA, &err), LANE_OK, "  as OpenAI when the endpoint says so");
  }
}

static void test_detection(void) {
  lane_request r;
  lane_error err;
  /* neither format's markers: Anthropic with max_tokens, else OpenAI */
  is_int(parse(&r, "{\"model\": \"m\", \"max_tokens\": 5, \"metadata\": {\"user_id\": \"u9\"}, "
               "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", OA | AN, &err),
         LANE_OK, "plain body with max_tokens");
  is_str(gets_(&r, "user"), "u9", "read as Anthropic: metadata.user_id is the user");
  is_int(parse(&r, "{\"model\": \"m\", \"metadata\": {\"user_id\": \"u9\"}, "
               "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", OA | AN, &err),
         LANE_OK, "plain body without max_tokens");
  is_str(gets_(&r, "user"), NULL, "read as OpenAI: metadata.user_id is not the user");
  is_int(parse(&r, "{\"model\": \"m\", \"max_tokens\": 5, \"user\": \"u1\", "
               "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", OA | AN, &err),
         LANE_OK, "top-level user marks OpenAI");
  is_str(gets_(&r, "user"), "u1", "user from the body");
  is_int(parse(&r, "{\"model\": \"m\", \"safety_identifier\": \"s1\", \"max_completion_tokens\": "
               "7, \"max_tokens\": 9, \"messages\": []}", OA, &err), LANE_OK,
         "OpenAI: safety_identifier, max_completion_tokens over max_tokens");
  is_str(gets_(&r, "user"), "s1", "safety_identifier is the user");
  is_int(geti(&r, "max_output_tokens"), 7, "max_completion_tokens wins");
  is_int(geti(&r, "input_tokens"), 3, "no messages: 3 tokens");
  is_int(parse(&r, "{\"system\": \"s\", \"messages\": [{\"role\": \"system\", "
               "\"content\": \"x\"}]}", OA | AN, &err), LANE_EJSON,
         "weak signals of both formats: refused");
  is_str(err.message, "the body has both OpenAI (a system message first) and Anthropic "
         "(system) fields; allow only the format of the endpoint it came to", "  ... saying why");
  is_int(parse(&r, "{\"system\": \"abcd\", \"messages\": [{\"role\": \"system\", "
               "\"content\": \"x\"}]}", AN, &err), LANE_OK, "the same body as Anthropic only");
  is_int(geti(&r, "input_tokens"), 2 + 8 + 3, "  system prompt and message counted");

  test_signals();

  /* reasoning */
  static const struct { const char *body; int fmt, want; } rs[] = {
    {"{\"messages\": [], \"reasoning_effort\": \"low\"}", OA, 1},
    {"{\"messages\": [], \"reasoning_effort\": \"minimal\"}", OA, 1},
    {"{\"messages\": [], \"reasoning_effort\": \"none\"}", OA, 0},
    {"{\"messages\": [], \"reasoning\": {\"effort\": \"high\"}}", OA, 1},
    {"{\"messages\": [], \"thinking\": {\"type\": \"enabled\", \"budget_tokens\": 9}}", AN, 1},
    {"{\"messages\": [], \"thinking\": {\"type\": \"disabled\"}}", AN, 0},
    {"{\"messages\": [], \"thinking\": {\"type\": \"adaptive\"}}", AN, 1},
    {"{\"messages\": [], \"response_format\": {\"type\": \"json_object\"}}", OA, -1},
    {"{\"messages\": [], \"response_format\": {\"type\": \"text\"}}", OA, -2},
    {"{\"messages\": [], \"output_format\": {\"type\": \"json_schema\", \"schema\": {}}}", AN, -1},
  };
  for (size_t i = 0; i < sizeof rs / sizeof *rs; i++) {
    int st = parse(&r, rs[i].body, rs[i].fmt, &err);
    if (rs[i].want >= 0)
      ok(st == LANE_OK && geti(&r, "reasoning") == rs[i].want, "reasoning %d: %s",
         rs[i].want, rs[i].body);
    else
      ok(st == LANE_OK && geti(&r, "json") == (rs[i].want == -1), "json %d: %s",
         rs[i].want == -1, rs[i].body);
  }

  /* metadata keys naming string fields of the policy */
  is_int(parse(&r, "{\"model\": \"m\", \"metadata\": {\"team\": \"support\", \"tier\": \"pro\", "
               "\"model\": \"other\", \"seats\": \"3\", \"unknown\": 5, \"plan\": null}, "
               "\"messages\": []}", OA, &err), LANE_OK, "metadata");
  is_str(gets_(&r, "team"), "support", "metadata.team sets the policy's team");
  is_str(gets_(&r, "tier"), "pro", "metadata.tier sets the standard tier");
  is_str(gets_(&r, "model"), "m", "the body's model wins over metadata.model");
  ok(!isset(&r, "seats") && !isset(&r, "plan"), "int fields and nulls are not set from metadata");
  is_int(parse(&r, "{\"metadata\": {\"user_id\": \"u\", \"user\": \"v\", \"team\": \"t\"}, "
               "\"max_tokens\": 1, \"messages\": []}", AN, &err), LANE_OK, "Anthropic metadata");
  is_str(gets_(&r, "user"), "u", "metadata.user_id wins over metadata.user");
  is_str(gets_(&r, "team"), "t", "and team is set");
  is_int(parse(&r, "{\"metadata\": {\"plan\": 5}, \"messages\": []}", OA, &err), LANE_EJSON,
         "a string field given a number in metadata");
  is_str(err.message, "metadata.plan must be a string (the policy's field plan is one), "
         "found an integer", "  ... saying so");

  /* strings are copied into the request; calls accumulate */
  lane_request_init(&r, P);
  lane_set_str(&r, lane_field(P, "region"), "eu", 2);
  const char *b1 = "{\"model\": \"first\", \"messages\": []}";
  char b2[64];
  snprintf(b2, sizeof b2, "{\"model\": \"second\", \"user\": \"me\", \"messages\": []}");
  is_int(lane_request_from_json(&r, b1, strlen(b1), OA, &err), LANE_OK, "first body");
  is_int(lane_request_from_json(&r, b2, strlen(b2), OA, &err), LANE_OK, "second body");
  memset(b2, 'x', sizeof b2);
  is_str(gets_(&r, "model"), "second", "model copied (the body's buffer is gone)");
  is_str(gets_(&r, "user"), "me", "user copied");
  is_str(gets_(&r, "region"), "eu", "a field the host set stays");
  is_int(r.ntext, 5 + 6 + 2, "text holds first, second and me");
  lane_decision d;
  lane_runtime *rt = lane_runtime_new(P, &err);
  is_int(lane_decide(rt, "r", &r, &d), LANE_OK, "the filled request decides");
  lane_runtime_free(rt);
}

/* ---- malformed bodies and limits ------------------------------------------ */

typedef struct bad { const char *body; int fmt; const char *msg; } bad;

static const bad bads[] = {
  {"", OA, "not JSON: '[' or '{' expected near end of file (line 1, column 0)"},
  {"{", OA | AN, NULL},
  {"{\"messages\": [], \"messages\": []}", OA, NULL},   /* duplicate key */
  {"{\"messages\": [\"\xff\"]}", OA, NULL},             /* invalid UTF-8 */
  {"[1, 2]", OA | AN, "the body must be a JSON object, found an array"},
  {"\"hi\"", OA, "not JSON: '[' or '{' expected near '\"hi\"' (line 1, column 4)"},
  {"{}", OA, "the body has no messages array"},
  {"{\"messages\": 5}", AN, "messages must be an array, found an integer"},
  {"{\"messages\": [5]}", OA, "messages[0] must be an object, found an integer"},
  {"{\"messages\": [{\"role\": 1}]}", OA, "messages[0].role must be a string, found an integer"},
  {"{\"messages\": [{\"content\": true}]}", AN,
   "messages[0].content must be a string or an array, found a boolean"},
  {"{\"messages\": [{\"content\": [{\"text\": \"x\"}]}]}", AN, "messages[0].content[0] has no type"},
  {"{\"messages\": [{\"content\": [{\"type\": \"text\"}]}]}", OA,
   "messages[0].content[0] has type text but no text"},
  {"{\"messages\": [{\"content\": [{\"type\": \"text\", \"text\": 3}]}]}", OA,
   "messages[0].content[0].text must be a string, found an integer"},
  {"{\"messages\": [{\"content\": [{\"type\": \"image\", \"source\": \"x\"}]}]}", AN,
   "messages[0].content[0].source must be an object, found a string"},
  {"{\"messages\": [{\"tool_calls\": [{\"function\": {\"arguments\": {}}}]}]}", OA,
   "messages[0].tool_calls[0].function.arguments must be a string, found an object"},
  {"{\"messages\": [], \"model\": 4}", OA, "model must be a string, found an integer"},
  {"{\"messages\": [], \"max_tokens\": \"100\"}", AN,
   "max_tokens must be an integer >= 0, found a string"},
  {"{\"messages\": [], \"max_tokens\": -1}", AN,
   "max_tokens must be an integer >= 0, found a negative one"},
  {"{\"messages\": [], \"max_completion_tokens\": 1.5}", OA,
   "max_completion_tokens must be an integer >= 0, found a number"},
  {"{\"messages\": [], \"stream\": \"yes\"}", OA, "stream must be a boolean, found a string"},
  {"{\"messages\": [], \"tools\": {}}", OA, "tools must be an array, found an object"},
  {"{\"messages\": [], \"tools\": [1]}", AN, "tools[0] must be an object, found an integer"},
  {"{\"messages\": [], \"metadata\": []}", AN, "metadata must be an object, found an array"},
  {"{\"messages\": [], \"system\": 1}", AN, "system must be a string or an array, found an integer"},
  {"{\"messages\": [], \"thinking\": {\"type\": 1}}", AN,
   "thinking.type must be a string, found an integer"},
  {"{\"messages\": [], \"response_format\": \"json\"}", OA,
   "response_format must be an object, found a string"},
  {"{\"messages\": [{\"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": 1}}]}]}",
   OA, "messages[0].content[0].image_url.url must be a string, found an integer"},
  {"{\"messages\": [{\"content\": [{\"type\": \"tool_result\", \"content\": [{\"type\": "
   "\"text\", \"text\": []}]}]}]}", AN,
   "messages[0].content[0].content[0].text must be a string, found an array"},
  {"{\"messages\": [{\"content\": [{\"type\": \"document\", \"source\": {\"type\": 7}}]}]}",
   AN, "messages[0].content[0].source.type must be a string, found an integer"},
  {"{\"messages\": [{\"function_call\": {\"name\": false}}]}", OA,
   "messages[0].function_call.name must be a string, found a boolean"},
};

static void test_bad(void) {
  lane_request r, before;
  lane_error err;
  for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
    lane_request_init(&r, P);
    lane_set_str(&r, lane_field(P, "tier"), "pro", 3);
    memcpy(&before, &r, sizeof r);
    memset(&err, 0, sizeof err);
    int st = lane_request_from_json(&r, bads[i].body, strlen(bads[i].body), bads[i].fmt, &err);
    is_int(st, LANE_EJSON, "bad body %zu: %.40s", i, bads[i].body);
    is_int(err.code, LANE_EJSON, "  err.code");
    if (bads[i].msg) is_str(err.message, bads[i].msg, "  message");
    else ok(strncmp(err.message, "not JSON: ", 10) == 0, "  message: %s", err.message);
    ok(memcmp(&r, &before, sizeof r) == 0, "  request untouched");
  }
}

static void expect_fail(const char *body, size_t n, int code, const char *msg, const char *what) {
  lane_request r, before;
  lane_error err;
  lane_request_init(&r, P);
  memcpy(&before, &r, sizeof r);
  int st = lane_request_from_json(&r, body, n, OA | AN, &err);
  is_int(st, code, "%s", what);
  if (msg) is_str(err.message, msg, "  message");
  ok(memcmp(&r, &before, sizeof r) == 0, "  request untouched");
}

/* A message whose content is k tool results, each inside the one before. */
static size_t nested_results(char *b, int k) {
  size_t n = (size_t)sprintf(b, "{\"messages\": [{\"content\": ");
  for (int i = 0; i < k; i++)
    n += (size_t)sprintf(b + n, "[{\"type\": \"tool_result\", \"content\": ");
  n += (size_t)sprintf(b + n, "\"abcd\"");
  for (int i = 0; i < k; i++) n += (size_t)sprintf(b + n, "}]");
  return n + (size_t)sprintf(b + n, "}]}");
}

static void test_limits(void) {
  /* nesting: 64 levels read, 65 refused before parsing */
  char *b = malloc(64 << 20);
  size_t n = (size_t)sprintf(b, "{\"messages\": [], \"x\": ");
  for (int i = 0; i < 63; i++) b[n++] = '[';
  for (int i = 0; i < 63; i++) b[n++] = ']';
  b[n++] = '}';
  lane_request r;
  lane_error err;
  lane_request_init(&r, P);
  is_int(lane_request_from_json(&r, b, n, OA, &err), LANE_OK, "64 levels of nesting read");
  n = (size_t)sprintf(b, "{\"messages\": [], \"x\": \"[[[[\", \"y\": ");
  for (int i = 0; i < 64; i++) b[n++] = '[';
  for (int i = 0; i < 64; i++) b[n++] = ']';
  b[n++] = '}';
  expect_fail(b, n, LANE_EJSON, "nesting deeper than 64 levels at byte 98",
              "65 levels refused (brackets in strings do not count)");

  /* 10,000 messages read, 10,001 refused; the same for parts */
  n = (size_t)sprintf(b, "{\"messages\": [");
  for (int i = 0; i < 10000; i++) n += (size_t)sprintf(b + n, "%s{\"content\": \"abcd\"}", i ? "," : "");
  n += (size_t)sprintf(b + n, "]}");
  lane_request_init(&r, P);
  is_int(lane_request_from_json(&r, b, n, OA, &err), LANE_OK, "10,000 messages read");
  is_int(geti(&r, "input_tokens"), 10000 + 40000 + 3, "  10,000 x (1 + 4) + 3 tokens");
  n -= 2;
  n += (size_t)sprintf(b + n, ",{}]}");
  expect_fail(b, n, LANE_EJSON, "messages has 10001 entries, at most 10000", "10,001 messages");
  n = (size_t)sprintf(b, "{\"messages\": [{\"content\": [");
  for (int i = 0; i < 10001; i++)
    n += (size_t)sprintf(b + n, "%s{\"type\": \"text\", \"text\": \"a\"}", i ? "," : "");
  n += (size_t)sprintf(b + n, "]}]}");
  expect_fail(b, n, LANE_EJSON, "messages[0].content has 10001 parts, at most 10000",
              "10,001 content parts");

  /* values: counted in one pass before parsing (MAX_VALUES 100,000): the
   * root, "messages", "s", "x" and 99,996 zeros read; one more refused.
   * Commas in a string with escaped quotes and backslashes do not count. */
  n = (size_t)sprintf(b, "{\"messages\": [], \"s\": \"a\\\",[,{\\\\\", \"x\": [0");
  for (int i = 1; i < 99996; i++) n += (size_t)sprintf(b + n, ",0");
  n += (size_t)sprintf(b + n, "]}");
  lane_request_init(&r, P);
  if (!is_int(lane_request_from_json(&r, b, n, OA, &err), LANE_OK, "100,000 values read"))
    diag("%s", err.message);
  memcpy(b + n - 2, ",0]}", 4);
  expect_fail(b, n + 2, LANE_EJSON, "more than 100000 values (objects, arrays, strings, numbers, "
              "literals) by byte 200032; the limit is 100000", "100,001 values refused");

  /* the hostile body of issue 13: 30 MB of empty objects (2.2 GB and 6 s
   * in jansson) is refused before anything is built */
  n = (size_t)sprintf(b, "{\"messages\": [], \"x\": [{}");
  while (n < 30000000) memcpy(b + n, ",{}", 3), n += 3;
  n += (size_t)sprintf(b + n, "]}");
  expect_fail(b, n, LANE_EJSON, "more than 100000 values (objects, arrays, strings, numbers, "
              "literals) by byte 300013; the limit is 100000", "30 MB of empty objects refused");
  n = (size_t)sprintf(b, "{\"messages\": [");
  while (n < 30000000) memcpy(b + n, "[],", 3), n += 3;
  n += (size_t)sprintf(b + n, "[]]}");
  expect_fail(b, n, LANE_EJSON, "more than 100000 values (objects, arrays, strings, numbers, "
              "literals) by byte 300007; the limit is 100000", "30 MB of empty messages refused");

  /* tool results inside tool results: 4 levels below the message read, 5
   * refused (MAX_BLOCK_DEPTH) */
  n = nested_results(b, 5);
  lane_request_init(&r, P);
  is_int(lane_request_from_json(&r, b, n, AN, &err), LANE_OK, "tool results nested 4 levels read");
  is_int(geti(&r, "input_tokens"), 1 + 4 + 3, "  their text counted");
  n = nested_results(b, 6);
  expect_fail(b, n, LANE_EJSON, "messages[0].content[0].content[0].content[0].content[0]."
              "content[0].content: content blocks nested deeper than 4 levels",
              "tool results nested 5 levels refused");

  /* 32 MiB: one byte more is refused unread */
  memset(b, ' ', (32 << 20) + 1);
  memcpy(b, "{\"messages\": []}", 16);
  lane_request_init(&r, P);
  is_int(lane_request_from_json(&r, b, 32 << 20, OA, &err), LANE_OK, "a 32 MiB body is read");
  expect_fail(b, (32 << 20) + 1, LANE_EJSON, "the body is 33554433 bytes, at most 33554432",
              "a body over 32 MiB");

  /* strings must fit the request's text */
  n = (size_t)sprintf(b, "{\"messages\": [], \"model\": \"");
  memset(b + n, 'm', 1000);
  n += 1000;
  n += (size_t)sprintf(b + n, "\", \"user\": \"");
  memset(b + n, 'u', 100);
  n += 100;
  n += (size_t)sprintf(b + n, "\"}");
  expect_fail(b, n, LANE_EJSON, "user is 100 bytes; the request has room for 24 more bytes "
              "of text (LANE_REQUEST_TEXT 1024)", "strings over LANE_REQUEST_TEXT");
  free(b);

  /* arguments */
  lane_request_init(&r, P);
  is_int(lane_request_from_json(&r, "{}", 2, 0, &err), LANE_EARG, "formats 0: LANE_EARG");
  is_int(lane_request_from_json(&r, "{}", 2, 4, &err), LANE_EARG, "formats 4: LANE_EARG");
  is_int(lane_request_from_json(NULL, "{}", 2, OA, &err), LANE_EARG, "no request: LANE_EARG");
  is_int(lane_request_from_json(&r, NULL, 2, OA, &err), LANE_EARG, "no body: LANE_EARG");
  is_int(lane_request_from_json(&r, "[", 1, OA, NULL), LANE_EJSON, "err may be NULL");
  is_int(lane_request_from_json(&r, NULL, 0, OA, &err), LANE_EJSON, "empty body: LANE_EJSON");
}

/* A compact request (lane_request_init_in) takes strings into the text
 * room its host gave it: they land there, a room too small is refused
 * naming it and leaves every byte of the buffer as it was, and a room
 * larger than LANE_REQUEST_TEXT holds what a variable cannot. */
static void test_compact(void) {
  const char *body = "{\"model\": \"gpt-5-mini\", \"user\": \"u-0123456789\", "
                     "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
  size_t head = lane_request_size(P, 0), n = strlen(body);
  lane_value *buf = calloc(1, head + 4096), *copy = calloc(1, head + 4096);
  lane_error err;
  if (!buf || !copy) bail("out of memory");
  lane_request *c = lane_request_init_in(buf, head + 22, P, &err);
  ok(c != NULL, "a compact request with 22 bytes of text");
  is_int(lane_request_from_json(c, body, n, OA, &err), LANE_OK, "  reads a body of 22 bytes of strings");
  int fu = lane_field(P, "user"), fm = lane_field(P, "model");
  const char *lo = (const char *)buf + head, *hi = lo + 22;
  ok(c->v[fu].s.n == 12 && !memcmp(c->v[fu].s.p, "u-0123456789", 12) &&
     c->v[fu].s.p >= lo && c->v[fu].s.p + 12 <= hi, "  user lies in its text room");
  ok(c->v[fm].s.n == 10 && c->v[fm].s.p >= lo && c->v[fm].s.p + 10 <= hi,
     "  model lies in its text room");

  c = lane_request_init_in(buf, head + 21, P, &err);
  memcpy(copy, buf, head + 21);
  is_int(lane_request_from_json(c, body, n, OA, &err), LANE_EJSON, "21 bytes of text: LANE_EJSON");
  is_str(err.message, "user is 12 bytes; the request has room for 11 more bytes of text (a compact "
         "request's room: what lane_request_init_in was given past lane_request_size)",
         "  the message names the compact request's room");
  ok(memcmp(copy, buf, head + 21) == 0, "  every byte of the buffer as it was");

  /* a user of 2,000 bytes: past a variable's room, inside a compact one's */
  char *longuser = malloc(2100);
  if (!longuser) bail("out of memory");
  int k = sprintf(longuser, "{\"messages\": [], \"user\": \"");
  memset(longuser + k, 'u', 2000);
  k += 2000;
  k += sprintf(longuser + k, "\"}");
  lane_request var;
  lane_request_init(&var, P);
  is_int(lane_request_from_json(&var, longuser, (size_t)k, OA, &err), LANE_EJSON,
         "a 2,000-byte user does not fit a variable");
  c = lane_request_init_in(buf, head + 4096, P, &err);
  is_int(lane_request_from_json(c, longuser, (size_t)k, OA, &err), LANE_OK,
         "it fits a compact request given 4,096 bytes of text");
  ok(c->v[fu].s.n == 2000 && c->v[fu].s.p == (const char *)buf + head, "  the user is there whole");
  free(longuser);

  /* a user past LANE_MAX_STRING in a room that holds it: refused, naming
   * the limit (it used to leave the field unset without a word, as
   * lane_set_str refused it at commit) */
  longuser = malloc(LANE_MAX_STRING + 100);
  if (!longuser) bail("out of memory");
  k = sprintf(longuser, "{\"messages\": [], \"user\": \"");
  memset(longuser + k, 'u', LANE_MAX_STRING + 1);
  k += LANE_MAX_STRING + 1;
  k += sprintf(longuser + k, "\"}");
  char *roomy = malloc(head + 8192);
  if (!roomy) bail("out of memory");
  c = lane_request_init_in(roomy, head + 8192, P, &err);
  is_int(lane_request_from_json(c, longuser, (size_t)k, OA, &err), LANE_EJSON,
         "a user of LANE_MAX_STRING + 1 bytes in a room of 8,192: refused");
  is_str(err.message, "user is 4097 bytes; a request string is at most LANE_MAX_STRING (4096 "
         "bytes)", "  the message names the limit");
  ok(!(c->set >> fu & 1) && c->ntext == 0, "  and the request is left as it was");
  free(roomy);
  free(longuser);
  free(copy);
  free(buf);

  /* One body string staged for two fields (Anthropic's metadata.user_id
   * is the user, and here also a field of its own): the strings staged
   * outgrow the body, and still fit the request's room (a regression of:
   * refused as if the room were the body's size). */
  lanec_result cr;
  if (lanec_compile("t_json_uid.lane", "model m { provider \"x\" name \"m\" input $1/Mtok "
                    "output $1/Mtok }\nrequest { user_id: string }\nroute r { otherwise -> m }\n",
                    NULL, &cr) != LANEC_OK)
    bail("cannot compile the user_id policy");
  lane_program *q = cr.prog;
  cr.prog = NULL;
  lanec_result_free(&cr);
  char body2[400];
  int k2 = snprintf(body2, sizeof body2, "{\"model\": \"m\", \"max_tokens\": 5, "
                    "\"messages\": [], \"metadata\": {\"user_id\": \"");
  memset(body2 + k2, 'u', 150);
  k2 += 150;
  k2 += snprintf(body2 + k2, sizeof body2 - (size_t)k2, "\"}}");
  lane_request var2;
  lane_request_init(&var2, q);
  int fu2 = lane_field(q, "user"), fid = lane_field(q, "user_id");
  is_int(lane_request_from_json(&var2, body2, (size_t)k2, AN, &err), LANE_OK,
         "a 150-byte user_id staged as user and as user_id (300 bytes from a %d-byte body) "
         "fits a variable's 1,024", k2);
  ok(var2.v[fu2].s.n == 150 && var2.v[fid].s.n == 150 && var2.ntext == 301,
     "  both fields hold it (%u bytes of text: the two and the model's \"m\")", var2.ntext);
  lane_program_free(q);
}

/* ---- metadata as a map field ---------------------------------------- */

/* A policy that declares `metadata: map(string, T)` gets the whole object,
 * every value checked against T; a value of another type, or a map past
 * the room, is refused and leaves the request as it was. */
static void test_metadata_map(void) {
  static const char *const src[] = {
    "model m { input $1/Mtok output $1/Mtok }\n"
    "request { metadata: map(string, string)  team: string }\n"
    "route r { when req.metadata.team == \"search\" -> m  otherwise -> m }\n",
    "model m { input $1/Mtok output $1/Mtok }\n"
    "request { metadata: map(string, int) }\n"
    "route r { when req.metadata.seats > 2 -> m  otherwise -> m }\n",
  };
  lane_program *p[2];
  for (int i = 0; i < 2; i++) {
    lanec_result cr;
    if (lanec_compile("map.lane", src[i], NULL, &cr) != LANEC_OK) lanec_print_diags(&cr, stdout);
    p[i] = cr.prog;
    cr.prog = NULL;
    lanec_result_free(&cr);
    if (!p[i]) bail("cannot compile the map policy");
  }
  lane_runtime *rt = lane_runtime_new(p[0], NULL);
  lane_request r;
  lane_error err;
  lane_decision d;
  const char *body = "{\"model\": \"m\", \"messages\": [], \"metadata\": "
                     "{\"team\": \"search\", \"tier\": \"pro\"}}";
  lane_request_init(&r, p[0]);
  is_int(lane_request_from_json(&r, body, strlen(body), OA, &err), LANE_OK,
         "metadata fills a map(string, string) field");
  int f = lane_field(p[0], "metadata"), t = lane_field(p[0], "team");
  ok(r.set >> f & 1, "the map field is set");
  ok(r.set >> t & 1 && r.v[t].s.n == 6 && !memcmp(r.v[t].s.p, "search", 6),
     "a metadata key naming a string field still sets it");
  is_int(lane_decide(rt, "r", &r, &d), LANE_OK, "decides");
  is_int(d.rule, 1, "req.metadata.team reads the body's metadata");
  lane_runtime_free(rt);

  lane_request_init(&r, p[1]);
  body = "{\"messages\": [], \"metadata\": {\"seats\": \"3\"}}";
  is_int(lane_request_from_json(&r, body, strlen(body), OA, &err), LANE_EJSON,
         "a string where the map holds ints is refused");
  ok(strstr(err.message, "metadata.seats must be an integer") != NULL, "and says so: %s",
     err.message);
  ok(r.set == 0 && r.ntext == 0, "the request is left as it was");
  body = "{\"messages\": [], \"metadata\": {\"seats\": 3}}";
  is_int(lane_request_from_json(&r, body, strlen(body), OA, &err), LANE_OK, "an int map");
  rt = lane_runtime_new(p[1], NULL);
  is_int(lane_decide(rt, "r", &r, &d), LANE_OK, "decides");
  is_int(d.rule, 1, "req.metadata.seats > 2");
  lane_runtime_free(rt);

  /* 60 entries of 20-byte values: more than a request variable's room */
  char body_big[4096];
  size_t n = (size_t)snprintf(body_big, sizeof body_big, "{\"messages\": [], \"metadata\": {");
  for (int i = 0; i < 60; i++)
    n += (size_t)snprintf(body_big + n, sizeof body_big - n, "%s\"key%02d\": \"%020d\"", i ? ", " : "",
                          i, i);
  snprintf(body_big + n, sizeof body_big - n, "}}");
  lane_request_init(&r, p[0]);
  is_int(lane_request_from_json(&r, body_big, strlen(body_big), OA, &err), LANE_EJSON,
         "a metadata map past the request's text room is refused");
  ok(strstr(err.message, "text room") != NULL, "naming the room: %s", err.message);
  ok(r.set == 0 && r.ntext == 0, "the request is left as it was");
  /* the room a map keeps: metadata keys that also name fields are staged
   * after it and must not take it (the map was once left unset, OK) */
  char meta[1200];
  snprintf(meta, sizeof meta, "{\"messages\": [], \"metadata\": {\"team\": \"%0300d\", "
           "\"pad\": \"%0190d\"}}", 0, 0);
  lane_request_init(&r, p[0]);
  is_int(lane_request_from_json(&r, meta, strlen(meta), OA, &err), LANE_EJSON,
         "a map and a field from it past the room together: refused");
  ok(r.set == 0 && r.ntext == 0, "the request is left as it was");
  lane_program_free(p[0]);
  lane_program_free(p[1]);
}

int main(void) {
  P = compile_policy();
  if (!P) bail("cannot compile the test policy");
  test_fixtures();
  test_media();
  test_detection();
  test_bad();
  test_limits();
  test_compact();
  test_metadata_map();
  lane_program_free(P);
  return done_testing();
}
