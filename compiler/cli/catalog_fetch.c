/*
 * catalog_fetch.c -- lane catalog fetch URL -o FILE.
 *
 * Downloads a LiteLLM price catalog with libcurl and replaces FILE only
 * when the new body is a catalog:
 *
 *   - http and https only (also for redirects), TLS peer and host verified,
 *     redirects followed up to max_redirects, connect and total timeouts,
 *     the body capped at max_bytes (Content-Length checked up front by
 *     CURLOPT_MAXFILESIZE_LARGE, the bytes counted in the write callback
 *     for bodies without one);
 *   - If-None-Match with the ETag saved in FILE.etag by the last successful
 *     fetch, only while FILE exists and only when that ETag was saved for
 *     the same URL (FILE.etag holds the ETag, then the URL it came from,
 *     without any user:password part; an ETag from another server means
 *     nothing here): a 304 prints "not modified" and touches nothing;
 *   - the body goes to a temp file beside FILE (FILE.tmp.XXXXXX), which is
 *     parsed with catalog_read (the limits of catalog.h: values, objects
 *     and arrays, nesting, counted before jansson builds anything) and
 *     must be a JSON object with at least one model entry carrying
 *     input_cost_per_token or litellm_provider;
 *   - a catalog with fewer than half the model entries of the FILE it
 *     would replace is refused unless opts->force (a truncated or hostile
 *     body that still parses must not replace a good catalog);
 *   - only then is it fsync'ed and renamed over FILE, and the new ETag
 *     saved the same way (or a stale FILE.etag removed when the server
 *     sent none).
 *
 * Every error prints one line "lane: URL: what went wrong" to err, removes
 * the temp file, leaves FILE and FILE.etag as they were, and returns 2.
 * URLs are printed without any user:password part.
 *
 * Defaults (zero fields of catalog_fetch_opts): total timeout 30 s (or
 * $LANE_FETCH_TIMEOUT_MS when set, which the tests use), connect timeout
 * 10 s, 3 redirects, CATALOG_MAX_BYTES (64 MiB).
 */
#include "catalog.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS   30000L
#define DEFAULT_CONNECT_MS   10000L
#define DEFAULT_REDIRECTS    3L
#define DEFAULT_MAX_BYTES    CATALOG_MAX_BYTES
#define MAX_ETAG             1024
#define MAX_ETAG_FILE        (64 * 1024)   /* an .etag file beyond it is ignored */

/* ---- curl_global_init ----
 * Each fetch pairs curl_global_init with curl_global_cleanup (libcurl
 * counts them), so this file keeps no state between calls. curl_global_init
 * is not thread-safe in libcurl before 7.84: a multi-threaded host that
 * fetches from several threads calls it once itself before starting them,
 * and the calls here are then cheap reference counts. */

/* ---- printing ---- */

/* Prints s with control characters replaced (one message, one line). */
static void put_safe_n(FILE *f, const char *s, size_t n) {
  for (size_t i = 0; i < n && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
  }
}

/* url without a user:password@ part in its authority, malloc'ed. */
static char *bare_url(const char *url) {
  const char *auth = strstr(url, "://"), *at = NULL;
  size_t alen = 0;
  if (auth) {
    auth += 3;
    alen = strcspn(auth, "/?#");
    for (const char *p = auth; p < auth + alen; p++)
      if (*p == '@') at = p;
  }
  if (!at) return strdup(url);
  size_t head = (size_t)(auth - url), tail = strlen(at + 1);
  char *s = malloc(head + tail + 1);
  if (!s) return NULL;
  memcpy(s, url, head);
  memcpy(s + head, at + 1, tail + 1);
  return s;
}

/* Prints url without a user:password@ part in its authority. */
static void put_url(FILE *f, const char *url) {
  const char *auth = strstr(url, "://");
  if (!auth) { put_safe_n(f, url, strlen(url)); return; }
  auth += 3;
  size_t alen = strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *p = auth; p < auth + alen; p++)
    if (*p == '@') at = p;
  if (!at) { put_safe_n(f, url, strlen(url)); return; }
  put_safe_n(f, url, (size_t)(auth - url));
  put_safe_n(f, at + 1, strlen(at + 1));
}

/* "lane: URL: message\n" */
static void fail(FILE *err, const char *url, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(FILE *err, const char *url, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fputs("lane: ", err);
  put_url(err, url);
  fputs(": ", err);
  put_safe_n(err, msg, strlen(msg));
  fputc('\n', err);
}

/* ---- small file helpers ---- */

static char *str_cat(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (!s) return NULL;
  memcpy(s, a, la);
  memcpy(s + la, b, lb + 1);
  return s;
}

/* Printable ASCII only (an ETag, a URL: one line each in FILE.etag). */
static int plain(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) return 0;
  return n > 0;
}

/* The ETag saved beside the catalog for url ("ETAG\nURL\n", the URL
 * without credentials), or "" when there is none, it is unusable, or it
 * was saved for another URL (or by a lane that did not record the URL). */
static void read_etag(const char *path, const char *url, char *buf, size_t n) {
  buf[0] = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return;
  char *text = malloc(MAX_ETAG_FILE + 1), *bare = bare_url(url);
  size_t len = text ? fread(text, 1, MAX_ETAG_FILE, f) : 0;
  int full = len == MAX_ETAG_FILE && fgetc(f) != EOF;
  fclose(f);
  if (text && bare && !full) {
    text[len] = 0;
    char *nl = strchr(text, '\n'), *saved = nl ? nl + 1 : NULL;
    size_t elen = nl ? (size_t)(nl - text) : 0, ulen = saved ? strcspn(saved, "\n") : 0;
    if (saved && plain(text, elen) && elen < n && plain(saved, ulen) &&
        strlen(bare) == ulen && !memcmp(saved, bare, ulen) &&
        (saved[ulen] == 0 || !strcmp(saved + ulen, "\n"))) {
      memcpy(buf, text, elen);
      buf[elen] = 0;
    }
  }
  free(text);
  free(bare);
}

/* Writes data to a new temp file "<prefix>.tmp.XXXXXX" with the given mode,
 * synced; returns its name (malloc'ed) or NULL with errno set. */
static char *write_temp(const char *prefix, const char *data, mode_t mode) {
  char *tmpl = str_cat(prefix, ".tmp.XXXXXX");
  if (!tmpl) return NULL;
  int fd = mkstemp(tmpl);
  if (fd < 0) { free(tmpl); return NULL; }
  size_t len = strlen(data), off = 0;
  int e = 0;
  while (off < len && !e) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) e = w < 0 ? errno : EIO;
    else off += (size_t)w;
  }
  if (!e && (fchmod(fd, mode) != 0 || fsync(fd) != 0)) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (e) {
    unlink(tmpl);
    free(tmpl);
    errno = e;
    return NULL;
  }
  return tmpl;
}

/* Best effort: makes a rename in path's directory durable. */
static void sync_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else if ((size_t)(slash - path) < sizeof dir)
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  else return;
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

/* ---- the transfer ---- */

typedef struct fetch_state {
  FILE      *body;       /* the temp file */
  curl_off_t bytes;      /* body bytes received */
  curl_off_t max_bytes;
  int        too_big;    /* the write callback stopped the transfer */
  int        write_err;  /* errno of a failed write to the temp file */
  curl_off_t length;     /* Content-Length of the last response, or -1 */
  char       etag[MAX_ETAG];
} fetch_state;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
  fetch_state *st = user;
  size_t n = size * nmemb;
  if ((curl_off_t)n > st->max_bytes - st->bytes) {
    st->too_big = 1;
    return 0; /* != n: libcurl aborts with CURLE_WRITE_ERROR */
  }
  if (n && fwrite(data, 1, n, st->body) != n) {
    st->write_err = errno ? errno : EIO;
    return 0;
  }
  st->bytes += (curl_off_t)n;
  return n;
}

/* Keeps the ETag of the last response (a redirect's is dropped when the
 * next status line arrives). */
static size_t on_header(char *data, size_t size, size_t nitems, void *user) {
  fetch_state *st = user;
  size_t n = size * nitems;
  if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
    st->etag[0] = 0;
    st->length = -1;
  } else if (n > 15 && !strncasecmp(data, "content-length:", 15)) {
    char num[32];
    size_t len = n - 15 < sizeof num - 1 ? n - 15 : sizeof num - 1;
    memcpy(num, data + 15, len);
    num[len] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(num, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    st->length = errno || *end || end == num || v < 0 ? -1 : (curl_off_t)v;
  } else if (n > 5 && !strncasecmp(data, "etag:", 5)) {
    const char *v = data + 5, *end = data + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
      end--;
    size_t len = (size_t)(end - v);
    int okay = len > 0 && len < sizeof st->etag;
    for (size_t i = 0; i < len && okay; i++)
      if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f) okay = 0;
    if (okay) {
      memcpy(st->etag, v, len);
      st->etag[len] = 0;
    } else {
      st->etag[0] = 0;
    }
  }
  return n;
}

static long env_long(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  return errno || *end || v < 0 ? 0 : v;
}

/* Counts the model entries of a catalog: object values other than
 * sample_spec and fallback_generalizations. *priced counts those with
 * input_cost_per_token or litellm_provider. */
static long count_entries(json_t *root, long *priced) {
  const char *k;
  json_t *v;
  long n = 0;
  *priced = 0;
  json_object_foreach(root, k, v) {
    if (!json_is_object(v) || !strcmp(k, "sample_spec") ||
        !strcmp(k, "fallback_generalizations"))
      continue;
    n++;
    if (json_object_get(v, "input_cost_per_token") || json_object_get(v, "litellm_provider"))
      (*priced)++;
  }
  return n;
}

/* Reads a catalog for check_body; NULL (reported) when it cannot. */
static json_t *read_body(const char *url, const char *path, long max_bytes, FILE *err) {
  catalog_error ce;
  json_t *root = catalog_read(path, max_bytes, &ce);
  if (!root && ce.kind == CATALOG_ESYNTAX)
    fail(err, url, "invalid JSON at line %d, column %d: %s", ce.line, ce.column, ce.text);
  else if (!root)
    fail(err, url, "%s", ce.text);
  return root;
}

/* Whether the body in tmp_path may replace out_path: a catalog within the
 * limits, with at least half of out_path's model entries unless force.
 * 0 with *entries, or -1 (reported). One catalog in memory at a time. */
static int check_body(const char *url, const char *tmp_path, const char *out_path,
                      int have_old, long max_bytes, int force, long *entries, FILE *out,
                      FILE *err) {
  json_t *root = read_body(url, tmp_path, max_bytes, err);
  if (!root) return -1;
  long priced = 0, old_priced = 0;
  int is_object = json_is_object(root);
  if (is_object) *entries = count_entries(root, &priced);
  json_decref(root);
  if (!is_object || priced == 0) {
    fail(err, url, "not a catalog: %s",
         is_object ? "no entry has input_cost_per_token or litellm_provider"
                   : "the top level is not a JSON object");
    return -1;
  }
  if (!have_old) return 0;
  catalog_error ce;
  json_t *old = catalog_read(out_path, max_bytes > CATALOG_MAX_BYTES ? max_bytes : 0, &ce);
  if (old && json_is_object(old)) count_entries(old, &old_priced);
  json_decref(old);
  if (!old || old_priced == 0) {   /* nothing worth keeping: say so, replace it */
    fprintf(out, "note: %s is not a catalog (%s); replacing it\n", out_path,
            old ? "no model entry" : ce.text);
    return 0;
  }
  if (priced * 2 >= old_priced) return 0;
  if (!force) {
    fail(err, url, "the new catalog has %ld model entries, fewer than half of the %ld in "
         "'%s'; the file is kept (--force replaces it)", priced, old_priced, out_path);
    return -1;
  }
  fprintf(out, "note: %s had %ld model entries, the new catalog has %ld (--force)\n",
          out_path, old_priced, priced);
  return 0;
}

/* Reports a failed curl_easy_perform. */
static void report_curl(FILE *err, const char *url, CURLcode res, CURL *h,
                        const fetch_state *st, const char *errbuf, long timeout_ms,
                        long max_redirects, const char *tmp_path) {
  const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(res);
  long code = 0;
  curl_off_t clen = st->length;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  switch (res) {
  case CURLE_COULDNT_RESOLVE_HOST:
    fail(err, url, "cannot resolve host (%s)", detail);
    break;
  case CURLE_COULDNT_RESOLVE_PROXY:
    fail(err, url, "cannot resolve proxy (%s)", detail);
    break;
  case CURLE_COULDNT_CONNECT:
    fail(err, url, "cannot connect (%s)", detail);
    break;
  case CURLE_OPERATION_TIMEDOUT:
    fail(err, url, "timed out after %ld ms (%s)", timeout_ms, detail);
    break;
  case CURLE_HTTP_RETURNED_ERROR:
    fail(err, url, "HTTP %ld error from the server", code);
    break;
  case CURLE_PARTIAL_FILE:
    if (clen >= 0)
      fail(err, url, "truncated body: %" CURL_FORMAT_CURL_OFF_T " of %" CURL_FORMAT_CURL_OFF_T
           " bytes arrived", st->bytes, clen);
    else
      fail(err, url, "truncated body after %" CURL_FORMAT_CURL_OFF_T " bytes (%s)",
           st->bytes, detail);
    break;
  case CURLE_FILESIZE_EXCEEDED:
    if (clen >= 0)
      fail(err, url, "body too large: Content-Length %" CURL_FORMAT_CURL_OFF_T
           " exceeds the limit of %" CURL_FORMAT_CURL_OFF_T " bytes", clen, st->max_bytes);
    else
      fail(err, url, "body too large: more than the limit of %" CURL_FORMAT_CURL_OFF_T
           " bytes", st->max_bytes);
    break;
  case CURLE_WRITE_ERROR:
    if (st->too_big)
      fail(err, url, "body too large: more than the limit of %" CURL_FORMAT_CURL_OFF_T
           " bytes", st->max_bytes);
    else
      fail(err, url, "cannot write '%s': %s", tmp_path,
           strerror(st->write_err ? st->write_err : EIO));
    break;
  case CURLE_TOO_MANY_REDIRECTS:
    fail(err, url, "too many redirects (more than %ld)", max_redirects);
    break;
  case CURLE_UNSUPPORTED_PROTOCOL:
    fail(err, url, "unsupported protocol, only http and https are allowed (%s)", detail);
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
    fail(err, url, "TLS certificate verification failed (%s)", detail);
    break;
  case CURLE_SSL_CONNECT_ERROR:
    fail(err, url, "TLS handshake failed (%s)", detail);
    break;
  case CURLE_URL_MALFORMAT:
    fail(err, url, "malformed URL (%s)", detail);
    break;
  default:
    fail(err, url, "download failed: %s (%s)", curl_easy_strerror(res), detail);
    break;
  }
}

int catalog_fetch(const char *url, const char *out_path, const catalog_fetch_opts *opts,
                  FILE *out, FILE *err) {
  static const catalog_fetch_opts none;
  if (!opts) opts = &none;
  if (!url || !*url) {
    fprintf(err, "lane: catalog fetch needs a URL\n");
    return 2;
  }
  if (!out_path || !*out_path) {
    fprintf(err, "lane: catalog fetch needs an output file (-o FILE)\n");
    return 2;
  }
  long timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : env_long("LANE_FETCH_TIMEOUT_MS");
  if (timeout_ms <= 0) timeout_ms = DEFAULT_TIMEOUT_MS;
  long connect_ms = opts->connect_ms > 0 ? opts->connect_ms : DEFAULT_CONNECT_MS;
  if (connect_ms > timeout_ms) connect_ms = timeout_ms;
  long max_redirects = opts->max_redirects > 0 ? opts->max_redirects : DEFAULT_REDIRECTS;
  long max_bytes = opts->max_bytes > 0 ? opts->max_bytes : DEFAULT_MAX_BYTES;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fail(err, url, "cannot initialise libcurl");
    return 2;
  }

  int rc = 2;
  char *etag_path = str_cat(out_path, ".etag");
  char *tmp_path = str_cat(out_path, ".tmp.XXXXXX");
  fetch_state *st = calloc(1, sizeof *st);
  CURL *h = NULL;
  struct curl_slist *hdrs = NULL;
  int fd = -1, tmp_made = 0;
  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = 0;
  if (!etag_path || !tmp_path || !st) {
    fail(err, url, "out of memory");
    goto done;
  }
  st->max_bytes = (curl_off_t)max_bytes;
  st->length = -1;

  /* The ETag is only worth sending while the file it describes exists. */
  char old_etag[MAX_ETAG];
  struct stat old_st;
  int have_old = stat(out_path, &old_st) == 0;
  if (have_old && !S_ISREG(old_st.st_mode)) {
    fail(err, url, "'%s' exists and is not a regular file", out_path);
    goto done;
  }
  old_etag[0] = 0;
  if (have_old) read_etag(etag_path, url, old_etag, sizeof old_etag);

  fd = mkstemp(tmp_path);
  if (fd < 0) {
    fail(err, url, "cannot create a temp file beside '%s': %s", out_path, strerror(errno));
    goto done;
  }
  tmp_made = 1;
  st->body = fdopen(fd, "wb");
  if (!st->body) {
    fail(err, url, "cannot open '%s': %s", tmp_path, strerror(errno));
    close(fd);
    goto done;
  }

  h = curl_easy_init();
  if (!h) {
    fail(err, url, "cannot initialise libcurl");
    goto done;
  }
  if (old_etag[0]) {
    char line[MAX_ETAG + 32];
    snprintf(line, sizeof line, "If-None-Match: %s", old_etag);
    hdrs = curl_slist_append(NULL, line);
    if (!hdrs) {
      fail(err, url, "out of memory");
      goto done;
    }
  }
  CURLcode setopt = CURLE_OK;
#define SET(opt, val) do { if (setopt == CURLE_OK) setopt = curl_easy_setopt(h, opt, val); } while (0)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_ERRORBUFFER, errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_NOPROGRESS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (opts->ca_file) SET(CURLOPT_CAINFO, opts->ca_file);
  SET(CURLOPT_FOLLOWLOCATION, 1L);
  SET(CURLOPT_MAXREDIRS, max_redirects);
  SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  SET(CURLOPT_TIMEOUT_MS, timeout_ms);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
  SET(CURLOPT_FAILONERROR, 1L);
  SET(CURLOPT_USERAGENT, "lane-catalog-fetch/1 (libcurl)");
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, st);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, st);
  if (hdrs) SET(CURLOPT_HTTPHEADER, hdrs);
#undef SET
  if (setopt != CURLE_OK) {
    fail(err, url, "libcurl option not supported: %s", curl_easy_strerror(setopt));
    goto done;
  }

  CURLcode res = curl_easy_perform(h);
  if (res != CURLE_OK) {
    report_curl(err, url, res, h, st, errbuf, timeout_ms, max_redirects, tmp_path);
    goto done;
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code == 304 && old_etag[0]) {
    fputs("fetched ", out);
    put_url(out, url);
    fprintf(out, ": not modified, %s unchanged\n", out_path);
    rc = 0;
    goto done;
  }
  if (code != 200) {
    fail(err, url, "unexpected HTTP status %ld (want 200)", code);
    goto done;
  }

  /* The whole body is in the temp file: flush it to disk, then check it. */
  FILE *body = st->body;
  st->body = NULL;
  int wr = fflush(body) != 0 || fsync(fileno(body)) != 0 ? errno : 0;
  if (fclose(body) != 0 && !wr) wr = errno;
  if (wr) {
    fail(err, url, "cannot write '%s': %s", tmp_path, strerror(wr));
    goto done;
  }
  long entries = 0;
  if (check_body(url, tmp_path, out_path, have_old, max_bytes, opts->force, &entries, out,
                 err) != 0)
    goto done;

  /* Same permissions as the file replaced, else what umask gives a new one. */
  mode_t mode;
  if (have_old) {
    mode = old_st.st_mode & 07777;
  } else {
    mode_t mask = umask(022);
    umask(mask);
    mode = 0666 & ~mask;
  }
  if (chmod(tmp_path, mode) != 0) {
    fail(err, url, "cannot set the mode of '%s': %s", tmp_path, strerror(errno));
    goto done;
  }
  /* The ETag first goes to its own temp file, so that a failure there
   * still leaves both old files in place. */
  char *etag_tmp = NULL, *bare = st->etag[0] ? bare_url(url) : NULL;
  if (bare && plain(bare, strlen(bare))) {   /* else no ETag is kept */
    char *line = malloc(strlen(st->etag) + strlen(bare) + 3);
    if (line) sprintf(line, "%s\n%s\n", st->etag, bare);
    etag_tmp = line ? write_temp(etag_path, line, mode) : NULL;
    free(line);
    if (!etag_tmp) {
      fail(err, url, "cannot write a temp file beside '%s': %s", etag_path, strerror(errno));
      free(bare);
      goto done;
    }
  }
  free(bare);
  if (rename(tmp_path, out_path) != 0) {
    fail(err, url, "cannot replace '%s': %s", out_path, strerror(errno));
    if (etag_tmp) unlink(etag_tmp);
    free(etag_tmp);
    goto done;
  }
  tmp_made = 0;
  /* From here FILE is the new catalog: an ETag that cannot be stored is
   * dropped (the next fetch then downloads again), never left stale. */
  if (etag_tmp) {
    if (rename(etag_tmp, etag_path) != 0) {
      unlink(etag_tmp);
      unlink(etag_path);
    }
    free(etag_tmp);
  } else {
    unlink(etag_path);
  }
  sync_dir(out_path);

  fputs("fetched ", out);
  put_url(out, url);
  fprintf(out, ": %ld entries, %" CURL_FORMAT_CURL_OFF_T " bytes -> %s\n", entries, st->bytes,
          out_path);
  rc = 0;

done:
  if (st && st->body) fclose(st->body);
  if (tmp_made) unlink(tmp_path);
  curl_slist_free_all(hdrs);
  if (h) curl_easy_cleanup(h);
  free(st);
  free(tmp_path);
  free(etag_path);
  fflush(out);
  curl_global_cleanup();
  return rc;
}
