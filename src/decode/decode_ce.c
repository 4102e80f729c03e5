/*
 * decode_ce.c — a CloudEvent from its attributes, and the rules it must meet.
 *
 * Both content modes feed one builder: structured mode hands it the members
 * of the JSON object, binary mode the ce-* headers or attributes as strings.
 * The builder stores pointers into the event's arena (no copies), counts the
 * attributes against the limit, and ce_finish normalises 0.3 to 1.0, runs
 * decode_validate and settles the data. docs/decoding.md lists the rules.
 */
#include "decode_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "utf8.h"

typedef enum ce_attr {
	CE_EXT = 0,
	CE_SPECVERSION,
	CE_ID,
	CE_SOURCE,
	CE_TYPE,
	CE_SUBJECT,
	CE_TIME,
	CE_DATACONTENTTYPE,
	CE_DATASCHEMA,
	CE_SCHEMAURL,       /* 0.3 */
	CE_ENCODING,        /* 0.3 datacontentencoding */
	CE_DATA,
	CE_DATA_BASE64,
} ce_attr;

typedef struct ce_b {
	jr_event *ev;
	const jr_limits *lim;
	int v03;
	const jr_json *data;    /* structured "data" */
	const jr_json *b64;     /* structured "data_base64" */
	const char *encoding;   /* 0.3 datacontentencoding */
	int n_attrs;
	size_t ext_cap;
	char *err;
	size_t errlen;
} ce_b;

#define CE_NAME(s, a) { s, sizeof s - 1, a }

static const struct {
	const char *name;
	size_t len;
	ce_attr a;
} ce_names[] = {
	CE_NAME("specversion", CE_SPECVERSION), CE_NAME("id", CE_ID),
	CE_NAME("source", CE_SOURCE), CE_NAME("type", CE_TYPE), CE_NAME("subject", CE_SUBJECT),
	CE_NAME("time", CE_TIME), CE_NAME("datacontenttype", CE_DATACONTENTTYPE),
	CE_NAME("dataschema", CE_DATASCHEMA), CE_NAME("schemaurl", CE_SCHEMAURL),
	CE_NAME("datacontentencoding", CE_ENCODING), CE_NAME("data", CE_DATA),
	CE_NAME("data_base64", CE_DATA_BASE64),
};

/* ce_lookup: what the member name[0..n) is; lengths are compared first (it runs per member). */
static ce_attr ce_lookup(const char *name, size_t n, int v03)
{
	for (size_t i = 0; i < sizeof ce_names / sizeof ce_names[0]; i++) {
		if (ce_names[i].len != n || memcmp(ce_names[i].name, name, n) != 0)
			continue;
		ce_attr a = ce_names[i].a;
		if (!v03 && (a == CE_SCHEMAURL || a == CE_ENCODING))
			return CE_EXT;
		return a;
	}
	return CE_EXT;
}

static const char **ce_field(jr_event *ev, ce_attr a)
{
	switch (a) {
	case CE_SPECVERSION: return &ev->specversion;
	case CE_ID: return &ev->id;
	case CE_SOURCE: return &ev->source;
	case CE_TYPE: return &ev->type;
	case CE_SUBJECT: return &ev->subject;
	case CE_TIME: return &ev->time;
	case CE_DATACONTENTTYPE: return &ev->datacontenttype;
	case CE_DATASCHEMA:
	case CE_SCHEMAURL: return &ev->dataschema;
	default: return NULL;
	}
}

static int ce_version(ce_b *b, const jr_json *v)
{
	if (!v || v->type == JR_JSON_NULL) {
		snprintf(b->err, b->errlen, "missing specversion");
		return -1;
	}
	if (v->type != JR_JSON_STRING) {
		snprintf(b->err, b->errlen, "specversion must be a string");
		return -1;
	}
	if (strcmp(v->s, "0.3") == 0)
		b->v03 = 1;
	else if (strcmp(v->s, "1.0") != 0) {
		snprintf(b->err, b->errlen, "unknown specversion \"%.32s\" (1.0 and 0.3 are known)",
			 v->s);
		return -1;
	}
	return 0;
}

static int ce_add_ext(ce_b *b, const char *name, const jr_json *v)
{
	jr_event *ev = b->ev;
	for (size_t i = 0; i < ev->n_ext; i++) {
		if (strcmp(ev->ext[i].name, name) == 0) {
			snprintf(b->err, b->errlen, "duplicate attribute %.64s", name);
			return -1;
		}
	}
	if (ev->n_ext >= b->ext_cap) {
		snprintf(b->err, b->errlen, "too many attributes");
		return -1;
	}
	ev->ext[ev->n_ext].name = name;
	ev->ext[ev->n_ext].value = v;
	ev->n_ext++;
	return 0;
}

/* ce_set: one member or attribute; a null value counts as absent. */
static int ce_set(ce_b *b, const char *name, size_t nlen, const jr_json *v)
{
	if (v->type == JR_JSON_NULL)
		return 0;
	if (strlen(name) != nlen) {
		snprintf(b->err, b->errlen, "attribute name contains a NUL byte");
		return -1;
	}
	ce_attr a = ce_lookup(name, nlen, b->v03);
	if (a != CE_DATA && v->type == JR_JSON_STRING && strlen(v->s) != v->n) {
		snprintf(b->err, b->errlen, "attribute %s holds a NUL byte at byte %zu", name,
			 strlen(v->s));
		return -1;
	}
	if (a == CE_DATA) {
		b->data = v;
		return 0;
	}
	if (++b->n_attrs > b->lim->attributes) {
		snprintf(b->err, b->errlen, "more than %d attributes", b->lim->attributes);
		return -1;
	}
	if (a == CE_EXT)
		return ce_add_ext(b, name, v);
	if (v->type != JR_JSON_STRING) {
		snprintf(b->err, b->errlen, "attribute %s must be a string", name);
		return -1;
	}
	if (a == CE_DATA_BASE64) {
		b->b64 = v;
		return 0;
	}
	if (a == CE_ENCODING) {
		b->encoding = v->s;
		return 0;
	}
	const char **f = ce_field(b->ev, a);
	if (*f) {
		snprintf(b->err, b->errlen, "duplicate attribute %s", name);
		return -1;
	}
	*f = v->s;
	return 0;
}

static int ce_textual(const char *ct)
{
	if (strncasecmp(ct, "text/", 5) == 0)
		return 1;
	size_t n = strcspn(ct, "; \t");
	static const char *const kinds[] = { "/xml", "+xml", "/javascript", "/yaml", "+yaml",
					     "/x-yaml", "/x-www-form-urlencoded", "/csv" };
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		size_t k = strlen(kinds[i]);
		if (n >= k && strncasecmp(ct + n - k, kinds[i], k) == 0)
			return 1;
	}
	return 0;
}

/* ce_bytes: data given as bytes (binary body, data_base64, message data). */
static int ce_bytes(ce_b *b, const char *p, size_t n, int sniff)
{
	jr_event *ev = b->ev;
	const char *ct = ev->datacontenttype;
	ev->data = p;
	ev->data_len = n;
	size_t ws = dec_skip_ws(p, n);
	int looks = ws < n && (p[ws] == '{' || p[ws] == '[');
	if (ct ? ce_is_json_type(ct) : (sniff && looks)) {
		char why[160];
		ev->data_json = jsonparse(&ev->arena, p, n, b->lim->json_depth, why, sizeof why);
		if (ev->data_json) {
			ev->data_kind = JR_DATA_JSON;
			return 0;
		}
		if (ct) {
			snprintf(b->err, b->errlen, "data is not valid JSON: %s", why);
			return -1;
		}
	}
	int text = ct && ce_textual(ct) && utf8_valid(p, n);
	ev->data_kind = text ? JR_DATA_TEXT : JR_DATA_BINARY;
	return 0;
}

static int ce_base64(ce_b *b, const jr_json *v, const char *what)
{
	char *out;
	long n = base64_decode(&b->ev->arena, v->s, v->n, &out);
	if (n < 0) {
		snprintf(b->err, b->errlen, "%s is not valid base64", what);
		return -1;
	}
	return ce_bytes(b, out, (size_t)n, 0);
}

/* ce_data: settles the structured data members. */
static int ce_data(ce_b *b)
{
	jr_event *ev = b->ev;
	const char *ct = ev->datacontenttype;
	if (b->data && b->b64) {
		snprintf(b->err, b->errlen, "both data and data_base64");
		return -1;
	}
	if (b->b64)
		return ce_base64(b, b->b64, "data_base64");
	if (!b->data)
		return 0;
	if (b->encoding) {
		if (strcasecmp(b->encoding, "base64") != 0) {
			snprintf(b->err, b->errlen, "unknown datacontentencoding \"%.32s\"",
				 b->encoding);
			return -1;
		}
		if (b->data->type != JR_JSON_STRING) {
			snprintf(b->err, b->errlen, "base64 data must be a string");
			return -1;
		}
		return ce_base64(b, b->data, "data");
	}
	if (!ct || ce_is_json_type(ct) || b->data->type != JR_JSON_STRING) {
		ev->data_kind = JR_DATA_JSON;
		ev->data_json = b->data;
		return 0;
	}
	ev->data_kind = JR_DATA_TEXT;
	ev->data = b->data->s;
	ev->data_len = b->data->n;
	return 0;
}

static void ce_begin(ce_b *b, jr_event *ev, const jr_limits *lim, size_t cap, char *err,
		     size_t errlen)
{
	memset(b, 0, sizeof *b);
	b->ev = ev;
	b->lim = lim;
	b->err = err;
	b->errlen = errlen;
	b->ext_cap = cap;
	ev->ext = cap ? arena_alloc(&ev->arena, cap * sizeof *ev->ext) : NULL;
	ev->n_ext = 0;
}

static int ce_finish(ce_b *b)
{
	b->ev->specversion = "1.0";
	return decode_validate(b->ev, b->err, b->errlen);
}

int ce_from_json(jr_event *ev, const jr_json *obj, const jr_limits *lim, char *err,
		 size_t errlen)
{
	if (!obj || obj->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	ce_b b;
	ce_begin(&b, ev, lim, obj->n, err, errlen);
	if (ce_version(&b, json_get(obj, "specversion")) < 0)
		return -1;
	for (size_t i = 0; i < obj->n; i++)
		if (ce_set(&b, obj->keys[i], obj->key_lens[i], obj->items[i]) < 0)
			return -1;
	if (ce_finish(&b) < 0)
		return -1;
	return ce_data(&b);
}

static const char *pair_get(const jr_kv *attrs, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(attrs[i].key, key) == 0)
			return attrs[i].value;
	return NULL;
}

static jr_json *str_node(jr_arena *a, const char *s)
{
	jr_json *v = json_new(a, JR_JSON_STRING);
	v->s = s;
	v->n = strlen(s);
	return v;
}

int ce_from_pairs(jr_event *ev, const jr_kv *attrs, size_t n, const char *ct,
		  const char *data, size_t len, const jr_limits *lim, char *err, size_t errlen)
{
	ce_b b;
	ce_begin(&b, ev, lim, n, err, errlen);
	const char *sv = pair_get(attrs, n, "specversion");
	if (ce_version(&b, sv ? str_node(&ev->arena, sv) : NULL) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *k = attrs[i].key;
		if (strcmp(k, "data") == 0 || strcmp(k, "data_base64") == 0) {
			snprintf(err, errlen, "%s is not an attribute in binary mode", k);
			return -1;
		}
		if (ce_set(&b, k, strlen(k), str_node(&ev->arena, attrs[i].value)) < 0)
			return -1;
	}
	if (ct)
		ev->datacontenttype = ct;
	if (ce_finish(&b) < 0)
		return -1;
	if (len == 0)
		return 0;
	if (b.encoding) {
		jr_json *v = json_new(&ev->arena, JR_JSON_STRING);
		v->s = data;
		v->n = len;
		b.data = v;
		return ce_data(&b);
	}
	return ce_bytes(&b, data, len, 1);
}

/* ce_json_subtype: whether sub[0..n) is "json" or "<name>+json". */
static int ce_json_subtype(const char *sub, size_t n)
{
	if (n < 4 || strncasecmp(sub + n - 4, "json", 4) != 0)
		return 0;
	if (n == 4)
		return 1;
	if (n == 5 || sub[n - 5] != '+')
		return 0;
	for (size_t i = 0; i < n - 5; i++) {
		char c = sub[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '-';
		if (!ok)
			return 0;
	}
	return 1;
}

int ce_is_json_type(const char *ct)
{
	const char *sub;
	if (strncasecmp(ct, "application/", 12) == 0)
		sub = ct + 12;
	else if (strncasecmp(ct, "text/", 5) == 0)
		sub = ct + 5;
	else
		return 0;
	size_t n = strcspn(sub, ";");
	return ce_json_subtype(sub, n);
}

int ce_type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);
	if (!ct || strncasecmp(ct, type, n) != 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static int tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t token_len(const char *s)
{
	size_t n = 0;
	while (tchar(s[n]))
		n++;
	return n;
}

/* media_type: type "/" subtype, then nothing, whitespace or parameters. */
static int media_type(const char *ct)
{
	size_t n = token_len(ct);
	if (n == 0 || ct[n] != '/')
		return 0;
	ct += n + 1;
	n = token_len(ct);
	if (n == 0)
		return 0;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

static int days_in(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : d[m - 1];
}

/* rfc3339_offset: "Z" or "+hh:mm" / "-hh:mm" and nothing after. */
static int rfc3339_offset(const char *s)
{
	int h, m;
	if (*s == 'Z' || *s == 'z')
		return s[1] == '\0';
	if (*s != '+' && *s != '-')
		return 0;
	return strlen(s) == 6 && digits(s + 1, 2, &h) && s[3] == ':' && digits(s + 4, 2, &m) &&
	       h <= 23 && m <= 59;
}

int ce_rfc3339(const char *s)
{
	int y, mo, d, h, mi, sec;
	if (strlen(s) < 20)
		return 0;
	if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return 0;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo) || h > 23 || mi > 59 || sec > 60)
		return 0;
	s += 19;
	if (*s == '.') {
		size_t n = strspn(s + 1, "0123456789");
		if (n == 0)
			return 0;
		s += 1 + n;
	}
	return rfc3339_offset(s);
}

static int ext_name_ok(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* int32_text: a JSON number that is an integer in the CloudEvents Integer range. */
static int int32_text(const char *s, size_t n)
{
	size_t i = s[0] == '-' ? 1 : 0;
	if (i == n || n - i > 10)
		return 0;
	long long v = 0;
	for (size_t k = i; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return 0;
		v = v * 10 + (s[k] - '0');
	}
	return i ? v <= 2147483648LL : v <= 2147483647LL;
}

/* check_text: an attribute value is valid UTF-8 without control characters (CloudEvents String). */
static int check_text(const char *name, const char *v, size_t n, char *err, size_t errlen)
{
	size_t at;
	utf8_flaw f = v ? utf8_text_check(v, n, &at) : UTF8_CLEAN;
	if (f == UTF8_CLEAN)
		return 0;
	snprintf(err, errlen, "attribute %s holds %s at byte %zu", name, utf8_flaw_text(f), at);
	return -1;
}

static int check_ext(const jr_ext *x, char *err, size_t errlen)
{
	if (!ext_name_ok(x->name)) {
		snprintf(err, errlen,
			 "invalid extension name \"%.64s\": only a-z, 0-9 and _ are allowed",
			 x->name);
		return -1;
	}
	const jr_json *v = x->value;
	switch (v->type) {
	case JR_JSON_STRING:
		return check_text(x->name, v->s, v->n, err, errlen);
	case JR_JSON_TRUE:
	case JR_JSON_FALSE:
		return 0;
	case JR_JSON_NUMBER:
		if (int32_text(v->s, v->n))
			return 0;
		snprintf(err, errlen, "extension %s: %.32s is not a 32-bit integer", x->name,
			 v->s);
		return -1;
	default:
		snprintf(err, errlen, "extension %s must be a string, integer or boolean",
			 x->name);
		return -1;
	}
}

static int check_required(const char *name, const char *v, char *err, size_t errlen)
{
	if (!v) {
		snprintf(err, errlen, "missing required attribute %s", name);
		return -1;
	}
	if (!*v) {
		snprintf(err, errlen, "attribute %s is empty", name);
		return -1;
	}
	return check_text(name, v, strlen(v), err, errlen);
}

static int check_optional(const char *name, const char *v, char *err, size_t errlen)
{
	if (v && !*v) {
		snprintf(err, errlen, "attribute %s is empty", name);
		return -1;
	}
	return v ? check_text(name, v, strlen(v), err, errlen) : 0;
}

static int check_formats(const jr_event *ev, char *err, size_t errlen)
{
	if (ev->time && !ce_rfc3339(ev->time)) {
		snprintf(err, errlen, "time \"%.64s\" is not an RFC 3339 timestamp", ev->time);
		return -1;
	}
	if (ev->datacontenttype && !media_type(ev->datacontenttype)) {
		snprintf(err, errlen, "datacontenttype \"%.64s\" is not a media type",
			 ev->datacontenttype);
		return -1;
	}
	return 0;
}

int decode_validate(const jr_event *ev, char *err, size_t errlen)
{
	if (check_required("specversion", ev->specversion, err, errlen) < 0)
		return -1;
	if (strcmp(ev->specversion, "1.0") != 0) {
		snprintf(err, errlen, "unknown specversion \"%.32s\"", ev->specversion);
		return -1;
	}
	if (check_required("id", ev->id, err, errlen) < 0 ||
	    check_required("source", ev->source, err, errlen) < 0 ||
	    check_required("type", ev->type, err, errlen) < 0 ||
	    check_optional("subject", ev->subject, err, errlen) < 0 ||
	    check_optional("time", ev->time, err, errlen) < 0 ||
	    check_optional("datacontenttype", ev->datacontenttype, err, errlen) < 0 ||
	    check_optional("dataschema", ev->dataschema, err, errlen) < 0 ||
	    check_formats(ev, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < ev->n_ext; i++)
		if (check_ext(&ev->ext[i], err, errlen) < 0)
			return -1;
	return 0;
}
