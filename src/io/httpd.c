/*
 * httpd.c — libmicrohttpd with its own polling thread; POSTs go to the loop.
 *
 * Threads. MHD's thread parses requests, answers the GET endpoints and the
 * early refusals (405, 413, 431, 503) itself, and reads POST bodies. A POST
 * whose body is complete is suspended and posted to the loop thread
 * (loop_post); the handler there answers with httpd_respond, which stores
 * the response in the request and resumes the connection; MHD then calls the
 * access handler once more, on its own thread, and the stored response is
 * queued. A suspended connection is neither polled nor timed out by MHD, so
 * the request (and the MHD-owned strings it points to: path, headers) stays
 * valid until httpd_respond.
 *
 * Memory. One record per connection (conn_rec) holds the request state, the
 * header array and the body buffer, reused by every request of a kept-alive
 * connection: a request costs no allocation of ours beyond loop_post's node
 * and, for answers other than a bare 204, its MHD response.
 *
 * Slow clients. MHD's CONNECTION_TIMEOUT is an idle timeout: a client that
 * sends a byte a second never trips it. So every connection also has a
 * deadline, checked by a loop timer (the watchdog): a request must arrive in
 * full (request line, headers, body) within conn_timeout_ms of its first
 * byte, else it gets 408 and the socket is shut down. MHD tells nothing of
 * bytes before a whole request line, so for a connection waiting for a
 * request the watchdog asks the kernel (TCP_INFO: tcpi_bytes_received,
 * tcpi_last_data_recv) whether data came since the wait began; if so the
 * request's time starts at the latest data seen then (within one watchdog
 * period of its first byte). A new connection that sends
 * nothing gets 408 after conn_timeout_ms. A kept-alive connection waits
 * idle_timeout_ms for its next request; then it is shut down silently (an
 * unasked-for 408 there could be taken as the answer to a request the
 * client is just sending). MHD's own idle timeout is a backstop past both.
 * Shutting down (not closing) a socket from the loop thread is safe because
 * MHD's NOTIFY_CLOSED callback, which removes the record under the same
 * mutex, runs before MHD closes the descriptor; MHD then sees the end of
 * the stream and cleans up on its own thread.
 *
 * Framing. Before anything else, the first call of the access handler checks
 * the request's version and headers (httpd_framing_error): a request whose
 * body length is ambiguous gets 400 and MHD closes the connection, so no
 * byte after its head is ever read as a request.
 *
 * Lingering close. An answer queued at that first call makes MHD close the
 * connection without reading the body; closing a socket with unread bytes
 * resets it, and the client may lose the answer. So such connections, and
 * any closed with bytes unread, are handed to a lingering thread (below).
 *
 * Connection count. MHD stops accepting at its hard limit (the kernel's
 * backlog holds the rest), so that limit is set a little above
 * max_connections. A connection arriving past max_connections first shuts
 * down the longest-idle kept-alive connection (or a new one that has sent
 * nothing for FRESH_EVICT_MS), and while more than max_connections are open
 * a connection that goes idle is closed at once (so idle connections never
 * hold MHD at its hard limit with new ones in the backlog): idle clients
 * cannot lock new ones out. When none is idle, a request on a connection
 * past max_connections gets 503 with Connection: close: a clear answer, and
 * the others go on.
 *
 * Memory. Before a POST's body is read, the pre_body hook (authentication)
 * may answer it, and twice its Content-Length is counted against
 * max_inflight (bytes of all requests at once): the body, and as much again
 * for what the handler will decode from it, so a request admitted is rarely
 * refused after its body was read. A chunked body is counted as it grows.
 * Past it: 503 with Retry-After, and nothing more of the body is kept. The
 * handler adds what it decoded (httpd_req_hold). Counts are given back when
 * the answer was sent. After a burst (in flight fell to a quarter of a high
 * mark of TRIM_MARK or more) the watchdog calls malloc_trim, so the freed
 * bodies and events go back to the system.
 *
 * Rejected: a thread per connection (MHD_USE_THREAD_PER_CONNECTION) —
 * 10,000 idle push connections would be 10,000 stacks; and answering POSTs on
 * MHD's thread — RunJob calls live on the loop's completion queue.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <grpc/grpc.h> /* grpc_version_string, for jobrelay_build_info */
#include <microhttpd.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "list.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "trace.h"

#define DEFAULT_MAX_BODY (10u << 20)
#define DEFAULT_MAX_HEADER (64u << 10)
#define DEFAULT_MAX_CONNECTIONS 1000
#define DEFAULT_CONN_TIMEOUT_MS 30000
#define MAX_EXTRA_HEADERS 4
#define BODY_KEEP_BYTES (64u << 10) /* a connection keeps a body buffer up to this size */
#define SEND_WAIT_MS 2000           /* httpd_free waits this long for answers to go out */
#define DEFAULT_IDLE_MS 5000
#define DEFAULT_MAX_INFLIGHT (64u << 20)
#define TRIM_MARK (8u << 20)        /* in-flight bytes past which a fall is followed by malloc_trim */
#define FRESH_EVICT_MS 1000         /* a new connection silent this long may be closed for another */
#define CHUNK_HOLD_MIN (64u << 10)  /* a chunked body is counted in steps of at least this */
#define LINGER_QUIET_MS 2000        /* a lingering close ends after this long without data */
#define LINGER_MIN_BYTES (1u << 20) /* a lingering close reads at most 4 x max_body, at least this */

typedef enum conn_phase {
	PH_FRESH,    /* connected, no request line yet */
	PH_IDLE,     /* between requests: since the last answer */
	PH_READING,  /* request line seen, request not yet complete */
	PH_HANDED,   /* with the loop thread, or its answer queued */
	PH_ANSWERING /* an answer made on MHD's thread is being sent */
} conn_phase;

typedef enum req_stage {
	ST_NEW,      /* first call of the access handler to come */
	ST_GET,      /* a GET or HEAD, answered once its (empty) body is read */
	ST_BODY,     /* reading a POST body */
	ST_HANDED,   /* suspended, with the loop thread */
	ST_ANSWERED, /* httpd_respond stored the answer; resumed */
	ST_DONE      /* answered on MHD's thread */
} req_stage;

typedef struct conn_rec conn_rec;

struct jr_http_req {
	conn_rec *c;
	req_stage stage;
	const char *method, *path;  /* MHD's strings, valid for the request */
	jr_header *hdrs;
	size_t n_hdrs, cap_hdrs;
	size_t header_bytes;
	jr_buf body;
	int too_large;
	int over_budget;            /* past max_inflight: the body is dropped, 503 at its end */
	size_t held;                /* bytes counted against max_inflight for this request */
	size_t body_held;           /* of them, for the body (as many again are the allowance) */
	size_t allow;               /* counted for what the handler decodes, not yet claimed */
	int has_body;               /* Content-Length > 0 or chunked */
	jr_trace trace;             /* trace.id[0] == '\0': none */
	int64_t done_ms;
	struct MHD_Response *resp;  /* ST_ANSWERED: to queue */
	unsigned int status;
	int n_extra;
	char *extra[MAX_EXTRA_HEADERS][2];
};

struct conn_rec {
	jr_httpd *h;
	struct MHD_Connection *conn;
	int fd;
	conn_phase phase;   /* h->mu */
	int64_t since_ms;   /* h->mu */
	uint64_t rx_mark;   /* h->mu: bytes received from the client when its wait began */
	int cut;            /* h->mu: shut down by the watchdog or for a new connection */
	int over_limit;
	int linger;         /* MHD's thread: answered before the body was read: close lingering */
	jr_link link;       /* h->mu: in h->conns */
	jr_http_req req;
};

struct jr_httpd {
	jr_loop *loop;
	jr_httpd_opts o;
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t mu;   /* the connection list and each record's phase */
	pthread_cond_t sent;  /* signalled when `unsent` drops */
	jr_link conns;
	int n_conns;
	int n_cut;            /* mu: of n_conns, those shut down and not yet closed */
	atomic_size_t inflight; /* bytes counted against max_inflight */
	atomic_size_t high;   /* highest `inflight` since the last malloc_trim */
	atomic_ulong evicted; /* idle connections closed for new ones, not yet in the metric */
	atomic_int pending;   /* handed to the loop, not yet answered */
	int unsent;           /* mu: handed, not yet completed by MHD */
	atomic_int quiesced;
	int closing;          /* mu: httpd_free began; nothing more goes to the loop */
	jr_timer_id watchdog;
	struct {
		int epfd;             /* the lingering sockets, each with a linger_sock as data */
		pthread_t thread;
		int started;
		atomic_int stop;
		pthread_mutex_t mu;   /* socks, n */
		jr_link socks;
		int n, max;
		size_t max_bytes;
	} lg;
	struct MHD_Response *r204, *r404, *r405, *r405get, *r413, *r431, *r503busy, *r503quiet,
		*r503mem, *rhealth, *rready, *rnotready;
};

/*
 * Responses are counted per status in atomics, on whichever thread answers,
 * and folded into the metrics registry when /metrics is read (and at
 * httpd_free): the registry's mutex stays off the per-request path.
 */
static struct {
	jr_metric *responses, *cut;
	atomic_ulong by_status[500]; /* status 100..599 */
	unsigned long folded[500];   /* part of by_status already in the registry; fold_mu */
	pthread_mutex_t fold_mu;
} m = {.fold_mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t now_ms(void)
{
	return loop_now_ms();
}

static void count_status(unsigned int status)
{
	if (status >= 100 && status < 600)
		atomic_fetch_add_explicit(&m.by_status[status - 100], 1, memory_order_relaxed);
}

/* fold_counts: adds the responses counted since the last fold to the registry. */
static void fold_counts(void)
{
	pthread_mutex_lock(&m.fold_mu);
	for (unsigned int i = 0; i < 500; i++) {
		unsigned long now = atomic_load_explicit(&m.by_status[i], memory_order_relaxed);
		if (now == m.folded[i])
			continue;
		char l[32];
		snprintf(l, sizeof l, "code=\"%u\"", i + 100);
		metric_add(m.responses, l, (double)(now - m.folded[i]));
		m.folded[i] = now;
	}
	pthread_mutex_unlock(&m.fold_mu);
}

/* ---- responses ---- */

static struct MHD_Response *static_response(const char *body, const char *ctype)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_PERSISTENT);
	if (ctype)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	return r;
}

static void make_static_responses(jr_httpd *h)
{
	h->r204 = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	h->r404 = static_response("not found\n", "text/plain");
	h->r405 = static_response("method not allowed: POST events, or GET /healthz, /readyz, /metrics\n",
				  "text/plain");
	MHD_add_response_header(h->r405, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
	h->r405get = static_response("method not allowed: GET /healthz, /readyz or /metrics\n",
				     "text/plain");
	MHD_add_response_header(h->r405get, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	h->r413 = static_response("request body too large\n", "text/plain");
	MHD_add_response_header(h->r413, MHD_HTTP_HEADER_CONNECTION, "close");
	h->r431 = static_response("request header fields too large\n", "text/plain");
	MHD_add_response_header(h->r431, MHD_HTTP_HEADER_CONNECTION, "close");
	h->r503busy = static_response("too many connections\n", "text/plain");
	MHD_add_response_header(h->r503busy, MHD_HTTP_HEADER_CONNECTION, "close");
	MHD_add_response_header(h->r503busy, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	h->r503quiet = static_response("shutting down\n", "text/plain");
	MHD_add_response_header(h->r503quiet, MHD_HTTP_HEADER_CONNECTION, "close");
	MHD_add_response_header(h->r503quiet, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	h->r503mem = static_response("server busy: request memory at its limit\n", "text/plain");
	MHD_add_response_header(h->r503mem, MHD_HTTP_HEADER_CONNECTION, "close");
	MHD_add_response_header(h->r503mem, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	h->rhealth = static_response("ok\n", "text/plain");
	h->rready = static_response("ready\n", "text/plain");
	h->rnotready = static_response("not ready\n", "text/plain");
}

static void free_static_responses(jr_httpd *h)
{
	struct MHD_Response *all[] = {h->r204, h->r404, h->r405, h->r405get, h->r413, h->r431,
				      h->r503busy, h->r503quiet, h->r503mem, h->rhealth, h->rready,
				      h->rnotready};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		if (all[i])
			MHD_destroy_response(all[i]);
}

static void set_phase(conn_rec *c, conn_phase p)
{
	pthread_mutex_lock(&c->h->mu);
	c->phase = p;
	c->since_ms = now_ms();
	pthread_mutex_unlock(&c->h->mu);
}

/* ---- the memory budget (any thread) ---- */

/*
 * budget_take: counts n bytes more for a request that holds `own` already;
 * -1 (nothing counted) past max_inflight, unless no other request holds any.
 */
static int budget_take(jr_httpd *h, size_t n, size_t own)
{
	size_t cur = atomic_load(&h->inflight);
	do {
		if (cur > own && cur + n > h->o.max_inflight)
			return -1;
	} while (!atomic_compare_exchange_weak(&h->inflight, &cur, cur + n));
	size_t hi = atomic_load(&h->high);
	while (cur + n > hi && !atomic_compare_exchange_weak(&h->high, &hi, cur + n))
		;
	return 0;
}

/* release: gives back what r counted, and its body memory when that was large. */
static void release(jr_httpd *h, jr_http_req *r)
{
	if (r->held)
		atomic_fetch_sub(&h->inflight, r->held);
	r->held = r->body_held = r->allow = 0;
	if (r->body.cap > BODY_KEEP_BYTES)
		buf_free(&r->body);
}

/* drop_body: frees the body read so far and gives back its count. */
static void drop_body(jr_httpd *h, jr_http_req *r)
{
	buf_free(&r->body);
	release(h, r);
}

/*
 * answer_now: queues r on MHD's thread (r is not consumed). An answer at the
 * first call makes MHD close the connection without reading the body; if
 * there is one, the close lingers.
 */
static enum MHD_Result answer_now(jr_http_req *r, unsigned int status, struct MHD_Response *resp)
{
	if (r->stage == ST_NEW && r->has_body)
		r->c->linger = 1;
	r->stage = ST_DONE;
	set_phase(r->c, PH_ANSWERING);
	count_status(status);
	return MHD_queue_response(r->c->conn, status, resp);
}

/* ---- GET endpoints (MHD's thread) ---- */

static enum MHD_Result answer_get(jr_httpd *h, jr_http_req *r)
{
	const char *p = r->path;
	if (strcmp(p, "/healthz") == 0)
		return answer_now(r, MHD_HTTP_OK, h->rhealth);
	if (strcmp(p, "/readyz") == 0) {
		int ok = !atomic_load(&h->quiesced) && (!h->o.ready || h->o.ready(h->o.ready_arg));
		return answer_now(r, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
				  ok ? h->rready : h->rnotready);
	}
	if (strcmp(p, "/metrics") == 0) {
		count_status(MHD_HTTP_OK); /* this answer, counted before it is written out */
		fold_counts();
		jr_buf b;
		buf_init(&b, 0);
		metrics_write(&b);
		metrics_write_process(&b);
		size_t len = b.len;
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(len, buf_take(&b), MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					"text/plain; version=0.0.4; charset=utf-8");
		r->stage = ST_DONE;
		set_phase(r->c, PH_ANSWERING);
		enum MHD_Result rc = MHD_queue_response(r->c->conn, MHD_HTTP_OK, resp);
		MHD_destroy_response(resp);
		return rc;
	}
	return answer_now(r, MHD_HTTP_NOT_FOUND, h->r404);
}

/* ---- request headers ---- */

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
				  size_t key_size, const char *value, size_t value_size)
{
	(void)kind;
	jr_http_req *r = cls;
	if (r->n_hdrs == r->cap_hdrs) {
		r->cap_hdrs = r->cap_hdrs ? r->cap_hdrs * 2 : 16;
		r->hdrs = jr_realloc(r->hdrs, r->cap_hdrs * sizeof *r->hdrs);
	}
	r->hdrs[r->n_hdrs++] = (jr_header){key, value ? value : ""};
	r->header_bytes += key_size + value_size + 4; /* "K: V\r\n" */
	return MHD_YES;
}

/* find_trace: traceparent "VV-TRACEID-SPANID-FF", else X-Cloud-Trace-Context "TRACEID/SPAN;o=1". */
static void find_trace(jr_http_req *r)
{
	if (trace_parse_traceparent(httpd_req_header(r, "traceparent"), &r->trace) < 0 &&
	    trace_parse_cloud_context(httpd_req_header(r, "x-cloud-trace-context"), &r->trace) < 0)
		r->trace.id[0] = '\0';
}

/*
 * ---- lingering close (RFC 9112 §9.6; its own thread) ----
 *
 * When MHD closes a connection whose client is still sending (an answer
 * given before the body was read), close() with unread bytes makes the
 * kernel send a reset, and a client that reads only after sending (Python's
 * http.client) or whose unread answer the reset discards (Node) loses it.
 * So MHD's NOTIFY_CLOSED callback, which runs before MHD closes the socket,
 * keeps a duplicate of it here: its write side is shut (a FIN after the
 * answer) and what arrives is read and dropped until the client closes,
 * LINGER_QUIET_MS pass without data, the request timeout passes, or
 * lg.max_bytes were read; then it is closed. At most lg.max sockets linger;
 * past that they are closed at once.
 */

typedef struct linger_sock {
	int fd;
	int done;
	int64_t until_ms, quiet_until_ms;
	size_t left;
	jr_link link;   /* lg.mu: in lg.socks */
} linger_sock;

/*
 * linger_read: reads and drops up to 64 KiB (epoll reports the rest again);
 * marks ls done at the end of the stream or of its byte budget.
 */
static void linger_read(linger_sock *ls, int64_t now)
{
	char scratch[16384];
	for (int i = 0; i < 4 && !ls->done; i++) {
		size_t want = ls->left < sizeof scratch ? ls->left : sizeof scratch;
		ssize_t got = recv(ls->fd, scratch, want, MSG_DONTWAIT);
		if (got > 0) {
			ls->left -= (size_t)got;
			ls->quiet_until_ms = now + LINGER_QUIET_MS;
			if (!ls->left)
				ls->done = 1;
		} else if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			return;
		} else {
			ls->done = 1;
		}
	}
}

static void *linger_main(void *arg)
{
	jr_httpd *h = arg;
	struct epoll_event ev[32];
	while (!atomic_load(&h->lg.stop)) {
		int n = epoll_wait(h->lg.epfd, ev, 32, 100);
		int64_t now = now_ms();
		/* under mu: a socket is added to epoll and the list in one critical section */
		pthread_mutex_lock(&h->lg.mu);
		for (int i = 0; i < n; i++)
			linger_read(ev[i].data.ptr, now);
		for (jr_link *l = h->lg.socks.next, *next; l != &h->lg.socks; l = next) {
			next = l->next;
			linger_sock *ls = list_item(l, linger_sock, link);
			if (!ls->done && now < ls->until_ms && now < ls->quiet_until_ms)
				continue;
			list_remove(&ls->link);
			h->lg.n--;
			epoll_ctl(h->lg.epfd, EPOLL_CTL_DEL, ls->fd, NULL);
			close(ls->fd);
			free(ls);
		}
		pthread_mutex_unlock(&h->lg.mu);
	}
	return NULL;
}

/* linger_start: the lingering thread; without it (no epoll, no thread) closes are plain. */
static void linger_start(jr_httpd *h)
{
	list_init(&h->lg.socks);
	pthread_mutex_init(&h->lg.mu, NULL);
	h->lg.max = h->o.max_connections / 8 > 16 ? h->o.max_connections / 8 : 16;
	h->lg.max_bytes = h->o.max_body > LINGER_MIN_BYTES / 4 ? 4 * h->o.max_body : LINGER_MIN_BYTES;
	h->lg.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->lg.epfd >= 0 && pthread_create(&h->lg.thread, NULL, linger_main, h) == 0)
		h->lg.started = 1;
}

/* linger_stop: ends the thread and closes every socket still lingering. */
static void linger_stop(jr_httpd *h)
{
	if (h->lg.started) {
		atomic_store(&h->lg.stop, 1);
		pthread_join(h->lg.thread, NULL);
	}
	while (h->lg.socks.next != &h->lg.socks) {
		linger_sock *ls = list_item(h->lg.socks.next, linger_sock, link);
		list_remove(&ls->link);
		close(ls->fd);
		free(ls);
	}
	if (h->lg.epfd >= 0)
		close(h->lg.epfd);
	pthread_mutex_destroy(&h->lg.mu);
}

/* linger_add: keeps a duplicate of fd (MHD closes its own) for a lingering close. MHD's thread. */
static void linger_add(jr_httpd *h, int fd)
{
	if (!h->lg.started)
		return;
	pthread_mutex_lock(&h->lg.mu);
	int full = h->lg.n >= h->lg.max;
	if (!full)
		h->lg.n++;
	pthread_mutex_unlock(&h->lg.mu);
	if (full)
		return;
	linger_sock *ls = jr_calloc(1, sizeof *ls);
	ls->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	int64_t now = now_ms();
	ls->until_ms = now + h->o.conn_timeout_ms;
	ls->quiet_until_ms = now + LINGER_QUIET_MS;
	ls->left = h->lg.max_bytes;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = ls};
	pthread_mutex_lock(&h->lg.mu);
	if (ls->fd >= 0 && shutdown(ls->fd, SHUT_WR) == 0 &&
	    epoll_ctl(h->lg.epfd, EPOLL_CTL_ADD, ls->fd, &ev) == 0) {
		list_append(&h->lg.socks, &ls->link);
		ls = NULL;
	} else {
		h->lg.n--;
	}
	pthread_mutex_unlock(&h->lg.mu);
	if (ls) {
		if (ls->fd >= 0)
			close(ls->fd);
		free(ls);
	}
}

/* unread_bytes: whether the client sent bytes not yet read (a close now would reset). */
static int unread_bytes(int fd)
{
	int n = 0;
	return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* ---- framing (RFC 9112 §6.1, §6.3, §3.2) ---- */

static int is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_token(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* digits_equal: a and b are both 1*DIGIT with the same value (leading zeros aside). */
static int digits_equal(const char *a, const char *b)
{
	while (*a == '0' && a[1])
		a++;
	while (*b == '0' && b[1])
		b++;
	return strcmp(a, b) == 0;
}

static int all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/*
 * te_codings: adds the comma-separated codings of one Transfer-Encoding
 * value to *n; *chunked_only stays 1 while every coding seen is "chunked".
 */
static void te_codings(const char *v, int *n, int *chunked_only)
{
	const char *p = v;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len) { /* empty list elements are allowed and ignored (RFC 9110 §5.6.1) */
			(*n)++;
			if (len != 7 || strncasecmp(p, "chunked", 7) != 0)
				*chunked_only = 0;
		}
		if (!end)
			break;
		p = end + 1;
	}
}

const char *httpd_framing_error(const char *version, const jr_header *h, size_t n)
{
	int http10 = version && strcmp(version, "HTTP/1.0") == 0;
	int hosts = 0, te_headers = 0, codings = 0, chunked_only = 1;
	const char *cl = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *name = h[i].name, *v = h[i].value ? h[i].value : "";
		if (!is_token(name))
			return "invalid header name";
		if (strcasecmp(name, "host") == 0) {
			hosts++;
		} else if (strcasecmp(name, "transfer-encoding") == 0) {
			te_headers++;
			te_codings(v, &codings, &chunked_only);
		} else if (strcasecmp(name, "content-length") == 0) {
			if (!all_digits(v))
				return "invalid Content-Length";
			if (cl && !digits_equal(cl, v))
				return "conflicting Content-Length headers";
			cl = v;
		}
	}
	if (hosts > 1)
		return "more than one Host header";
	if (!hosts && !http10)
		return "HTTP/1.1 request without Host";
	if (te_headers) {
		if (http10)
			return "Transfer-Encoding in an HTTP/1.0 request";
		if (cl)
			return "both Content-Length and Transfer-Encoding";
		if (codings != 1 || !chunked_only)
			return "unsupported Transfer-Encoding (only chunked is)";
	}
	return NULL;
}

/* ---- the access handler (MHD's thread) ---- */

static void deliver(void *arg)
{
	jr_http_req *r = arg;
	jr_httpd *h = r->c->h;
	h->o.post(h->o.post_arg, r);
}

/* answer_text: answers status with text and closes the connection (the body, if any, is not read). */
static enum MHD_Result answer_text(jr_http_req *r, unsigned int status, const char *text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), (void *)text,
								    MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result rc = answer_now(r, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* refuse_framing: 400 and Connection: close for a request whose body length is ambiguous. */
static enum MHD_Result refuse_framing(jr_http_req *r, const char *why)
{
	log_kv(JR_LOG_WARNING, "HTTP-BAD-FRAMING", "request refused: ambiguous framing, connection closed",
	       "reason", why, NULL);
	char msg[128];
	snprintf(msg, sizeof msg, "bad request: %s\n", why);
	r->has_body = 1; /* unknown: whatever follows is read and dropped */
	return answer_text(r, MHD_HTTP_BAD_REQUEST, msg);
}

/* refuse_busy: 503 for a request whose body would pass max_inflight. */
static enum MHD_Result refuse_busy(jr_httpd *h, jr_http_req *r)
{
	char n[24];
	snprintf(n, sizeof n, "%zu", atomic_load(&h->inflight));
	log_kv(JR_LOG_WARNING, "HTTP-MEMORY-BUDGET",
	       "request refused: request memory in flight at limits.inflight_bytes", "inflight_bytes",
	       n, NULL);
	return answer_now(r, MHD_HTTP_SERVICE_UNAVAILABLE, h->r503mem);
}

static enum MHD_Result first_call(jr_httpd *h, jr_http_req *r, const char *url,
				  const char *method, const char *version)
{
	r->method = method;
	r->path = url;
	r->n_hdrs = 0;
	r->header_bytes = strlen(method) + strlen(url) + 12; /* " HTTP/1.1\r\n" */
	r->too_large = 0;
	r->n_extra = 0;
	r->resp = NULL;
	MHD_get_connection_values_n(r->c->conn, MHD_HEADER_KIND, add_header, r);
	const char *bad = httpd_framing_error(version, r->hdrs, r->n_hdrs);
	if (bad)
		return refuse_framing(r, bad);
	const char *cl = httpd_req_header(r, "content-length");
	r->has_body = httpd_req_header(r, "transfer-encoding") || (cl && strspn(cl, "0") < strlen(cl));
	int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		     strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (is_get) {
		/* answered at the last call: an answer at the first one would close the connection */
		r->stage = ST_GET;
		return MHD_YES;
	}
	if (!h->o.post)
		return answer_now(r, MHD_HTTP_METHOD_NOT_ALLOWED, h->r405get);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return answer_now(r, MHD_HTTP_METHOD_NOT_ALLOWED, h->r405);
	if (atomic_load(&h->quiesced))
		return answer_now(r, MHD_HTTP_SERVICE_UNAVAILABLE, h->r503quiet);
	if (r->c->over_limit) {
		log_kv(JR_LOG_WARNING, "HTTP-TOO-MANY-CONNECTIONS",
		       "request refused: connections past max_connections", NULL);
		return answer_now(r, MHD_HTTP_SERVICE_UNAVAILABLE, h->r503busy);
	}
	if (r->header_bytes > h->o.max_header) {
		char n[32];
		snprintf(n, sizeof n, "%zu", r->header_bytes);
		log_kv(JR_LOG_WARNING, "HTTP-HEADERS-TOO-LARGE", "request refused: header bytes past the limit",
		       "bytes", n, NULL);
		return answer_now(r, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, h->r431);
	}
	find_trace(r);
	if (h->o.pre_body) {
		/* before any body byte is read, and before 100 Continue is sent */
		char text[256] = "";
		int st = h->o.pre_body(h->o.pre_body_arg, r, text, sizeof text);
		if (st)
			return answer_text(r, st >= 400 && st <= 599 ? (unsigned int)st : 500, text);
	}
	if (cl && strtoull(cl, NULL, 10) > h->o.max_body) {
		log_kv(JR_LOG_WARNING, "HTTP-BODY-TOO-LARGE", "request refused: Content-Length past the limit",
		       "content_length", cl, NULL);
		return answer_now(r, MHD_HTTP_CONTENT_TOO_LARGE, h->r413);
	}
	buf_reset(&r->body);
	r->over_budget = 0;
	size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
	if (want) {
		/* the body, and as much again for what the handler decodes from it */
		if (budget_take(h, 2 * want, r->held) < 0)
			return refuse_busy(h, r);
		r->held = 2 * want;
		r->body_held = r->allow = want;
		buf_space(&r->body, want); /* room for the whole body, so it is never copied to grow */
	}
	r->stage = ST_BODY;
	return MHD_YES;
}

/* body_chunk: keeps n more body bytes, counting them against max_inflight as the body grows. */
static void body_chunk(jr_httpd *h, jr_http_req *r, const char *p, size_t n)
{
	if (r->too_large || r->over_budget)
		return; /* read and dropped up to its end */
	size_t need = r->body.len + n;
	if (need > h->o.max_body) {
		r->too_large = 1;
		drop_body(h, r);
		return;
	}
	if (need > r->body_held) {
		/* a chunked body (or one past its Content-Length, which MHD prevents) */
		size_t next = r->body_held * 2 > need ? r->body_held * 2 : need;
		next = next < CHUNK_HOLD_MIN ? CHUNK_HOLD_MIN : next;
		next = next > h->o.max_body ? h->o.max_body : next;
		size_t more = next - r->body_held;
		if (budget_take(h, 2 * more, r->held) < 0) {
			r->over_budget = 1;
			drop_body(h, r);
			return;
		}
		r->held += 2 * more;
		r->body_held = next;
		r->allow += more;
	}
	buf_add(&r->body, p, n);
}

static enum MHD_Result body_done(jr_httpd *h, jr_http_req *r)
{
	if (r->too_large) {
		log_kv(JR_LOG_WARNING, "HTTP-BODY-TOO-LARGE", "request refused: body past the limit", NULL);
		return answer_now(r, MHD_HTTP_CONTENT_TOO_LARGE, h->r413);
	}
	if (r->over_budget)
		return refuse_busy(h, r);
	r->done_ms = now_ms();
	pthread_mutex_lock(&h->mu);
	if (h->closing) {
		pthread_mutex_unlock(&h->mu);
		return answer_now(r, MHD_HTTP_SERVICE_UNAVAILABLE, h->r503quiet);
	}
	r->stage = ST_HANDED;
	r->c->phase = PH_HANDED;
	h->unsent++;
	pthread_mutex_unlock(&h->mu);
	atomic_fetch_add(&h->pending, 1);
	MHD_suspend_connection(r->c->conn);
	loop_post(h->loop, deliver, r);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)conn;
	jr_httpd *h = cls;
	jr_http_req *r = *con_cls;
	if (!r)
		return MHD_NO; /* no request line callback ran: cannot happen */
	switch (r->stage) {
	case ST_NEW:
		return first_call(h, r, url, method, version);
	case ST_GET:
		if (*upload_size) {
			*upload_size = 0;
			return MHD_YES;
		}
		return answer_get(h, r);
	case ST_BODY:
		if (*upload_size) {
			body_chunk(h, r, upload, *upload_size);
			*upload_size = 0;
			return MHD_YES;
		}
		return body_done(h, r);
	case ST_ANSWERED: {
		struct MHD_Response *resp = r->resp;
		r->resp = NULL;
		r->stage = ST_DONE;
		enum MHD_Result rc = MHD_queue_response(r->c->conn, r->status, resp);
		if (resp != h->r204)
			MHD_destroy_response(resp);
		return rc;
	}
	case ST_HANDED:
	case ST_DONE:
		break;
	}
	return MHD_YES;
}

/* on_request_line: MHD saw a request line; the request's deadline runs from its first byte. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)uri;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	conn_rec *c = ci ? ci->socket_context : NULL;
	if (!c)
		return NULL;
	c->req.stage = ST_NEW;
	pthread_mutex_lock(&c->h->mu);
	if (c->phase != PH_READING) {
		/* the watchdog saw no byte of it yet: they all came since its last look */
		c->phase = PH_READING;
		c->since_ms = now_ms();
	}
	pthread_mutex_unlock(&c->h->mu);
	return &c->req;
}

/* tcp_rx: bytes received on fd so far, and ms since the latest data (TCP_INFO). 0, or -1. */
static int tcp_rx(int fd, uint64_t *bytes, int64_t *age_ms)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(&ti, 0, sizeof ti);
	if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
		return -1;
	*bytes = ti.tcpi_bytes_received;
	*age_ms = ti.tcpi_last_data_recv;
	return 0;
}

/* cut: shuts c's socket down; MHD sees the end of the stream and closes it. h->mu held. */
static void cut(jr_httpd *h, conn_rec *c)
{
	shutdown(c->fd, SHUT_RDWR);
	c->cut = 1;
	h->n_cut++;
}

static int64_t data_since(const conn_rec *c, int64_t now);

/*
 * evict_one: makes room for a new connection: cuts the longest-idle kept-alive
 * connection, else the oldest new one that has sent nothing for FRESH_EVICT_MS.
 * 1 when one was cut. h->mu held.
 */
static int evict_one(jr_httpd *h, int64_t now)
{
	conn_rec *best = NULL;
	for (jr_link *l = h->conns.next; l != &h->conns; l = l->next) {
		conn_rec *c = list_item(l, conn_rec, link);
		if (c->cut || c->fd < 0)
			continue;
		int idle = c->phase == PH_IDLE;
		if (!idle && !(c->phase == PH_FRESH && now - c->since_ms >= FRESH_EVICT_MS))
			continue;
		int best_idle = best && best->phase == PH_IDLE;
		if (best && !(idle && !best_idle) && !(idle == best_idle && c->since_ms < best->since_ms))
			continue;
		/* a next request already on its way is not idle: never cut it mid-line */
		if (data_since(c, now) >= 0 || unread_bytes(c->fd))
			continue;
		best = c;
	}
	if (!best)
		return 0;
	cut(h, best);
	atomic_fetch_add(&h->evicted, 1);
	return 1;
}

/* make_room: cuts idle connections while more than max_connections are open. h->mu held. */
static void make_room(jr_httpd *h, int64_t now)
{
	while (h->n_conns - h->n_cut > h->o.max_connections && evict_one(h, now))
		;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)conn;
	(void)toe;
	jr_httpd *h = cls;
	jr_http_req *r = *con_cls;
	if (!r)
		return;
	uint64_t rx = 0;
	int64_t age;
	tcp_rx(r->c->fd, &rx, &age); /* what the client sent up to now: the next request comes after */
	pthread_mutex_lock(&h->mu);
	r->c->rx_mark = rx;
	if (r->c->phase == PH_HANDED) {
		h->unsent--;
		pthread_cond_broadcast(&h->sent);
	}
	r->c->phase = PH_IDLE;
	r->c->since_ms = now_ms();
	make_room(h, r->c->since_ms); /* past the limit, an idle connection goes at once */
	pthread_mutex_unlock(&h->mu);
	if (r->resp) {
		/* answered on the loop, but MHD ended the request (the client half-closed) unqueued */
		if (r->resp != h->r204)
			MHD_destroy_response(r->resp);
		r->resp = NULL;
	}
	for (int i = 0; i < r->n_extra; i++) {
		free(r->extra[i][0]);
		free(r->extra[i][1]);
	}
	r->n_extra = 0;
	release(h, r);
	r->stage = ST_NEW;
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	jr_httpd *h = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		conn_rec *c = jr_calloc(1, sizeof *c);
		c->h = h;
		c->conn = conn;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		c->req.c = c;
		buf_init(&c->req.body, h->o.max_body);
		c->since_ms = now_ms();
		pthread_mutex_lock(&h->mu);
		list_append(&h->conns, &c->link);
		h->n_conns++;
		make_room(h, c->since_ms);
		c->over_limit = h->n_conns - h->n_cut > h->o.max_connections;
		pthread_mutex_unlock(&h->mu);
		*socket_context = c;
		return;
	}
	conn_rec *c = *socket_context;
	if (!c)
		return;
	pthread_mutex_lock(&h->mu);
	list_remove(&c->link);
	h->n_conns--;
	if (c->cut)
		h->n_cut--;
	int lingering = !h->closing && !c->cut && c->fd >= 0 && (c->linger || unread_bytes(c->fd));
	pthread_mutex_unlock(&h->mu);
	release(h, &c->req);
	if (lingering)
		linger_add(h, c->fd);
	buf_free(&c->req.body);
	free(c->req.hdrs);
	free(c);
	*socket_context = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	if (!log_enabled(JR_LOG_DEBUG))
		return;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	log_kv(JR_LOG_DEBUG, "HTTP-SERVER", msg, NULL);
}

/* ---- the watchdog (loop thread) ---- */

static const char REQUEST_TIMEOUT[] =
	"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
	"Content-Length: 21\r\n\r\nrequest took too long";

static int64_t watchdog_period(const jr_httpd *h)
{
	int64_t p = h->o.conn_timeout_ms / 4;
	return p < 50 ? 50 : p > 1000 ? 1000 : p;
}

/*
 * data_since: for a connection waiting for a request (PH_FRESH, PH_IDLE):
 * when data came since its wait began, the time of the latest data (not
 * before the wait began); -1 when none came. h->mu held.
 */
static int64_t data_since(const conn_rec *c, int64_t now)
{
	uint64_t bytes;
	int64_t age;
	if (tcp_rx(c->fd, &bytes, &age) < 0 || bytes <= c->rx_mark)
		return -1;
	return now - age > c->since_ms ? now - age : c->since_ms;
}

/* trim_after_burst: returns freed memory to the system once a burst is over. */
static void trim_after_burst(jr_httpd *h)
{
	size_t hi = atomic_load(&h->high), cur = atomic_load(&h->inflight);
	if (hi < TRIM_MARK || cur > hi / 4)
		return;
	atomic_store(&h->high, cur);
	malloc_trim(0);
}

static void watchdog(void *arg)
{
	jr_httpd *h = arg;
	int64_t now = now_ms();
	int64_t idle_ms = h->o.idle_timeout_ms;
	int64_t send_ms = idle_ms > h->o.conn_timeout_ms ? idle_ms : h->o.conn_timeout_ms;
	int timed_out = 0, idle = 0;
	pthread_mutex_lock(&h->mu);
	for (jr_link *l = h->conns.next; l != &h->conns; l = l->next) {
		conn_rec *c = list_item(l, conn_rec, link);
		if (c->cut || c->fd < 0 || c->phase == PH_HANDED)
			continue;
		if (c->phase == PH_FRESH || c->phase == PH_IDLE) {
			int64_t at = data_since(c, now);
			if (at >= 0) {
				/* its next request has begun: its time runs from (about) its first byte */
				c->phase = PH_READING;
				c->since_ms = at;
			}
		}
		int reading = c->phase == PH_READING || c->phase == PH_FRESH;
		int64_t limit = reading ? h->o.conn_timeout_ms : c->phase == PH_IDLE ? idle_ms : send_ms;
		if (now - c->since_ms <= limit)
			continue;
		if (reading) {
			/* MHD writes nothing while it reads a request, so these bytes cannot interleave */
			ssize_t w = send(c->fd, REQUEST_TIMEOUT, sizeof REQUEST_TIMEOUT - 1,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			(void)w;
			timed_out++;
		} else {
			idle++;
		}
		cut(h, c);
	}
	make_room(h, now);
	pthread_mutex_unlock(&h->mu);
	for (int i = 0; i < timed_out; i++)
		count_status(408);
	if (timed_out) {
		char n[16], t[32];
		snprintf(n, sizeof n, "%d", timed_out);
		snprintf(t, sizeof t, "%lldms", (long long)h->o.conn_timeout_ms);
		log_kv(JR_LOG_WARNING, "HTTP-REQUEST-TIMEOUT",
		       "request not complete within the timeout: answered 408, connection closed",
		       "connections", n, "timeout", t, NULL);
		metric_add(m.cut, "reason=\"request_timeout\"", timed_out);
	}
	if (idle)
		metric_add(m.cut, "reason=\"idle\"", idle);
	unsigned long evicted = atomic_exchange(&h->evicted, 0);
	if (evicted)
		metric_add(m.cut, "reason=\"evicted\"", (double)evicted);
	trim_after_burst(h);
	h->watchdog = loop_timer_add(h->loop, watchdog_period(h), watchdog, h);
}

/* ---- public ---- */

/*
 * conn_cap: max_connections plus headroom, within the descriptors the
 * process may open less 64 for the rest and linger (the lingering closes'
 * own descriptors).
 */
static unsigned int conn_cap(int max_connections, int linger)
{
	long cap = (long)max_connections + (max_connections / 8 > 16 ? max_connections / 8 : 16);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (long)rl.rlim_cur - 64 - linger < cap)
		cap = (long)rl.rlim_cur - 64 - linger;
	return cap < 1 ? 1u : (unsigned int)cap;
}

jr_httpd *httpd_start(jr_loop *l, const jr_httpd_opts *o, char *err, size_t errlen)
{
	metrics_build_info(grpc_version_string());
	m.responses = metric_register("jobrelay_http_responses_total", JR_METRIC_COUNTER,
				      "HTTP responses by status code.", NULL, 0);
	m.cut = metric_register("jobrelay_http_connections_cut_total", JR_METRIC_COUNTER,
				"Connections closed by the server, by reason.",
				NULL, 0);
	jr_httpd *h = jr_calloc(1, sizeof *h);
	list_init(&h->conns);
	h->loop = l;
	h->o = *o;
	h->o.bind = NULL;
	if (!h->o.max_body)
		h->o.max_body = DEFAULT_MAX_BODY;
	if (!h->o.max_header)
		h->o.max_header = DEFAULT_MAX_HEADER;
	if (h->o.max_connections <= 0)
		h->o.max_connections = DEFAULT_MAX_CONNECTIONS;
	if (h->o.conn_timeout_ms <= 0)
		h->o.conn_timeout_ms = DEFAULT_CONN_TIMEOUT_MS;
	if (h->o.idle_timeout_ms <= 0)
		h->o.idle_timeout_ms = DEFAULT_IDLE_MS;
	if (!h->o.max_inflight)
		h->o.max_inflight = DEFAULT_MAX_INFLIGHT;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	const char *bind = o->bind ? o->bind : "0.0.0.0";
	if (o->port < 0 || o->port > 65535 || inet_pton(AF_INET, bind, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "invalid address %s port %d", bind, o->port);
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->sent, NULL);
	make_static_responses(h);
	linger_start(h);
	/* MHD's idle timeout is a backstop: the watchdog cuts connections before it */
	int64_t backstop_ms = h->o.idle_timeout_ms > h->o.conn_timeout_ms ? h->o.idle_timeout_ms
									   : h->o.conn_timeout_ms;
	unsigned int idle_s = (unsigned int)((backstop_ms + 999) / 1000 + 2);
	h->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_TURBO | MHD_USE_ERROR_LOG,
		(uint16_t)o->port, NULL, NULL, on_request, h,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
		MHD_OPTION_CONNECTION_LIMIT, conn_cap(h->o.max_connections, h->lg.max),
		MHD_OPTION_CONNECTION_TIMEOUT, idle_s,
		/* the pool holds the headers (MHD answers 431 past it) plus read and write buffers */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, h->o.max_header + (size_t)(16u << 10),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_URI_LOG_CALLBACK, on_request_line, h,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
		MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", bind, o->port,
			 errno ? strerror(errno) : "libmicrohttpd refused to start");
		free_static_responses(h);
		linger_stop(h);
		pthread_cond_destroy(&h->sent);
		pthread_mutex_destroy(&h->mu);
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : o->port;
	h->watchdog = loop_timer_add(l, watchdog_period(h), watchdog, h);
	return h;
}

int httpd_port(const jr_httpd *h)
{
	return h->port;
}

const char *httpd_req_method(const jr_http_req *r)
{
	return r->method;
}

const char *httpd_req_path(const jr_http_req *r)
{
	return r->path;
}

const jr_header *httpd_req_headers(const jr_http_req *r, size_t *n)
{
	*n = r->n_hdrs;
	return r->hdrs;
}

const char *httpd_req_header(const jr_http_req *r, const char *name)
{
	for (size_t i = 0; i < r->n_hdrs; i++)
		if (strcasecmp(r->hdrs[i].name, name) == 0)
			return r->hdrs[i].value;
	return NULL;
}

const char *httpd_req_body(const jr_http_req *r, size_t *len)
{
	*len = r->body.len;
	return r->body.data ? r->body.data : "";
}

const jr_trace *httpd_req_trace(const jr_http_req *r)
{
	return r->trace.id[0] ? &r->trace : NULL;
}

int64_t httpd_req_age_ms(const jr_http_req *r)
{
	return now_ms() - r->done_ms;
}

int httpd_req_hold(jr_http_req *r, size_t bytes)
{
	size_t use = bytes < r->allow ? bytes : r->allow;
	size_t more = bytes - use;
	if (more && budget_take(r->c->h, more, r->held) < 0)
		return -1;
	r->allow -= use;
	r->held += more;
	return 0;
}

void httpd_req_add_header(jr_http_req *r, const char *name, const char *value)
{
	if (r->n_extra == MAX_EXTRA_HEADERS)
		return;
	r->extra[r->n_extra][0] = jr_strdup(name);
	r->extra[r->n_extra][1] = jr_strdup(value);
	r->n_extra++;
}

void httpd_respond(jr_http_req *r, int status, const char *content_type, const char *body,
		   size_t len)
{
	jr_httpd *h = r->c->h;
	struct MHD_Response *resp;
	if (status == MHD_HTTP_NO_CONTENT && r->n_extra == 0) {
		resp = h->r204;
	} else {
		resp = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
						       MHD_RESPMEM_MUST_COPY);
		if (content_type && len)
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
		for (int i = 0; i < r->n_extra; i++)
			MHD_add_response_header(resp, r->extra[i][0], r->extra[i][1]);
		if (atomic_load(&h->quiesced))
			MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	}
	count_status((unsigned int)status);
	r->resp = resp;
	r->status = (unsigned int)status;
	r->stage = ST_ANSWERED;
	atomic_fetch_sub(&h->pending, 1);
	/* after this MHD's thread owns r again */
	MHD_resume_connection(r->c->conn);
}

void httpd_quiesce(jr_httpd *h)
{
	if (atomic_exchange(&h->quiesced, 1))
		return;
	MHD_socket fd = MHD_quiesce_daemon(h->d);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

int httpd_pending(const jr_httpd *h)
{
	return atomic_load(&((jr_httpd *)h)->pending);
}

void httpd_free(jr_httpd *h)
{
	if (!h)
		return;
	loop_timer_cancel(h->loop, h->watchdog);
	httpd_quiesce(h);
	pthread_mutex_lock(&h->mu);
	h->closing = 1;
	pthread_mutex_unlock(&h->mu);
	/* requests already handed over are still to be answered, from the loop */
	while (atomic_load(&h->pending) > 0)
		loop_run_once(h->loop, 100);
	/* answers already given are still being written: let them go out, briefly */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += SEND_WAIT_MS / 1000;
	pthread_mutex_lock(&h->mu);
	while (h->unsent > 0)
		if (pthread_cond_timedwait(&h->sent, &h->mu, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&h->mu);
	MHD_stop_daemon(h->d);
	linger_stop(h);
	fold_counts();
	free_static_responses(h);
	pthread_cond_destroy(&h->sent);
	pthread_mutex_destroy(&h->mu);
	free(h);
}
