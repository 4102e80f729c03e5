/*
 * fuzz_http.c — libFuzzer entry point for the HTTP request path of `serve`
 * (request line, headers, body framing).
 *
 * Each input is used twice:
 *   1. Its head (up to the first empty line) is split into a version and
 *      headers and given to httpd_framing_error; when that accepts it, the
 *      head must have one Host (HTTP/1.1), and not both Content-Length and
 *      Transfer-Encoding.
 *   2. The raw bytes are written to a real server (httpd_start on an
 *      ephemeral 127.0.0.1 port, started once, with a POST handler that
 *      checks what it is handed and answers at once), the client's write side
 *      is shut, and the answers are read until the server closes: what it
 *      sent must start with a status line, and after a 400 for bad framing
 *      nothing more may be answered (no request smuggled behind it).
 * Small limits make the 413 and 431 paths reachable, and a short request
 * deadline (CONN_TIMEOUT_MS) cuts inputs that stop mid-request. The read
 * gives up after CLOSE_WAIT_MS without counting it as a failure:
 * libmicrohttpd 0.9.75 (edge-triggered epoll) can miss the client's end of
 * stream when it arrives with the last request bytes, and then keeps a
 * kept-alive connection open until its idle timeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "httpd.h"
#include "log.h"
#include "loop.h"

#define MAX_BODY 4096
#define MAX_HEADERS 64
#define CONN_TIMEOUT_MS 200 /* the server's request deadline: cuts inputs that stop mid-request */
#define CLOSE_WAIT_MS 500    /* how long an input waits for the server to close */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- 1. the framing check alone ---- */

static void check_framing(const uint8_t *data, size_t size)
{
	char *head = malloc(size + 1);
	memcpy(head, data, size);
	head[size] = '\0';
	jr_header h[MAX_HEADERS];
	size_t n = 0;
	const char *version = NULL;
	char *save = NULL;
	int first = 1;
	for (char *line = strtok_r(head, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\r')
			line[--len] = '\0';
		if (first) {
			char *sp = strrchr(line, ' ');
			version = sp ? sp + 1 : line;
			first = 0;
			continue;
		}
		char *colon = strchr(line, ':');
		if (!colon || n == MAX_HEADERS)
			break;
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t vl = strlen(v);
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			v[--vl] = '\0';
		h[n++] = (jr_header){line, v};
	}
	if (httpd_framing_error(version, h, n) == NULL) {
		int hosts = 0, cl = 0, te = 0;
		for (size_t i = 0; i < n; i++) {
			hosts += strcasecmp(h[i].name, "host") == 0;
			cl += strcasecmp(h[i].name, "content-length") == 0;
			te += strcasecmp(h[i].name, "transfer-encoding") == 0;
		}
		int http10 = version && strcmp(version, "HTTP/1.0") == 0;
		if (hosts > 1 || (!http10 && hosts != 1) || (cl && te) || (te && http10)) {
			fprintf(stderr, "framing accepted: hosts %d, content-length %d, transfer-encoding %d\n",
				hosts, cl, te);
			abort();
		}
	}
	free(head);
}

/* ---- 2. the server ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int port;
} srv = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

/* on_post: loop thread. What the server hands over must be well framed and within the limits. */
static void on_post(void *arg, jr_http_req *req)
{
	(void)arg;
	size_t n = 0, len = 0;
	const jr_header *h = httpd_req_headers(req, &n);
	int cl = 0, te = 0;
	for (size_t i = 0; i < n; i++) {
		cl += strcasecmp(h[i].name, "content-length") == 0;
		te += strcasecmp(h[i].name, "transfer-encoding") == 0;
	}
	const char *body = httpd_req_body(req, &len);
	if ((cl && te) || len > MAX_BODY || body[len] != '\0' ||
	    strcmp(httpd_req_method(req), "POST") != 0) {
		fprintf(stderr, "handed a request it should have refused\n");
		abort();
	}
	(void)httpd_req_trace(req);
	(void)httpd_req_path(req);
	switch (len ? (unsigned char)body[0] % 3 : 0) {
	case 0:
		httpd_respond(req, 204, NULL, NULL, 0);
		break;
	case 1:
		httpd_req_add_header(req, "Retry-After", "1");
		httpd_respond(req, 503, "text/plain", "again\n", 6);
		break;
	default:
		httpd_respond(req, 400, "text/plain", "invalid event\n", 14);
		break;
	}
}

static void *serve_main(void *arg)
{
	(void)arg;
	grpc_init();
	jr_loop *l = loop_new();
	jr_httpd_opts o = {.port = 0, .bind = "127.0.0.1", .post = on_post, .max_body = MAX_BODY,
			   .max_header = 2048, .max_connections = 64, .conn_timeout_ms = CONN_TIMEOUT_MS};
	char err[256];
	jr_httpd *h = httpd_start(l, &o, err, sizeof err);
	if (!h) {
		fprintf(stderr, "httpd_start: %s\n", err);
		abort();
	}
	pthread_mutex_lock(&srv.mu);
	srv.port = httpd_port(h);
	pthread_cond_signal(&srv.cv);
	pthread_mutex_unlock(&srv.mu);
	for (;;)
		loop_run_once(l, 100);
	return NULL;
}

static int server_port(void)
{
	static pthread_t thread;
	static int port;
	if (port)
		return port;
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	if (pthread_create(&thread, NULL, serve_main, NULL) != 0)
		abort();
	pthread_mutex_lock(&srv.mu);
	while (!srv.port)
		pthread_cond_wait(&srv.cv, &srv.mu);
	port = srv.port;
	pthread_mutex_unlock(&srv.mu);
	return port;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* exchange: writes data, shuts the write side, reads into out until the server closes. */
static size_t exchange(int port, const uint8_t *data, size_t size, char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("connect");
		abort();
	}
	size_t off = 0;
	while (off < size) { /* the server may close early: then the rest is not sent */
		ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	size_t got = 0;
	int64_t until = mono_ms() + CLOSE_WAIT_MS;
	for (;;) {
		int64_t left = until - mono_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) == 0) {
			/* MHD missed the end of stream (see the top): a reset makes it let go */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
			break;
		}
		char scratch[4096];
		ssize_t r = recv(fd, scratch, sizeof scratch, 0);
		if (r <= 0)
			break; /* closed (or reset: what was read so far still counts) */
		size_t take = (size_t)r < cap - got ? (size_t)r : cap - got;
		memcpy(out + got, scratch, take);
		got += take;
	}
	close(fd);
	return got;
}

static void check_answers(const char *out, size_t got)
{
	if (got && (got < 7 || memcmp(out, "HTTP/1.", 7) != 0)) {
		fprintf(stderr, "the answer does not start with a status line\n");
		abort();
	}
	static const char bad[] = "\r\n\r\nbad request: ";
	const char *p = memmem(out, got, bad, sizeof bad - 1);
	const char *eol = p ? memchr(p + sizeof bad - 1, '\n', got - (size_t)(p - out) - (sizeof bad - 1))
			    : NULL;
	if (p && (!eol || memmem(eol, got - (size_t)(eol - out), "HTTP/1.", 7))) {
		fprintf(stderr, "an answer after a 400 for bad framing: a request was smuggled\n");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char out[1 << 16];
	check_framing(data, size);
	size_t got = exchange(server_port(), data, size, out, sizeof out);
	check_answers(out, got);
	return 0;
}
