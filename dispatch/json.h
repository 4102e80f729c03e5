/*
 * json.h — a small JSON value tree, independent of any parser.
 *
 * The adapters in src/ parse JSON with yajl into this tree (src/decode/jsonparse.h);
 * routing and templates read it here without knowing about yajl. Nodes live
 * in the arena of the event that holds them. Numbers keep their source text,
 * so they render exactly as they arrived.
 */
#ifndef JR_JSON_H
#define JR_JSON_H

#include <stddef.h>

#include "jstring.h"
#include "mem.h"

typedef enum jr_json_type {
	JR_JSON_NULL,
	JR_JSON_FALSE,
	JR_JSON_TRUE,
	JR_JSON_NUMBER, /* s/len: the number's text */
	JR_JSON_STRING, /* s/len: the decoded UTF-8 string (may contain NUL) */
	JR_JSON_ARRAY,  /* items/n */
	JR_JSON_OBJECT, /* keys/items/n, in document order; duplicate keys kept */
} jr_json_type;

typedef struct jr_json jr_json;
struct jr_json {
	jr_json_type type;
	size_t n;        /* ARRAY/OBJECT: element count; NUMBER/STRING: byte length */
	const char *s;   /* NUMBER/STRING */
	const char **keys;  /* OBJECT: NUL-terminated keys */
	size_t *key_lens;   /* OBJECT: key byte lengths */
	jr_json **items;    /* ARRAY/OBJECT */
};

/* json_get: the value of the first member named key in obj, or NULL (also when obj is not an object). */
const jr_json *json_get(const jr_json *obj, const char *key);
/* json_get_str: the string value of member key, or NULL when absent or not a string. */
const char *json_get_str(const jr_json *obj, const char *key);
/* json_pointer: RFC 6901 lookup ("" is the root, "/a/0/b~1c"); NULL when absent or malformed. */
const jr_json *json_pointer(const jr_json *root, const char *ptr);
/*
 * jr_json_ptr: a JSON Pointer split and unescaped once, for lookups repeated
 * on many documents (route conditions). json_ptr_compile returns NULL when
 * ptr is malformed; json_ptr_get then behaves as json_pointer does;
 * json_ptr_free (NULL is a no-op) releases it.
 */
typedef struct jr_json_ptr jr_json_ptr;
jr_json_ptr *json_ptr_compile(const char *ptr);
const jr_json *json_ptr_get(const jr_json *root, const jr_json_ptr *p);
void json_ptr_free(jr_json_ptr *p);
/* json_path: dotted template path "a.b[0].c" lookup; NULL when absent or malformed. */
const jr_json *json_path(const jr_json *root, const char *path);

/* json_write: appends v as compact JSON to out; -1 when out's max is reached. */
int json_write(jr_buf *out, const jr_json *v);
/* json_render: strings as their raw text, anything else as compact JSON (template rendering). */
int json_render(jr_buf *out, const jr_json *v);

/* Builders for code that makes trees (decoders, tests); all memory in a. */
jr_json *json_new(jr_arena *a, jr_json_type t);
jr_json *json_new_string(jr_arena *a, const char *s, size_t n);
/* json_obj_add / json_arr_add: append (growing by doubling inside the arena). */
void json_obj_add(jr_arena *a, jr_json *obj, const char *key, size_t klen, jr_json *v);
void json_arr_add(jr_arena *a, jr_json *arr, jr_json *v);
/*
 * json_set_members: gives the empty container c all its n members at once
 * (a parser knows n when the container closes): items, and for an object keys
 * and key_lens, are copied into arrays in a. The result is what n calls of
 * json_obj_add / json_arr_add would have made, so they may still append after.
 */
void json_set_members(jr_arena *a, jr_json *c, size_t n, const char *const *keys,
		      const size_t *key_lens, jr_json *const *items);

#endif
