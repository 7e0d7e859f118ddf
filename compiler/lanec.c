/*
 * lanec.c -- the compile API of lanec.h: load (with imports and an extra
 * test file), check, emit, and load the bytes once as a host would.
 */
#include "lanec.h"

#include <stdlib.h>
#include <string.h>

#include "sema.h"

int lanec_compile(const char *path, const char *text, const lanec_opts *opts,
                  lanec_result *r) {
  memset(r, 0, sizeof *r);
  sema_unit *u = malloc(sizeof *u);
  if (!u) return r->status = LANEC_ENOMEM;
  sema_init(u, opts);
  r->unit = u;
  int loaded = sema_load(u, path, text);
  if (loaded != 0 && u->nmods == 0)   /* nothing read: the root file */
    return r->status = u->ctx.nomem ? LANEC_ENOMEM : LANEC_EREAD;
  if (loaded == 0 && opts && opts->tests) loaded = sema_load_tests(u, opts->tests);
  int bad = loaded != 0 || sema_check(u) != 0;
  if (!bad && !(opts && opts->check_only))
    bad = emit_program_loaded(u, &r->bytes, &r->nbytes, &r->prog) != 0;
  if (u->ctx.nomem) r->status = LANEC_ENOMEM;
  else if (u->unverified) r->status = LANEC_EINTERNAL;
  else r->status = bad ? LANEC_EPOLICY : LANEC_OK;
  if (r->status != LANEC_OK) {   /* nothing half made */
    free(r->bytes);
    r->bytes = NULL;
    r->nbytes = 0;
    lane_program_free(r->prog);
    r->prog = NULL;
  }
  return r->status;
}

void lanec_result_free(lanec_result *r) {
  if (!r) return;
  free(r->bytes);
  lane_program_free(r->prog);
  if (r->unit) {
    sema_free(r->unit);
    free(r->unit);
  }
  memset(r, 0, sizeof *r);
}

int lanec_diag_count(const lanec_result *r) { return r->unit ? r->unit->ctx.ndiags : 0; }

void lanec_diag_get(const lanec_result *r, int i, lanec_diag *d) {
  const ast_diag *a = &r->unit->ctx.diags[i];
  d->level = a->level == DIAG_ERROR ? LANEC_ERROR : a->level == DIAG_WARNING ? LANEC_WARNING
                                                                             : LANEC_NOTE;
  d->file = a->span.file ? a->span.file->name : NULL;
  d->line = a->span.file ? a->span.line : 0;
  d->col = a->span.file ? a->span.col : 0;
  d->len = a->span.file ? a->span.len : 0;
  d->message = a->msg;
}

void lanec_print_diags(const lanec_result *r, FILE *out) {
  if (r->unit) diag_render(out, &r->unit->ctx);
  else if (r->status == LANEC_ENOMEM) fprintf(out, "lane: out of memory\n");
}
