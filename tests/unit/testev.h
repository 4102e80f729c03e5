/*
 * testev.h — building jr_event values by hand in unit tests, without a
 * decoder: every string and tree goes into the event's own arena.
 */
#ifndef JR_TEST_EV_H
#define JR_TEST_EV_H

#include <string.h>

#include "event.h"
#include "json.h"

/* tev_new: an event with id, source and type set (NULL leaves one unset). */
static inline jr_event *tev_new(const char *id, const char *source, const char *type)
{
	jr_event *ev = event_new();
	ev->specversion = "1.0";
	ev->id = id ? arena_strdup(&ev->arena, id) : NULL;
	ev->source = source ? arena_strdup(&ev->arena, source) : NULL;
	ev->type = type ? arena_strdup(&ev->arena, type) : NULL;
	return ev;
}

static inline jr_json *tev_str(jr_event *ev, const char *s)
{
	return json_new_string(&ev->arena, s, strlen(s));
}

/* tev_num / tev_lit: a number with the given text; true, false or null by type. */
static inline jr_json *tev_num(jr_event *ev, const char *text)
{
	jr_json *v = json_new(&ev->arena, JR_JSON_NUMBER);
	v->s = arena_strdup(&ev->arena, text);
	v->n = strlen(text);
	return v;
}

static inline jr_json *tev_lit(jr_event *ev, jr_json_type t)
{
	return json_new(&ev->arena, t);
}

static inline jr_json *tev_obj(jr_event *ev)
{
	return json_new(&ev->arena, JR_JSON_OBJECT);
}

static inline jr_json *tev_arr(jr_event *ev)
{
	return json_new(&ev->arena, JR_JSON_ARRAY);
}

/* tev_put: obj[key] = v; returns obj. */
static inline jr_json *tev_put(jr_event *ev, jr_json *obj, const char *key, jr_json *v)
{
	json_obj_add(&ev->arena, obj, key, strlen(key), v);
	return obj;
}

/* tev_push: appends v to arr; returns arr. */
static inline jr_json *tev_push(jr_event *ev, jr_json *arr, jr_json *v)
{
	json_arr_add(&ev->arena, arr, v);
	return arr;
}

/* tev_ext: adds the extension name = v. */
static inline void tev_ext(jr_event *ev, const char *name, jr_json *v)
{
	jr_ext *x = arena_alloc(&ev->arena, (ev->n_ext + 1) * sizeof *x);
	if (ev->n_ext)
		memcpy(x, ev->ext, ev->n_ext * sizeof *x);
	x[ev->n_ext].name = arena_strdup(&ev->arena, name);
	x[ev->n_ext].value = v;
	ev->ext = x;
	ev->n_ext++;
}

static inline void tev_data_json(jr_event *ev, jr_json *root)
{
	ev->data_kind = JR_DATA_JSON;
	ev->data_json = root;
}

static inline void tev_data(jr_event *ev, jr_data_kind kind, const char *bytes, size_t n)
{
	ev->data_kind = kind;
	ev->data = arena_strndup(&ev->arena, bytes, n);
	ev->data_len = n;
}

/* tev_message: attaches a Pub/Sub message (strings must outlive ev); tev_msg_attr adds attributes. */
static inline jr_message *tev_message(jr_event *ev, const char *id, const char *publish_time,
				      const char *ordering_key)
{
	jr_message *m = arena_alloc(&ev->arena, sizeof *m);
	m->id = id;
	m->publish_time = publish_time;
	m->ordering_key = ordering_key;
	ev->message = m;
	return m;
}

static inline void tev_msg_attr(jr_event *ev, jr_message *m, const char *key, const char *value)
{
	jr_kv *kv = arena_alloc(&ev->arena, (m->n_attrs + 1) * sizeof *kv);
	if (m->n_attrs)
		memcpy(kv, m->attrs, m->n_attrs * sizeof *kv);
	kv[m->n_attrs].key = arena_strdup(&ev->arena, key);
	kv[m->n_attrs].value = arena_strdup(&ev->arena, value);
	m->attrs = kv;
	m->n_attrs++;
}

#endif
