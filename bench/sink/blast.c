/*
 * A fast SMTP client for measuring the sink alone: many connections from one
 * thread (epoll), PIPELINING, one round trip per message per connection
 * (MAIL, RCPT and DATA written together; after the 354, the content together
 * with the next MAIL, RCPT and DATA), the same message each time.
 *
 *   blast -p PORT [-n MESSAGES] [-c CONNECTIONS] [-s SIZE]
 *
 * Prints "messages=N accepted=A seconds=S" when every connection is done.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    int phase; /* 0 greeting, 1 ehlo, 2 transactions, 3 quitting */
    int after_data;
    long remaining;
    char in[65536];
    size_t in_len;
} client_t;

static const char envelope[] =
    "MAIL FROM:<bounce+abcdefghijklmnopqr@bounces.example>\r\n"
    "RCPT TO:<someone@example.com>\r\nDATA\r\n";
static char *content;
static size_t content_len;
static long accepted;

static void send_all(int fd, const char *p, size_t len) {
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            perror("write");
            exit(1);
        }
        p += n;
        len -= (size_t)n;
    }
}

static void on_reply(client_t *c, int code) {
    if (c->phase == 0) {
        send_all(c->fd, "EHLO blast\r\n", 12);
        c->phase = 1;
    } else if (c->phase == 1) {
        c->phase = 2;
        send_all(c->fd, envelope, sizeof envelope - 1);
    } else if (c->phase == 2) {
        if (code == 354) {
            c->remaining--;
            c->after_data = 1;
            if (c->remaining > 0) {
                /* the content and the next envelope in one write */
                char *buffer = malloc(content_len + sizeof envelope);
                memcpy(buffer, content, content_len);
                memcpy(buffer + content_len, envelope, sizeof envelope - 1);
                send_all(c->fd, buffer, content_len + sizeof envelope - 1);
                free(buffer);
            } else {
                send_all(c->fd, content, content_len);
            }
        } else if (c->after_data) {
            c->after_data = 0;
            if (code == 250) accepted++;
            if (c->remaining == 0) {
                send_all(c->fd, "QUIT\r\n", 6);
                c->phase = 3;
            }
        }
    }
}

int main(int argc, char **argv) {
    int port = 0, connections = 16, size = 8000, opt;
    long messages = 10000;
    while ((opt = getopt(argc, argv, "p:n:c:s:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': messages = atol(optarg); break;
        case 'c': connections = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        default: fprintf(stderr, "usage: blast -p port [-n messages] [-c connections] [-s size]\n"); return 2;
        }
    }
    /* A message of about SIZE bytes in 76-character lines, ending with "\r\n.\r\n". */
    content = malloc((size_t)size + 200);
    size_t len = 0;
    len += (size_t)sprintf(content, "Message-ID: <blast@example>\r\nSubject: blast\r\n\r\n");
    while (len + 78 < (size_t)size) {
        memset(content + len, 'x', 76);
        len += 76;
        content[len++] = '\r';
        content[len++] = '\n';
    }
    memcpy(content + len, ".\r\n", 3);
    content_len = len + 3;

    int epfd = epoll_create1(0);
    client_t *clients = calloc((size_t)connections, sizeof *clients);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int open_count = 0;
    for (int i = 0; i < connections; i++) {
        client_t *c = &clients[i];
        c->remaining = messages / connections + (i < messages % connections ? 1 : 0);
        if (c->remaining == 0) continue;
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct sockaddr_in address = {0};
        address.sin_family = AF_INET;
        address.sin_port = htons((uint16_t)port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(c->fd, (struct sockaddr *)&address, sizeof address) < 0) { perror("connect"); return 1; }
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e);
        open_count++;
    }
    struct epoll_event events[256];
    while (open_count > 0) {
        int ready = epoll_wait(epfd, events, 256, 10000);
        if (ready == 0) { fprintf(stderr, "blast: timed out\n"); return 1; }
        for (int i = 0; i < ready; i++) {
            client_t *c = events[i].data.ptr;
            ssize_t n = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
            if (n <= 0) {
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                open_count--;
                continue;
            }
            c->in_len += (size_t)n;
            size_t pos = 0;
            char *eol;
            while ((eol = memchr(c->in + pos, '\n', c->in_len - pos)) != NULL) {
                char *line = c->in + pos;
                if (eol - line >= 3 && line[3] != '-') on_reply(c, atoi(line));
                pos = (size_t)(eol - c->in) + 1;
            }
            memmove(c->in, c->in + pos, c->in_len - pos);
            c->in_len -= pos;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
    printf("messages=%ld accepted=%ld seconds=%.4f\n", messages, accepted, seconds);
    return 0;
}
