/*
 * dtest.h — helpers shared by the decoder tests (test_decode*.c).
 *
 * A `got` collects what a decoder reported: the events (owned until
 * got_free) and the error texts, in callback order.
 */
#ifndef JR_TEST_DTEST_H
#define JR_TEST_DTEST_H

#include <stdarg.h>
#include <string.h>

#include "cu.h"
#include "decode.h"
#include "jsonparse.h"

#define GOT_MAX 64

typedef struct got {
	jr_event *ev[GOT_MAX];
	size_t n_ev;
	char err[GOT_MAX][320];
	size_t n_err;
	int order[GOT_MAX]; /* 1 event, 0 error, in callback order */
	size_t n;
	jr_limits lim;
	jr_decode_ctx dc;
} got;

static void got_cb(void *arg, jr_event *ev, const char *err)
{
	got *g = arg;
	CU_ASSERT_TRUE((ev == NULL) != (err == NULL));
	if (g->n < GOT_MAX)
		g->order[g->n++] = ev != NULL;
	if (ev) {
		if (g->n_ev < GOT_MAX)
			g->ev[g->n_ev++] = ev;
		else
			event_free(ev);
		return;
	}
	if (g->n_err < GOT_MAX)
		snprintf(g->err[g->n_err++], sizeof g->err[0], "%s", err);
}

/* got_init: default limits, origin "test", no topic. */
__attribute__((unused)) static void got_init(got *g)
{
	memset(g, 0, sizeof *g);
	g->lim.event_bytes = 10u << 20;
	g->lim.json_depth = 64;
	g->lim.attributes = 100;
	g->lim.header_bytes = 64u << 10;
	g->dc.limits = &g->lim;
	g->dc.origin = "test";
	g->dc.cb = got_cb;
	g->dc.arg = g;
}

__attribute__((unused)) static void got_free(got *g)
{
	for (size_t i = 0; i < g->n_ev; i++)
		event_free(g->ev[i]);
	g->n_ev = g->n_err = g->n = 0;
}

/* got_doc: decode_json_doc of a C string. */
__attribute__((unused)) static int got_doc(got *g, const char *s)
{
	return decode_json_doc(&g->dc, s, strlen(s));
}

/* td_read: a test data file (JR_TESTDATA-relative), or NULL with a CUnit failure. */
__attribute__((unused)) static char *td_read(const char *rel, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", JR_TESTDATA, rel);
	char *s = cu_read_file(path, len);
	if (!s)
		fprintf(stderr, "missing test data: %s\n", path);
	CU_ASSERT_PTR_NOT_NULL(s);
	return s;
}

/* compact: v as compact JSON, in a buffer the caller frees. */
__attribute__((unused)) static char *compact(const jr_json *v)
{
	jr_buf b;
	buf_init(&b, 0);
	json_write(&b, v);
	return buf_take(&b);
}

/* same_json: whether v and the JSON text s[0..n) are the same compact JSON. */
__attribute__((unused)) static int same_json(const jr_json *v, const char *s, size_t n)
{
	jr_arena a;
	arena_init(&a);
	const jr_json *w = jsonparse(&a, s, n, 128, NULL, 0);
	int same = 0;
	if (v && w) {
		char *x = compact(v), *y = compact(w);
		same = strcmp(x, y) == 0;
		if (!same)
			fprintf(stderr, "json differs:\n  %s\n  %s\n", x, y);
		free(x);
		free(y);
	}
	arena_free(&a);
	return same;
}

/* str_is: a == b, both may be NULL. */
__attribute__((unused)) static int str_is(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* has: the error text contains part. */
__attribute__((unused)) static int has(const char *err, const char *part)
{
	int ok = err && strstr(err, part) != NULL;
	if (!ok)
		fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", err ? err : "(null)", part);
	return ok;
}

/* ext_str: the string value of extension name, or NULL. */
__attribute__((unused)) static const char *ext_str(const jr_event *ev, const char *name)
{
	const jr_json *v = event_ext(ev, name);
	return v && v->type == JR_JSON_STRING ? v->s : NULL;
}

/* ptr_str: the string at an RFC 6901 pointer into the event data, or NULL. */
__attribute__((unused)) static const char *ptr_str(const jr_event *ev, const char *ptr)
{
	const jr_json *v = json_pointer(ev->data_json, ptr);
	return v && v->type == JR_JSON_STRING ? v->s : NULL;
}

#endif
