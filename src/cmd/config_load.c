/*
 * config_load.c — the YAML configuration (docs/configuration.md) into jr_config.
 *
 * libyaml loads the whole file into a node document (yaml_parser_load); the
 * loader then walks it against tables of the keys it accepts. Each table
 * entry names a key, how to read its value and where in the target struct it
 * goes, so the schema is visible in one place per mapping and every mapping
 * gets the same treatment: unknown keys, duplicates and type errors are
 * reported with the file, the line and the key's dotted path, and loading
 * goes on so that one run shows every error.
 *
 * The top-level `routes` are read last, whatever their place in the file:
 * a route's policies start from the global ones after the global overrides,
 * and its job name resolves against the global project and region.
 * docs/configuration.md lists every key accepted here.
 */
#include "config_load.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "errclass.h"
#include "jsonparse.h"
#include "route.h"
#include "runlimits.h"

#define CONFIG_MAX_BYTES (16u << 20)
#define PATH_MAX_LEN 256
#define DUR_MAX_MS ((int64_t)1000 * 86400 * 365 * 100) /* a century */

typedef struct loader {
	yaml_document_t doc;
	const char *file;
	jr_buf *errs;
	int nerr;
	jr_config *c;
	const char *route;        /* "route 'x'" while a route is read, else NULL */
	char route_label[128];
	yaml_node_t *routes;      /* read after everything else */
	yaml_node_t *unrouted;
	int job_line;
	int name_given;           /* the route has a name key, valid or not */
} loader;

typedef struct field field;
typedef void (*field_fn)(loader *l, const field *f, yaml_node_t *v, void *base,
			 const char *path);

typedef enum ftype {
	F_STR,      /* char *; arg 1: empty allowed */
	F_INT,      /* int or int64_t by width, in [min, max] */
	F_SIZE,     /* parse_size into int64_t or size_t, in [min, max] */
	F_DUR,      /* parse_duration_ms into int64_t, in [min, max] */
	F_FRACTION, /* double in (0, 1] */
	F_POSNUM,   /* double > 0 */
	F_STRLIST,  /* char ** at off, size_t count at arg; non-empty list */
	F_MAP,      /* sub-table on the same base; `after` checks the whole */
	F_FN,       /* custom reader */
} ftype;

struct field {
	const char *key;
	ftype type;
	size_t off;
	size_t width;
	int64_t min, max;
	size_t arg;
	const field *sub;
	field_fn fn;
	field_fn after;
	const char *(*check)(const char *s);
};

#define FSTR(k, T, m, chk) {k, F_STR, offsetof(T, m), 0, 0, 0, 0, NULL, NULL, NULL, chk}
#define FINT(k, T, m, lo, hi) {k, F_INT, offsetof(T, m), sizeof(((T *)0)->m), lo, hi, 0, NULL, NULL, NULL, NULL}
#define FSIZE(k, T, m, lo, hi) {k, F_SIZE, offsetof(T, m), sizeof(((T *)0)->m), lo, hi, 0, NULL, NULL, NULL, NULL}
#define FDUR(k, T, m, lo, hi) {k, F_DUR, offsetof(T, m), sizeof(((T *)0)->m), lo, hi, 0, NULL, NULL, NULL, NULL}
#define FNUM(k, ty, T, m) {k, ty, offsetof(T, m), 0, 0, 0, 0, NULL, NULL, NULL, NULL}
#define FLIST(k, T, m, n) {k, F_STRLIST, offsetof(T, m), 0, 0, 0, offsetof(T, n), NULL, NULL, NULL, NULL}
#define FMAP(k, sub, after) {k, F_MAP, 0, 0, 0, 0, 0, sub, NULL, after, NULL}
#define FFN(k, fn, off, arg) {k, F_FN, off, 0, 0, 0, arg, NULL, fn, NULL, NULL}
#define FEND {NULL, F_STR, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL}

/* ---- errors ---- */

static int node_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 0;
}

static void verr(loader *l, int line, const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static void verr(loader *l, int line, const char *prefix, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	l->nerr++;
	buf_printf(l->errs, "%s:%d: %s%s\n", l->file, line, prefix, msg);
}

/* err_at: "FILE:LINE: message". */
static void err_at(loader *l, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void err_at(loader *l, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verr(l, line, "", fmt, ap);
	va_end(ap);
}

/* key_err: "FILE:LINE: [route 'x': ]PATH: message". */
static void key_err(loader *l, const yaml_node_t *n, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void key_err(loader *l, const yaml_node_t *n, const char *path, const char *fmt, ...)
{
	char prefix[PATH_MAX_LEN + 160];
	snprintf(prefix, sizeof prefix, "%s%s%s: ", l->route ? l->route : "",
		 l->route ? ": " : "", path);
	va_list ap;
	va_start(ap, fmt);
	verr(l, node_line(n), prefix, fmt, ap);
	va_end(ap);
}

/* ---- nodes and scalars ---- */

static yaml_node_t *node(loader *l, int i)
{
	return yaml_document_get_node(&l->doc, i);
}

static int is_null(const yaml_node_t *n)
{
	if (!n)
		return 1;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *s = (const char *)n->data.scalar.value;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

static const char *kind_name(const yaml_node_t *n)
{
	return n->type == YAML_MAPPING_NODE ? "a mapping" :
	       n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

/* get_str: the scalar value of n, or NULL after reporting why not. */
static const char *get_str(loader *l, yaml_node_t *n, const char *path, int allow_empty)
{
	if (!n || is_null(n)) {
		key_err(l, n, path, "missing value");
		return NULL;
	}
	if (n->type != YAML_SCALAR_NODE) {
		key_err(l, n, path, "expected a single value, got %s", kind_name(n));
		return NULL;
	}
	const char *s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length) {
		key_err(l, n, path, "contains a NUL byte");
		return NULL;
	}
	if (!*s && !allow_empty) {
		key_err(l, n, path, "must not be empty");
		return NULL;
	}
	return s;
}

static void join(char *out, const char *path, const char *key)
{
	snprintf(out, PATH_MAX_LEN, "%s%s%s", path, *path ? "." : "", key);
}

/* ---- value syntax ---- */

static int parse_uint(const char **pp, int64_t *v, int *digits)
{
	const char *p = *pp;
	int64_t x = 0;
	int n = 0;
	while (*p >= '0' && *p <= '9') {
		if (x > (INT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (*p++ - '0');
		n++;
	}
	*pp = p;
	*v = x;
	if (digits)
		*digits = n;
	return n ? 0 : -1;
}

int64_t parse_duration_ms(const char *s)
{
	static const struct {
		const char *name;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	if (!s || !*s)
		return -1;
	int64_t total = 0;
	const char *p = s;
	while (*p) {
		int64_t ip, frac = 0;
		int fd = 0;
		if (parse_uint(&p, &ip, NULL) < 0 || ip > 1000000000000LL)
			return -1;
		if (*p == '.') {
			p++;
			if (parse_uint(&p, &frac, &fd) < 0 || fd > 9)
				return -1;
		}
		int64_t unit = 0;
		for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
			size_t un = strlen(units[i].name);
			if (!strncmp(p, units[i].name, un)) {
				unit = units[i].ms;
				p += un;
				break;
			}
		}
		if (!unit) {
			if (p != s + strspn(s, "0123456789.") || *p)
				return -1; /* a bare number is seconds, and only alone */
			unit = 1000;
		}
		int64_t scale = 1;
		for (int i = 0; i < fd; i++)
			scale *= 10;
		total += ip * unit + frac * unit / scale;
		if (total > DUR_MAX_MS)
			return -1;
	}
	return total;
}

int64_t parse_size(const char *s)
{
	static const struct {
		const char *name;
		int64_t mult;
	} units[] = {{"", 1},
		     {"B", 1},
		     {"KiB", 1LL << 10},
		     {"MiB", 1LL << 20},
		     {"GiB", 1LL << 30},
		     {"TiB", 1LL << 40},
		     {"KB", 1000},
		     {"kB", 1000},
		     {"MB", 1000000},
		     {"GB", 1000000000},
		     {"TB", 1000000000000LL}};
	if (!s)
		return -1;
	const char *p = s;
	int64_t v;
	if (parse_uint(&p, &v, NULL) < 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].name) == 0) {
			if (v > INT64_MAX / units[i].mult)
				return -1;
			return v * units[i].mult;
		}
	}
	return -1;
}

static int parse_int(const char *s, int64_t *v)
{
	int neg = *s == '-';
	const char *p = s + neg;
	if (parse_uint(&p, v, NULL) < 0 || *p)
		return -1;
	if (neg)
		*v = -*v;
	return 0;
}

static int parse_double(const char *s, double *v)
{
	if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
		return -1;
	char *end;
	errno = 0;
	*v = strtod(s, &end);
	return (*end || errno || !isfinite(*v)) ? -1 : 0;
}

const char *format_duration_ms(int64_t ms, char *out, size_t n)
{
	if (ms && ms % 3600000 == 0)
		snprintf(out, n, "%lldh", (long long)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(out, n, "%lldm", (long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, n, "%llds", (long long)(ms / 1000));
	else
		snprintf(out, n, "%lldms", (long long)ms);
	return out;
}

/* ---- checks of string values: NULL when fine, else what is wrong ---- */

static int id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == ':';
}

static const char *check_id(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!id_char(*p))
			return "may hold only letters, digits, '-', '_', '.' and ':'";
	return NULL;
}

static const char *check_route_name(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!id_char(*p) || *p == ':')
			return "a route name may hold only letters, digits, '-', '_' and '.'";
	return NULL;
}

/* resource_ok: "projects/P<mid>N", P and N non-empty, without '/' or blanks. */
static int resource_ok(const char *s, const char *mid)
{
	if (strncmp(s, "projects/", 9) != 0)
		return 0;
	s += 9;
	size_t p = strcspn(s, "/ \t\r\n");
	size_t ml = strlen(mid);
	if (!p || strncmp(s + p, mid, ml) != 0)
		return 0;
	s += p + ml;
	return *s && strcspn(s, "/ \t\r\n") == strlen(s);
}

static const char *check_topic(const char *s)
{
	return resource_ok(s, "/topics/") ? NULL : "expected projects/PROJECT/topics/TOPIC";
}

static const char *check_subscription(const char *s)
{
	return resource_ok(s, "/subscriptions/") ? NULL :
	       "expected projects/PROJECT/subscriptions/SUBSCRIPTION";
}

static const char *check_url(const char *s)
{
	return (!strncmp(s, "https://", 8) || !strncmp(s, "http://", 7)) ? NULL :
	       "expected an http:// or https:// URL";
}

/* ---- the generic walker ---- */

static void store_int(void *p, size_t width, int64_t v)
{
	if (width == sizeof(int)) {
		int x = (int)v;
		memcpy(p, &x, sizeof x);
	} else {
		memcpy(p, &v, sizeof v);
	}
}

static int range_ok(loader *l, yaml_node_t *v, const char *path, const field *f, int64_t x,
		    const char *text)
{
	if (x >= f->min && x <= f->max)
		return 1;
	if (f->type == F_DUR) {
		char lo[32], hi[32];
		if (x < f->min)
			key_err(l, v, path, "must be at least %s, got '%s'",
				format_duration_ms(f->min, lo, sizeof lo), text);
		else
			key_err(l, v, path, "must be at most %s, got '%s'",
				format_duration_ms(f->max, hi, sizeof hi), text);
	} else {
		key_err(l, v, path, "must be from %lld to %lld, got '%s'", (long long)f->min,
			(long long)f->max, text);
	}
	return 0;
}

static void read_strlist(loader *l, const field *f, yaml_node_t *v, void *base,
			 const char *path);
static void walk(loader *l, yaml_node_t *map, const field *tab, void *base, const char *path);

static void read_scalar(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	char *dst = (char *)base + f->off;
	const char *s = get_str(l, v, path, f->type == F_STR && f->arg);
	if (!s)
		return;
	int64_t x = 0;
	double d = 0;
	const char *why;
	switch (f->type) {
	case F_STR: {
		if (f->check && (why = f->check(s))) {
			key_err(l, v, path, "%s, got '%s'", why, s);
			return;
		}
		/* memcpy: the member may be a char * or a const char * */
		char *old, *copy = jr_strdup(s);
		memcpy(&old, dst, sizeof old);
		free(old);
		memcpy(dst, &copy, sizeof copy);
		return;
	}
	case F_INT:
		if (parse_int(s, &x) < 0) {
			key_err(l, v, path, "expected an integer, got '%s'", s);
			return;
		}
		break;
	case F_SIZE:
		if ((x = parse_size(s)) < 0) {
			key_err(l, v, path, "invalid size '%s' (use 512, 64KiB, 10MiB, 1GiB)", s);
			return;
		}
		break;
	case F_DUR:
		if ((x = parse_duration_ms(s)) < 0) {
			key_err(l, v, path, "invalid duration '%s' (use 500ms, 10s, 5m, 1h)", s);
			return;
		}
		break;
	case F_FRACTION:
	case F_POSNUM:
		if (parse_double(s, &d) < 0 || d <= 0 || (f->type == F_FRACTION && d > 1)) {
			key_err(l, v, path, "expected a number %s, got '%s'",
				f->type == F_FRACTION ? "above 0 and at most 1" : "above 0", s);
			return;
		}
		memcpy(dst, &d, sizeof d);
		return;
	default:
		return;
	}
	if (range_ok(l, v, path, f, x, s))
		store_int(dst, f->width, x);
}

static void read_field(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	switch (f->type) {
	case F_MAP:
		if (is_null(v))
			return;
		walk(l, v, f->sub, base, path);
		if (f->after && v->type == YAML_MAPPING_NODE)
			f->after(l, f, v, base, path);
		return;
	case F_STRLIST:
		read_strlist(l, f, v, base, path);
		return;
	case F_FN:
		f->fn(l, f, v, base, path);
		return;
	default:
		read_scalar(l, f, v, base, path);
	}
}

static void unknown_key(loader *l, const yaml_node_t *k, const char *path)
{
	err_at(l, node_line(k), "unknown key '%s'%s%s", path, l->route ? " in " : "",
	       l->route ? l->route : "");
}

/* map_key: the key of a mapping pair as a string, or NULL after reporting it. */
static const char *map_key(loader *l, yaml_node_t *k, const char *path)
{
	if (!k || k->type != YAML_SCALAR_NODE || strlen((char *)k->data.scalar.value) !=
							 k->data.scalar.length) {
		key_err(l, k, *path ? path : "(top level)", "a key must be a plain string");
		return NULL;
	}
	return (const char *)k->data.scalar.value;
}

/* is_map: 1 for a mapping; reports anything else but null (an empty mapping). */
static int is_map(loader *l, yaml_node_t *n, const char *path)
{
	if (n && n->type == YAML_MAPPING_NODE)
		return 1;
	if (!is_null(n))
		key_err(l, n, path, "expected a mapping, got %s", kind_name(n));
	return 0;
}

static void walk(loader *l, yaml_node_t *map, const field *tab, void *base, const char *path)
{
	if (!is_map(l, map, path))
		return;
	uint64_t seen = 0;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
		const char *key = map_key(l, k, path);
		if (!key)
			continue;
		char sub[PATH_MAX_LEN];
		join(sub, path, key);
		size_t i = 0;
		while (tab[i].key && strcmp(tab[i].key, key) != 0)
			i++;
		if (!tab[i].key) {
			unknown_key(l, k, sub);
		} else if (seen & (1ULL << i)) {
			key_err(l, k, sub, "duplicate key");
		} else {
			seen |= 1ULL << i;
			read_field(l, &tab[i], v, base, sub);
		}
	}
}

/* each_pair: calls fn for every pair of a free-form mapping (env, extensions, ...), rejecting duplicates. */
typedef void (*pair_fn)(loader *l, const field *f, const char *key, yaml_node_t *k,
			yaml_node_t *v, void *base, const char *path);

static void each_pair(loader *l, const field *f, yaml_node_t *map, void *base, const char *path,
		      pair_fn fn)
{
	if (!is_map(l, map, path))
		return;
	yaml_node_pair_t *start = map->data.mapping.pairs.start;
	for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(l, p->key);
		const char *key = map_key(l, k, path);
		if (!key)
			continue;
		char sub[PATH_MAX_LEN];
		join(sub, path, key);
		int dup = 0;
		for (yaml_node_pair_t *q = start; q < p && !dup; q++) {
			yaml_node_t *qk = node(l, q->key);
			dup = qk && qk->type == YAML_SCALAR_NODE &&
			      !strcmp((char *)qk->data.scalar.value, key);
		}
		if (dup)
			key_err(l, k, sub, "duplicate key");
		else
			fn(l, f, key, k, node(l, p->value), base, sub);
	}
}

static void read_strlist(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	char ***list = (char ***)((char *)base + f->off);
	size_t *n = (size_t *)((char *)base + f->arg);
	if (!v || v->type != YAML_SEQUENCE_NODE) {
		key_err(l, v, path, "expected a list of strings");
		return;
	}
	yaml_node_item_t *it = v->data.sequence.items.start;
	size_t cnt = (size_t)(v->data.sequence.items.top - it);
	*list = jr_calloc(cnt ? cnt : 1, sizeof **list); /* set even when empty: one error is enough */
	*n = 0;
	if (cnt == 0) {
		key_err(l, v, path, "must not be an empty list");
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		char sub[PATH_MAX_LEN];
		snprintf(sub, sizeof sub, "%s[%zu]", path, i);
		const char *s = get_str(l, node(l, it[i]), sub, 1);
		if (s)
			(*list)[(*n)++] = jr_strdup(s);
	}
}

/* ---- policies ---- */

static void read_action(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	const char *s = get_str(l, v, path, 0);
	if (!s)
		return;
	int a = action_parse(s);
	if (a < 0)
		key_err(l, v, path, "unknown action '%s' (retry, dead_letter or drop)", s);
	else
		((jr_policy *)base)->action = (jr_action)a;
}

static void policy_after(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	const jr_policy *p = base;
	if (p->initial_ms > p->max_ms) {
		char a[32], b[32];
		key_err(l, v, path, "initial_backoff %s is greater than max_backoff %s",
			format_duration_ms(p->initial_ms, a, sizeof a), format_duration_ms(p->max_ms, b, sizeof b));
	}
}

static const field policy_fields[] = {
	FFN("action", read_action, 0, 0),
	FINT("max_attempts", jr_policy, max_attempts, 1, 1000000),
	FDUR("initial_backoff", jr_policy, initial_ms, 0, DUR_MAX_MS),
	FDUR("max_backoff", jr_policy, max_ms, 0, DUR_MAX_MS),
	FEND,
};

static void read_policy_class(loader *l, const field *f, const char *key, yaml_node_t *k,
			      yaml_node_t *v, void *base, const char *path)
{
	int cls = errclass_parse(key);
	if (cls < 0) {
		char known[256] = "";
		for (int i = 0; i < JR_ERR_CREDENTIALS; i++) { /* credentials has no policy */
			strcat(known, i ? ", " : "");
			strcat(known, errclass_name((jr_errclass)i));
		}
		key_err(l, k, path, "unknown error class '%s' (one of %s)", key, known);
		return;
	}
	if (cls == JR_ERR_CREDENTIALS) {
		key_err(l, k, path, "class 'credentials' has no policy: such events are always held "
				    "until an access token can be had");
		return;
	}
	static const field one = FMAP("", policy_fields, policy_after);
	read_field(l, &one, v, &((jr_policies *)base)->cls[cls], path);
}

static void read_policies(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	each_pair(l, f, v, (char *)base + f->off, path, read_policy_class);
}

/* ---- match conditions ---- */

static void strmatch_after(loader *l, const field *f, yaml_node_t *v, void *base,
			   const char *path)
{
	const jr_strmatch *m = base;
	if (!m->exact && !m->prefix && !m->suffix && !m->any_of)
		key_err(l, v, path, "a condition needs exact, prefix, suffix or any_of");
}

static const field strmatch_fields[] = {
	{"exact", F_STR, offsetof(jr_strmatch, exact), 0, 0, 0, 1, NULL, NULL, NULL, NULL},
	{"prefix", F_STR, offsetof(jr_strmatch, prefix), 0, 0, 0, 1, NULL, NULL, NULL, NULL},
	{"suffix", F_STR, offsetof(jr_strmatch, suffix), 0, 0, 0, 1, NULL, NULL, NULL, NULL},
	FLIST("any_of", jr_strmatch, any_of, n_any_of),
	FEND,
};

static void add_cond(loader *l, jr_route *r, jr_cond_where where, const char *key,
		     yaml_node_t *v, const char *path)
{
	jr_cond k = {.where = where};
	if (v && v->type == YAML_MAPPING_NODE) {
		static const field one = FMAP("", strmatch_fields, strmatch_after);
		read_field(l, &one, v, &k.m, path);
	} else {
		const char *s = get_str(l, v, path, 1);
		if (!s)
			return;
		k.m.exact = jr_strdup(s);
	}
	k.key = jr_strdup(key);
	r->conds = jr_realloc(r->conds, (r->n_conds + 1) * sizeof *r->conds);
	r->conds[r->n_conds++] = k;
}

static int is_ctx_attr(const char *s)
{
	static const char *const names[] = {"id", "source", "type", "subject", "time",
					    "specversion", "datacontenttype", "dataschema"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(s, names[i]))
			return 1;
	return 0;
}

static void cond_attr(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	add_cond(l, base, JR_COND_ATTR, f->key, v, path);
}

static void cond_ext(loader *l, const field *f, const char *key, yaml_node_t *k,
		     yaml_node_t *v, void *base, const char *path)
{
	if (strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(key) || !*key ||
	    is_ctx_attr(key)) {
		key_err(l, k, path, "an extension name is lower-case letters, digits and '_', "
				    "and not a context attribute");
		return;
	}
	add_cond(l, base, JR_COND_ATTR, key, v, path);
}

static void cond_msg_attr(loader *l, const field *f, const char *key, yaml_node_t *k,
			  yaml_node_t *v, void *base, const char *path)
{
	if (!*key)
		key_err(l, k, path, "a message attribute name must not be empty");
	else
		add_cond(l, base, JR_COND_MSG_ATTR, key, v, path);
}

static int pointer_ok(const char *p)
{
	if (*p && *p != '/')
		return 0;
	for (; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return 0;
	return 1;
}

/* cond_pointer: a condition on a JSON Pointer into the data or the payload. */
static void cond_pointer(loader *l, jr_cond_where where, const char *key, yaml_node_t *k,
			 yaml_node_t *v, void *base, const char *path)
{
	if (!pointer_ok(key))
		key_err(l, k, path, "'%s' is not a JSON Pointer (\"/a/0/b\", ~0 for ~, ~1 for /)",
			key);
	else
		add_cond(l, base, where, key, v, path);
}

static void cond_data(loader *l, const field *f, const char *key, yaml_node_t *k,
		      yaml_node_t *v, void *base, const char *path)
{
	cond_pointer(l, JR_COND_DATA, key, k, v, base, path);
}

static void cond_payload(loader *l, const field *f, const char *key, yaml_node_t *k,
			 yaml_node_t *v, void *base, const char *path)
{
	cond_pointer(l, JR_COND_PAYLOAD, key, k, v, base, path);
}

static void cond_map(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	static const pair_fn fns[] = {cond_ext, cond_msg_attr, cond_data, cond_payload};
	each_pair(l, f, v, base, path, fns[f->arg]);
}

static const field match_fields[] = {
	FFN("type", cond_attr, 0, 0),
	FFN("source", cond_attr, 0, 0),
	FFN("subject", cond_attr, 0, 0),
	FFN("id", cond_attr, 0, 0),
	FFN("specversion", cond_attr, 0, 0),
	FFN("datacontenttype", cond_attr, 0, 0),
	FFN("dataschema", cond_attr, 0, 0),
	FFN("time", cond_attr, 0, 0),
	FFN("extensions", cond_map, 0, 0),
	FFN("attributes", cond_map, 0, 1),
	FFN("data", cond_map, 0, 2),
	FFN("payload", cond_map, 0, 3),
	FEND,
};

/* ---- filters: (Subscriptions API dialects; dispatch/filter.h) ---- */

static void read_filter(loader *l, yaml_node_t *v, jr_filter *f, const char *path, int depth);

/* filter_path: "path.key" or "path[i]" (key NULL) into out[PATH_MAX_LEN], cut to fit. */
static void filter_path(char *out, const char *path, const char *key, size_t i)
{
	char tail[32];
	size_t pn = strlen(path);
	if (!key)
		snprintf(tail, sizeof tail, "[%zu]", i);
	const char *t = key ? key : tail;
	size_t tn = strlen(t), dot = key && pn ? 1 : 0;
	if (pn > PATH_MAX_LEN / 2)
		pn = PATH_MAX_LEN / 2;
	if (tn > PATH_MAX_LEN - pn - dot - 1)
		tn = PATH_MAX_LEN - pn - dot - 1;
	memcpy(out, path, pn);
	out[pn] = '.';
	memcpy(out + pn + dot, t, tn);
	out[pn + dot + tn] = '\0';
}

/* filter_attrs: exact/prefix/suffix: a mapping of attribute names to non-empty strings. */
static void filter_attrs(loader *l, yaml_node_t *v, jr_filter *f, const char *path)
{
	if (!v || v->type != YAML_MAPPING_NODE || v->data.mapping.pairs.top == v->data.mapping.pairs.start) {
		key_err(l, v, path, "expected a mapping of attribute names to strings");
		return;
	}
	yaml_node_pair_t *p0 = v->data.mapping.pairs.start;
	f->attrs = jr_calloc((size_t)(v->data.mapping.pairs.top - p0), sizeof *f->attrs);
	for (yaml_node_pair_t *p = p0; p < v->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(l, p->key);
		const char *key = map_key(l, k, path), *s;
		char sub[PATH_MAX_LEN];
		if (!key)
			continue;
		filter_path(sub, path, key, 0);
		if (!*key || strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(key)) {
			key_err(l, k, sub, "an attribute name is lower-case letters and digits");
			continue;
		}
		if ((s = get_str(l, node(l, p->value), sub, 0)))
			filter_attr_set(&f->attrs[f->n_attrs++], key, s);
	}
}

/* filter_list: all/any (and a route's filters: when top): a list of filters. */
static void filter_list(loader *l, yaml_node_t *v, jr_filter **out, size_t *n, const char *path,
			int depth, int top)
{
	if (!v || v->type != YAML_SEQUENCE_NODE) {
		key_err(l, v, path, "expected a list of filters");
		return;
	}
	yaml_node_item_t *it = v->data.sequence.items.start;
	size_t cnt = (size_t)(v->data.sequence.items.top - it);
	if (!cnt && !top)
		key_err(l, v, path, "must not be an empty list");
	*out = jr_calloc(cnt ? cnt : 1, sizeof **out);
	for (size_t i = 0; i < cnt; i++) {
		char sub[PATH_MAX_LEN];
		filter_path(sub, path, NULL, i);
		read_filter(l, node(l, it[i]), &(*out)[(*n)++], sub, depth + 1);
	}
}

static void filter_sql(loader *l, yaml_node_t *v, jr_filter *f, const char *path)
{
	const char *s = get_str(l, v, path, 0);
	cesql_parse_error err;
	if (!s)
		return;
	if (!(f->sql = cesql_compile(s, &err))) {
		key_err(l, v, path, "%s at position %zu", err.message, err.position);
		return;
	}
	if (cesql_unknown_function(f->sql))
		key_err(l, v, path, "no built-in function %s takes these arguments",
			cesql_unknown_function(f->sql));
}

static const char *const filter_dialects[] = {"exact", "prefix", "suffix", "all", "any", "not",
					      "sql", "cesql"};

/* read_filter: one filter: a mapping with exactly one dialect key. */
static void read_filter(loader *l, yaml_node_t *v, jr_filter *f, const char *path, int depth)
{
	if (depth > JR_FILTER_MAX_DEPTH) {
		key_err(l, v, path, "filters nest deeper than %d levels", JR_FILTER_MAX_DEPTH);
		return;
	}
	if (!v || v->type != YAML_MAPPING_NODE ||
	    v->data.mapping.pairs.top - v->data.mapping.pairs.start != 1) {
		key_err(l, v, path, "a filter is a mapping with one key: exact, prefix, suffix, "
				    "all, any, not or sql (or cesql)");
		return;
	}
	yaml_node_pair_t *p = v->data.mapping.pairs.start;
	const char *key = map_key(l, node(l, p->key), path);
	size_t d = 0;
	while (key && d < sizeof filter_dialects / sizeof filter_dialects[0] &&
	       strcmp(key, filter_dialects[d]))
		d++;
	char sub[PATH_MAX_LEN];
	filter_path(sub, path, key ? key : "?", 0);
	yaml_node_t *val = node(l, p->value);
	f->kind = d < JR_FILTER_SQL ? (jr_filter_kind)d : JR_FILTER_SQL;
	if (!key)
		return;
	if (d == sizeof filter_dialects / sizeof filter_dialects[0])
		key_err(l, node(l, p->key), sub, "unknown filter dialect (exact, prefix, suffix, "
						 "all, any, not, sql or cesql)");
	else if (d <= JR_FILTER_SUFFIX)
		filter_attrs(l, val, f, sub);
	else if (d == JR_FILTER_ALL || d == JR_FILTER_ANY)
		filter_list(l, val, &f->kids, &f->n_kids, sub, depth, 0);
	else if (d == JR_FILTER_NOT) {
		f->kids = jr_calloc(1, sizeof *f->kids);
		f->n_kids = 1;
		read_filter(l, val, f->kids, sub, depth + 1);
	} else
		filter_sql(l, val, f, sub);
}

static void read_filters(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	jr_route *r = base;
	filter_list(l, v, &r->filters, &r->n_filters, path, 0, 1);
}

/* ---- route overrides ---- */

static jr_tmpl *compile(loader *l, yaml_node_t *v, const char *path)
{
	const char *s = get_str(l, v, path, 1);
	if (!s)
		return NULL;
	char *why = NULL;
	jr_tmpl *t = tmpl_compile(s, &why);
	if (!t) {
		key_err(l, v, path, "%s", why);
		free(why);
	}
	return t;
}

static void read_job(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	jr_route *r = base;
	l->job_line = node_line(v);
	if (!get_str(l, v, path, 0))
		return;
	r->job = compile(l, v, path);
}

static int env_name_ok(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!id_char(*s) || *s == ':')
			return 0;
	return 1;
}

static int env_reserved(const char *s)
{
	static const char *const names[] = {"CE_ID",   "CE_SOURCE",      "CE_TYPE",     "CE_SUBJECT",
					    "CE_TIME", "JOBRELAY_ROUTE", "JOBRELAY_KEY"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strcmp(s, names[i]))
			return 1;
	return 0;
}

static void env_one(loader *l, const field *f, const char *key, yaml_node_t *k,
		    yaml_node_t *v, void *base, const char *path)
{
	jr_route *r = base;
	if (!env_name_ok(key)) {
		key_err(l, k, path, "an env name is letters, digits, '_', '-' and '.', "
				    "not starting with a digit");
		return;
	}
	if (env_reserved(key)) {
		key_err(l, k, path, "%s is set by jobrelay itself", key);
		return;
	}
	if (strlen(key) > JR_RUN_ENV_NAME_MAX) {
		key_err(l, k, path, "the name is %zu bytes; Cloud Run allows at most %d",
			strlen(key), JR_RUN_ENV_NAME_MAX);
		return;
	}
	jr_tmpl *t = compile(l, v, path);
	if (!t)
		return;
	if (tmpl_is_literal(t) && strlen(tmpl_source(t)) > JR_RUN_ENV_VALUE_MAX) {
		key_err(l, v, path, "the value is %zu bytes; Cloud Run allows at most %d bytes "
				    "in an env value", strlen(tmpl_source(t)), JR_RUN_ENV_VALUE_MAX);
		tmpl_free(t);
		return;
	}
	r->env = jr_realloc(r->env, (r->n_env + 1) * sizeof *r->env);
	r->env[r->n_env].name = jr_strdup(key);
	r->env[r->n_env++].value = t;
}

static void read_env(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	jr_route *r = base;
	each_pair(l, f, v, base, path, env_one);
	if (r->n_env > JR_RUN_ENV_COUNT_MAX - JR_RUN_AUTO_ENV_MAX)
		key_err(l, v, path, "%zu variables and jobrelay's %d are more than the %d Cloud Run "
				    "allows in a container", r->n_env, JR_RUN_AUTO_ENV_MAX,
			JR_RUN_ENV_COUNT_MAX);
}

static void read_args(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	jr_route *r = base;
	if (!v || v->type != YAML_SEQUENCE_NODE) {
		key_err(l, v, path, "expected a list of strings");
		return;
	}
	yaml_node_item_t *it = v->data.sequence.items.start;
	size_t cnt = (size_t)(v->data.sequence.items.top - it);
	r->has_args = 1;
	if (cnt > JR_RUN_ARGS_COUNT_MAX)
		key_err(l, v, path, "%zu args; Cloud Run allows at most %d in a container", cnt,
			JR_RUN_ARGS_COUNT_MAX);
	r->args = jr_calloc(cnt ? cnt : 1, sizeof *r->args);
	for (size_t i = 0; i < cnt; i++) {
		char sub[PATH_MAX_LEN];
		snprintf(sub, sizeof sub, "%s[%zu]", path, i);
		jr_tmpl *t = compile(l, node(l, it[i]), sub);
		if (t)
			r->args[r->n_args++] = t;
	}
}

static void read_ack(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	const char *s = get_str(l, v, path, 0);
	if (!s)
		return;
	if (!strcmp(s, "on_dispatch"))
		((jr_route *)base)->ack = JR_ACK_ON_DISPATCH;
	else if (!strcmp(s, "on_completion"))
		((jr_route *)base)->ack = JR_ACK_ON_COMPLETION;
	else
		key_err(l, v, path, "expected on_dispatch or on_completion, got '%s'", s);
}

static void read_payload(loader *l, const field *f, yaml_node_t *v, void *base,
			 const char *path)
{
	const char *s = get_str(l, v, path, 0);
	jr_payload_conf *pc = &((jr_route *)base)->payload;
	if (!s)
		return;
	if (!strcmp(s, "none"))
		pc->mode = JR_PAYLOAD_NONE;
	else if (!strcmp(s, "json"))
		pc->mode = JR_PAYLOAD_JSON;
	else if (!strcmp(s, "auto"))
		pc->mode = JR_PAYLOAD_AUTO;
	else
		key_err(l, v, path, "expected none, json or auto, got '%s'", s);
}

static void read_match(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	walk(l, v, match_fields, base, path);
}

static void rate_after(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	jr_route *r = base;
	if (r->rate_per_second <= 0) {
		key_err(l, v, path, "per_second is required");
		return;
	}
	if (r->rate_burst == 0) {
		double b = ceil(r->rate_per_second);
		r->rate_burst = b > INT_MAX ? INT_MAX : (int)b;
	}
}

static const field override_fields[] = {
	FFN("env", read_env, 0, 0),
	FFN("args", read_args, 0, 0),
	FINT("task_count", jr_route, task_count, 1, JR_RUN_TASK_COUNT_MAX),
	FDUR("timeout", jr_route, timeout_ms, 1, JR_RUN_TIMEOUT_MAX_MS),
	FSTR("container", jr_route, container, NULL),
	FEND,
};

static const field rate_fields[] = {
	FNUM("per_second", F_POSNUM, jr_route, rate_per_second),
	FINT("burst", jr_route, rate_burst, 1, INT_MAX),
	FEND,
};

static const field route_fields[] = {
	FSTR("name", jr_route, name, check_route_name),
	FFN("job", read_job, 0, 0),
	FSTR("project", jr_route, project, check_id),
	FSTR("region", jr_route, region, check_id),
	FFN("match", read_match, 0, 0),
	FFN("filters", read_filters, 0, 0),
	FMAP("overrides", override_fields, NULL),
	FFN("policies", read_policies, offsetof(jr_route, policies), 0),
	FMAP("rate_limit", rate_fields, rate_after),
	FFN("ack", read_ack, 0, 0),
	FFN("payload", read_payload, 0, 0),
	FEND,
};

/* ---- routes ---- */

/* set_route_label: names the route in messages by its name when it has a usable one. */
static void set_route_label(loader *l, yaml_node_t *v, size_t idx)
{
	snprintf(l->route_label, sizeof l->route_label, "route #%zu", idx + 1);
	l->name_given = 0;
	if (v->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
		     p++) {
			yaml_node_t *k = node(l, p->key), *n = node(l, p->value);
			if (k->type != YAML_SCALAR_NODE || strcmp((char *)k->data.scalar.value, "name"))
				continue;
			l->name_given = 1;
			if (n->type == YAML_SCALAR_NODE && !is_null(n) &&
			    !check_route_name((char *)n->data.scalar.value))
				snprintf(l->route_label, sizeof l->route_label, "route '%.100s'",
					 (char *)n->data.scalar.value);
			break;
		}
	}
	l->route = l->route_label;
}

static void route_checks(loader *l, const jr_route *r, size_t idx)
{
	jr_config *c = l->c;
	if (!r->name && !l->name_given) /* else reading it said what was wrong */
		err_at(l, r->line, "%s: missing key 'name'", l->route);
	for (size_t i = 0; r->name && i < idx; i++) {
		if (c->routes[i].name && !strcmp(c->routes[i].name, r->name)) {
			err_at(l, r->line, "%s: duplicate route name (first at line %d)", l->route,
			       c->routes[i].line);
			break;
		}
	}
	if (!r->job) {
		if (!l->job_line) /* else compile already said what was wrong */
			err_at(l, r->line, "%s: missing key 'job'", l->route);
		return;
	}
	char *why = NULL;
	if (route_job_check(c, r, &why) < 0) {
		err_at(l, l->job_line, "%s: job: %s", l->route, why);
		free(why);
	}
}

/* payload_reader: what in r reads the payload (into what[n]), or NULL when nothing does. */
static const char *payload_reader(const jr_route *r, char *what, size_t n)
{
	for (size_t i = 0; i < r->n_conds; i++)
		if (r->conds[i].where == JR_COND_PAYLOAD)
			return "match.payload";
	if (r->job && tmpl_uses_payload(r->job))
		return "job";
	for (size_t i = 0; i < r->n_env; i++) {
		if (r->env[i].value && tmpl_uses_payload(r->env[i].value)) {
			snprintf(what, n, "overrides.env.%s", r->env[i].name);
			return what;
		}
	}
	for (size_t i = 0; i < r->n_args; i++) {
		if (tmpl_uses_payload(r->args[i])) {
			snprintf(what, n, "overrides.args[%zu]", i);
			return what;
		}
	}
	return NULL;
}

/* payload_setup: a route's payload: gets the parser; reading the payload without it is an error. */
static void payload_setup(loader *l, jr_route *r)
{
	char what[PATH_MAX_LEN];
	const char *uses = payload_reader(r, what, sizeof what);
	if (r->payload.mode != JR_PAYLOAD_NONE) {
		r->payload.parse = jsonparse;
		r->payload.max_depth = l->c->limits.json_depth;
	} else if (uses) {
		err_at(l, r->line, "%s: %s reads the payload: the route needs payload: json or auto",
		       l->route, uses);
	}
}

static void read_routes(loader *l)
{
	jr_config *c = l->c;
	yaml_node_t *v = l->routes;
	if (is_null(v))
		return;
	if (v->type != YAML_SEQUENCE_NODE) {
		key_err(l, v, "routes", "expected a list of routes, got %s", kind_name(v));
		return;
	}
	yaml_node_item_t *it = v->data.sequence.items.start;
	size_t cnt = (size_t)(v->data.sequence.items.top - it);
	c->routes = jr_calloc(cnt ? cnt : 1, sizeof *c->routes);
	for (size_t i = 0; i < cnt; i++) {
		yaml_node_t *rn = node(l, it[i]);
		jr_route *r = &c->routes[c->n_routes++];
		r->policies = c->policies;
		r->line = node_line(rn);
		l->job_line = 0;
		set_route_label(l, rn, i);
		if (rn->type != YAML_MAPPING_NODE) {
			err_at(l, r->line, "%s: expected a mapping, got %s", l->route, kind_name(rn));
			continue;
		}
		walk(l, rn, route_fields, r, "");
		route_checks(l, r, i);
		payload_setup(l, r);
		route_prepare(r);
	}
	l->route = NULL;
}

/* ---- top level ---- */

static void read_unrouted(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	const char *s = get_str(l, v, path, 0);
	if (!s)
		return;
	l->unrouted = v;
	if (!strcmp(s, "drop"))
		l->c->unrouted = JR_UNROUTED_DROP;
	else if (!strcmp(s, "dead_letter"))
		l->c->unrouted = JR_UNROUTED_DEAD_LETTER;
	else
		key_err(l, v, path, "expected drop or dead_letter, got '%s'", s);
}

static void stash_routes(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	l->routes = v;
}

static void breaker_after(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	const jr_breaker_conf *b = &((jr_config *)base)->breaker;
	if (b->min_calls > b->window)
		key_err(l, v, path, "min_calls %d is greater than window %d", b->min_calls,
			b->window);
	if (b->max_open_for_ms < b->open_for_ms)
		key_err(l, v, path, "max_open_for is shorter than open_for");
}

static void read_auth_mode(loader *l, const field *f, yaml_node_t *v, void *base,
			   const char *path)
{
	const char *s = get_str(l, v, path, 0);
	if (!s)
		return;
	if (!strcmp(s, "verify"))
		l->c->auth_mode = JR_AUTH_VERIFY;
	else if (!strcmp(s, "cloud_run_iam"))
		l->c->auth_mode = JR_AUTH_CLOUD_RUN_IAM;
	else
		key_err(l, v, path, "expected verify or cloud_run_iam, got '%s'", s);
}

/* read_audience: auth.audience, one string or a non-empty list of them, none empty. */
static void read_audience(loader *l, const field *f, yaml_node_t *v, void *base,
			  const char *path)
{
	jr_config *c = l->c;
	if (v && v->type == YAML_SEQUENCE_NODE) {
		yaml_node_item_t *it = v->data.sequence.items.start;
		size_t cnt = (size_t)(v->data.sequence.items.top - it);
		c->auth_audiences = jr_calloc(cnt ? cnt : 1, sizeof *c->auth_audiences);
		if (cnt == 0)
			key_err(l, v, path, "must not be an empty list");
		for (size_t i = 0; i < cnt; i++) {
			char sub[PATH_MAX_LEN];
			snprintf(sub, sizeof sub, "%s[%zu]", path, i);
			const char *s = get_str(l, node(l, it[i]), sub, 0);
			if (s)
				c->auth_audiences[c->n_auth_audiences++] = jr_strdup(s);
		}
		return;
	}
	const char *s = get_str(l, v, path, 0);
	if (!s)
		return;
	c->auth_audiences = jr_calloc(1, sizeof *c->auth_audiences);
	c->auth_audiences[0] = jr_strdup(s);
	c->n_auth_audiences = 1;
}

static void auth_after(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	const jr_config *c = base;
	if (!c->n_auth_audiences)
		key_err(l, v, path, "audience is required");
	if (!c->n_auth_allowed_emails)
		key_err(l, v, path, "allowed_emails is required (no token passes without it)");
	if (c->auth_jwks_url && c->auth_jwks_file)
		key_err(l, v, path, "give jwks_url or jwks_file, not both");
	if (c->auth_mode == JR_AUTH_CLOUD_RUN_IAM && (c->auth_jwks_url || c->auth_jwks_file))
		key_err(l, v, path, "jwks_url and jwks_file are not used with mode cloud_run_iam "
				    "(Cloud Run checks the signature)");
}

static const field flow_fields[] = {
	FINT("max_messages", jr_config, flow_max_messages, 1, 1000000),
	FSIZE("max_bytes", jr_config, flow_max_bytes, 1, INT64_MAX),
	FDUR("ack_deadline", jr_config, flow_ack_deadline_ms, 10000, 600000),
	FDUR("max_extension", jr_config, flow_max_extension_ms, 0, DUR_MAX_MS),
	FEND,
};

static const field dead_letter_fields[] = {
	FSTR("topic", jr_config, dead_letter_topic, check_topic),
	FSTR("file", jr_config, dead_letter_file, NULL),
	FEND,
};

static const field breaker_fields[] = {
	FINT("window", jr_config, breaker.window, 1, 1000000),
	FINT("min_calls", jr_config, breaker.min_calls, 1, 1000000),
	FNUM("failure_rate", F_FRACTION, jr_config, breaker.failure_rate),
	FDUR("open_for", jr_config, breaker.open_for_ms, 1, DUR_MAX_MS),
	FDUR("max_open_for", jr_config, breaker.max_open_for_ms, 1, DUR_MAX_MS),
	FINT("half_open_calls", jr_config, breaker.half_open_calls, 1, 1000000),
	FEND,
};

static const field dedup_fields[] = {
	FDUR("ttl", jr_config, dedup_ttl_ms, 0, DUR_MAX_MS),
	FINT("max_entries", jr_config, dedup_max_entries, 1, INT64_MAX),
	FEND,
};

static const field read_retry_fields[] = {
	FDUR("initial_backoff", jr_config, read_retry.initial_backoff_ms, 1, DUR_MAX_MS),
	FDUR("max_backoff", jr_config, read_retry.max_backoff_ms, 1, DUR_MAX_MS),
	FINT("max_attempts", jr_config, read_retry.max_attempts, 1, 1000),
	FINT("lookup_attempts", jr_config, read_retry.lookup_attempts, 1, 1000),
	FINT("lookup_pages", jr_config, read_retry.lookup_pages, 1, 1000),
	FEND,
};

static void read_retry_after(loader *l, const field *f, yaml_node_t *v, void *base,
			     const char *path)
{
	const jr_read_retry *r = &((jr_config *)base)->read_retry;
	if (r->max_backoff_ms < r->initial_backoff_ms)
		key_err(l, v, path, "max_backoff is shorter than initial_backoff");
}

static void read_repeat_mode(loader *l, const field *f, yaml_node_t *v, void *base,
			     const char *path)
{
	const char *s = get_str(l, v, path, 0);
	if (s && repeat_mode_parse(s, &l->c->repeat.mode) < 0)
		key_err(l, v, path, "expected never, on_redelivery or always, got '%s'", s);
}

static const field repeat_fields[] = {
	FFN("mode", read_repeat_mode, 0, 0),
	FDUR("min_age", jr_config, repeat.min_age_ms, 0, DUR_MAX_MS),
	FDUR("lookback", jr_config, repeat.lookback_ms, 0, DUR_MAX_MS),
	FEND,
};

static const field serve_fields[] = {
	FDUR("max_queue_wait", jr_config, serve_max_queue_wait_ms, 1, 600000),
	FEND,
};

static const field auth_fields[] = {
	FFN("mode", read_auth_mode, 0, 0),
	FFN("audience", read_audience, 0, 0),
	FLIST("allowed_emails", jr_config, auth_allowed_emails, n_auth_allowed_emails),
	FSTR("jwks_url", jr_config, auth_jwks_url, check_url),
	FSTR("jwks_file", jr_config, auth_jwks_file, NULL),
	FEND,
};

static void limits_after(loader *l, const field *f, yaml_node_t *v, void *base, const char *path)
{
	(void)f;
	const jr_limits *m = &((jr_config *)base)->limits;
	if (m->inflight_bytes < m->event_bytes)
		key_err(l, v, path, "inflight_bytes is smaller than event_bytes");
}

static const field limits_fields[] = {
	FSIZE("event_bytes", jr_config, limits.event_bytes, 1024, 1LL << 30),
	FINT("json_depth", jr_config, limits.json_depth, 1, 10000),
	FINT("attributes", jr_config, limits.attributes, 1, 100000),
	FSIZE("header_bytes", jr_config, limits.header_bytes, 1024, 1LL << 30),
	FINT("batch_events", jr_config, limits.batch_events, 1, 100000),
	FSIZE("inflight_bytes", jr_config, limits.inflight_bytes, 1LL << 20, 1LL << 40),
	FDUR("idle_timeout", jr_config, limits.idle_timeout_ms, 1000, 3600000),
	FEND,
};

static const field top_fields[] = {
	FSTR("project", jr_config, project, check_id),
	FSTR("region", jr_config, region, check_id),
	FSTR("subscription", jr_config, subscription, check_subscription),
	FSTR("topic", jr_config, topic, check_topic),
	FMAP("flow_control", flow_fields, NULL),
	FINT("concurrency", jr_config, concurrency, 1, 100000),
	FFN("unrouted", read_unrouted, 0, 0),
	FMAP("dead_letter", dead_letter_fields, NULL),
	FFN("policies", read_policies, offsetof(jr_config, policies), 0),
	FMAP("circuit_breaker", breaker_fields, breaker_after),
	FMAP("dedup", dedup_fields, NULL),
	FMAP("auth", auth_fields, auth_after),
	FFN("routes", stash_routes, 0, 0),
	FMAP("limits", limits_fields, limits_after),
	FDUR("shutdown_grace", jr_config, shutdown_grace_ms, 0, DUR_MAX_MS),
	FDUR("call_timeout", jr_config, call_timeout_ms, 1, DUR_MAX_MS),
	FMAP("read_retry", read_retry_fields, read_retry_after),
	FMAP("repeat_check", repeat_fields, NULL),
	FMAP("serve", serve_fields, NULL),
	FEND,
};

static void load_root(loader *l, yaml_node_t *root)
{
	jr_config *c = l->c;
	if (root && root->type != YAML_MAPPING_NODE && !is_null(root)) {
		err_at(l, node_line(root), "the configuration must be a mapping, got %s",
		       kind_name(root));
		return;
	}
	if (root && !is_null(root))
		walk(l, root, top_fields, c, "");
	if (!c->project) {
		const char *env = getenv("GOOGLE_CLOUD_PROJECT");
		if (env && *env)
			c->project = jr_strdup(env);
	}
	if (c->unrouted == JR_UNROUTED_DEAD_LETTER && !c->dead_letter_topic &&
	    !c->dead_letter_file)
		key_err(l, l->unrouted, "unrouted",
			"dead_letter needs dead_letter.topic or dead_letter.file");
	read_routes(l);
}

int config_load_string(jr_config *c, const char *name, const char *text, size_t len,
		       jr_buf *errs)
{
	loader l = {.file = name, .errs = errs, .c = c};
	config_defaults(c);
	c->path = jr_strdup(name);
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &l.doc)) {
		err_at(&l, (int)parser.problem_mark.line + 1, "YAML syntax error: %s%s%s",
		       parser.problem ? parser.problem : "?", parser.context ? " " : "",
		       parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return l.nerr;
	}
	load_root(&l, yaml_document_get_root_node(&l.doc));
	yaml_document_t next;
	if (yaml_parser_load(&parser, &next)) {
		yaml_node_t *root = yaml_document_get_root_node(&next);
		if (root)
			err_at(&l, node_line(root), "more than one YAML document");
		yaml_document_delete(&next);
	} else {
		err_at(&l, (int)parser.problem_mark.line + 1, "YAML syntax error: %s",
		       parser.problem ? parser.problem : "?");
	}
	yaml_document_delete(&l.doc);
	yaml_parser_delete(&parser);
	return l.nerr;
}

int config_load_file(jr_config *c, const char *path, jr_buf *errs)
{
	jr_buf text;
	buf_init(&text, CONFIG_MAX_BYTES);
	const char *why;
	if (buf_read_file(&text, path, &why) < 0) {
		if (why == BUF_TOO_LARGE)
			why = "larger than 16 MiB";
		config_defaults(c);
		c->path = jr_strdup(path);
		buf_printf(errs, "%s: cannot read: %s\n", path, why);
		buf_free(&text);
		return 1;
	}
	int rc = config_load_string(c, path, text.data ? text.data : "", text.len, errs);
	buf_free(&text);
	return rc;
}
