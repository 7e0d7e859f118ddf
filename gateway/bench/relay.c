/*
 * relay.c -- the floor of `make bench-gateway`: the least any proxy on
 * this machine can add. It parses nothing and decides nothing: each client
 * connection gets a connection to the upstream, and bytes are copied both
 * ways as they come, by one thread on epoll.
 *
 *   lane-bench-relay --to PORT
 *
 * Prints its port on the first line of stdout and serves until killed.
 * What a request through it costs over a direct call is the two extra
 * loopback hops (the client's request and the answer each cross one more
 * socket pair and wake one more process), which every proxy pays; the
 * gateway's added latency is measured against it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#define MAX_FD 65536

static int peer[MAX_FD];   /* the other end of each relayed connection, or -1 */

static int nodelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Writes all of p to fd (non-blocking: waits on poll when the socket is
 * full). 0, or -1 when the connection is gone. */
static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w, n -= (size_t)w;
    } else if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {fd, POLLOUT, 0};
      poll(&pf, 1, 1000);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return -1;
    }
  }
  return 0;
}

static void close_pair(int ep, int fd) {
  int o = peer[fd];
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  peer[fd] = -1;
  if (o >= 0 && o < MAX_FD) {
    epoll_ctl(ep, EPOLL_CTL_DEL, o, NULL);
    close(o);
    peer[o] = -1;
  }
}

int main(int argc, char **argv) {
  int to = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--to") && i + 1 < argc) to = atoi(argv[++i]);
    else return fprintf(stderr, "usage: lane-bench-relay --to PORT\n"), 2;
  }
  if (to <= 0) return fprintf(stderr, "usage: lane-bench-relay --to PORT\n"), 2;
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < MAX_FD; i++) peer[i] = -1;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1024) ||
      getsockname(ls, (struct sockaddr *)&sa, &sl))
    return perror("lane-bench-relay: listen"), 1;
  printf("%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  struct epoll_event evs[256];
  static char buf[1 << 16];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          struct sockaddr_in ua = {0};
          ua.sin_family = AF_INET;
          ua.sin_port = htons((unsigned short)to);
          ua.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
          int u = socket(AF_INET, SOCK_STREAM, 0);   /* blocking connect: loopback */
          if (c >= MAX_FD || u < 0 || u >= MAX_FD ||
              connect(u, (struct sockaddr *)&ua, sizeof ua)) {
            close(c);
            if (u >= 0) close(u);
            continue;
          }
          fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
          nodelay(c), nodelay(u);
          peer[c] = u, peer[u] = c;
          struct epoll_event e1 = {.events = EPOLLIN, .data.fd = c};
          struct epoll_event e2 = {.events = EPOLLIN, .data.fd = u};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &e1);
          epoll_ctl(ep, EPOLL_CTL_ADD, u, &e2);
        }
        continue;
      }
      if (peer[fd] < 0) continue;
      ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) {
        if (write_all(peer[fd], buf, (size_t)r)) close_pair(ep, fd);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close_pair(ep, fd);
      }
    }
  }
}
