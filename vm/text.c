/* text.c -- bytes from files shown on a terminal (see text.h). */
#include "text.h"

#include <stdarg.h>
#include <string.h>

size_t text_utf8_len(const char *p, size_t n) {
  const unsigned char *s = (const unsigned char *)p;
  unsigned c = s[0];
  size_t need = 0;
  unsigned lo = 0x80, hi = 0xBF;   /* the second byte's range */
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;        /* no overlong forms */
    if (c == 0xED) hi = 0x9F;        /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;        /* nothing above U+10FFFF */
  } else {
    return 0;
  }
  if (n < need + 1 || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i <= need; i++)
    if (s[i] < 0x80 || s[i] > 0xBF) return 0;
  return need + 1;
}

size_t text_unit(const char *p, size_t n, int *escape) {
  const unsigned char *s = (const unsigned char *)p;
  size_t k = text_utf8_len(p, n);
  *escape = !k || (k == 1 && ((s[0] < 0x20 && s[0] != '\t') || s[0] == 0x7F)) ||
            (k == 2 && s[0] == 0xC2 && s[1] < 0xA0);   /* C1 controls */
  return *escape ? 1 : k;
}

void text_vprintf(text_out *o, const char *fmt, va_list ap) {
  size_t room = o->len < o->cap ? o->cap - o->len : 0;
  int k = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
  if (k > 0) o->len += (size_t)k;
}

void text_printf(text_out *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(o, fmt, ap);
  va_end(ap);
}

void text_putc(text_out *o, char c) {
  if (o->len + 1 < o->cap) { o->buf[o->len] = c; o->buf[o->len + 1] = 0; }
  o->len++;
}

void text_cat(char *buf, size_t cap, const char *fmt, ...) {
  size_t n = strlen(buf);
  if (n >= cap) return;
  text_out o = {buf + n, cap - n, 0};
  va_list ap;
  va_start(ap, fmt);
  text_vprintf(&o, fmt, ap);
  va_end(ap);
}

void text_put(FILE *out, const char *s, size_t n) {
  if (n == (size_t)-1) n = strlen(s);
  size_t i = 0;
  while (i < n) {
    int esc;
    size_t k = text_unit(s + i, n - i, &esc);
    if (esc) fprintf(out, "\\x%02X", (unsigned)(unsigned char)s[i]);
    else fwrite(s + i, 1, k, out);
    i += k;
  }
}

size_t text_width(const char *s, size_t n) {
  size_t i = 0, w = 0;
  while (i < n) {
    int esc;
    size_t k = text_unit(s + i, n - i, &esc);
    w += esc ? 4 : 1;
    i += k;
  }
  return w;
}
