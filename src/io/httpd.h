/*
 * httpd.h — jobrelay's HTTP server (libmicrohttpd), for `serve` and for the
 * health, readiness and metrics endpoints of `pull`.
 *
 * libmicrohttpd runs its own polling thread. GET /healthz, /readyz and
 * /metrics are answered on that thread. Any POST has its body read (up to
 * max_body), then its connection is suspended and the request handed to the
 * loop thread, where the `post` handler runs; the handler (or a later loop
 * callback) answers with exactly one httpd_respond, which resumes the
 * connection. No thread blocks per request.
 *
 * Framing: a request whose body length is ambiguous (httpd_framing_error)
 * gets 400 and its connection is closed. A connection closed after an
 * answer given before its request's body was read (400, 405, 413, 503...)
 * is closed lingering: its write side is shut and what the client still
 * sends is read and dropped, for a bounded time and byte count, so the
 * client reads the answer instead of a reset.
 *
 * Limits: a body past max_body gets 413, request headers past max_header
 * get 431, a request on a connection past max_connections gets 503 (the
 * others go on), and a request that does not arrive in full within
 * conn_timeout_ms of its first byte (a slow client) gets 408.
 *
 * Memory before the body: a POST's headers go to the pre_body hook (push
 * authentication) before any body byte is read or 100 Continue sent, so a
 * refused request costs no body memory. Bodies (twice their length: the
 * body and what is decoded from it) and what the handler holds past that
 * (httpd_req_hold) count against max_inflight across all connections: a
 * request that would pass it gets 503 with Retry-After.
 *
 * Connections: a kept-alive connection waits at most idle_timeout_ms for
 * its next request; when max_connections are open, a new connection closes
 * the longest-idle one, so a new client is answered even when every slot
 * is held by an idle connection.
 */
#ifndef JR_HTTPD_H
#define JR_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "header.h"
#include "loop.h"
#include "trace.h"

typedef struct jr_httpd jr_httpd;
/* A POST request handed to the loop thread: method, path, headers, body. Opaque. */
typedef struct jr_http_req jr_http_req;

/* Runs on the loop thread; req must later get exactly one httpd_respond (loop thread). */
typedef void (*jr_http_handler)(void *arg, jr_http_req *req);

typedef struct jr_httpd_opts {
	int port;                 /* 0: any free port (read it with httpd_port) */
	const char *bind;         /* IPv4 address; NULL: 0.0.0.0 (tests use 127.0.0.1) */
	jr_http_handler post;     /* NULL: only the GET endpoints; POST gets 405 */
	void *post_arg;
	int (*ready)(void *arg);  /* /readyz: 200 when it returns non-zero; NULL: always ready */
	void *ready_arg;
	size_t max_body;          /* 0: 10 MiB */
	size_t max_header;        /* request line + headers; 0: 64 KiB */
	int max_connections;      /* 0: 1000 */
	int64_t conn_timeout_ms;  /* a request must arrive in full within it (else 408); 0: 30 s */
	int64_t idle_timeout_ms;  /* a kept-alive connection's wait for its next request; 0: 5 s */
	size_t max_inflight;      /* bodies + held bytes of all requests at once; 0: 64 MiB */
	/*
	 * pre_body: runs on MHD's thread (not the loop's) once a POST's headers
	 * are in, before its body is read; req's method, path, headers and trace
	 * are valid there, nothing else. 0 lets the request go on; an HTTP status
	 * (400-599) answers it at once with text (textlen bytes, NUL-terminated,
	 * filled by the hook) and closes the connection, no body read. NULL: none.
	 */
	int (*pre_body)(void *arg, const jr_http_req *req, char *text, size_t textlen);
	void *pre_body_arg;
} jr_httpd_opts;

/*
 * httpd_start: binds and starts serving on loop l (which must outlive the
 * server). Returns NULL with err filled when the address cannot be bound.
 * o is copied; the strings in it need not outlive the call.
 */
jr_httpd *httpd_start(jr_loop *l, const jr_httpd_opts *o, char *err, size_t errlen);
/* httpd_port: the bound port (useful after port 0). */
int httpd_port(const jr_httpd *h);

/*
 * httpd_framing_error: checks the framing of a request per RFC 9112, from
 * its HTTP version ("HTTP/1.0", "HTTP/1.1"; NULL counts as 1.1) and its
 * headers in arrival order (duplicates kept). Returns NULL when the body
 * length is unambiguous, else a static reason; the server then answers 400
 * and closes the connection. Refused: a header name that is not a token
 * (whitespace before the colon, say); both Content-Length and
 * Transfer-Encoding; Content-Lengths that are not digits or differ;
 * a Transfer-Encoding other than a single `chunked`, or any in HTTP/1.0;
 * an HTTP/1.1 request without Host, or any with more than one. Pure.
 */
const char *httpd_framing_error(const char *version, const jr_header *h, size_t n);

/* httpd_req_method / httpd_req_path: "POST", "/"; valid until httpd_respond. */
const char *httpd_req_method(const jr_http_req *r);
const char *httpd_req_path(const jr_http_req *r);
/* httpd_req_headers: the request headers in arrival order; *n gets their number. */
const jr_header *httpd_req_headers(const jr_http_req *r, size_t *n);
/* httpd_req_header: the first header named name (case-insensitive), or NULL. */
const char *httpd_req_header(const jr_http_req *r, const char *name);
/* httpd_req_body: the body (NUL-terminated, not counted in *len). */
const char *httpd_req_body(const jr_http_req *r, size_t *len);
/*
 * httpd_req_trace: the trace context of the request (trace.h): from a valid
 * `traceparent` (00-TRACEID-SPANID-FLAGS), else a valid
 * `X-Cloud-Trace-Context` (TRACEID/SPAN;o=1); NULL when neither holds one.
 * Owned by the request.
 */
const jr_trace *httpd_req_trace(const jr_http_req *r);
/* httpd_req_age_ms: milliseconds since the request's body was complete. */
int64_t httpd_req_age_ms(const jr_http_req *r);

/*
 * httpd_req_hold: the handler holds bytes for r (its decoded events, say)
 * until r's answer is sent. Each body was admitted with as many bytes again
 * counted for this; only what passes that is counted now. 0, or -1 with
 * nothing counted when that would pass max_inflight while bytes of other
 * requests are in flight (alone, a request is never refused). Loop thread.
 */
int httpd_req_hold(jr_http_req *r, size_t bytes);

/*
 * httpd_req_add_header: adds a response header (Retry-After, say) to the
 * answer httpd_respond will send; both strings are copied. Loop thread.
 */
void httpd_req_add_header(jr_http_req *r, const char *name, const char *value);
/*
 * httpd_respond: answers req with status, content type (may be NULL when
 * len is 0) and body (copied), and resumes its connection. req must not be
 * used after. Loop thread; exactly once per request handed to `post`.
 */
void httpd_respond(jr_http_req *req, int status, const char *content_type, const char *body,
		   size_t len);

/*
 * httpd_quiesce: stops taking new work. The listening socket is closed, so
 * new connections are refused, and a new request on a kept-alive connection
 * gets 503; requests already handed to `post` still get their answers.
 * Loop thread.
 */
void httpd_quiesce(jr_httpd *h);
/* httpd_pending: requests handed to `post` and not yet answered. */
int httpd_pending(const jr_httpd *h);
/*
 * httpd_free: stops the server and frees it: quiesces it, answers 503 on
 * MHD's thread to every request not yet handed to `post`, drives the loop
 * until each request handed to `post` was answered (so `post` must still
 * answer, at once if it likes), waits up to 2 s for the answers to be sent,
 * then stops MHD. Loop thread; NULL is a no-op.
 */
void httpd_free(jr_httpd *h);

#endif
