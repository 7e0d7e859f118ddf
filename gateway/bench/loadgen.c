/*
 * loadgen.c -- the client of `make bench-gateway`: C connections kept alive
 * to 127.0.0.1:PORT, each sending the same POST one after another for S
 * seconds, every answer read whole (Content-Length or chunked) and timed.
 *
 *   lane-bench-loadgen --port N --conns C --seconds S --body FILE
 *                      [--path P] [--header 'Name: value']... [--warmup S]
 *
 * Prints one JSON object: requests, errors, seconds, rps, and the latency
 * in microseconds (p50, p90, p99, mean, max) of the requests after the
 * warm-up. A connection the server closes is opened again (and counted).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

typedef struct worker {
  pthread_t th;
  double   *lat;      /* microseconds, one per timed request */
  size_t    n, cap;
  long      errors, reconnects, statuses_not_2xx;
} worker;

static int port, conns, seconds = 5, warmup = 1;
static const char *path = "/v1/chat/completions";
static char *req;     /* the whole request, head and body */
static size_t reqlen;
static double t_start, t_warm, t_end;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
    close(fd);
    return -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Reads more of an answer into *buf (grown as needed, NUL-terminated):
 * at most `most` bytes. 0, or -1 if the connection broke or memory ran
 * out. */
static int recv_more(int fd, char **buf, size_t *cap, size_t *have, size_t most) {
  if (*have == *cap) {
    char *b = realloc(*buf, *cap * 2 + 1);
    if (!b) return -1;
    *buf = b;
    *cap *= 2;
  }
  size_t room = *cap - *have;
  for (;;) {
    ssize_t k = recv(fd, *buf + *have, room < most ? room : most, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    *have += (size_t)k;
    (*buf)[*have] = 0;
    return 0;
  }
}

/* Reads one whole answer: its status, or -1 if the connection broke. */
static int read_answer(int fd, char **buf, size_t *cap) {
  size_t have = 0;
  char *end;
  do {
    if (recv_more(fd, buf, cap, &have, SIZE_MAX)) return -1;
  } while (!(end = memmem(*buf, have, "\r\n\r\n", 4)));
  int status = atoi(*buf + 9);
  size_t hlen = (size_t)(end - *buf) + 4;
  const char *cl = strcasestr(*buf, "\r\ncontent-length:");
  int chunked = strcasestr(*buf, "\r\ntransfer-encoding: chunked") && (!cl || cl > end);
  if (cl && cl < end) {
    size_t want = hlen + strtoul(cl + 17, NULL, 10);
    while (have < want)
      if (recv_more(fd, buf, cap, &have, want - have)) return -1;
    return status;
  }
  if (!chunked) return -1;   /* the bench's servers always say how long */
  /* chunked: read until the last chunk "0\r\n\r\n" */
  while (have < hlen + 5 || memcmp(*buf + have - 5, "0\r\n\r\n", 5))
    if (recv_more(fd, buf, cap, &have, SIZE_MAX)) return -1;
  return status;
}

static void *run(void *arg) {
  worker *w = arg;
  size_t cap = 1 << 16;
  char *buf = malloc(cap + 1);
  int fd = dial();
  while (buf) {
    double t0 = now_s();
    if (t0 >= t_end) break;
    if (fd < 0) {
      w->errors++;
      usleep(1000);
      fd = dial();
      w->reconnects++;
      continue;
    }
    size_t off = 0;
    int bad = 0;
    while (off < reqlen) {
      ssize_t k = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) { bad = 1; break; }
      off += (size_t)k;
    }
    int st = bad ? -1 : read_answer(fd, &buf, &cap);
    double t1 = now_s();
    if (st < 0) {
      w->errors++;
      close(fd);
      fd = dial();
      w->reconnects++;
      continue;
    }
    if (st / 100 != 2) w->statuses_not_2xx++;
    if (t0 >= t_warm && t1 <= t_end) {
      if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4096;
        double *l = realloc(w->lat, nc * sizeof *l);
        if (!l) break;
        w->lat = l;
        w->cap = nc;
      }
      w->lat[w->n++] = (t1 - t0) * 1e6;
    }
  }
  if (fd >= 0) close(fd);
  free(buf);
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *bodyfile = NULL;
  char headers[4096] = "";
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--conns")) conns = atoi(v);
    else if (!strcmp(k, "--seconds")) seconds = atoi(v);
    else if (!strcmp(k, "--warmup")) warmup = atoi(v);
    else if (!strcmp(k, "--body")) bodyfile = v;
    else if (!strcmp(k, "--path")) path = v;
    else if (!strcmp(k, "--header")) {
      size_t n = strlen(headers);
      snprintf(headers + n, sizeof headers - n, "%s\r\n", v);
    }
  }
  FILE *f = bodyfile ? fopen(bodyfile, "rb") : NULL;
  if (!f || port <= 0 || conns <= 0 || seconds <= 0) {
    fprintf(stderr, "usage: lane-bench-loadgen --port N --conns C --seconds S --body FILE "
            "[--path P] [--header 'Name: value']... [--warmup S]\n");
    return 2;
  }
  char body[1 << 16];
  size_t blen = fread(body, 1, sizeof body, f);
  fclose(f);
  req = malloc(blen + sizeof headers + 512);
  if (!req) return 1;
  int h = sprintf(req, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                  "%sContent-Length: %zu\r\n\r\n", path, port, headers, blen);
  memcpy(req + h, body, blen);
  reqlen = (size_t)h + blen;
  worker *w = calloc((size_t)conns, sizeof *w);
  if (!w) return 1;
  t_start = now_s();
  t_warm = t_start + warmup;
  t_end = t_warm + seconds;
  for (int i = 0; i < conns; i++) pthread_create(&w[i].th, NULL, run, &w[i]);
  size_t n = 0;
  long errors = 0, reconnects = 0, not2xx = 0;
  for (int i = 0; i < conns; i++) {
    pthread_join(w[i].th, NULL);
    n += w[i].n;
    errors += w[i].errors;
    reconnects += w[i].reconnects;
    not2xx += w[i].statuses_not_2xx;
  }
  double *all = malloc((n ? n : 1) * sizeof *all), sum = 0;
  if (!all) return 1;
  size_t k = 0;
  for (int i = 0; i < conns; i++)
    for (size_t j = 0; j < w[i].n; j++) sum += all[k++] = w[i].lat[j];
  qsort(all, n, sizeof *all, cmp_d);
#define PCT(p) (n ? all[(size_t)((double)(n - 1) * (p))] : 0.0)
  printf("{\"conns\": %d, \"requests\": %zu, \"errors\": %ld, \"reconnects\": %ld, "
         "\"not_2xx\": %ld, \"seconds\": %d, \"rps\": %.1f, \"p50_us\": %.1f, \"p90_us\": %.1f, "
         "\"p99_us\": %.1f, \"mean_us\": %.1f, \"max_us\": %.1f}\n",
         conns, n, errors, reconnects, not2xx, seconds, (double)n / seconds, PCT(0.50), PCT(0.90),
         PCT(0.99), n ? sum / (double)n : 0.0, n ? all[n - 1] : 0.0);
  return errors || not2xx ? 1 : 0;
}
