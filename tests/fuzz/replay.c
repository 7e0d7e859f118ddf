/*
 * replay.c -- runs a fuzz target's LLVMFuzzerTestOneInput over files, as a
 * TAP test, without libFuzzer: `make test` and `make check-asan` replay
 * every corpus input (the regression tests of fuzz findings) with the
 * suite's compiler and sanitizers.
 *
 *   replay_TARGET DIR-or-FILE...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t cap = 4096, n = 0, got;
  uint8_t *b = malloc(cap);
  while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      uint8_t *nb = realloc(b, cap *= 2);
      if (!nb) { free(b); b = NULL; }
      else b = nb;
    }
  }
  int rerr = ferror(f);
  fclose(f);
  if (!b || rerr) { free(b); return -1; }
  /* Named first, so that a crash or a sanitizer report shows which input. */
  fprintf(stderr, "# replaying %s\n", path);
  LLVMFuzzerTestOneInput(b, n);   /* a finding aborts */
  free(b);
  return 0;
}

static int cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  int files = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) != 0) { bad++; continue; }
    if (!S_ISDIR(st.st_mode)) { bad += run_file(argv[i]) != 0; files++; continue; }
    DIR *d = opendir(argv[i]);
    if (!d) { bad++; continue; }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      if (nn == cap) {
        char **v = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *v);
        if (!v) { bad++; break; }
        names = v;
      }
      if (!(names[nn] = strdup(e->d_name))) { bad++; break; }
      nn++;
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp);
    for (size_t k = 0; k < nn; k++) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", argv[i], names[k]);
      bad += run_file(path) != 0;
      files++;
      free(names[k]);
    }
    free(names);
  }
  /* No input at all is a failure too: an empty or misnamed corpus protects
   * nothing. */
  printf("1..1\n%sok 1 - %d inputs replayed%s\n", bad || !files ? "not " : "", files,
         bad ? ", some unreadable" : !files ? ", none found" : "");
  return bad || !files;
}
