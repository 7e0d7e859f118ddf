/*
 * clients.c -- deadlines on what clients send: a request's headers must be
 * in within limits.header_timeout_ms of its first line, and its body
 * within limits.body_timeout_ms of its headers.
 *
 * libmicrohttpd closes a connection only after limits.idle_timeout_s of
 * silence, so a client that trickles a byte now and then (slowloris) would
 * hold its connection, and its thread, for as long as it likes. Each
 * connection here has a watch: its phase (idle between requests, reading
 * headers, reading the body, being handled) and since when. A reaper
 * thread looks at them four times a second and shuts down the socket of
 * one past its phase's deadline; libmicrohttpd then sees the connection
 * end and closes it. A watch is unlinked when libmicrohttpd says the
 * connection is closed, which it does before it closes the socket (so the
 * reaper never shuts down a descriptor that was closed and reused).
 *
 * The watches also count the connections open, in all and per client
 * address, for limits.connections and limits.connections_per_ip: each
 * worker's server asks gw_clients_accept before it takes one. (A check
 * and its count are not one step, so workers accepting at the same
 * instant may pass a limit by at most limits.threads - 1.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include "gateway.h"

enum { IDLE, HEADERS, BODY, HANDLING, CUT };

struct gw_watch {
  struct gw_watch *prev, *next;
  int              fd;
  int              phase;
  uint64_t         since;   /* gw_now_ms when the phase began */
  struct gw_ip    *ip;      /* its client address's count */
};

/* Connections open per client address (a hash of lists, under watch_lock). */
#define IP_BUCKETS 1024
struct gw_ip {
  struct gw_ip *next;
  unsigned char addr[16];
  size_t        len;
  long          open;
};

/* The address bytes of sa (IPv4 or IPv6), 0 when neither. */
static size_t ip_key(const struct sockaddr *sa, unsigned char key[16]) {
  if (sa && sa->sa_family == AF_INET) {
    memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    return 4;
  }
  if (sa && sa->sa_family == AF_INET6) {
    memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    return 16;
  }
  return 0;
}

static struct gw_ip **ip_slot(gw *g, const unsigned char *key, size_t len) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < len; i++) h = (h ^ key[i]) * 16777619u;
  struct gw_ip **p = &g->ips[h % IP_BUCKETS];
  while (*p && ((*p)->len != len || memcmp((*p)->addr, key, len))) p = &(*p)->next;
  return p;
}

enum MHD_Result gw_clients_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
  gw *g = cls;
  unsigned char key[16];
  size_t len = ip_key(addr, key);
  (void)addrlen;
  const char *refused = NULL;
  pthread_mutex_lock(&g->watch_lock);
  if (g->nconns >= g->cfg.max_connections) {
    refused = "connections";
  } else if (g->cfg.max_per_ip > 0 && len) {
    struct gw_ip *ip = *ip_slot(g, key, len);
    if (ip && ip->open >= g->cfg.max_per_ip) refused = "connections_per_ip";
  }
  pthread_mutex_unlock(&g->watch_lock);
  if (!refused) return MHD_YES;
  char labels[64] = "";
  gw_label(labels, sizeof labels, "limit", refused);
  gw_metrics_add(g->metrics, "lane_gateway_connections_refused_total", labels, 1);
  return MHD_NO;
}

static void set_phase(gw *g, gw_watch *w, int phase) {
  if (!w) return;
  pthread_mutex_lock(&g->watch_lock);
  if (w->phase != CUT) {
    w->phase = phase;
    w->since = gw_now_ms();
  }
  pthread_mutex_unlock(&g->watch_lock);
}

static gw_watch *watch_of(struct MHD_Connection *con) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return ci ? (gw_watch *)ci->socket_context : NULL;
}

void gw_clients_notify(void *cls, struct MHD_Connection *con, void **socket_context,
                       enum MHD_ConnectionNotificationCode code) {
  gw *g = cls;
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    gw_watch *w = ci ? calloc(1, sizeof *w) : NULL;
    if (!w) return;   /* no watch: the idle timeout still applies */
    w->fd = ci->connect_fd;
    w->phase = IDLE;
    w->since = gw_now_ms();
    unsigned char key[16];
    const union MHD_ConnectionInfo *ai =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    size_t len = ip_key(ai ? ai->client_addr : NULL, key);
    pthread_mutex_lock(&g->watch_lock);
    g->nconns++;
    if (len) {
      struct gw_ip **p = ip_slot(g, key, len);
      if (!*p && (*p = calloc(1, sizeof **p))) {
        memcpy((*p)->addr, key, len);
        (*p)->len = len;
      }
      if ((w->ip = *p)) w->ip->open++;
    }
    w->next = g->watches;
    if (w->next) w->next->prev = w;
    g->watches = w;
    pthread_mutex_unlock(&g->watch_lock);
    *socket_context = w;
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
    gw_watch *w = *socket_context;
    pthread_mutex_lock(&g->watch_lock);
    g->nconns--;
    if (w->ip && --w->ip->open == 0) {
      struct gw_ip **p = ip_slot(g, w->ip->addr, w->ip->len);
      *p = w->ip->next;
      free(w->ip);
    }
    if (w->prev) w->prev->next = w->next;
    else g->watches = w->next;
    if (w->next) w->next->prev = w->prev;
    pthread_mutex_unlock(&g->watch_lock);
    free(w);
    *socket_context = NULL;
  }
}

void *gw_clients_first_line(void *cls, const char *uri, struct MHD_Connection *con) {
  (void)uri;
  set_phase(cls, watch_of(con), HEADERS);
  return NULL;   /* the request's context starts empty (handle() makes it) */
}

void gw_clients_headers_in(gw *g, struct MHD_Connection *con) { set_phase(g, watch_of(con), BODY); }
void gw_clients_body_in(gw *g, struct MHD_Connection *con) { set_phase(g, watch_of(con), HANDLING); }
void gw_clients_done(gw *g, struct MHD_Connection *con) { set_phase(g, watch_of(con), IDLE); }

static void *reaper(void *arg) {
  gw *g = arg;
  for (;;) {
    pthread_mutex_lock(&g->watch_lock);
    if (g->watch_stop) {
      pthread_mutex_unlock(&g->watch_lock);
      return NULL;
    }
    uint64_t now = gw_now_ms();
    long cut[2] = {0, 0};
    for (gw_watch *w = g->watches; w; w = w->next) {
      long limit = w->phase == HEADERS ? g->cfg.header_timeout_ms
                 : w->phase == BODY    ? g->cfg.body_timeout_ms : -1;
      if (limit < 0 || now - w->since <= (uint64_t)limit) continue;
      shutdown(w->fd, SHUT_RDWR);   /* the connection's thread sees it end */
      cut[w->phase == BODY]++;
      w->phase = CUT;
    }
    pthread_mutex_unlock(&g->watch_lock);
    if (cut[0])
      gw_metrics_add(g->metrics, "lane_gateway_client_timeouts_total", "phase=\"headers\"",
                     (double)cut[0]);
    if (cut[1])
      gw_metrics_add(g->metrics, "lane_gateway_client_timeouts_total", "phase=\"body\"",
                     (double)cut[1]);
    struct timespec ts = {0, 250 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

int gw_clients_start(gw *g) {
  pthread_mutex_init(&g->watch_lock, NULL);
  g->ips = calloc(IP_BUCKETS, sizeof *g->ips);
  if (!g->ips) return -1;
  if (pthread_create(&g->watch_thread, NULL, reaper, g)) return -1;
  g->watch_on = 1;
  return 0;
}

void gw_clients_stop(gw *g) {
  if (!g->watch_on) return;
  pthread_mutex_lock(&g->watch_lock);
  g->watch_stop = 1;
  pthread_mutex_unlock(&g->watch_lock);
  pthread_join(g->watch_thread, NULL);
  g->watch_on = 0;
  for (int i = 0; g->ips && i < IP_BUCKETS; i++)
    for (struct gw_ip *ip = g->ips[i], *n; ip; ip = n) {
      n = ip->next;
      free(ip);
    }
  free(g->ips);
  g->ips = NULL;
}
