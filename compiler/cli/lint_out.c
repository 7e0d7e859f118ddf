/*
 * lint_out.c -- `lane lint`: runs the linter of liblanec (compiler/lint.c)
 * and writes its findings as text, JSON or SARIF 2.1.0. The JSON and SARIF
 * writers live here, with the lane command, so that liblanec needs no
 * JSON library.
 */
#include "lint_out.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lane.h"

/* A JSON string; messages quote policy text, which is UTF-8 unless the
 * file is not, and then the bytes are replaced rather than lost. */
static json_t *jstr(const char *s) {
  json_t *j = json_string(s);
  if (j) return j;
  size_t n = strlen(s);
  char *t = malloc(n + 1);
  if (!t) return json_string("");
  for (size_t i = 0; i <= n; i++) t[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
  j = json_string(t);
  free(t);
  return j;
}

/* {"id", "level", "file", "line", "col", "message"} of a finding; a note
 * has no id or level. */
static json_t *json_place(const lint_item *it) {
  json_t *o = it->lint >= 0 ? json_pack("{s:s, s:s}", "id", lint_id(it->lint), "level", it->level)
                            : json_object();
  json_object_set_new(o, "file", jstr(it->file));
  json_object_set_new(o, "line", json_integer(it->line));
  json_object_set_new(o, "col", json_integer(it->col));
  json_object_set_new(o, "message", jstr(it->message));
  return o;
}

static json_t *json_findings(const lint_report *r) {
  json_t *a = json_array();
  for (int i = 0; a && i < lint_report_count(r); i++) {
    lint_item it;
    lint_report_item(r, i, &it);
    json_t *o = json_place(&it);
    if (it.nnotes) {
      json_t *notes = json_array();
      for (int k = 0; k < it.nnotes; k++) {
        lint_item note;
        lint_report_note(r, i, k, &note);
        json_array_append_new(notes, json_place(&note));
      }
      json_object_set_new(o, "notes", notes);
    }
    json_array_append_new(a, o);
  }
  lint_item it;
  if (a && lint_report_unshown(r, &it)) json_array_append_new(a, json_place(&it));
  return a;
}

/* A path as a URI reference: unreserved bytes and '/' as they are, the
 * rest percent-encoded. */
static json_t *uri_of(const char *path) {
  size_t n = strlen(path);
  char *s = malloc(3 * n + 1), *o = s;
  if (!s) return json_string("");
  for (const char *p = path; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c))
      *o++ = (char)c;
    else o += sprintf(o, "%%%02X", c);
  }
  *o = 0;
  json_t *j = json_string(s);
  free(s);
  return j;
}

/* A SARIF physicalLocation: the file, and the region when there is one. */
static json_t *sarif_place(const lint_item *it) {
  json_t *loc = json_pack("{s:{s:o}}", "artifactLocation", "uri", uri_of(it->file));
  if (it->line)
    json_object_set_new(loc, "region", json_pack("{s:i, s:i, s:i}", "startLine", it->line,
                                                 "startColumn", it->col, "endColumn",
                                                 it->col + it->len));
  return loc;
}

static json_t *sarif_log(const lint_report *r) {
  json_t *rules = json_array(), *results = json_array();
  for (int k = 0; k < lint_count(); k++)
    json_array_append_new(rules, json_pack(
        "{s:s, s:{s:s}, s:{s:b, s:s}, s:{s:s}}", "id", lint_id(k),
        "shortDescription", "text", lint_summary(k),
        "defaultConfiguration", "enabled", strcmp(lint_default_level(k), "off") != 0,
        "level", !strcmp(lint_default_level(k), "error") ? "error" : "warning",
        "help", "text", "See compiler/lints/README.md in the lane sources."));
  for (int i = 0; i < lint_report_count(r); i++) {
    lint_item it;
    lint_report_item(r, i, &it);
    json_t *res = json_pack("{s:s, s:i, s:s, s:{s:o}, s:[{s:o}]}", "ruleId", lint_id(it.lint),
                            "ruleIndex", it.lint, "level", it.level, "message", "text",
                            jstr(it.message), "locations", "physicalLocation", sarif_place(&it));
    if (it.nnotes) {
      json_t *rel = json_array();
      for (int k = 0; k < it.nnotes; k++) {
        lint_item note;
        lint_report_note(r, i, k, &note);
        json_array_append_new(rel, json_pack("{s:o, s:{s:o}}", "physicalLocation",
                                             sarif_place(&note), "message", "text",
                                             jstr(note.message)));
      }
      json_object_set_new(res, "relatedLocations", rel);
    }
    json_array_append_new(results, res);
  }
  json_t *run = json_pack("{s:{s:{s:s, s:s, s:o}}, s:o}", "tool", "driver", "name", "lane",
                          "version", LANE_VERSION_STRING, "rules", rules, "results", results);
  lint_item un;
  if (lint_report_unshown(r, &un))   /* what a result cannot carry: errors counted, not kept */
    json_object_set_new(run, "invocations", json_pack(
        "[{s:b, s:[{s:s, s:{s:o}}]}]", "executionSuccessful", 1, "toolExecutionNotifications",
        "level", "error", "message", "text", jstr(un.message)));
  return json_pack("{s:s, s:s, s:[o]}", "$schema",
                   "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs",
                   run);
}

static void print_json(json_t *j, FILE *out) {
  char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  if (s) fprintf(out, "%s\n", s);
  free(s);
  json_decref(j);
}

int lint_command(const char *path, const sema_opts *opts, const char *const *enable,
                 int nenable, const char *const *disable, int ndisable, const char *format,
                 FILE *out, FILE *err) {
  int form = !format || !strcmp(format, "text") ? 0 : !strcmp(format, "json") ? 1
           : !strcmp(format, "sarif") ? 2 : -1;
  if (form < 0) {
    fprintf(err, "lane: unknown lint format '%s'; expected text, json or sarif\n", format);
    return 2;
  }
  lint_report *r;
  int rc = lint_policy(path, opts, enable, nenable, disable, ndisable, &r, err);
  if (!r) return rc;
  if (form == 0) lint_report_print_text(r, out);
  else print_json(form == 1 ? json_findings(r) : sarif_log(r), out);
  lint_report_free(r);
  return rc;
}
