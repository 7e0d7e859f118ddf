/*
 * upstream.c -- the fake provider of `make bench-gateway`: an OpenAI-style
 * /v1/chat/completions on 127.0.0.1 that answers at once, in C, so that
 * what the bench measures is the gateway, not the fake.
 *
 *   lane-bench-upstream [--port N] [--delay-us N]
 *
 * Prints its port on the first line of stdout and serves until killed.
 * HTTP/1.1 with keep-alive, a thread per connection (the bench opens at
 * most a few hundred). A body with "stream": true gets a server-sent event
 * stream (chunked: four chunks, a usage chunk and [DONE]); any other body a
 * chat completion with usage. GET /_stats answers {"connections": N,
 * "requests": N}: the bench reads how many connections the gateway opened.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

static atomic_ulong nconn, nreq;
static long delay_us;

static const char ANSWER[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1764000000,"
    "\"model\":\"%s\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"Your order shipped yesterday and arrives on Friday.\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":412,\"completion_tokens\":12,"
    "\"total_tokens\":424}}";

static const char *const CHUNKS[] = {"Your order", " shipped yesterday", " and arrives", " on Friday."};

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

/* One chunk of a chunked body. */
static int send_chunk(int fd, const char *data, size_t n) {
  char head[32];
  int h = snprintf(head, sizeof head, "%zx\r\n", n);
  return send_all(fd, head, (size_t)h) || send_all(fd, data, n) || send_all(fd, "\r\n", 2);
}

static void model_of(const char *body, char *out, size_t cap) {
  const char *m = strstr(body, "\"model\"");
  snprintf(out, cap, "bench");
  if (!m || !(m = strchr(m + 7, '"'))) return;
  const char *e = strchr(m + 1, '"');
  if (e && (size_t)(e - m - 1) < cap) snprintf(out, cap, "%.*s", (int)(e - m - 1), m + 1);
}

static int answer(int fd, const char *body, int is_stats) {
  char buf[2048], model[128];
  if (is_stats) {
    int n = snprintf(buf, sizeof buf, "{\"connections\": %lu, \"requests\": %lu}",
                     atomic_load(&nconn), atomic_load(&nreq));
    char head[160];
    int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n", n);
    return send_all(fd, head, (size_t)h) || send_all(fd, buf, (size_t)n);
  }
  atomic_fetch_add(&nreq, 1);
  if (delay_us > 0) usleep((useconds_t)delay_us);
  model_of(body, model, sizeof model);
  if (strstr(body, "\"stream\":true") || strstr(body, "\"stream\": true")) {
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    if (send_all(fd, head, sizeof head - 1)) return -1;
    for (size_t i = 0; i < sizeof CHUNKS / sizeof *CHUNKS; i++) {
      int n = snprintf(buf, sizeof buf,
                       "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
                       "\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"%s\"},"
                       "\"finish_reason\":null}]}\n\n", model, CHUNKS[i]);
      if (send_chunk(fd, buf, (size_t)n)) return -1;
    }
    int n = snprintf(buf, sizeof buf,
                     "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
                     "\"model\":\"%s\",\"choices\":[],\"usage\":{\"prompt_tokens\":412,"
                     "\"completion_tokens\":12,\"total_tokens\":424}}\n\ndata: [DONE]\n\n", model);
    return send_chunk(fd, buf, (size_t)n) || send_all(fd, "0\r\n\r\n", 5);
  }
  int n = snprintf(buf, sizeof buf, ANSWER, model);
  char head[160];
  int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n", n);
  /* one write: head and body in one segment, as a provider's server would */
  char out[2300];
  memcpy(out, head, (size_t)h);
  memcpy(out + h, buf, (size_t)n);
  return send_all(fd, out, (size_t)(h + n));
}

/* Serves one connection: requests until the client closes it. */
static void *serve(void *arg) {
  int fd = (int)(intptr_t)arg;
  size_t cap = 1 << 16, have = 0;
  char *in = malloc(cap + 1);
  for (; in;) {
    char *end = NULL;
    while (!(end = memmem(in, have, "\r\n\r\n", 4))) {
      if (have == cap) goto done;   /* headers past 64 KiB: not from the bench */
      ssize_t k = recv(fd, in + have, cap - have, 0);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) goto done;
      have += (size_t)k;
    }
    size_t hlen = (size_t)(end - in) + 4, blen = 0;
    in[hlen - 1] = 0;
    const char *cl = strcasestr(in, "\r\ncontent-length:");
    if (cl) blen = strtoul(cl + 17, NULL, 10);
    if (hlen + blen > cap) {   /* a large body: grow */
      char *bigger = realloc(in, hlen + blen + 1);
      if (!bigger) goto done;
      in = bigger;
      cap = hlen + blen;
    }
    while (have < hlen + blen) {
      ssize_t k = recv(fd, in + have, hlen + blen - have, 0);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) goto done;
      have += (size_t)k;
    }
    char save = in[hlen + blen];
    in[hlen + blen] = 0;
    int stats = !strncmp(in, "GET /_stats", 11);
    if (answer(fd, in + hlen, stats)) goto done;
    in[hlen + blen] = save;
    memmove(in, in + hlen + blen, have - hlen - blen);
    have -= hlen + blen;
  }
done:
  free(in);
  close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--delay-us")) delay_us = atol(argv[i + 1]);
  }
  signal(SIGPIPE, SIG_IGN);
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1024) ||
      getsockname(ls, (struct sockaddr *)&sa, &sl)) {
    perror("lane-bench-upstream: listen");
    return 1;
  }
  printf("%u\n", ntohs(sa.sin_port));
  fflush(stdout);
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 256 << 10);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("lane-bench-upstream: accept");
      usleep(10000);
      continue;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    atomic_fetch_add(&nconn, 1);
    pthread_t t;
    if (pthread_create(&t, &at, serve, (void *)(intptr_t)fd)) close(fd);
  }
}
