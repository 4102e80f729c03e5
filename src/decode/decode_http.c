/*
 * decode_http.c — HTTP requests (serve) and `.http` capture files (replay).
 *
 * The form of a request is decided in this order: an x-goog-pubsub-message-id
 * header makes it an unwrapped Pub/Sub push (the body is the message data,
 * the metadata and attributes are headers); a ce-specversion header makes it
 * a binary-mode CloudEvent; a CloudEvents Content-Type makes it structured or
 * batch mode; any other JSON body is tried as every JSON form (a wrapped push
 * body, or a structured event sent as application/json).
 */
#include "decode_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "trace.h"
#include "utf8.h"

static const char *hdr(const jr_header *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (h[i].name && strcasecmp(h[i].name, name) == 0)
			return h[i].value ? h[i].value : "";
	return NULL;
}

static char *lower_dup(jr_arena *a, const char *s)
{
	char *d = arena_strdup(a, s);
	for (char *p = d; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * pct_decode: %XX sequences decoded; a malformed one is kept as it is. %00
 * becomes UTF8_NUL_TEXT, so the value is refused as holding a NUL byte rather
 * than cut short there.
 */
static char *pct_decode(jr_arena *a, const char *s)
{
	if (!strchr(s, '%'))
		return arena_strdup(a, s);
	size_t n = strlen(s), o = 0;
	char *d = arena_alloc(a, n + 1);
	for (size_t i = 0; i < n; i++) {
		int hi = s[i] == '%' ? hexval(s[i + 1]) : -1;
		int lo = hi < 0 ? -1 : hexval(s[i + 2]);
		if (lo >= 0 && hi * 16 + lo == 0) {
			memcpy(d + o, UTF8_NUL_TEXT, 2);
			o += 2;
			i += 2;
		} else if (lo >= 0) {
			d[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			d[o++] = s[i];
		}
	}
	d[o] = '\0';
	return d;
}

/* body_copy: the body in ev's arena, NUL-terminated. */
static const char *body_copy(jr_event *ev, const char *body, size_t len)
{
	return len ? arena_strndup(&ev->arena, body, len) : "";
}

static int http_binary(jr_event *ev, const dec_ctx *x, const jr_header *h, size_t n,
		       const char *body, size_t len, char *err, size_t errlen)
{
	jr_arena *a = &ev->arena;
	jr_kv *ce = arena_alloc(a, (n + 1) * sizeof *ce);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!h[i].name || strncasecmp(h[i].name, "ce-", 3) != 0)
			continue;
		ce[k].key = lower_dup(a, h[i].name + 3);
		ce[k].value = pct_decode(a, h[i].value ? h[i].value : "");
		k++;
	}
	const char *ct = hdr(h, n, "content-type");
	if (ct)
		ct = arena_strdup(a, ct);
	return ce_from_pairs(ev, ce, k, ct, body_copy(ev, body, len), len, &x->lim, err, errlen);
}

/* unquote: a header value without the double quotes Pub/Sub may put around it. */
static const char *unquote(jr_arena *a, const char *v)
{
	size_t n = v ? strlen(v) : 0;
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
		return arena_strndup(a, v + 1, n - 2);
	return v ? arena_strdup(a, v) : NULL;
}

/* transport: a header of the HTTP request itself, not a message attribute. */
static int transport(const char *name)
{
	static const char *const exact[] = {
		"host", "content-length", "user-agent", "authorization", "accept",
		"accept-encoding", "accept-language", "connection", "forwarded", "via",
		"traceparent", "tracestate", "te", "transfer-encoding", "expect", "from",
		"cookie", "upgrade", "keep-alive", "proxy-authorization",
	};
	static const char *const prefix[] = { "x-goog-", "x-forwarded-", "x-cloud-", "x-appengine-",
					      "x-envoy-", "x-real-ip", ":" };
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (strcasecmp(name, exact[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
		if (strncasecmp(name, prefix[i], strlen(prefix[i])) == 0)
			return 1;
	return 0;
}

static int http_unwrapped(jr_event *ev, const dec_ctx *x, const jr_header *h, size_t n,
			  const char *body, size_t len, char *err, size_t errlen)
{
	jr_arena *a = &ev->arena;
	jr_message *m = arena_alloc(a, sizeof *m);
	m->id = unquote(a, hdr(h, n, "x-goog-pubsub-message-id"));
	m->publish_time = unquote(a, hdr(h, n, "x-goog-pubsub-publish-time"));
	m->ordering_key = unquote(a, hdr(h, n, "x-goog-pubsub-ordering-key"));
	m->subscription = unquote(a, hdr(h, n, "x-goog-pubsub-subscription-name"));
	const char *da = hdr(h, n, "x-goog-pubsub-delivery-attempt");
	m->delivery_attempt = da ? atoi(unquote(a, da)) : 0;
	if (m->ordering_key && !*m->ordering_key)
		m->ordering_key = NULL;
	m->attrs = arena_alloc(a, (n + 1) * sizeof *m->attrs);
	for (size_t i = 0; i < n; i++) {
		if (!h[i].name || transport(h[i].name))
			continue;
		m->attrs[m->n_attrs].key = lower_dup(a, h[i].name);
		m->attrs[m->n_attrs].value = arena_strdup(a, h[i].value ? h[i].value : "");
		m->n_attrs++;
	}
	m->data = body_copy(ev, body, len);
	m->data_len = len;
	ev->message = m;
	return decode_message(ev, &x->lim, x->topic, err, errlen);
}

static int one_event(const dec_ctx *x, const jr_header *h, size_t n, const char *body,
		     size_t len, int unwrapped)
{
	char err[DECODE_ERRLEN];
	jr_event *ev = dec_event(x);
	int rc = unwrapped ? http_unwrapped(ev, x, h, n, body, len, err, sizeof err)
			   : http_binary(ev, x, h, n, body, len, err, sizeof err);
	return dec_emit(x, ev, rc, err);
}

/* path_topic: "projects/P/topics/T" when the request path is /projects/P/topics/T. */
static const char *path_topic(const char *path, char *buf, size_t buflen)
{
	if (!path || strncmp(path, "/projects/", 10) != 0)
		return NULL;
	size_t n = strcspn(path + 1, "?#");
	if (n >= buflen)
		return NULL;
	memcpy(buf, path + 1, n);
	buf[n] = '\0';
	char *p = buf + 9, *t = strchr(p, '/');
	if (!t || t == p || strncmp(t, "/topics/", 8) != 0)
		return NULL;
	t += 8;
	if (!*t || strchr(t, '/'))
		return NULL;
	return buf;
}

static size_t header_bytes(const jr_header *h, size_t n)
{
	size_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (h[i].name ? strlen(h[i].name) : 0) + (h[i].value ? strlen(h[i].value) : 0);
	return sum;
}

static int http_limits(const dec_ctx *x, const jr_header *h, size_t n, size_t len)
{
	char err[DECODE_ERRLEN];
	size_t hb = header_bytes(h, n);
	if (hb > x->lim.header_bytes) {
		snprintf(err, sizeof err, "headers of %zu bytes are over the limit of %zu bytes",
			 hb, x->lim.header_bytes);
		return dec_fail(x, err);
	}
	if (len > x->lim.event_bytes) {
		snprintf(err, sizeof err, "body of %zu bytes is over the limit of %zu bytes", len,
			 x->lim.event_bytes);
		return dec_fail(x, err);
	}
	return 0;
}

static int http_dispatch(dec_ctx *x, const jr_header *h, size_t n, const char *body,
			 size_t len)
{
	int calls = http_limits(x, h, n, len);
	if (calls)
		return calls;
	/* the first valid of the two, as the HTTP server picks it for its own lines;
	 * an event's own traceparent extension comes before it (dec_trace) */
	jr_trace t;
	x->trace = hdr(h, n, "traceparent");
	if (trace_parse_traceparent(x->trace, &t) < 0) {
		x->trace = hdr(h, n, "x-cloud-trace-context");
		if (trace_parse_cloud_context(x->trace, &t) < 0)
			x->trace = NULL;
	}
	if (hdr(h, n, "x-goog-pubsub-message-id"))
		return one_event(x, h, n, body, len, 1);
	if (hdr(h, n, "ce-specversion"))
		return one_event(x, h, n, body, len, 0);
	const char *ct = hdr(h, n, "content-type");
	if (ce_type_is(ct, "application/cloudevents-batch+json"))
		return dec_json(x, body, len, DEC_BATCH);
	if (ce_type_is(ct, "application/cloudevents+json"))
		return dec_json(x, body, len, DEC_EVENT);
	char err[DECODE_ERRLEN];
	if (ct && strncasecmp(ct, "application/cloudevents", 23) == 0) {
		snprintf(err, sizeof err, "unsupported CloudEvents format \"%.64s\"", ct);
		return dec_fail(x, err);
	}
	size_t ws = dec_skip_ws(body, len);
	if (ws < len && (body[ws] == '{' || body[ws] == '['))
		return dec_json(x, body, len, DEC_ANY);
	snprintf(err, sizeof err, "no CloudEvent in the request: no ce-specversion header, and "
				  "Content-Type \"%.64s\" is not a CloudEvents format",
		 ct ? ct : "");
	return dec_fail(x, err);
}

int decode_http(const jr_decode_ctx *dc, const jr_header *h, size_t n_headers,
		const char *path, const char *body, size_t len)
{
	dec_ctx x;
	char topic[512];
	dec_init(&x, dc);
	const char *pt = path_topic(path, topic, sizeof topic);
	if (pt)
		x.topic = pt;
	return http_dispatch(&x, h, n_headers, body, len);
}

/* cap_line: the line starting at i without its CR/LF; *next is where the next begins. */
static size_t cap_line(const char *t, size_t len, size_t i, size_t *next)
{
	const char *nl = memchr(t + i, '\n', len - i);
	size_t end = nl ? (size_t)(nl - t) : len;
	*next = nl ? end + 1 : len;
	if (end > i && t[end - 1] == '\r')
		end--;
	return end - i;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* cap_target: the path of a request target ("/p", or "http://host/p"). */
static const char *cap_target(jr_arena *a, const char *line, size_t n)
{
	size_t i = 0;
	while (i < n && !is_ws(line[i]))
		i++;
	while (i < n && is_ws(line[i]))
		i++;
	size_t j = i;
	while (j < n && !is_ws(line[j]))
		j++;
	if (j == i || i == 0)
		return NULL;
	const char *t = line + i;
	size_t tn = j - i;
	const char *sch = tn > 3 ? strstr(arena_strndup(a, t, tn), "://") : NULL;
	if (sch) {
		const char *full = sch + 3;
		const char *slash = strchr(full, '/');
		return slash ? slash : "/";
	}
	return arena_strndup(a, t, tn);
}

typedef struct cap {
	jr_arena a;
	const char *path;
	jr_header *h;
	size_t n;
	const char *body;
	size_t body_len;
	char err[DECODE_ERRLEN];
} cap;

static int cap_header(cap *c, const char *line, size_t ln, size_t lineno)
{
	if (is_ws(line[0]) && c->n) { /* obsolete line folding: join with a space */
		jr_header *prev = &c->h[c->n - 1];
		size_t k = 0, pn = strlen(prev->value);
		while (k < ln && is_ws(line[k]))
			k++;
		char *joined = arena_alloc(&c->a, pn + ln - k + 2);
		memcpy(joined, prev->value, pn);
		joined[pn] = ' ';
		memcpy(joined + pn + 1, line + k, ln - k);
		prev->value = joined;
		return 0;
	}
	const char *colon = memchr(line, ':', ln);
	size_t nn = colon ? (size_t)(colon - line) : 0;
	if (!colon || nn == 0 || is_ws(line[nn - 1])) {
		snprintf(c->err, sizeof c->err, "line %zu: malformed header", lineno);
		return -1;
	}
	size_t v = nn + 1, e = ln;
	while (v < e && is_ws(line[v]))
		v++;
	while (e > v && is_ws(line[e - 1]))
		e--;
	c->h[c->n].name = arena_strndup(&c->a, line, nn);
	c->h[c->n].value = arena_strndup(&c->a, line + v, e - v);
	c->n++;
	return 0;
}

/* cap_skip: past leading blank lines and # comments; returns the request line's start. */
static size_t cap_skip(const char *t, size_t len, size_t *lineno)
{
	size_t i = len >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0, next;
	while (i < len) {
		size_t ln = cap_line(t, len, i, &next);
		size_t k = 0;
		while (k < ln && is_ws(t[i + k]))
			k++;
		if (k < ln && t[i + k] != '#')
			break;
		i = next;
		(*lineno)++;
	}
	return i;
}

static int cap_parse(cap *c, const char *t, size_t len)
{
	size_t lineno = 1, next;
	size_t i = cap_skip(t, len, &lineno);
	size_t ln = cap_line(t, len, i, &next);
	c->path = i < len ? cap_target(&c->a, t + i, ln) : NULL;
	if (!c->path) {
		snprintf(c->err, sizeof c->err, "line %zu: not an HTTP request line", lineno);
		return -1;
	}
	size_t max = 1;
	for (size_t k = next; k < len; k++)
		max += t[k] == '\n';
	c->h = arena_alloc(&c->a, max * sizeof *c->h);
	for (i = next; i < len; i = next) {
		ln = cap_line(t, len, i, &next);
		lineno++;
		if (ln == 0) {
			c->body = t + next;
			c->body_len = len - next;
			return 0;
		}
		if (cap_header(c, t + i, ln, lineno) < 0)
			return -1;
	}
	c->body = "";
	return 0;
}

int decode_http_capture(const jr_decode_ctx *dc, const char *text, size_t len)
{
	dec_ctx x;
	dec_init(&x, dc);
	cap c = { 0 };
	arena_init(&c.a);
	int calls;
	if (len > x.lim.event_bytes + x.lim.header_bytes) {
		snprintf(c.err, sizeof c.err, "capture of %zu bytes is over the size limits", len);
		calls = dec_fail(&x, c.err);
	} else if (cap_parse(&c, text, len) < 0) {
		calls = dec_fail(&x, c.err);
	} else {
		char topic[512];
		const char *pt = path_topic(c.path, topic, sizeof topic);
		if (pt)
			x.topic = pt;
		calls = http_dispatch(&x, c.h, c.n, c.body, c.body_len);
	}
	arena_free(&c.a);
	return calls;
}
