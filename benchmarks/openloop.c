/* Open-loop HTTP/1.1 load generator (wrk2-style): requests are scheduled at a fixed rate per
 * phase and each latency is counted from its scheduled send, so a stalled server cannot slow
 * the generator down and hide its own queueing (no coordinated omission).
 *
 * usage: openloop HOST PORT PATH AUTH CONNECTIONS RATE:SECONDS [RATE:SECONDS ...]
 * prints one line per phase: "PHASE rate=R sent=N ok=N errors=N p50_us=.. p99_us=.. max_us=.."
 * Build: cc -O2 -o openloop openloop.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 1024
#define MAXQ 1000000

typedef struct {
    int fd;
    int busy;
    long long sched_ns;
    int phase;
    char buf[65536];
    size_t len;
} conn_t;

static conn_t conns[MAXC];
static long long *lat[16];
static long counts[16], errors[16], sent[16];
static char request[4096];
static size_t request_len;
static struct sockaddr_in addr;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int open_conn(int epfd, conn_t *c) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { close(fd); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    c->fd = fd; c->busy = 0; c->len = 0;
    return 0;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* A complete response in c->buf: returns its length (0 = incomplete, -1 = malformed); *status set. */
static long complete(conn_t *c, int *status) {
    c->buf[c->len < sizeof c->buf ? c->len : sizeof c->buf - 1] = 0;
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return 0;
    if (c->len < 12) return -1;
    *status = atoi(c->buf + 9);
    long body = 0;
    char *cl = strcasestr(c->buf, "\r\ncontent-length:");
    if (cl && cl < end) body = atol(cl + 17);
    long total = (end - c->buf) + 4 + body;
    return (long)c->len >= total ? total : 0;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: openloop HOST PORT PATH AUTH CONNECTIONS RATE:SECONDS...\n"); return 2; }
    const char *host = argv[1], *path = argv[3], *auth = argv[4];
    int port = atoi(argv[2]), nconn = atoi(argv[5]);
    if (nconn < 1 || nconn > MAXC) return 2;
    int nphase = argc - 6;
    if (nphase > 16) return 2;
    double rate[16], secs[16];
    for (int i = 0; i < nphase; i++) {
        if (sscanf(argv[6 + i], "%lf:%lf", &rate[i], &secs[i]) != 2) return 2;
        lat[i] = calloc(MAXQ, sizeof(long long));
    }
    const char *body = "{\"name\":\"bench\"}";
    request_len = snprintf(request, sizeof request,
        "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n%s",
        path, host, port, *auth ? "Authorization: " : "", auth, *auth ? "\r\n" : "", strlen(body), body);
    addr.sin_family = AF_INET; addr.sin_port = htons(port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    int epfd = epoll_create1(0);
    for (int i = 0; i < nconn; i++) if (open_conn(epfd, &conns[i]) < 0) { perror("connect"); return 1; }

    /* The schedule: request k of phase p is due at phase_start[p] + k / rate[p]. */
    long long *due = malloc(sizeof(long long) * MAXQ);
    int *due_phase = malloc(sizeof(int) * MAXQ);
    long total = 0;
    long long t0 = now_ns() + 10000000LL, start = t0;
    for (int p = 0; p < nphase; p++) {
        long n = (long)(rate[p] * secs[p]);
        for (long k = 0; k < n && total < MAXQ; k++) {
            due[total] = start + (long long)(k * 1e9 / rate[p]);
            due_phase[total++] = p;
        }
        start += (long long)(secs[p] * 1e9);
    }
    long next = 0, done = 0;
    long long deadline = start + 30000000000LL; /* 30 s grace for stragglers */
    struct epoll_event evs[256];
    while (done < total && now_ns() < deadline) {
        long long t = now_ns();
        /* Send every due request on an idle connection; queued ones keep their scheduled time. */
        for (int i = 0; i < nconn && next < total && due[next] <= t; i++) {
            conn_t *c = &conns[i];
            if (c->busy || c->fd < 0) continue;
            if (write(c->fd, request, request_len) != (ssize_t)request_len) {
                errors[due_phase[next]]++; sent[due_phase[next]]++; next++; done++;
                close(c->fd); c->fd = -1; open_conn(epfd, c); continue;
            }
            c->busy = 1; c->sched_ns = due[next]; c->phase = due_phase[next]; c->len = 0;
            sent[c->phase]++; next++;
        }
        int timeout_ms = 1;
        if (next < total && due[next] > t) timeout_ms = (int)((due[next] - t) / 1000000LL);
        if (timeout_ms > 1) timeout_ms = 1;
        int n = epoll_wait(epfd, evs, 256, timeout_ms);
        for (int e = 0; e < n; e++) {
            conn_t *c = evs[e].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL); close(c->fd);
                if (c->busy) { errors[c->phase]++; done++; }
                open_conn(epfd, c);
                continue;
            }
            c->len += r;
            int status = 0;
            long used = complete(c, &status);
            if (used == 0) continue;
            long long l = now_ns() - c->sched_ns;
            if (used < 0 || status < 200 || status > 299) errors[c->phase]++;
            else lat[c->phase][counts[c->phase]++] = l;
            done++; c->busy = 0; c->len = 0;
        }
    }
    for (int p = 0; p < nphase; p++) {
        long n = counts[p];
        qsort(lat[p], n, sizeof(long long), cmp);
        long long p50 = n ? lat[p][n / 2] : 0, p99 = n ? lat[p][(long)(n * 0.99) < n ? (long)(n * 0.99) : n - 1] : 0;
        long long mx = n ? lat[p][n - 1] : 0;
        long missing = (long)(rate[p] * secs[p]) - counts[p] - errors[p];
        printf("PHASE rate=%.0f sent=%ld ok=%ld errors=%ld unanswered=%ld p50_us=%lld p99_us=%lld max_us=%lld\n",
               rate[p], sent[p], n, errors[p], missing, p50 / 1000, p99 / 1000, mx / 1000);
    }
    (void)t0;
    return 0;
}
