/*
 * cesql_eval.c — evaluating a compiled CESQL expression against one event
 * (spec sections 3.2-3.7), allocating nothing.
 *
 * Every operator and function yields a value even when it meets an error,
 * and every error is collected (AND and OR still short-circuit). An operand
 * whose evaluation met an error (a missing attribute, a division by zero
 * below it...) makes the operator or function that receives it return the
 * zero value of its own return type (false, 0, "") without looking further:
 * `missing * 5` is 0, `1 != 1 / 0` is false (both as the conformance kit
 * asks). An error of the operator itself (its own cast, ABS's overflow)
 * keeps the value the spec defines for it: NOT 10 is true with a CastError.
 *
 * Implicit casts follow section 3.7, with what the conformance kit asks on
 * top: an Integer is never implicitly a Boolean (NOT 10 is a CastError whose
 * cast yields false); BOOL(10) is the explicit cast and gives true.
 *
 * Characters are Unicode code points of UTF-8 text (LENGTH, LEFT, RIGHT,
 * SUBSTRING, LIKE's _); an invalid byte counts as one character.
 */
#include "cesql_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

struct cesql_ctx {
	const jr_event *ev;
	const jr_json *payload;  /* event_ext_view's body, or NULL */
	cesql_scratch *s;
	cesql_result *r;
};

/* A value on its way, and whether an error was met while computing it. */
typedef struct val {
	cesql_value v;
	int err;
} val;

static const cesql_value zero_bool = {.type = CESQL_BOOLEAN};
static const cesql_value zero_int = {.type = CESQL_INTEGER};
static const cesql_value zero_str = {.type = CESQL_STRING, .s = ""};

void cesql_add_err(cesql_ctx *c, cesql_errkind k, const char *what, const char *name)
{
	cesql_result *r = c->r;
	if (r->n_errors < CESQL_MAX_ERRORS)
		r->errors[r->n_errors] = (cesql_error){k, what, name};
	r->n_errors++;
}

cesql_value cesql_zero(cesql_type t)
{
	return t == CESQL_INTEGER ? zero_int : t == CESQL_STRING ? zero_str : zero_bool;
}

static cesql_value vbool(int b)
{
	return (cesql_value){.type = CESQL_BOOLEAN, .b = !!b};
}

static cesql_value vint(int32_t i)
{
	return (cesql_value){.type = CESQL_INTEGER, .i = i};
}

static cesql_value vstr(const char *s, size_t n)
{
	return (cesql_value){.type = CESQL_STRING, .s = s, .n = n};
}

/* salloc: n bytes of scratch, or NULL after a generic error. */
char *cesql_salloc(cesql_ctx *c, size_t n)
{
	cesql_scratch *s = c->s;
	if (!s || !s->buf || n > s->cap - s->used) {
		cesql_add_err(c, CESQL_ERR_GENERIC, "the scratch buffer for strings is full", NULL);
		return NULL;
	}
	char *p = s->buf + s->used;
	s->used += n;
	return p;
}

/* ---- casts (section 3.7) ---- */

/* parse_i32: s as a base-10 32-bit integer with an optional sign; 0 or -1. */
int cesql_parse_i32(const char *s, size_t n, int32_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return -1;
	int64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > 2147483648LL)
			return -1;
	}
	v = neg ? -v : v;
	if (v > INT32_MAX)
		return -1;
	*out = (int32_t)v;
	return 0;
}

static int ci_equal(const char *s, size_t n, const char *lower)
{
	size_t ln = strlen(lower);
	if (n != ln)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
		if (ch != lower[i])
			return 0;
	}
	return 1;
}

/* str_bool: 1 or 0 for "true"/"false" in any case, -1 otherwise. */
int cesql_str_bool(const char *s, size_t n)
{
	return ci_equal(s, n, "true") ? 1 : ci_equal(s, n, "false") ? 0 : -1;
}

static cesql_value int_text(cesql_ctx *c, int32_t i)
{
	char tmp[16];
	int n = snprintf(tmp, sizeof tmp, "%d", (int)i);
	char *p = cesql_salloc(c, (size_t)n);
	if (!p)
		return zero_str;
	memcpy(p, tmp, (size_t)n);
	return vstr(p, (size_t)n);
}

cesql_value cesql_to_string(cesql_ctx *c, cesql_value x)
{
	if (x.type == CESQL_BOOLEAN)
		return x.b ? vstr("true", 4) : vstr("false", 5);
	if (x.type == CESQL_INTEGER)
		return int_text(c, x.i);
	return x;
}

cesql_value cesql_to_int(cesql_ctx *c, cesql_value x)
{
	int32_t i = 0;
	if (x.type == CESQL_BOOLEAN)
		return vint(x.b);
	if (x.type == CESQL_STRING && cesql_parse_i32(x.s, x.n, &i) < 0) {
		cesql_add_err(c, CESQL_ERR_CAST, "the string is not a 32-bit integer", NULL);
		return zero_int;
	}
	return x.type == CESQL_STRING ? vint(i) : x;
}

/* to_bool: explicit lets an Integer through (BOOL(x)); implicitly it is a cast error. */
cesql_value cesql_to_bool(cesql_ctx *c, cesql_value x, int explicit_cast)
{
	if (x.type == CESQL_INTEGER) {
		if (explicit_cast)
			return vbool(x.i != 0);
		cesql_add_err(c, CESQL_ERR_CAST, "an integer is not implicitly a boolean", NULL);
		return zero_bool;
	}
	if (x.type == CESQL_STRING) {
		int b = cesql_str_bool(x.s, x.n);
		if (b < 0) {
			cesql_add_err(c, CESQL_ERR_CAST, "the string is not true or false", NULL);
			return zero_bool;
		}
		return vbool(b);
	}
	return x;
}

static cesql_value cast(cesql_ctx *c, cesql_value x, cesql_type to)
{
	if (x.type == to)
		return x;
	switch (to) {
	case CESQL_STRING: return cesql_to_string(c, x);
	case CESQL_INTEGER: return cesql_to_int(c, x);
	case CESQL_BOOLEAN: return cesql_to_bool(c, x, 0);
	}
	return x;
}

/* ---- attributes ---- */

static val attr_value(cesql_ctx *c, const cesql_node *n)
{
	const char *s = n->attr ? event_attr_by_id(c->ev, n->attr) : NULL;
	if (s)
		return (val){vstr(s, strlen(s)), 0};
	const jr_json *j = n->attr ? NULL : event_ext_view(c->ev, c->payload, n->name);
	int32_t i;
	switch (j ? j->type : JR_JSON_NULL) {
	case JR_JSON_STRING:
		return (val){vstr(j->s, j->n), 0};
	case JR_JSON_NUMBER:
		if (cesql_parse_i32(j->s, j->n, &i) == 0)
			return (val){vint(i), 0};
		return (val){vstr(j->s, j->n), 0};
	case JR_JSON_TRUE:
	case JR_JSON_FALSE:
		return (val){vbool(j->type == JR_JSON_TRUE), 0};
	default:
		cesql_add_err(c, CESQL_ERR_MISSING_ATTRIBUTE, "no such attribute", n->name);
		return (val){zero_bool, 1};
	}
}

static int exists(cesql_ctx *c, const cesql_node *n)
{
	switch (n->attr) {
	case JR_ATTR_SPECVERSION:
	case JR_ATTR_ID:
	case JR_ATTR_SOURCE:
	case JR_ATTR_TYPE:
		return 1; /* required: the input event is valid (spec 3.4.4) */
	case 0: {
		const jr_json *j = event_ext_view(c->ev, c->payload, n->name);
		return j && j->type != JR_JSON_NULL;
	}
	default:
		return event_attr_by_id(c->ev, n->attr) != NULL;
	}
}

/* ---- operators ---- */

static val eval(cesql_ctx *c, const cesql_node *n);

static val ok(cesql_value v)
{
	return (val){v, 0};
}

static val eval_logic(cesql_ctx *c, const cesql_node *n)
{
	int acc = n->op == OP_AND;
	for (size_t i = 0; i < n->n_kids; i++) {
		val x = eval(c, n->kids[i]);
		if (x.err)
			return ok(zero_bool);
		int b = cast(c, x.v, CESQL_BOOLEAN).b;
		if (n->op == OP_AND && !b)
			return ok(zero_bool);
		if (n->op == OP_OR && b)
			return ok(vbool(1));
		if (n->op == OP_XOR)
			acc ^= b;
	}
	return ok(vbool(acc));
}

/* arith: a op b in 64 bits, a MathError and 0 when it leaves the 32-bit range or divides by 0. */
static cesql_value arith(cesql_ctx *c, cesql_op op, int64_t a, int64_t b)
{
	int64_t r = 0;
	if ((op == OP_DIV || op == OP_MOD) && b == 0) {
		cesql_add_err(c, CESQL_ERR_MATH, "division by zero", NULL);
		return zero_int;
	}
	switch (op) {
	case OP_MUL: r = a * b; break;
	case OP_DIV: r = a / b; break;
	case OP_MOD: r = a % b; break;
	case OP_ADD: r = a + b; break;
	default: r = a - b; break;
	}
	if (r < INT32_MIN || r > INT32_MAX) {
		cesql_add_err(c, CESQL_ERR_MATH, "integer overflow", NULL);
		return zero_int;
	}
	return vint((int32_t)r);
}

static int str_eq(cesql_value a, cesql_value b)
{
	return a.n == b.n && (a.n == 0 || memcmp(a.s, b.s, a.n) == 0);
}

/* equal: x = y with y's type as the target type (section 3.7, ambiguous operator). */
static int equal(cesql_ctx *c, cesql_value x, cesql_value y)
{
	x = cast(c, x, y.type);
	switch (y.type) {
	case CESQL_BOOLEAN: return x.b == y.b;
	case CESQL_INTEGER: return x.i == y.i;
	case CESQL_STRING: return str_eq(x, y);
	}
	return 0;
}

static val eval_binary(cesql_ctx *c, const cesql_node *n)
{
	val x = eval(c, n->kids[0]), y = eval(c, n->kids[1]);
	int cmp = n->op >= OP_EQ;
	if (x.err || y.err)
		return ok(cmp ? zero_bool : zero_int);
	if (n->op == OP_EQ || n->op == OP_NE)
		return ok(vbool(equal(c, x.v, y.v) == (n->op == OP_EQ)));
	int64_t a = cast(c, x.v, CESQL_INTEGER).i, b = cast(c, y.v, CESQL_INTEGER).i;
	switch (n->op) {
	case OP_LT: return ok(vbool(a < b));
	case OP_LE: return ok(vbool(a <= b));
	case OP_GT: return ok(vbool(a > b));
	case OP_GE: return ok(vbool(a >= b));
	default: return ok(arith(c, n->op, a, b));
	}
}

size_t cesql_char_len(const char *s, size_t n)
{
	size_t k = utf8_char_len((const unsigned char *)s, n);
	return k ? k : 1;
}

/* like_match: s against the steps; greedy with one backtrack point (no recursion). */
static int like_match(const char *s, size_t n, const like_step *p, size_t m)
{
	size_t i = 0, j = 0, star = SIZE_MAX, mark = 0;
	while (i < n) {
		if (j < m && p[j].kind == LIKE_ONE) {
			i += cesql_char_len(s + i, n - i);
			j++;
		} else if (j < m && p[j].kind == LIKE_BYTE && (unsigned char)s[i] == p[j].c) {
			i++;
			j++;
		} else if (j < m && p[j].kind == LIKE_ANY) {
			star = j++;
			mark = i;
		} else if (star != SIZE_MAX) {
			j = star + 1;
			mark += cesql_char_len(s + mark, n - mark);
			i = mark;
		} else {
			return 0;
		}
	}
	while (j < m && p[j].kind == LIKE_ANY)
		j++;
	return j == m;
}

static val eval_like(cesql_ctx *c, const cesql_node *n)
{
	val x = eval(c, n->kids[0]);
	if (x.err)
		return ok(zero_bool);
	cesql_value s = cast(c, x.v, CESQL_STRING);
	int m = like_match(s.s, s.n, n->pat, n->n_pat);
	return ok(vbool(m != n->negate));
}

static val eval_in(cesql_ctx *c, const cesql_node *n)
{
	val x = eval(c, n->kids[0]);
	if (x.err)
		return ok(zero_bool);
	int found = 0;
	for (size_t i = 1; i < n->n_kids && !found; i++) {
		val y = eval(c, n->kids[i]);
		if (y.err)
			return ok(zero_bool);
		/* the left operand's type is the target type: y is cast to it */
		found = equal(c, cast(c, y.v, x.v.type), x.v);
	}
	return ok(vbool(found != n->negate));
}

static val eval_unary(cesql_ctx *c, const cesql_node *n)
{
	val x = eval(c, n->kids[0]);
	if (n->op == OP_NOT)
		return ok(x.err ? zero_bool : vbool(!cast(c, x.v, CESQL_BOOLEAN).b));
	if (x.err)
		return ok(zero_int);
	return ok(arith(c, OP_SUB, 0, cast(c, x.v, CESQL_INTEGER).i));
}

static val eval_call(cesql_ctx *c, const cesql_node *n)
{
	const cesql_builtin *f = n->fn;
	cesql_value args[CESQL_MAX_ARGS], out;
	int err = 0;
	for (size_t i = 0; i < n->n_kids; i++) {
		val a = eval(c, n->kids[i]);
		err |= a.err;
		args[i] = a.v;
	}
	if (err)
		return ok(cesql_zero(f->ret));
	for (size_t i = 0; i < n->n_kids && !f->raw; i++) {
		int rest = f->max_args < 0 && i >= (size_t)f->min_args; /* variadic: Strings */
		args[i] = cast(c, args[i], rest || i >= 3 ? CESQL_STRING : f->params[i]);
	}
	out = cesql_zero(f->ret);
	f->fn(c, args, n->n_kids, &out);
	return ok(out);
}

static val eval_node(cesql_ctx *c, const cesql_node *n)
{
	switch (n->op) {
	case OP_LIT: return ok(n->lit);
	case OP_ATTR: return attr_value(c, n);
	case OP_EXISTS: return ok(vbool(exists(c, n)));
	case OP_NOT:
	case OP_NEG: return eval_unary(c, n);
	case OP_AND:
	case OP_OR:
	case OP_XOR: return eval_logic(c, n);
	case OP_LIKE: return eval_like(c, n);
	case OP_IN: return eval_in(c, n);
	case OP_CALL: return eval_call(c, n);
	case OP_NOFN:
		cesql_add_err(c, CESQL_ERR_MISSING_FUNCTION, "no such function", n->name);
		return ok(zero_bool);
	default: return eval_binary(c, n);
	}
}

/* eval: n's value, flagged when n or anything below it met an error. */
static val eval(cesql_ctx *c, const cesql_node *n)
{
	size_t before = c->r->n_errors;
	val v = eval_node(c, n);
	v.err = c->r->n_errors > before;
	return v;
}

int cesql_eval_view(const cesql_expr *e, const jr_event *ev, const jr_json *payload,
		    cesql_scratch *s, cesql_result *res)
{
	memset(res, 0, sizeof *res);
	if (s)
		s->used = 0;
	cesql_ctx c = {.ev = ev, .payload = payload, .s = s, .r = res};
	res->value = eval(&c, e->root).v;
	return res->n_errors ? -1 : 0;
}

int cesql_eval(const cesql_expr *e, const jr_event *ev, cesql_scratch *s, cesql_result *res)
{
	return cesql_eval_view(e, ev, NULL, s, res);
}
