/*
 * json.c — lookups, writers and builders for the jr_json tree.
 *
 * Objects and arrays grow by doubling inside the arena: the capacity is not
 * stored, it is the smallest power of two (at least 4) that holds n, so an
 * append reallocates exactly when n reaches such a power. The old arrays stay
 * in the arena until it is freed (at most as much again as the final size).
 */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define JSON_MIN_CAP 4u

const jr_json *json_get(const jr_json *obj, const char *key)
{
	if (!obj || obj->type != JR_JSON_OBJECT)
		return NULL;
	size_t klen = strlen(key);
	for (size_t i = 0; i < obj->n; i++)
		if (obj->key_lens[i] == klen && memcmp(obj->keys[i], key, klen) == 0)
			return obj->items[i];
	return NULL;
}

const char *json_get_str(const jr_json *obj, const char *key)
{
	const jr_json *v = json_get(obj, key);
	return v && v->type == JR_JSON_STRING ? v->s : NULL;
}

/* index_of: a decimal array index without sign or leading zeros; -1 when not one. */
static long index_of(const char *s, size_t n)
{
	if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
		return -1;
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* member: the child of v named by key[0..n) (object key or array index). */
static const jr_json *member(const jr_json *v, const char *key, size_t n)
{
	if (v->type == JR_JSON_ARRAY) {
		long i = index_of(key, n);
		return i >= 0 && (size_t)i < v->n ? v->items[i] : NULL;
	}
	if (v->type != JR_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (v->key_lens[i] == n && memcmp(v->keys[i], key, n) == 0)
			return v->items[i];
	return NULL;
}

/* pointer_token: unescapes one RFC 6901 token into tok; -1 when malformed. */
static int pointer_token(const char *s, size_t n, char *tok, size_t *tlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '~') {
			tok[o++] = s[i];
			continue;
		}
		if (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1'))
			return -1;
		tok[o++] = s[i + 1] == '0' ? '~' : '/';
		i++;
	}
	*tlen = o;
	return 0;
}

const jr_json *json_pointer(const jr_json *root, const char *ptr)
{
	if (!root || !ptr)
		return NULL;
	if (*ptr == '\0')
		return root;
	if (*ptr != '/')
		return NULL;
	size_t plen = strlen(ptr);
	char small[256];
	char *tok = plen < sizeof small ? small : jr_malloc(plen + 1);
	const jr_json *v = root;
	const char *p = ptr;
	while (v && *p == '/') {
		p++;
		size_t n = strcspn(p, "/");
		size_t tlen;
		if (pointer_token(p, n, tok, &tlen) < 0)
			v = NULL;
		else
			v = member(v, tok, tlen);
		p += n;
	}
	if (tok != small)
		free(tok);
	return v;
}

/* A compiled pointer: its tokens, unescaped, in one allocation after the header. */
typedef struct ptr_token {
	const char *s;
	size_t n;
	long index; /* index_of(s, n): the array index it names, or -1 */
} ptr_token;

struct jr_json_ptr {
	size_t n;
	ptr_token tok[];
};

jr_json_ptr *json_ptr_compile(const char *ptr)
{
	if (*ptr && *ptr != '/')
		return NULL;
	size_t plen = strlen(ptr), n = 0;
	for (const char *q = ptr; *q; q++)
		n += *q == '/';
	jr_json_ptr *p = jr_malloc(sizeof *p + n * sizeof p->tok[0] + plen + 1);
	char *text = (char *)&p->tok[n];
	p->n = 0;
	for (const char *q = ptr; *q == '/';) {
		q++;
		size_t len = strcspn(q, "/"), tlen;
		if (pointer_token(q, len, text, &tlen) < 0) {
			free(p);
			return NULL;
		}
		p->tok[p->n++] = (ptr_token){ text, tlen, index_of(text, tlen) };
		text += tlen;
		q += len;
	}
	return p;
}

const jr_json *json_ptr_get(const jr_json *root, const jr_json_ptr *p)
{
	if (!root || !p)
		return NULL;
	const jr_json *v = root;
	for (size_t t = 0; v && t < p->n; t++) {
		const ptr_token *k = &p->tok[t];
		if (v->type == JR_JSON_ARRAY) {
			v = k->index >= 0 && (size_t)k->index < v->n ? v->items[k->index] : NULL;
		} else if (v->type == JR_JSON_OBJECT) {
			const jr_json *next = NULL;
			for (size_t i = 0; i < v->n && !next; i++)
				if (v->key_lens[i] == k->n && memcmp(v->keys[i], k->s, k->n) == 0)
					next = v->items[i];
			v = next;
		} else {
			v = NULL;
		}
	}
	return v;
}

void json_ptr_free(jr_json_ptr *p)
{
	free(p);
}

const jr_json *json_path(const jr_json *root, const char *path)
{
	if (!root || !path)
		return NULL;
	const jr_json *v = root;
	const char *p = path;
	int first = 1;
	while (v && *p) {
		if (*p == '[') {
			const char *end = strchr(p, ']');
			if (!end)
				return NULL;
			long i = index_of(p + 1, (size_t)(end - p - 1));
			if (i < 0 || v->type != JR_JSON_ARRAY || (size_t)i >= v->n)
				return NULL;
			v = v->items[i];
			p = end + 1;
		} else {
			if (!first) {
				if (*p != '.')
					return NULL;
				p++;
			}
			size_t n = strcspn(p, ".[");
			if (n == 0 || v->type != JR_JSON_OBJECT)
				return NULL;
			v = member(v, p, n);
			p += n;
		}
		first = 0;
	}
	return v;
}

static int write_container(jr_buf *out, const jr_json *v)
{
	int obj = v->type == JR_JSON_OBJECT;
	if (buf_addc(out, obj ? '{' : '[') < 0)
		return -1;
	for (size_t i = 0; i < v->n; i++) {
		if (i && buf_addc(out, ',') < 0)
			return -1;
		if (obj && (jstr_write(out, v->keys[i], v->key_lens[i]) < 0 ||
			    buf_addc(out, ':') < 0))
			return -1;
		if (json_write(out, v->items[i]) < 0)
			return -1;
	}
	return buf_addc(out, obj ? '}' : ']');
}

int json_write(jr_buf *out, const jr_json *v)
{
	if (!v)
		return buf_adds(out, "null");
	switch (v->type) {
	case JR_JSON_NULL: return buf_adds(out, "null");
	case JR_JSON_FALSE: return buf_adds(out, "false");
	case JR_JSON_TRUE: return buf_adds(out, "true");
	case JR_JSON_NUMBER: return buf_add(out, v->s, v->n);
	case JR_JSON_STRING: return jstr_write(out, v->s, v->n);
	case JR_JSON_ARRAY:
	case JR_JSON_OBJECT: return write_container(out, v);
	}
	return -1;
}

int json_render(jr_buf *out, const jr_json *v)
{
	if (v && v->type == JR_JSON_STRING)
		return buf_add(out, v->s, v->n);
	return json_write(out, v);
}

jr_json *json_new(jr_arena *a, jr_json_type t)
{
	jr_json *v = arena_alloc_raw(a, sizeof *v);
	*v = (jr_json){ .type = t };
	return v;
}

jr_json *json_new_string(jr_arena *a, const char *s, size_t n)
{
	jr_json *v = json_new(a, JR_JSON_STRING);
	v->s = arena_strndup(a, s, n);
	v->n = n;
	return v;
}

/* needs_growth: whether appending to a container of n elements needs bigger arrays. */
static int needs_growth(size_t n)
{
	return n == 0 || (n >= JSON_MIN_CAP && (n & (n - 1)) == 0);
}

static void *grow(jr_arena *a, const void *old, size_t n, size_t elem)
{
	size_t cap = n ? n * 2 : JSON_MIN_CAP;
	void *p = arena_alloc(a, cap * elem);
	if (n)
		memcpy(p, old, n * elem);
	return p;
}

void json_obj_add(jr_arena *a, jr_json *obj, const char *key, size_t klen, jr_json *v)
{
	size_t n = obj->n;
	if (needs_growth(n)) {
		obj->keys = grow(a, obj->keys, n, sizeof *obj->keys);
		obj->key_lens = grow(a, obj->key_lens, n, sizeof *obj->key_lens);
		obj->items = grow(a, obj->items, n, sizeof *obj->items);
	}
	obj->keys[n] = key;
	obj->key_lens[n] = klen;
	obj->items[n] = v;
	obj->n = n + 1;
}

void json_set_members(jr_arena *a, jr_json *c, size_t n, const char *const *keys,
		      const size_t *key_lens, jr_json *const *items)
{
	if (n == 0)
		return;
	size_t cap = JSON_MIN_CAP;
	while (cap < n)
		cap *= 2;
	/* slots past n are only written (by later appends), never read */
	c->items = arena_alloc_raw(a, cap * sizeof *c->items);
	memcpy(c->items, items, n * sizeof *items);
	if (c->type == JR_JSON_OBJECT) {
		c->keys = arena_alloc_raw(a, cap * sizeof *c->keys);
		c->key_lens = arena_alloc_raw(a, cap * sizeof *c->key_lens);
		memcpy(c->keys, keys, n * sizeof *keys);
		memcpy(c->key_lens, key_lens, n * sizeof *key_lens);
	}
	c->n = n;
}

void json_arr_add(jr_arena *a, jr_json *arr, jr_json *v)
{
	size_t n = arr->n;
	if (needs_growth(n))
		arr->items = grow(a, arr->items, n, sizeof *arr->items);
	arr->items[n] = v;
	arr->n = n + 1;
}
