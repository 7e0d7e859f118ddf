/*
 * text.h -- bytes from files shown on a terminal. Names and source lines
 * come from policies and bytecode files, which may hold escape sequences
 * or invalid UTF-8; echoed raw, they would drive the user's terminal.
 * Valid UTF-8 text is written as is; control characters (but tab), DEL,
 * C1 controls and bytes that are not valid UTF-8 are written as \xNN.
 * Used by diagnostics (lang/ast.c) and lane disasm (compiler/disasm.c).
 * Also the bounded writers explanations and decision records are written
 * with (vm/explain.c, vm/log.c, compiler/explain.c). Not part of liblane's
 * public API.
 */
#ifndef LANE_TEXT_H
#define LANE_TEXT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* The length of the unit at s (1 to 4 bytes, at most n): one character, or
 * one byte to escape (*escape set to 1). */
size_t text_unit(const char *s, size_t n, int *escape);
/* Writes n bytes of s (n == (size_t)-1: up to the NUL) safely. */
void   text_put(FILE *out, const char *s, size_t n);
/* Columns the bytes [0, n) of s take on screen: 1 per character, 4 per
 * escaped byte, a tab counted as 1 (callers print tabs as tabs). */
size_t text_width(const char *s, size_t n);
/* The length of the valid UTF-8 sequence at s (1 to 4 bytes, at most n),
 * or 0 when s does not start one (overlong, surrogate, above U+10FFFF). */
size_t text_utf8_len(const char *s, size_t n);

/* A bounded writer with snprintf's contract: it stores what fits, keeps
 * buf NUL-terminated, and counts in len what the whole text needs. */
typedef struct text_out {
  char  *buf;   /* may be NULL when cap is 0 */
  size_t cap, len;
} text_out;
void text_printf(text_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void text_vprintf(text_out *o, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void text_putc(text_out *o, char c);
/* Appends to the NUL-terminated string in buf (cap bytes in all). */
void text_cat(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
