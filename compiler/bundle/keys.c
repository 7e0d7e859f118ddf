/*
 * keys.c -- Ed25519 key files (libsodium): `lane keygen` writes a pair,
 * `lane build --sign` reads the secret half, hosts and `lane inspect
 * --key` the public half. Each file is one line of text:
 *
 *   lane-ed25519-secret <128 hex digits: libsodium's secret key, seed then public key>
 *   lane-ed25519-public <64 hex digits: the public key>
 *
 * followed by a newline (white space may end the file, nothing else).
 */
#include "bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_TAG "lane-ed25519-secret"
#define PUBLIC_TAG "lane-ed25519-public"
#define KEY_FILE_MAX 1024   /* bytes a key file may have */

/* Reads path (a regular file of at most KEY_FILE_MAX bytes) into buf;
 * its length, or -1 with err filled. *mode: its permission bits. */
static long read_key_file(const char *path, char *buf, size_t cap, unsigned *mode,
                          lane_error *err) {
  char q[72];
  const char *shown = bundle_quote(path, strlen(path), q);
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    bundle_err(err, LANE_EARG, "cannot read '%s': %s", shown, strerror(errno));
    return -1;
  }
  struct stat st;
  long n = -1;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    bundle_err(err, LANE_EARG, "'%s' is not a regular file", shown);
  else if (st.st_size > KEY_FILE_MAX)
    bundle_err(err, LANE_EFORMAT, "'%s' is not a lane key file: %lld bytes, and a key file has "
               "one short line", shown, (long long)st.st_size);
  else {
    ssize_t k = read(fd, buf, cap - 1);
    if (k < 0) bundle_err(err, LANE_EARG, "cannot read '%s': %s", shown, strerror(errno));
    else { n = (long)k; buf[n] = 0; *mode = (unsigned)(st.st_mode & 07777); }
  }
  close(fd);
  return n;
}

/* Parses "TAG <2*nkey hex digits>" and trailing white space into key. */
static int parse_key(const char *path, const char *buf, long n, int secret, unsigned char *key,
                     size_t nkey, lane_error *err) {
  char q[72];
  const char *shown = bundle_quote(path, strlen(path), q);
  const char *tag = secret ? SECRET_TAG : PUBLIC_TAG, *other = secret ? PUBLIC_TAG : SECRET_TAG;
  size_t tl = strlen(tag);
  if ((size_t)n > strlen(other) && !strncmp(buf, other, strlen(other)))
    return bundle_err(err, LANE_EFORMAT, secret ? "'%s' is a public key; signing needs the secret "
                      "key (NAME.key)" : "'%s' is a secret key; give the public key (NAME.pub) "
                      "and keep the secret one private", shown);
  if ((size_t)n <= tl || strncmp(buf, tag, tl) || buf[tl] != ' ')
    return bundle_err(err, LANE_EFORMAT, "'%s' is not a lane %s key file (want one line: '%s' "
                      "and %zu hex digits)", shown, secret ? "secret" : "public", tag, 2 * nkey);
  const char *h = buf + tl + 1;
  size_t digits = 0;
  while (h + digits < buf + n && strchr("0123456789abcdefABCDEF", h[digits]) && h[digits]) digits++;
  if (digits != 2 * nkey)
    return bundle_err(err, LANE_EFORMAT, "'%s': the key has %zu hex digits, not %zu", shown,
                      digits, 2 * nkey);
  for (const char *t = h + digits; t < buf + n; t++)
    if (!strchr(" \t\r\n", *t) || !*t)
      return bundle_err(err, LANE_EFORMAT, "'%s': something follows the key (byte %ld); a key "
                        "file holds one line", shown, (long)(t - buf) + 1);
  size_t got = 0;
  if (sodium_hex2bin(key, nkey, h, digits, NULL, &got, NULL) != 0 || got != nkey)
    return bundle_err(err, LANE_EFORMAT, "'%s': the key is not hex", shown);
  return LANE_OK;
}

int lane_key_load_public(const char *path, unsigned char pk[32], lane_error *err) {
  char buf[KEY_FILE_MAX + 1];
  if (!path || !pk) return bundle_err(err, LANE_EARG, "no key file or no place for the key");
  if (bundle_sodium(err) != LANE_OK) return err ? err->code : LANE_ENOMEM;
  unsigned mode = 0;
  long n = read_key_file(path, buf, sizeof buf, &mode, err);
  if (n < 0) return err ? err->code : LANE_EARG;
  int rc = parse_key(path, buf, n, 0, pk, 32, err);
  if (rc == LANE_OK && !crypto_core_ed25519_is_valid_point(pk)) {
    char q[72];
    rc = bundle_err(err, LANE_EFORMAT, "'%s' does not hold a valid Ed25519 public key",
                    bundle_quote(path, strlen(path), q));
  }
  return rc;
}

int bundle_key_load_secret(const char *path, unsigned char sk[64], lane_error *err) {
  char buf[KEY_FILE_MAX + 1];
  unsigned char pk[32], again[64];
  if (bundle_sodium(err) != LANE_OK) return LANE_ENOMEM;
  unsigned mode = 0;
  long n = read_key_file(path, buf, sizeof buf, &mode, err);
  if (n < 0) return err ? err->code : LANE_EARG;
  int rc = parse_key(path, buf, n, 1, sk, 64, err);
  sodium_memzero(buf, sizeof buf);
  if (rc == LANE_OK && (mode & 077)) {
    char q[72];
    rc = bundle_err(err, LANE_EARG, "'%s' may be read by others (mode %04o); a secret key must be "
                    "private: chmod 600 it", bundle_quote(path, strlen(path), q), mode);
  }
  if (rc != LANE_OK) {
    sodium_memzero(sk, 64);
    return rc;
  }
  /* the public half must be the seed's: a damaged file signs nothing */
  crypto_sign_seed_keypair(pk, again, sk);
  if (sodium_memcmp(again, sk, 64) != 0) {
    char q[72];
    rc = bundle_err(err, LANE_EFORMAT, "'%s': the key's public half does not match its secret "
                    "seed (a damaged key file)", bundle_quote(path, strlen(path), q));
    sodium_memzero(sk, 64);
  }
  sodium_memzero(again, sizeof again);
  return rc;
}

/* Creates path with mode, refusing to replace anything, and writes text. */
static int write_new(const char *path, const char *text, mode_t mode, lane_error *err) {
  char q[72];
  const char *shown = bundle_quote(path, strlen(path), q);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  if (fd < 0 && errno == EEXIST)
    return bundle_err(err, LANE_EARG, "'%s' exists; lane keygen does not replace keys", shown);
  if (fd < 0) return bundle_err(err, LANE_EARG, "cannot create '%s': %s", shown, strerror(errno));
  size_t n = strlen(text), done = 0;
  while (done < n) {
    ssize_t w = write(fd, text + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  int ok = done == n && fchmod(fd, mode) == 0 && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0) ok = 0;
  if (ok) return LANE_OK;
  unlink(path);
  return bundle_err(err, LANE_EARG, "cannot write '%s': %s", shown, strerror(e));
}

int bundle_keygen(const char *name, char id[LANE_BUNDLE_KEY_ID + 1], lane_error *err) {
  if (!name || !*name) return bundle_err(err, LANE_EARG, "keygen needs a name (-o NAME)");
  if (bundle_sodium(err) != LANE_OK) return LANE_ENOMEM;
  size_t len = strlen(name);
  char *key = malloc(len + 5), *pub = malloc(len + 5);
  char line[sizeof SECRET_TAG + 2 * 64 + 2];
  unsigned char pk[32], sk[64];
  int rc;
  struct stat st;
  if (!key || !pub) {
    rc = bundle_err(err, LANE_ENOMEM, "out of memory");
  } else {
    memcpy(key, name, len);
    memcpy(key + len, ".key", 5);
    memcpy(pub, name, len);
    memcpy(pub + len, ".pub", 5);
    char q[72];
    if (lstat(pub, &st) == 0)   /* checked first, so that nothing is made and removed */
      rc = bundle_err(err, LANE_EARG, "'%s' exists; lane keygen does not replace keys",
                      bundle_quote(pub, strlen(pub), q));
    else {
      crypto_sign_keypair(pk, sk);
      char hex[129];
      bundle_hex(sk, 64, hex);
      snprintf(line, sizeof line, "%s %s\n", SECRET_TAG, hex);
      sodium_memzero(hex, sizeof hex);
      rc = write_new(key, line, 0600, err);
      sodium_memzero(line, sizeof line);
      if (rc == LANE_OK) {
        bundle_hex(pk, 32, hex);
        snprintf(line, sizeof line, "%s %s\n", PUBLIC_TAG, hex);
        rc = write_new(pub, line, 0644, err);
        if (rc != LANE_OK) unlink(key);
      }
      if (rc == LANE_OK) bundle_key_id(pk, id);
      sodium_memzero(sk, sizeof sk);
    }
  }
  free(key);
  free(pub);
  return rc;
}
