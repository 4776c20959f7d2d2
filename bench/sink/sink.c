/*
 * A fast SMTP sink for the send benchmarks: accepts mail on 127.0.0.1 and
 * throws it away, counting it.
 *
 * One thread, epoll, non-blocking sockets; replies to pipelined commands
 * (RFC 2920) are gathered and written once per read. Content comes by DATA
 * or by BDAT chunks (CHUNKING, RFC 3030). Python's aiosmtpd tops
 * out near 1,300 messages/s on the benchmark machine, which would make the
 * sink the bottleneck of a send benchmark; this one must not be (see
 * bench/bench_sink.py, which measures its capacity alone).
 *
 *   sink [-p PORT] [-l LOG] [-t TEMPFAIL%] [-c CLOSE421%] [-d DROP%] [-s SEED]
 *
 *   -p  port on 127.0.0.1 (0, the default: any free port); the first line
 *       written to stdout is "port N" once it listens
 *   -l  append "message-id recipient" per accepted recipient to LOG
 *   -t  answer this percentage of transactions "451" after their content
 *   -c  answer this percentage "421" after their content and close
 *   -d  close the connection in the middle of this percentage of DATA
 *   -s  seed of the fault dice (default 1)
 *
 * The command XSTATS answers "250 messages=... recipients=... ..." with the
 * counters, after writing out the log; SIGTERM/SIGINT print them and exit.
 * Recipients steer the answers, for tests: an address containing "unknown"
 * is refused at RCPT (550), "reject" after the content (554), "tempfail"
 * after the content (451).
 *
 * Built by bench/sinklib.py with the system's cc (never committed as a binary).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 262144
#define HEAD_KEEP 16384
#define RCPT_KEEP 8192
#define MAX_LINE 65536

enum { CMD = 0, DATA = 1, CHUNK = 2 };
enum { FAULT_NONE = 0, FAULT_TEMPFAIL, FAULT_CLOSE421, FAULT_DROP };

typedef struct {
    int fd;
    int state;
    int match;          /* how much of "\r\n.\r\n" has been seen in DATA */
    int fault;
    int closing;
    int draining;       /* said its last word: reading until the client hangs up */
    int has_mail;
    int nrcpt;
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_cap;
    size_t data_bytes;
    size_t chunk_left;  /* bytes of the current BDAT chunk still to read */
    int chunk_last;     /* the current chunk is the LAST one */
    int chunk_failed;   /* BDAT refused: read the chunk, then answer 503 */
    char head[HEAD_KEEP];
    size_t head_len;
    char rcpts[RCPT_KEEP];
    size_t rcpts_len;
} conn_t;

static struct {
    unsigned long messages, recipients, connections, tempfail, closed421, dropped, bytes;
} stats;

static FILE *logfile;
static double p_tempfail, p_close421, p_drop;
static uint64_t dice = 1;
static volatile sig_atomic_t stopping;

static double roll(void) {
    dice ^= dice << 13;
    dice ^= dice >> 7;
    dice ^= dice << 17;
    return (double)(dice >> 11) / (double)(1ULL << 53) * 100.0;
}

static void on_signal(int sig) { (void)sig; stopping = 1; }

static void out_add(conn_t *c, const char *text, size_t len) {
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len) cap *= 2;
        c->out = realloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, text, len);
    c->out_len += len;
}

static void reply(conn_t *c, const char *text) { out_add(c, text, strlen(text)); }

static void reset_transaction(conn_t *c) {
    c->has_mail = 0;
    c->nrcpt = 0;
    c->rcpts_len = 0;
    c->head_len = 0;
    c->data_bytes = 0;
    c->fault = FAULT_NONE;
    c->match = 2; /* the CRLF ending the DATA line counts as the first two */
}

static void write_stats(char *buffer, size_t size) {
    snprintf(buffer, size,
             "messages=%lu recipients=%lu connections=%lu tempfail=%lu closed421=%lu "
             "dropped=%lu bytes=%lu",
             stats.messages, stats.recipients, stats.connections, stats.tempfail,
             stats.closed421, stats.dropped, stats.bytes);
}

/* The Message-ID of the kept head of a message, or "-". */
static void message_id(conn_t *c, char *id, size_t size) {
    const char *p = c->head, *end = c->head + c->head_len;
    snprintf(id, size, "-");
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (len <= 1) return; /* the empty line: end of the header */
        if (len > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
            const char *v = p + 11;
            while (v < p + len && (*v == ' ' || *v == '\t')) v++;
            size_t n = (size_t)(p + len - v);
            if (n && v[n - 1] == '\r') n--;
            if (n >= size) n = size - 1;
            memcpy(id, v, n);
            id[n] = 0;
            return;
        }
        if (!eol) return;
        p = eol + 1;
    }
}

/* Whether a kept recipient contains ``word`` (addresses steer the answers in tests). */
static int recipient_says(conn_t *c, const char *word) {
    const char *r = c->rcpts, *end = c->rcpts + c->rcpts_len;
    while (r < end) {
        if (strstr(r, word)) return 1;
        r += strlen(r) + 1;
    }
    return 0;
}

static void finish_message(conn_t *c) {
    if (recipient_says(c, "reject")) {
        reply(c, "554 5.7.1 Message rejected as spam\r\n");
        c->state = CMD;
        reset_transaction(c);
        return;
    }
    if (recipient_says(c, "tempfail")) c->fault = FAULT_TEMPFAIL;
    switch (c->fault) {
    case FAULT_TEMPFAIL:
        stats.tempfail++;
        reply(c, "451 4.3.0 Injected temporary failure, try again\r\n");
        break;
    case FAULT_CLOSE421:
        stats.closed421++;
        reply(c, "421 4.3.2 Injected shutdown, closing connection\r\n");
        c->closing = 1;
        break;
    default:
        stats.messages++;
        stats.recipients += (unsigned long)c->nrcpt;
        if (logfile) {
            char id[1024];
            message_id(c, id, sizeof id);
            const char *r = c->rcpts, *end = c->rcpts + c->rcpts_len;
            while (r < end) {
                size_t n = strlen(r);
                fprintf(logfile, "%s %s\n", id, r);
                r += n + 1;
            }
        }
        reply(c, "250 2.0.0 Ok: queued\r\n");
    }
    c->state = CMD;
    reset_transaction(c);
}

/* Copies the address between < and > of a MAIL/RCPT argument. */
static void keep_recipient(conn_t *c, const char *line, size_t len) {
    const char *open = memchr(line, '<', len);
    const char *close = open ? memchr(open, '>', (size_t)(line + len - open)) : NULL;
    if (!open || !close) return;
    size_t n = (size_t)(close - open - 1);
    if (c->rcpts_len + n + 1 > RCPT_KEEP) return;
    memcpy(c->rcpts + c->rcpts_len, open + 1, n);
    c->rcpts[c->rcpts_len + n] = 0;
    c->rcpts_len += n + 1;
}

static void command(conn_t *c, const char *line, size_t len) {
    if (len >= 1 && line[len - 1] == '\r') len--;
    if (len >= 4 && strncasecmp(line, "EHLO", 4) == 0) {
        reset_transaction(c);
        reply(c, "250-sink\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-8BITMIME\r\n"
                 "250-SMTPUTF8\r\n250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n");
    } else if (len >= 4 && strncasecmp(line, "HELO", 4) == 0) {
        reset_transaction(c);
        reply(c, "250 sink\r\n");
    } else if (len >= 10 && strncasecmp(line, "MAIL FROM:", 10) == 0) {
        if (c->has_mail) {
            reply(c, "503 5.5.1 Error: nested MAIL command\r\n");
        } else {
            c->has_mail = 1;
            reply(c, "250 2.1.0 Ok\r\n");
        }
    } else if (len >= 8 && strncasecmp(line, "RCPT TO:", 8) == 0) {
        if (!c->has_mail) {
            reply(c, "503 5.5.1 Error: need MAIL command\r\n");
        } else if (memmem(line, len, "unknown", 7)) {
            reply(c, "550 5.1.1 No such user here\r\n");
        } else {
            c->nrcpt++;
            keep_recipient(c, line, len);
            reply(c, "250 2.1.5 Ok\r\n");
        }
    } else if (len == 4 && strncasecmp(line, "DATA", 4) == 0) {
        if (!c->has_mail || c->nrcpt == 0) {
            reply(c, "503 5.5.1 Error: need RCPT command\r\n");
            return;
        }
        double dice_roll = roll();
        if (dice_roll < p_drop) c->fault = FAULT_DROP;
        else if (dice_roll < p_drop + p_close421) c->fault = FAULT_CLOSE421;
        else if (dice_roll < p_drop + p_close421 + p_tempfail) c->fault = FAULT_TEMPFAIL;
        c->state = DATA;
        c->match = 2;
        c->head_len = 0;
        c->data_bytes = 0;
        reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    } else if (len > 5 && strncasecmp(line, "BDAT ", 5) == 0) {
        /* RFC 3030: "BDAT <size> [LAST]"; the chunk follows the line at once. */
        char *end;
        unsigned long size = strtoul(line + 5, &end, 10);
        while (end < line + len && *end == ' ') end++;
        c->chunk_left = size;
        c->chunk_last = (size_t)(line + len - end) >= 4 && strncasecmp(end, "LAST", 4) == 0;
        c->chunk_failed = !c->has_mail || c->nrcpt == 0;
        if (!c->chunk_failed && c->data_bytes == 0 && c->head_len == 0) {
            double dice_roll = roll();
            if (dice_roll < p_drop) c->fault = FAULT_DROP;
            else if (dice_roll < p_drop + p_close421) c->fault = FAULT_CLOSE421;
            else if (dice_roll < p_drop + p_close421 + p_tempfail) c->fault = FAULT_TEMPFAIL;
        }
        c->state = CHUNK;
    } else if (len == 4 && strncasecmp(line, "RSET", 4) == 0) {
        reset_transaction(c);
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (len >= 4 && strncasecmp(line, "NOOP", 4) == 0) {
        reply(c, "250 2.0.0 Ok\r\n");
    } else if (len == 4 && strncasecmp(line, "QUIT", 4) == 0) {
        reply(c, "221 2.0.0 Bye\r\n");
        c->closing = 1;
    } else if (len == 6 && strncasecmp(line, "XSTATS", 6) == 0) {
        char text[512], line_out[600];
        if (logfile) fflush(logfile);
        write_stats(text, sizeof text);
        snprintf(line_out, sizeof line_out, "250 %s\r\n", text);
        reply(c, line_out);
    } else {
        reply(c, "502 5.5.2 Error: command not recognized\r\n");
    }
}

/* Consumes BDAT chunk bytes; returns how many belonged to the chunk. */
static size_t chunk_bytes(conn_t *c, const char *p, size_t len) {
    size_t n = len < c->chunk_left ? len : c->chunk_left;
    if (logfile && !c->chunk_failed && c->head_len < HEAD_KEEP) {
        size_t keep = n < HEAD_KEEP - c->head_len ? n : HEAD_KEEP - c->head_len;
        memcpy(c->head + c->head_len, p, keep);
        c->head_len += keep;
    }
    c->chunk_left -= n;
    c->data_bytes += n;
    stats.bytes += n;
    return n;
}

static void finish_chunk(conn_t *c) {
    if (c->chunk_failed) {
        reply(c, "503 5.5.1 Error: need RCPT command\r\n");
        c->state = CMD;
        reset_transaction(c);
    } else if (c->chunk_last) {
        finish_message(c);
    } else {
        reply(c, "250 2.0.0 Chunk received\r\n");
        c->state = CMD;
    }
}

/* Consumes DATA bytes; returns how many belonged to the message (terminator included). */
static size_t data_bytes(conn_t *c, const char *p, size_t len) {
    static const char terminator[] = "\r\n.\r\n";
    size_t i = 0;
    while (i < len) {
        if (c->match == 0) {
            const char *cr = memchr(p + i, '\r', len - i);
            if (!cr) { i = len; break; }
            i = (size_t)(cr - p);
        }
        char ch = p[i++];
        if (ch == terminator[c->match]) {
            c->match++;
            if (c->match == 5) break;
        } else {
            c->match = (ch == '\r') ? 1 : 0;
        }
    }
    if (logfile && c->head_len < HEAD_KEEP) {
        size_t n = i < HEAD_KEEP - c->head_len ? i : HEAD_KEEP - c->head_len;
        memcpy(c->head + c->head_len, p, n);
        c->head_len += n;
    }
    c->data_bytes += i;
    stats.bytes += i;
    return i;
}

static int flush_out(conn_t *c) {
    size_t sent = 0;
    while (sent < c->out_len) {
        ssize_t n = write(c->fd, c->out + sent, c->out_len - sent);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            return -1;
        }
        sent += (size_t)n;
    }
    memmove(c->out, c->out + sent, c->out_len - sent);
    c->out_len -= sent;
    return 0;
}

/*
 * Hangs up after the replies written so far: FIN, then whatever the client
 * still sends is read and dropped until it closes too. Closing at once with
 * unread input would make the kernel send a reset, which can destroy replies
 * the client has not read yet (accepted messages it would then send again).
 */
static void hang_up(conn_t *c) {
    shutdown(c->fd, SHUT_WR);
    c->draining = 1;
}

static void close_conn(int epfd, conn_t *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

/* Handles what is in c->in; returns -1 when the connection must close now. */
static int process(conn_t *c) {
    size_t pos = 0;
    while ((pos < c->in_len || (c->state == CHUNK && c->chunk_left == 0)) && !c->closing) {
        if (c->state == CHUNK) {
            pos += chunk_bytes(c, c->in + pos, c->in_len - pos);
            if (c->fault == FAULT_DROP && c->data_bytes > 0) {
                stats.dropped++;
                c->closing = 1; /* the replies to earlier messages, then hang up */
                return 0;
            }
            if (c->chunk_left == 0) finish_chunk(c);
            continue;
        }
        if (c->state == DATA) {
            size_t used = data_bytes(c, c->in + pos, c->in_len - pos);
            pos += used;
            if (c->fault == FAULT_DROP && c->data_bytes > 0) {
                stats.dropped++;
                c->closing = 1; /* the replies to earlier messages, then hang up */
                return 0;
            }
            if (c->match == 5) finish_message(c);
            continue;
        }
        char *eol = memchr(c->in + pos, '\n', c->in_len - pos);
        if (!eol) break;
        command(c, c->in + pos, (size_t)(eol - (c->in + pos)));
        pos = (size_t)(eol - c->in) + 1;
    }
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    if (c->state == CMD && c->in_len > MAX_LINE) return -1;
    return 0;
}

int main(int argc, char **argv) {
    int port = 0, opt;
    const char *log_path = NULL;
    while ((opt = getopt(argc, argv, "p:l:t:c:d:s:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'l': log_path = optarg; break;
        case 't': p_tempfail = atof(optarg); break;
        case 'c': p_close421 = atof(optarg); break;
        case 'd': p_drop = atof(optarg); break;
        case 's': dice = strtoull(optarg, NULL, 10) | 1; break;
        default:
            fprintf(stderr, "usage: sink [-p port] [-l log] [-t %%] [-c %%] [-d %%] [-s seed]\n");
            return 2;
        }
    }
    if (log_path) {
        logfile = fopen(log_path, "a");
        if (!logfile) { perror(log_path); return 1; }
        setvbuf(logfile, NULL, _IOFBF, 1 << 20);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0) { perror("bind"); return 1; }
    if (listen(listener, 1024) < 0) { perror("listen"); return 1; }
    socklen_t size = sizeof address;
    getsockname(listener, (struct sockaddr *)&address, &size);
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);

    int epfd = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event events[256];
    char *chunk = malloc(READ_CHUNK);

    while (!stopping) {
        int ready = epoll_wait(epfd, events, 256, 200);
        for (int i = 0; i < ready; i++) {
            conn_t *c = events[i].data.ptr;
            if (c == NULL) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn_t *n = calloc(1, sizeof *n);
                    n->fd = fd;
                    reset_transaction(n);
                    stats.connections++;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = n};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
                    reply(n, "220 sink ESMTP\r\n");
                    flush_out(n);
                }
                continue;
            }
            if (events[i].events & EPOLLOUT) {
                if (flush_out(c) < 0) { close_conn(epfd, c); continue; }
                if (c->out_len == 0) {
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
                    if (c->closing && !c->draining) hang_up(c);
                }
            }
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t n = read(c->fd, chunk, READ_CHUNK);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                close_conn(epfd, c);
                continue;
            }
            if (c->draining) continue;
            if (c->in_len + (size_t)n > c->in_cap) {
                size_t cap = c->in_cap ? c->in_cap : 65536;
                while (cap < c->in_len + (size_t)n) cap *= 2;
                c->in = realloc(c->in, cap);
                c->in_cap = cap;
            }
            memcpy(c->in + c->in_len, chunk, (size_t)n);
            c->in_len += (size_t)n;
            if (process(c) < 0 || flush_out(c) < 0) { close_conn(epfd, c); continue; }
            if (c->out_len) {
                struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
            } else if (c->closing) {
                hang_up(c);
            }
        }
    }
    if (logfile) fclose(logfile);
    char text[512];
    write_stats(text, sizeof text);
    printf("%s\n", text);
    return 0;
}
