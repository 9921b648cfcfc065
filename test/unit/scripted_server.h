/* A scripted HTTP/1.1 server on 127.0.0.1 (ephemeral port) for the
 * ctfl_http / ctfl_experience unit tests.
 *
 * One thread polls the listening socket and every open connection, so a
 * kept-alive idle connection never blocks a new one. Each complete request is
 * recorded (method, target, headers, body, connection number) and answered by
 * the next scripted step; when the script runs out the answer is a 599.
 * Header-only (static inline) so that each test binary stays one file. */
#ifndef CTFL_SCRIPTED_SERVER_H
#define CTFL_SCRIPTED_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef enum {
    SS_RESPOND,       /* status + headers + body (Content-Length unless chunked_total) */
    SS_HANG,          /* read the request, never answer */
    SS_RESET,         /* close with RST (SO_LINGER 0) */
    SS_RAW_CLOSE      /* write body bytes verbatim (not HTTP), then close */
} ss_kind;

typedef struct {
    ss_kind kind;
    int status;
    const char *headers;        /* extra header lines, each ending in \r\n */
    const char *body;           /* NUL-terminated */
    long delay_ms;              /* wait before answering */
    const char *content_length; /* overrides the Content-Length value when set */
    size_t chunked_total;       /* > 0: chunked body of this many 'x' bytes instead */
    int close_after;            /* "Connection: close" and close */
    const char *prefix;         /* raw bytes sent before the response (e.g. a 1xx) */
} ss_step;

#define SS_MAX_STEPS 32
#define SS_MAX_REQS  32
#define SS_MAX_CONNS 32
#define SS_BUF       (64 * 1024)         /* recorded part of a request */
#define SS_CONN_BUF  (2 * 1024 * 1024)   /* largest request accepted */

typedef struct {
    char method[16];
    char target[2048];
    char headers[8192];         /* header lines after the request line */
    char body[SS_BUF];          /* the first SS_BUF bytes */
    size_t body_len;            /* the whole length */
    int conn;                   /* 1-based accept number */
} ss_request;

typedef struct {
    int fd, id, hung;
    size_t len;
    char *buf;                  /* SS_CONN_BUF bytes while open */
} ss_conn;

typedef struct {
    int listen_fd, wake[2], port;
    pthread_t thread;
    pthread_mutex_t lock;
    ss_step steps[SS_MAX_STEPS];
    int n_steps, next_step;
    ss_request reqs[SS_MAX_REQS];
    int n_reqs, n_accepted;
    ss_conn conns[SS_MAX_CONNS];
} ss_server;

static inline int ss_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline void ss_close(ss_conn *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    c->buf = NULL;
    c->fd = -1;
    c->len = 0;
    c->hung = 0;
}

static inline void ss_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Length of a complete request at the start of c->buf, or 0 if incomplete. */
static inline size_t ss_complete(const ss_conn *c, size_t *head_len, size_t *body_len)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    size_t cl = 0;
    if (!end) return 0;
    *head_len = (size_t)(end - c->buf) + 4;
    for (const char *l = c->buf; l < end; ) {
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        if (strncasecmp(l, "Content-Length:", 15) == 0) cl = (size_t)strtoul(l + 15, NULL, 10);
        if (!nl) break;
        l = nl + 1;
    }
    if (cl > SS_CONN_BUF - *head_len || c->len < *head_len + cl) return 0;
    *body_len = cl;
    return *head_len + cl;
}

/* Bounded copy of n bytes as a C string. */
static inline void ss_copy(char *dst, size_t size, const char *src, size_t n)
{
    if (n >= size) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static inline void ss_record(ss_server *s, const ss_conn *c, size_t head_len, size_t body_len)
{
    ss_request *r;
    const char *sp1, *sp2, *eol;
    pthread_mutex_lock(&s->lock);
    if (s->n_reqs < SS_MAX_REQS) {
        r = &s->reqs[s->n_reqs++];
        memset(r, 0, sizeof(*r));
        r->conn = c->id;
        sp1 = memchr(c->buf, ' ', head_len);
        sp2 = sp1 ? memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - c->buf)) : NULL;
        eol = memchr(c->buf, '\r', head_len);
        if (sp1 && sp2 && eol) {
            ss_copy(r->method, sizeof(r->method), c->buf, (size_t)(sp1 - c->buf));
            ss_copy(r->target, sizeof(r->target), sp1 + 1, (size_t)(sp2 - sp1 - 1));
            ss_copy(r->headers, sizeof(r->headers), eol + 2, head_len - (size_t)(eol + 2 - c->buf) - 2);
        }
        memcpy(r->body, c->buf + head_len, body_len < SS_BUF ? body_len : SS_BUF);
        r->body_len = body_len;
    }
    pthread_mutex_unlock(&s->lock);
}

static inline ss_step ss_next(ss_server *s)
{
    ss_step st = { SS_RESPOND, 599, NULL, "{\"script\":\"exhausted\"}", 0, NULL, 0, 1 };
    pthread_mutex_lock(&s->lock);
    if (s->next_step < s->n_steps) st = s->steps[s->next_step++];
    pthread_mutex_unlock(&s->lock);
    return st;
}

static inline void ss_answer(ss_conn *c, const ss_step *st)
{
    char head[4096], chunk[4096 + 16];
    size_t body_len = st->body ? strlen(st->body) : 0;
    int ok;

    if (st->delay_ms > 0) ss_sleep_ms(st->delay_ms);
    if (st->prefix && ss_send_all(c->fd, st->prefix, strlen(st->prefix)) != 0) return;
    switch (st->kind) {
    case SS_HANG:
        c->hung = 1;
        return;
    case SS_RESET: {
        struct linger lg = { 1, 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        ss_close(c);
        return;
    }
    case SS_RAW_CLOSE:
        ss_send_all(c->fd, st->body, body_len);
        ss_close(c);
        return;
    case SS_RESPOND:
        break;
    }
    if (st->chunked_total) {
        snprintf(head, sizeof(head), "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n%s%s\r\n", st->status, st->headers ? st->headers : "",
                 st->close_after ? "Connection: close\r\n" : "");
        ok = ss_send_all(c->fd, head, strlen(head)) == 0;
        for (size_t sent = 0; ok && sent < st->chunked_total; sent += 4096) {
            size_t n = st->chunked_total - sent < 4096 ? st->chunked_total - sent : 4096;
            int hl = snprintf(chunk, sizeof(chunk), "%zx\r\n", n);
            memset(chunk + hl, 'x', n);
            memcpy(chunk + hl + n, "\r\n", 2);
            ok = ss_send_all(c->fd, chunk, (size_t)hl + n + 2) == 0;
        }
        if (ok) ss_send_all(c->fd, "0\r\n\r\n", 5);
    } else {
        char cl[32];
        snprintf(cl, sizeof(cl), "%zu", body_len);
        snprintf(head, sizeof(head), "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\n"
                 "Content-Length: %s\r\n%s%s\r\n", st->status, st->content_length ? st->content_length : cl,
                 st->headers ? st->headers : "", st->close_after ? "Connection: close\r\n" : "");
        if (ss_send_all(c->fd, head, strlen(head)) == 0 && body_len) ss_send_all(c->fd, st->body, body_len);
    }
    if (st->close_after || st->content_length) ss_close(c);
}

static inline void ss_on_readable(ss_server *s, ss_conn *c)
{
    ssize_t r = recv(c->fd, c->buf + c->len, SS_CONN_BUF - c->len, 0);
    size_t head_len = 0, body_len = 0, total;
    if (r <= 0) {
        ss_close(c);
        return;
    }
    if (c->hung) {             /* swallow whatever comes until the client gives up */
        c->len = 0;
        return;
    }
    c->len += (size_t)r;
    while (c->fd >= 0 && !c->hung && (total = ss_complete(c, &head_len, &body_len)) > 0) {
        ss_step st = ss_next(s);
        ss_record(s, c, head_len, body_len);
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
        ss_answer(c, &st);
    }
    if (c->fd >= 0 && c->len == SS_CONN_BUF) ss_close(c);    /* oversized request: drop */
}

static inline void *ss_main(void *arg)
{
    ss_server *s = arg;
    struct pollfd pfd[SS_MAX_CONNS + 2];
    int map[SS_MAX_CONNS + 2];

    for (;;) {                 /* ends when ss_stop writes to the wake pipe */
        int n = 0;
        pfd[n].fd = s->wake[0]; pfd[n].events = POLLIN; map[n++] = -1;
        pfd[n].fd = s->listen_fd; pfd[n].events = POLLIN; map[n++] = -1;
        for (int i = 0; i < SS_MAX_CONNS; i++)
            if (s->conns[i].fd >= 0) {
                pfd[n].fd = s->conns[i].fd; pfd[n].events = POLLIN; map[n++] = i;
            }
        if (poll(pfd, (nfds_t)n, 1000) < 0 && errno != EINTR) break;
        if (pfd[0].revents) break;
        if (pfd[1].revents & POLLIN) {
            int fd = accept(s->listen_fd, NULL, NULL);
            struct timeval tv = { 5, 0 };
            int slot = -1;
            for (int i = 0; fd >= 0 && i < SS_MAX_CONNS && slot < 0; i++)
                if (s->conns[i].fd < 0) slot = i;
            if (fd >= 0 && slot >= 0 && !(s->conns[slot].buf = malloc(SS_CONN_BUF))) slot = -1;
            if (fd >= 0 && slot < 0) close(fd);
            if (fd >= 0 && slot >= 0) {
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
                pthread_mutex_lock(&s->lock);
                s->conns[slot].id = ++s->n_accepted;
                pthread_mutex_unlock(&s->lock);
                s->conns[slot].fd = fd;
                s->conns[slot].len = 0;
                s->conns[slot].hung = 0;
            }
        }
        for (int k = 2; k < n; k++)
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR)) ss_on_readable(s, &s->conns[map[k]]);
    }
    return NULL;
}

/* Start with a script of n steps; returns NULL on failure. */
static inline ss_server *ss_start(const ss_step *steps, int n)
{
    ss_server *s = calloc(1, sizeof(*s));
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    if (!s || n > SS_MAX_STEPS) { free(s); return NULL; }
    for (int i = 0; i < SS_MAX_CONNS; i++) s->conns[i].fd = -1;
    if (n) memcpy(s->steps, steps, sizeof(ss_step) * (size_t)n);
    s->n_steps = n;
    pthread_mutex_init(&s->lock, NULL);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0
        || listen(s->listen_fd, 16) != 0 || getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0
        || pipe(s->wake) != 0) {
        if (s->listen_fd >= 0) close(s->listen_fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->thread, NULL, ss_main, s) != 0) {
        close(s->listen_fd);
        close(s->wake[0]);
        close(s->wake[1]);
        free(s);
        return NULL;
    }
    return s;
}

static inline void ss_stop(ss_server *s)
{
    if (!s) return;
    (void)!write(s->wake[1], "x", 1);
    pthread_join(s->thread, NULL);
    for (int i = 0; i < SS_MAX_CONNS; i++) ss_close(&s->conns[i]);
    close(s->listen_fd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static inline int ss_accepted(ss_server *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->n_accepted;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static inline int ss_request_count(ss_server *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->n_reqs;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* A copy of request i (0-based); the caller frees it. */
static inline ss_request *ss_request_copy(ss_server *s, int i)
{
    ss_request *r = malloc(sizeof(*r));
    pthread_mutex_lock(&s->lock);
    if (i < s->n_reqs) memcpy(r, &s->reqs[i], sizeof(*r));
    else { free(r); r = NULL; }
    pthread_mutex_unlock(&s->lock);
    return r;
}

/* Header value (first match, case-insensitive name) copied into out, or NULL. */
static inline const char *ss_header(const ss_request *r, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *l = r->headers; l && *l; ) {
        const char *eol = strstr(l, "\r\n");
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        if (len > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            snprintf(out, outsz, "%.*s", (int)(len - (size_t)(v - l)), v);
            return out;
        }
        l = eol ? eol + 2 : NULL;
    }
    return NULL;
}

/* A port on 127.0.0.1 with nothing listening (bound, then closed). */
static inline int ss_dead_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0
        && getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

#endif
