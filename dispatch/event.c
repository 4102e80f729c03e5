/*
 * event.c — the jr_event container, its structured-mode writer and base64.
 */
#include "event.h"

#include <stdlib.h>
#include <string.h>

jr_event *event_new(void)
{
	jr_event *ev = jr_calloc(1, sizeof *ev);
	arena_init(&ev->arena);
	return ev;
}

void event_free(jr_event *ev)
{
	if (!ev)
		return;
	arena_free(&ev->arena);
	free(ev);
}

const jr_json *event_ext(const jr_event *ev, const char *name)
{
	for (size_t i = 0; i < ev->n_ext; i++)
		if (strcmp(ev->ext[i].name, name) == 0)
			return ev->ext[i].value;
	return NULL;
}

static int is_scalar(const jr_json *v)
{
	return v && (v->type == JR_JSON_STRING || v->type == JR_JSON_NUMBER ||
		     v->type == JR_JSON_TRUE || v->type == JR_JSON_FALSE);
}

/* key_is: key (n bytes), lower-cased and cut down to [a-z0-9], equals want (not empty). */
static int key_is(const char *key, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++) {
		char c = key[i] >= 'A' && key[i] <= 'Z' ? (char)(key[i] - 'A' + 'a') : key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			continue;
		if (*want++ != c)
			return 0;
	}
	return *want == '\0';
}

/* payload_member: `payload` or `payloadNAME` of event_ext_view, or NULL. */
static const jr_json *payload_member(const jr_json *p, const char *name)
{
	static const char prefix[] = "payload";
	if (strncmp(name, prefix, sizeof prefix - 1) != 0)
		return NULL;
	name += sizeof prefix - 1;
	if (!*name)
		return is_scalar(p) ? p : NULL;
	if (p->type != JR_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < p->n; i++)
		if (is_scalar(p->items[i]) && key_is(p->keys[i], p->key_lens[i], name))
			return p->items[i];
	return NULL;
}

const jr_json *event_ext_view(const jr_event *ev, const jr_json *payload, const char *name)
{
	const jr_json *v = event_ext(ev, name);
	return v || !payload ? v : payload_member(payload, name);
}

int event_attr_id(const char *name)
{
	static const struct {
		const char *name;
		int id;
	} attrs[] = {
		{ "specversion", JR_ATTR_SPECVERSION }, { "id", JR_ATTR_ID },
		{ "source", JR_ATTR_SOURCE }, { "type", JR_ATTR_TYPE },
		{ "subject", JR_ATTR_SUBJECT }, { "time", JR_ATTR_TIME },
		{ "datacontenttype", JR_ATTR_DATACONTENTTYPE }, { "dataschema", JR_ATTR_DATASCHEMA },
	};
	for (size_t i = 0; i < sizeof attrs / sizeof attrs[0]; i++)
		if (attrs[i].name[0] == name[0] && strcmp(attrs[i].name, name) == 0)
			return attrs[i].id;
	return 0;
}

const char *event_attr(jr_event *ev, const char *name)
{
	int id = event_attr_id(name);
	if (id)
		return event_attr_by_id(ev, id);
	const jr_json *x = event_ext(ev, name);
	if (!x)
		return NULL;
	switch (x->type) {
	case JR_JSON_STRING:
	case JR_JSON_NUMBER:
		return x->s;
	case JR_JSON_TRUE:
		return "true";
	case JR_JSON_FALSE:
		return "false";
	default:
		return NULL;
	}
}

const char *event_msg_attr(const jr_event *ev, const char *key)
{
	const jr_message *m = ev->message;
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_attrs; i++)
		if (strcmp(m->attrs[i].key, key) == 0)
			return m->attrs[i].value;
	return NULL;
}

/* member: appends ,"name":"value" (or the first member without the comma). */
static int member(jr_buf *out, int *first, const char *name, const char *value)
{
	if (!value)
		return 0;
	if (!*first && buf_addc(out, ',') < 0)
		return -1;
	*first = 0;
	if (jstr_write(out, name, strlen(name)) < 0 || buf_addc(out, ':') < 0)
		return -1;
	return jstr_write(out, value, strlen(value));
}

static int write_data(jr_buf *out, const jr_event *ev)
{
	switch (ev->data_kind) {
	case JR_DATA_NONE:
		return 0;
	case JR_DATA_JSON:
		if (ev->data_json) {
			if (buf_adds(out, ",\"data\":") < 0)
				return -1;
			return json_write(out, ev->data_json);
		}
		/* no tree: fall back to the text as bytes */
		/* fallthrough */
	case JR_DATA_BINARY:
		if (buf_adds(out, ",\"data_base64\":\"") < 0 ||
		    base64_encode(out, ev->data, ev->data_len) < 0)
			return -1;
		return buf_addc(out, '"');
	case JR_DATA_TEXT:
		if (buf_adds(out, ",\"data\":") < 0)
			return -1;
		return jstr_write(out, ev->data, ev->data_len);
	}
	return -1;
}

int event_write_structured(jr_buf *out, const jr_event *ev)
{
	int first = 1;
	if (buf_addc(out, '{') < 0 ||
	    member(out, &first, "specversion", ev->specversion ? ev->specversion : "1.0") < 0 ||
	    member(out, &first, "id", ev->id) < 0 ||
	    member(out, &first, "source", ev->source) < 0 ||
	    member(out, &first, "type", ev->type) < 0 ||
	    member(out, &first, "subject", ev->subject) < 0 ||
	    member(out, &first, "time", ev->time) < 0 ||
	    member(out, &first, "datacontenttype", ev->datacontenttype) < 0 ||
	    member(out, &first, "dataschema", ev->dataschema) < 0)
		return -1;
	for (size_t i = 0; i < ev->n_ext; i++) {
		if (buf_addc(out, ',') < 0 ||
		    jstr_write(out, ev->ext[i].name, strlen(ev->ext[i].name)) < 0 ||
		    buf_addc(out, ':') < 0 || json_write(out, ev->ext[i].value) < 0)
			return -1;
	}
	if (write_data(out, ev) < 0)
		return -1;
	return buf_addc(out, '}');
}

static int write_attrs(jr_buf *out, const jr_message *m)
{
	if (buf_adds(out, "\"attributes\":{") < 0)
		return -1;
	for (size_t i = 0; i < m->n_attrs; i++) {
		const jr_kv *kv = &m->attrs[i];
		if ((i && buf_addc(out, ',') < 0) ||
		    jstr_write(out, kv->key, strlen(kv->key)) < 0 ||
		    buf_addc(out, ':') < 0 ||
		    jstr_write(out, kv->value, strlen(kv->value)) < 0)
			return -1;
	}
	return buf_addc(out, '}');
}

int event_write_message(jr_buf *out, const jr_message *m)
{
	int first = 0; /* "data" and "attributes" always come first */
	if (buf_adds(out, "{\"data\":\"") < 0 || base64_encode(out, m->data, m->data_len) < 0 ||
	    buf_adds(out, "\",") < 0 || write_attrs(out, m) < 0)
		return -1;
	if (member(out, &first, "messageId", m->id) < 0 ||
	    member(out, &first, "publishTime", m->publish_time) < 0 ||
	    member(out, &first, "orderingKey", m->ordering_key) < 0)
		return -1;
	return buf_addc(out, '}');
}
