/*
 * disasm.c -- the listing behind `lane disasm`.
 *
 * Reads only a verified program, so every index it follows is in range.
 * Output is deterministic (golden-tested): constants print with %.17g,
 * strings quoted with C escapes, one instruction per line:
 *
 *      12  CAND       cheapest, filter 0, pool 1   ; line 14
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "disasm.h"
#include "text.h"
#include "vm.h"

/* A line being built; output past its end is cut. */
typedef struct sbuf {
  char   b[512];      /* text, NUL-terminated */
  size_t n;           /* bytes used */
} sbuf;

static void sb(sbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb(sbuf *o, const char *fmt, ...) {
  va_list ap;
  int k;
  if (o->n >= sizeof o->b - 1) return;
  va_start(ap, fmt);
  k = vsnprintf(o->b + o->n, sizeof o->b - o->n, fmt, ap);
  va_end(ap);
  if (k > 0) o->n = o->n + (size_t)k < sizeof o->b ? o->n + (size_t)k : sizeof o->b - 1;
}

static void sbquote(sbuf *o, const bc_str *s) {
  sb(o, "\"");
  for (uint32_t i = 0; i < s->len; i++) {
    unsigned char c = (unsigned char)s->p[i];
    if (c == '"' || c == '\\') sb(o, "\\%c", c);
    else if (c == '\n') sb(o, "\\n");
    else if (c == '\t') sb(o, "\\t");
    else if (c < 0x20 || c == 0x7f) sb(o, "\\x%02x", c);
    else sb(o, "%c", c);
  }
  sb(o, "\"");
}

static void quote(FILE *out, const bc_str *s) {
  sbuf o = { "", 0 };
  sbquote(&o, s);
  fputs(o.b, out);
}

static const char *S(const bc_image *im, uint32_t i) { return im->str[i].p; }

static void caps(FILE *out, const bc_image *im, uint32_t bits) {
  int first = 1;
  for (uint32_t i = 0; i < im->ncaps; i++)
    if (bits >> i & 1) {
      fprintf(out, "%s%s", first ? "" : ",", S(im, im->caps[i]));
      first = 0;
    }
  if (first) fputs("-", out);
}

static void tables(FILE *out, const lane_program *p) {
  const bc_image *im = &p->im;
  fprintf(out, "models (%u):\n", (unsigned)im->nmodels);
  for (uint32_t i = 0; i < im->nmodels; i++) {
    const bc_model *m = &im->models[i];
    fprintf(out, "  %4u  %s  provider %s  id %s", (unsigned)i, S(im, m->name),
            S(im, m->provider), S(im, m->id));
    if (im->str[m->region].len) fprintf(out, "  region %s", S(im, m->region));
    fprintf(out, "\n        input $%.15g/Mtok  output $%.15g/Mtok  cached $%.15g/Mtok\n",
            m->input * 1e6, m->output * 1e6, m->cached_input * 1e6);
    fprintf(out, "        context %" PRId64 "  max_output %" PRId64
            "  quality %.15g  p50 %.15gms  p95 %.15gms  caps ",
            m->context, m->max_output, m->quality, m->p50, m->p95);
    caps(out, im, m->caps);
    fprintf(out, "  line %u\n", (unsigned)m->line);
    if (m->cache_write > 0 || m->reasoning_output > 0)   /* only what is set */
      fprintf(out, "        cache_write $%.15g/Mtok  reasoning_output $%.15g/Mtok\n",
              m->cache_write * 1e6, m->reasoning_output * 1e6);
    if (m->long_above > 0)
      fprintf(out, "        above %" PRId64 " input tokens: input $%.15g/Mtok  output "
              "$%.15g/Mtok  cached $%.15g/Mtok\n", m->long_above, m->long_input * 1e6,
              m->long_output * 1e6, m->long_cached_input * 1e6);
    if (im->str[m->deprecated].len)
      fprintf(out, "        deprecated %s\n", S(im, m->deprecated));
  }
  fprintf(out, "fields (%u):\n", (unsigned)im->nfields);
  for (uint32_t i = 0; i < im->nfields; i++)
    fprintf(out, "  %4u  %-20s %s\n", (unsigned)i, S(im, im->fields[i].name),
            bc_unit_name(im->fields[i].unit));
  fprintf(out, "pools (%u):   (* = member checked by the CAND's filter)\n",
          (unsigned)im->npools);
  for (uint32_t i = 0; i < im->npools; i++) {
    fprintf(out, "  %4u ", (unsigned)i);
    for (uint32_t k = 0; k < im->pools[i].count; k++) {
      uint32_t mem = im->members[im->pools[i].first + k];
      fprintf(out, " %s%s", S(im, im->models[mem & BC_MEMBER_MODEL].name),
              mem & BC_MEMBER_CHECK ? "*" : "");
    }
    fputc('\n', out);
  }
  fprintf(out, "lists (%u):\n", (unsigned)im->nlists);
  for (uint32_t i = 0; i < im->nlists; i++) {
    const bc_list *l = &im->lists[i];
    fprintf(out, "  %4u  [", (unsigned)i);
    for (uint32_t k = 0; k < l->count; k++) {
      uint32_t e = im->listelems[l->first + k];
      if (k) fputs(", ", out);
      if (l->type == LANE_T_STRING) quote(out, &im->str[e]);
      else if (l->type == LANE_T_DOUBLE) fprintf(out, "%.17g", im->kdbl[e]);
      else if (l->type == LANE_T_UINT) fprintf(out, "%" PRIu64 "u", (uint64_t)im->kint[e]);
      else fprintf(out, "%" PRId64, im->kint[e]);
    }
    fputs("]\n", out);
  }
  fprintf(out, "budgets (%u):\n", (unsigned)im->nbudgets);
  for (uint32_t i = 0; i < im->nbudgets; i++) {
    const bc_budget *b = &im->budgets[i];
    fprintf(out, "  %4u  %s  key %s  limit $%.17g  %s %.17gms%s\n", (unsigned)i,
            S(im, b->name), b->key_field == BC_NONE ? "-" : S(im, im->fields[b->key_field].name),
            b->limit, b->flags & BC_BUDGET_ROLLING ? "rolling" : "window", b->window_ms,
            b->flags & BC_BUDGET_FULL_CLOSED ? "  on_full closed"
            : b->flags & BC_BUDGET_FULL_OPEN ? "  on_full open" : "");
  }
  fprintf(out, "routes (%u):\n", (unsigned)im->nroutes);
  for (uint32_t i = 0; i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    fprintf(out, "  %4u  %s  code [%u,%u)  fallbacks %u  worst case %" PRIu64, (unsigned)i,
            S(im, r->name), (unsigned)r->start, (unsigned)r->end, (unsigned)r->fallbacks,
            p->route_steps[i]);
    if (i < im->nroute_out && im->route_out[i])
      fprintf(out, "  output estimate %lld", (long long)im->route_out[i]);
    fputc('\n', out);
    for (uint32_t k = 0; k < r->nrules; k++) {
      const bc_rule *ru = &im->rules[r->first_rule + k];
      fprintf(out, "        rule %u  line %u  ", (unsigned)k + 1, (unsigned)ru->line);
      quote(out, &im->str[ru->name]);
      fputc('\n', out);
    }
  }
}

static void operands(sbuf *out, const lane_program *p, const bc_route *route,
                     const bc_insn *in) {
  static const char *const orders[BC_NORDERS] = { "listed", "cheapest", "fastest", "best" };
  static const char *const bsel[3] = { "spent", "remaining", "used" };
  const bc_image *im = &p->im;
  switch (bc_ops[in->op].fmt) {
  case BC_FMT_NONE: break;
  case BC_FMT_JUMP: sb(out, "-> %u", (unsigned)in->c); break;
  case BC_FMT_KINT:
    if (in->op == BC_OP_PUSH_U) sb(out, "%" PRIu64 "u", (uint64_t)im->kint[in->c]);
    else sb(out, "%" PRId64, im->kint[in->c]);
    break;
  case BC_FMT_KDBL: sb(out, "%.17g", im->kdbl[in->c]); break;
  case BC_FMT_STR: sbquote(out, &im->str[in->c]); break;
  case BC_FMT_BOOL: sb(out, in->a ? "true" : "false"); break;
  case BC_FMT_FIELD: sb(out, "req.%s", S(im, im->fields[in->c].name)); break;
  case BC_FMT_MFIELD: sb(out, "%s", bc_mprops[bc_mfield_row[in->a]].id); break;
  case BC_FMT_CAP: sb(out, "%s", S(im, im->caps[in->c])); break;
  case BC_FMT_LIST: sb(out, "list %u", (unsigned)in->c); break;
  case BC_FMT_BUDGET:
    sb(out, "%s.%s", S(im, im->budgets[in->c].name), bsel[in->a]);
    break;
  case BC_FMT_CAND:
    sb(out, "%s, ", orders[in->a & BC_CAND_ORDER]);
    if (in->a & BC_CAND_FITS) sb(out, "fits, ");
    if (in->a & BC_CAND_HEALTHY) sb(out, "healthy, ");
    if (in->b) sb(out, "filter %u, ", (unsigned)in->b - 1);
    sb(out, "pool %u (%u members)", (unsigned)in->c, (unsigned)im->pools[in->c].count);
    break;
  case BC_FMT_MODEL: sb(out, "%s", S(im, im->models[in->c].name)); break;
  case BC_FMT_SWITCH: {
    const bc_switch *sw = &im->switches[in->c];
    sb(out, "req.%s, switch %u (%u cases, otherwise -> %u)", S(im, im->fields[sw->field].name),
       (unsigned)in->c, (unsigned)sw->count, (unsigned)sw->otherwise);
    break;
  }
  case BC_FMT_SHADOW:
    sb(out, "%s", S(im, im->models[in->c].name));
    if (in->b) sb(out, "  %u%% of users", (unsigned)in->b);
    break;
  case BC_FMT_TYPE: {
    static const char *const types[] = { "?", "int", "uint", "double", "bool", "string" };
    sb(out, "%s", types[in->a <= LANE_T_STRING ? in->a : 0]);
    break;
  }
  case BC_FMT_ITER: {
    static const char *const kinds[] = { "all", "exists", "exists_one" };
    sb(out, "%s, region %u, req.%s",
       in->op == BC_OP_ITER_N ? "count" : kinds[in->a <= 2 ? in->a : 0], (unsigned)in->b - 1,
       S(im, im->fields[in->c].name));
    break;
  }
  case BC_FMT_MVAR:
    sb(out, "%s of req.%s at depth %u",
       in->b ? "value" : im->fields[in->c].type == LANE_T_LIST ? "index" : "key",
       S(im, im->fields[in->c].name), (unsigned)in->a);
    break;
  case BC_FMT_REGEX:
    sbquote(out, &im->str[in->c]);
    sb(out, " (slot %u)", (unsigned)in->b);
    break;
  case BC_FMT_TSPART: {
    static const char *const parts[] = {"year", "month", "date", "dayOfMonth", "dayOfWeek",
                                        "dayOfYear", "hours", "minutes", "seconds",
                                        "milliseconds"};
    sb(out, "%s", parts[in->a < 10 ? in->a : 0]);
    if (in->c != BC_NONE) {
      sb(out, " in ");
      sbquote(out, &im->str[in->c]);
    }
    break;
  }
  case BC_FMT_RULE:
    sb(out, "%u", (unsigned)in->c);
    if (route) {
      sb(out, "  ");
      sbquote(out, &im->str[im->rules[route->first_rule + in->c].name]);
    }
    break;
  }
}

/* Prints source line `line` of text (1-based) as a comment. */
static void source_line(FILE *out, const char *text, uint32_t line) {
  const char *s = text;
  for (uint32_t l = 1; l < line && s; l++) {
    s = strchr(s, '\n');
    if (s) s++;
  }
  if (!s || !*s) return;
  size_t n = strcspn(s, "\r\n");
  while (n && (*s == ' ' || *s == '\t')) { s++; n--; }
  fprintf(out, "         ; %u | %.*s\n", (unsigned)line, (int)n, s);
}

static void code(FILE *out, const lane_program *p, const bc_route *route, uint32_t start,
                 uint32_t end, const char *text) {
  const bc_image *im = &p->im;
  uint32_t shown = 0;
  for (uint32_t pc = start; pc < end; pc++) {
    const bc_insn *in = &im->code[pc];
    sbuf o = { "", 0 };
    if (text && im->lines && im->lines[pc] && im->lines[pc] != shown) {
      shown = im->lines[pc];
      source_line(out, text, shown);
    }
    sb(&o, "  %5u  %-10s ", (unsigned)pc, bc_ops[in->op].name);
    operands(&o, p, route, in);
    if (im->lines && im->lines[pc])
      sb(&o, "%*s; line %u", o.n < 46 ? (int)(48 - o.n) : 2, "", (unsigned)im->lines[pc]);
    else
      while (o.n > 0 && o.b[o.n - 1] == ' ') o.b[--o.n] = 0;
    fprintf(out, "%s\n", o.b);
  }
}


static void disasm_raw(FILE *out, const lane_program *p, const char *text);

/* The explain tables: nodes, each rule's condition, each CAND's list. */
static void explain_tables(FILE *out, const bc_image *im) {
  static const char *const kinds[BC_X_NKINDS] = {
    "?", "and", "or", "not", "leaf", "value", "pass"
  };
  if (!im->nxnodes) return;
  fprintf(out, "explain nodes (%u):\n", (unsigned)im->nxnodes);
  for (uint32_t i = 0; i < im->nxnodes; i++) {
    const bc_xnode *x = &im->xnodes[i];
    fprintf(out, "  %4u  %-5s ", (unsigned)i, kinds[x->kind]);
    if (x->region != BC_NONE) fprintf(out, " region %u", (unsigned)x->region);
    if (x->a != BC_NONE) fprintf(out, " a %u", (unsigned)x->a);
    if (x->b != BC_NONE) fprintf(out, " b %u", (unsigned)x->b);
    if (x->unit) fprintf(out, " %s", bc_unit_name(x->unit));
    fputs("  ", out);
    quote(out, &im->str[x->text]);
    fputc('\n', out);
  }
  for (uint32_t i = 0; i < im->nxrules; i++)
    if (im->xrules[i] != BC_NONE)
      fprintf(out, "  rule %u: node %u\n", (unsigned)i, (unsigned)im->xrules[i]);
  for (uint32_t i = 0; i < im->nxsels; i++) {
    const bc_xsel *x = &im->xsels[i];
    fprintf(out, "  rule %u selection %u: nodes", (unsigned)x->rule, (unsigned)x->place);
    for (uint32_t k = 0; k < x->count; k++)
      fprintf(out, " %u", (unsigned)im->xlist[x->first + k]);
    fputc('\n', out);
  }
}

/* Names and source lines come from the file: the listing is written to
 * memory first, then line by line through text_put, so that escape
 * sequences or invalid UTF-8 in them never reach the terminal. */
void bc_disasm_source(FILE *out, const lane_program *p, const char *text) {
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  if (!m) {
    fputs("lane: out of memory writing the listing\n", out);
    return;
  }
  disasm_raw(m, p, text);
  if (fclose(m) != 0 || !buf) {
    free(buf);
    fputs("lane: out of memory writing the listing\n", out);
    return;
  }
  for (size_t i = 0; i < n;) {
    const char *nl = memchr(buf + i, '\n', n - i);
    size_t k = nl ? (size_t)(nl - (buf + i)) : n - i;
    text_put(out, buf + i, k);
    if (nl) fputc('\n', out);
    i += k + (nl != NULL);
  }
  free(buf);
}

static void disasm_raw(FILE *out, const lane_program *p, const char *text) {
  const bc_image *im = &p->im;
  fprintf(out, "lanec format %u  flags 0x%04x  %zu bytes  checksum 0x%016" PRIx64 "\n",
          (unsigned)p->version, (unsigned)im->flags, p->nbytes, p->checksum);
  fprintf(out, "sections (%u):\n", (unsigned)p->nsec);
  for (uint32_t i = 0; i < p->nsec; i++) {
    const vm_section *s = &p->sec[i];
    fprintf(out, "  %-10s offset %8u  size %8u  records %u\n", bc_section_name(s->id),
            (unsigned)s->offset, (unsigned)s->size,
            (unsigned)(s->size / bc_section_record(s->id)));
  }
  tables(out, p);
  explain_tables(out, im);
  fputs("code:\n", out);
  for (uint32_t i = 0; i < im->nroutes; i++) {
    const bc_route *r = &im->routes[i];
    fprintf(out, "route %s  [%u,%u)  worst case %" PRIu64 " instructions\n", S(im, r->name),
            (unsigned)r->start, (unsigned)r->end, p->route_steps[i]);
    code(out, p, r, r->start, r->end, text);
  }
  for (uint32_t i = 0; i < im->nfilters; i++) {
    int last = im->code[im->filters[i].end - 1].op;
    int x = last == BC_OP_XRET, it = last == BC_OP_IRET;
    fprintf(out, "%s %u  [%u,%u)  worst case %" PRIu64 " instructions%s\n",
            x ? "explain region" : it ? "iteration region" : "filter", (unsigned)i,
            (unsigned)im->filters[i].start, (unsigned)im->filters[i].end, p->filter_steps[i],
            x ? "" : it ? " per entry" : " per model");
    code(out, p, NULL, im->filters[i].start, im->filters[i].end, text);
  }
  fprintf(out, "worst case per decision: %" PRIu64 " instructions\n", p->max_steps);
}
