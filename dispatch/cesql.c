/*
 * cesql.c — the CESQL compiler: lexer and recursive-descent parser into the
 * node tree of cesql_int.h (evaluation is in cesql_eval.c).
 *
 * Precedence, highest first, as CESQLParser.g4 orders its alternatives:
 * function calls and literals; NOT and unary minus; LIKE and IN (postfix);
 * * / %; + -; comparisons; AND, OR and XOR, which share one level and group
 * from the right (`a AND b OR c` is `a AND (b OR c)`). Runs of one logical
 * operator become one n-ary node, so a long OR chain does not nest.
 * Keywords and function names are case-insensitive; identifiers are
 * lower-cased (attribute names are lower case).
 *
 * Integer literals carry no sign of their own: a minus before a literal is
 * folded into it, so -2147483648 is a literal and 4-1 is a subtraction.
 * Inside a string literal, \' (in '...') or \" (in "...") and a doubled
 * quote stand for the quote; any other backslash is kept as it is, so a
 * LIKE pattern sees \% and \_.
 */
#include "cesql_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum tok_kind {
	T_EOF, T_ERR, T_LP, T_RP, T_COMMA, T_INT, T_STR, T_WORD,
	T_AND, T_OR, T_XOR, T_NOT, T_LIKE, T_EXISTS, T_IN, T_TRUE, T_FALSE,
	T_STAR, T_DIV, T_MOD, T_PLUS, T_MINUS, T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE,
} tok_kind;

typedef struct tok {
	tok_kind k;
	size_t pos;     /* offset of the first byte */
	size_t end;     /* offset after the last byte */
	uint64_t iv;    /* T_INT, saturated above 2^32 */
} tok;

typedef struct parser {
	const char *src;
	size_t len;
	tok cur;
	cesql_expr *e;
	cesql_parse_error *err;
	int failed;
	int depth;
} parser;

/* ---- errors ---- */

static void vfail_at(parser *p, size_t pos, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void vfail_at(parser *p, size_t pos, const char *fmt, va_list ap)
{
	if (p->failed)
		return;
	p->failed = 1;
	vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
	p->err->position = pos + 1;
}

/* fail: the first error wins; its position is the current token's. */
static void fail(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail_at(p, p->cur.pos, fmt, ap);
	va_end(ap);
}

/* unexpected: "unexpected 'TOKEN'" and a tail, for the current token (cut at 31 bytes). */
static void unexpected(parser *p, const char *tail)
{
	char w[32];
	size_t wn = p->cur.end - p->cur.pos < 31 ? p->cur.end - p->cur.pos : 31;
	memcpy(w, p->src + p->cur.pos, wn);
	w[wn] = '\0';
	fail(p, "unexpected '%s'%s", w, tail);
}

/* ---- lexer ---- */

static int is_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static const struct {
	const char *word;
	tok_kind k;
} keywords[] = {
	{"AND", T_AND},   {"OR", T_OR},         {"XOR", T_XOR}, {"NOT", T_NOT},
	{"LIKE", T_LIKE}, {"EXISTS", T_EXISTS}, {"IN", T_IN},   {"TRUE", T_TRUE},
	{"FALSE", T_FALSE},
};

static tok_kind word_kind(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
		if (strlen(keywords[i].word) == n && strncasecmp(keywords[i].word, s, n) == 0)
			return keywords[i].k;
	return T_WORD;
}

/* lex_string: the literal opening at at; its end, or T_ERR when unterminated. */
static void lex_string(const char *s, size_t len, size_t at, tok *t)
{
	char q = s[at];
	size_t i = at + 1;
	while (i < len) {
		if (s[i] == '\\' && i + 1 < len) {
			i += 2;
		} else if (s[i] == q && i + 1 < len && s[i + 1] == q) {
			i += 2;
		} else if (s[i] == q) {
			t->k = T_STR;
			t->end = i + 1;
			return;
		} else {
			i++;
		}
	}
	t->k = T_ERR;
	t->end = len;
}

static void lex_number_or_word(const char *s, size_t len, size_t at, tok *t)
{
	size_t i = at;
	uint64_t v = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (v < ((uint64_t)1 << 32))
			v = v * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i > at && (i == len || !is_word_char(s[i]))) {
		t->k = T_INT;
		t->iv = v;
		t->end = i;
		return;
	}
	while (i < len && is_word_char(s[i]))
		i++;
	t->k = word_kind(s + at, i - at);
	t->end = i;
}

static tok_kind lex_op2(const char *s, size_t len, size_t at, size_t *n)
{
	char c = s[at], d = at + 1 < len ? s[at + 1] : '\0';
	*n = 2;
	if (c == '!' && d == '=')
		return T_NE;
	if (c == '<' && d == '>')
		return T_NE;
	if (c == '<' && d == '=')
		return T_LE;
	if (c == '>' && d == '=')
		return T_GE;
	*n = 1;
	switch (c) {
	case '(': return T_LP;
	case ')': return T_RP;
	case ',': return T_COMMA;
	case '*': return T_STAR;
	case '/': return T_DIV;
	case '%': return T_MOD;
	case '+': return T_PLUS;
	case '-': return T_MINUS;
	case '=': return T_EQ;
	case '<': return T_LT;
	case '>': return T_GT;
	default: return T_ERR;
	}
}

/* lex: the token starting at or after at. */
static tok lex(const char *s, size_t len, size_t at)
{
	tok t = {0};
	while (at < len && (s[at] == ' ' || s[at] == '\t' || s[at] == '\r' || s[at] == '\n'))
		at++;
	t.pos = at;
	if (at == len) {
		t.k = T_EOF;
		t.end = at;
	} else if (s[at] == '\'' || s[at] == '"') {
		lex_string(s, len, at, &t);
	} else if (is_word_char(s[at])) {
		lex_number_or_word(s, len, at, &t);
	} else {
		size_t n;
		t.k = lex_op2(s, len, at, &n);
		t.end = at + n;
	}
	return t;
}

static void next(parser *p)
{
	p->cur = lex(p->src, p->len, p->cur.end);
	if (p->cur.k == T_ERR && !p->failed) {
		if (p->src[p->cur.pos] == '\'' || p->src[p->cur.pos] == '"')
			fail(p, "unterminated string literal");
		else {
			char c[2] = {p->src[p->cur.pos], '\0'};
			fail(p, "unexpected character '%s'", c);
		}
	}
}

static tok peek(const parser *p)
{
	return lex(p->src, p->len, p->cur.end);
}

static int accept(parser *p, tok_kind k)
{
	if (p->cur.k != k)
		return 0;
	next(p);
	return 1;
}

static void expect(parser *p, tok_kind k, const char *what)
{
	if (!accept(p, k))
		fail(p, "expected %s", what);
}

/* ---- nodes ---- */

static cesql_node *mk(parser *p, cesql_op op, size_t n_kids)
{
	if (++p->e->n_nodes > CESQL_MAX_NODES) {
		fail(p, "the expression has more than %d nodes", CESQL_MAX_NODES);
		return NULL;
	}
	cesql_node *n = arena_alloc(&p->e->arena, sizeof *n);
	n->op = op;
	n->depth = 1;
	if (n_kids)
		n->kids = arena_alloc(&p->e->arena, n_kids * sizeof *n->kids);
	return n;
}

/* add_kid: appends k (kids has room: callers size it); keeps depth and its bound. */
static void add_kid(parser *p, cesql_node *n, cesql_node *k)
{
	n->kids[n->n_kids++] = k;
	if (k->depth + 1 > n->depth)
		n->depth = k->depth + 1;
	if (n->depth > CESQL_MAX_DEPTH)
		fail(p, "the expression nests deeper than %d levels", CESQL_MAX_DEPTH);
}

static cesql_node *mk2(parser *p, cesql_op op, cesql_node *a, cesql_node *b)
{
	cesql_node *n = mk(p, op, 2);
	if (!n)
		return NULL;
	add_kid(p, n, a);
	add_kid(p, n, b);
	return n;
}

/* ---- literals ---- */

/* string_value: the decoded text of the T_STR token t, in the arena. */
static cesql_value string_value(parser *p, const tok *t)
{
	const char *s = p->src + t->pos + 1;
	size_t n = t->end - t->pos - 2, o = 0;
	char q = s[-1];
	char *out = arena_alloc(&p->e->arena, n + 1);
	for (size_t i = 0; i < n; i++) {
		if ((s[i] == '\\' || s[i] == q) && i + 1 < n && s[i + 1] == q)
			i++;
		else if (s[i] == '\\' && i + 1 < n)
			out[o++] = s[i++];
		out[o++] = s[i];
	}
	return (cesql_value){.type = CESQL_STRING, .s = out, .n = o};
}

static cesql_node *lit_int(parser *p, int64_t v)
{
	cesql_node *n = mk(p, OP_LIT, 0);
	if (n)
		n->lit = (cesql_value){.type = CESQL_INTEGER, .i = (int32_t)v};
	return n;
}

/* int_literal: the T_INT at cur, negated when neg; a parse error out of 32-bit range. */
static cesql_node *int_literal(parser *p, int neg)
{
	uint64_t v = p->cur.iv;
	if (v > (neg ? 2147483648u : 2147483647u)) {
		fail(p, "integer literal out of the 32-bit range");
		return NULL;
	}
	next(p);
	return lit_int(p, neg ? -(int64_t)v : (int64_t)v);
}

/* ---- expressions ---- */

static cesql_node *parse_expr(parser *p);

static char *word_copy(parser *p, const tok *t, int upper)
{
	size_t n = t->end - t->pos;
	char *s = arena_strndup(&p->e->arena, p->src + t->pos, n);
	for (size_t i = 0; i < n; i++) {
		if (upper && s[i] >= 'a' && s[i] <= 'z')
			s[i] = (char)(s[i] - 'a' + 'A');
		if (!upper && s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
	}
	return s;
}

/* identifier: an attribute name at cur (letters and digits), lower-cased. */
static cesql_node *identifier(parser *p, cesql_op op)
{
	if (p->cur.k != T_WORD) {
		fail(p, "expected an attribute name");
		return NULL;
	}
	tok t = p->cur;
	if (memchr(p->src + t.pos, '_', t.end - t.pos)) {
		fail(p, "an attribute name holds only letters and digits");
		return NULL;
	}
	next(p);
	cesql_node *n = mk(p, op, 0);
	if (!n)
		return NULL;
	n->name = word_copy(p, &t, 0);
	n->attr = event_attr_id(n->name);
	return n;
}

static void call_args(parser *p, cesql_node *n, cesql_node **args)
{
	next(p); /* ( */
	if (accept(p, T_RP))
		return;
	do {
		if (n->n_kids == CESQL_MAX_ARGS) {
			fail(p, "a function takes at most %d arguments", CESQL_MAX_ARGS);
			return;
		}
		cesql_node *a = parse_expr(p);
		if (!a)
			return;
		args[n->n_kids++] = a;
	} while (accept(p, T_COMMA));
	expect(p, T_RP, "')' or ','");
}

static cesql_node *call(parser *p)
{
	tok t = p->cur;
	char first = p->src[t.pos];
	if (first >= '0' && first <= '9') {
		fail(p, "a function name starts with a letter");
		return NULL;
	}
	next(p);
	cesql_node *n = mk(p, OP_CALL, 0), *args[CESQL_MAX_ARGS];
	if (!n)
		return NULL;
	n->name = word_copy(p, &t, 1);
	call_args(p, n, args);
	if (p->failed)
		return NULL;
	n->kids = arena_alloc(&p->e->arena, (n->n_kids ? n->n_kids : 1) * sizeof *n->kids);
	size_t cnt = n->n_kids;
	n->n_kids = 0;
	for (size_t i = 0; i < cnt; i++)
		add_kid(p, n, args[i]);
	n->fn = cesql_builtin_find(n->name, cnt);
	if (!n->fn) {
		n->op = OP_NOFN;
		if (!p->e->unknown_fn)
			p->e->unknown_fn = n->name;
	}
	return n;
}

static cesql_node *primary(parser *p)
{
	cesql_node *n;
	switch (p->cur.k) {
	case T_INT:
		return int_literal(p, 0);
	case T_STR:
		if ((n = mk(p, OP_LIT, 0)))
			n->lit = string_value(p, &p->cur);
		next(p);
		return n;
	case T_TRUE:
	case T_FALSE:
		if ((n = mk(p, OP_LIT, 0)))
			n->lit = (cesql_value){.type = CESQL_BOOLEAN, .b = p->cur.k == T_TRUE};
		next(p);
		return n;
	case T_EXISTS:
		next(p);
		return identifier(p, OP_EXISTS);
	case T_WORD:
		if (peek(p).k == T_LP)
			return call(p);
		return identifier(p, OP_ATTR);
	case T_LP:
		next(p);
		n = parse_expr(p);
		expect(p, T_RP, "')'");
		return n;
	case T_EOF:
		fail(p, "unexpected end of the expression");
		return NULL;
	default:
		unexpected(p, "");
		return NULL;
	}
}

static cesql_node *unary(parser *p)
{
	if (++p->depth > CESQL_MAX_DEPTH) {
		fail(p, "the expression nests deeper than %d levels", CESQL_MAX_DEPTH);
		return NULL;
	}
	cesql_node *n = NULL, *k;
	if ((p->cur.k == T_MINUS || p->cur.k == T_PLUS) && peek(p).k == T_INT) {
		int neg = p->cur.k == T_MINUS;
		next(p);
		n = int_literal(p, neg);
	} else if (p->cur.k == T_NOT || p->cur.k == T_MINUS) {
		cesql_op op = p->cur.k == T_NOT ? OP_NOT : OP_NEG;
		next(p);
		if ((k = unary(p)) && (n = mk(p, op, 1)))
			add_kid(p, n, k);
	} else {
		n = primary(p);
	}
	p->depth--;
	return p->failed ? NULL : n;
}

/* like_compile: the steps of pattern s (n bytes): % any run, _ one character, \% and \_ literal. */
static void like_compile(parser *p, cesql_node *n, const char *s, size_t len)
{
	like_step *st = arena_alloc(&p->e->arena, (len ? len : 1) * sizeof *st);
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len && (s[i + 1] == '%' || s[i + 1] == '_'))
			st[k++] = (like_step){LIKE_BYTE, (unsigned char)s[++i]};
		else if (s[i] == '%')
			st[k++] = (like_step){LIKE_ANY, 0};
		else if (s[i] == '_')
			st[k++] = (like_step){LIKE_ONE, 0};
		else
			st[k++] = (like_step){LIKE_BYTE, (unsigned char)s[i]};
	}
	n->pat = st;
	n->n_pat = k;
}

static cesql_node *like(parser *p, cesql_node *x, int negate)
{
	next(p); /* LIKE */
	if (p->cur.k != T_STR) {
		fail(p, "LIKE needs a string literal pattern");
		return NULL;
	}
	cesql_value pat = string_value(p, &p->cur);
	next(p);
	cesql_node *n = mk(p, OP_LIKE, 1);
	if (!n)
		return NULL;
	n->negate = negate;
	add_kid(p, n, x);
	like_compile(p, n, pat.s, pat.n);
	return n;
}

static cesql_node *in_set(parser *p, cesql_node *x, int negate)
{
	next(p); /* IN */
	expect(p, T_LP, "'(' after IN");
	cesql_node *items[CESQL_MAX_NODES / 8];
	size_t cnt = 0;
	while (!p->failed) {
		if (cnt == sizeof items / sizeof items[0]) {
			fail(p, "a set holds at most %zu values", sizeof items / sizeof items[0]);
			break;
		}
		cesql_node *v = parse_expr(p);
		if (!v)
			break;
		items[cnt++] = v;
		if (!accept(p, T_COMMA))
			break;
	}
	expect(p, T_RP, "')' or ','");
	cesql_node *n = p->failed ? NULL : mk(p, OP_IN, cnt + 1);
	if (!n)
		return NULL;
	n->negate = negate;
	add_kid(p, n, x);
	for (size_t i = 0; i < cnt; i++)
		add_kid(p, n, items[i]);
	return n;
}

static cesql_node *postfix(parser *p)
{
	cesql_node *n = unary(p);
	while (n && !p->failed) {
		int negate = 0;
		tok_kind k = p->cur.k;
		if (k == T_NOT && (peek(p).k == T_LIKE || peek(p).k == T_IN)) {
			negate = 1;
			next(p);
			k = p->cur.k;
		}
		if (k == T_LIKE)
			n = like(p, n, negate);
		else if (k == T_IN)
			n = in_set(p, n, negate);
		else
			break;
	}
	return p->failed ? NULL : n;
}

/* binary: a left-associative level: operands by sub, operators in ops/opcodes. */
static cesql_node *binary(parser *p, cesql_node *(*sub)(parser *), const tok_kind *ops,
			  const cesql_op *codes, size_t n_ops)
{
	cesql_node *n = sub(p);
	while (n && !p->failed) {
		size_t i = 0;
		while (i < n_ops && ops[i] != p->cur.k)
			i++;
		if (i == n_ops)
			break;
		next(p);
		cesql_node *r = sub(p);
		n = r ? mk2(p, codes[i], n, r) : NULL;
	}
	return p->failed ? NULL : n;
}

static cesql_node *multiplicative(parser *p)
{
	static const tok_kind ops[] = {T_STAR, T_DIV, T_MOD};
	static const cesql_op codes[] = {OP_MUL, OP_DIV, OP_MOD};
	return binary(p, postfix, ops, codes, 3);
}

static cesql_node *additive(parser *p)
{
	static const tok_kind ops[] = {T_PLUS, T_MINUS};
	static const cesql_op codes[] = {OP_ADD, OP_SUB};
	return binary(p, multiplicative, ops, codes, 2);
}

static cesql_node *comparison(parser *p)
{
	static const tok_kind ops[] = {T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE};
	static const cesql_op codes[] = {OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE};
	return binary(p, additive, ops, codes, 6);
}

static int logic_op(tok_kind k, cesql_op *op)
{
	*op = k == T_AND ? OP_AND : k == T_OR ? OP_OR : OP_XOR;
	return k == T_AND || k == T_OR || k == T_XOR;
}

/* run_add: appends k to the n-ary run r, growing its kids array in the arena. */
static void run_add(parser *p, cesql_node *r, cesql_node *k, size_t *cap)
{
	if (r->n_kids == *cap) {
		cesql_node **kids = arena_alloc(&p->e->arena, *cap * 2 * sizeof *kids);
		memcpy(kids, r->kids, r->n_kids * sizeof *kids);
		r->kids = kids;
		*cap *= 2;
	}
	r->kids[r->n_kids++] = k;
}

/*
 * logical: operands joined by AND/OR/XOR, grouped from the right; a run of
 * one operator is one node whose last operand is the run of the next one.
 * Depths are set once the chain is read (each run is deeper than the next).
 */
static cesql_node *logical(parser *p)
{
	cesql_node *runs[CESQL_MAX_DEPTH], *x;
	size_t caps[CESQL_MAX_DEPTH], n_runs = 0;
	cesql_op op;
	while ((x = comparison(p)) && logic_op(p->cur.k, &op)) {
		next(p);
		if (n_runs && runs[n_runs - 1]->op == op) {
			run_add(p, runs[n_runs - 1], x, &caps[n_runs - 1]);
			continue;
		}
		cesql_node *r = n_runs < CESQL_MAX_DEPTH ? mk(p, op, 4) : NULL;
		if (!r) {
			fail(p, "the expression nests deeper than %d levels", CESQL_MAX_DEPTH);
			return NULL;
		}
		caps[n_runs] = 4;
		run_add(p, r, x, &caps[n_runs]);
		if (n_runs)
			run_add(p, runs[n_runs - 1], r, &caps[n_runs - 1]);
		runs[n_runs++] = r;
	}
	if (!x || p->failed)
		return NULL;
	if (!n_runs)
		return x;
	run_add(p, runs[n_runs - 1], x, &caps[n_runs - 1]);
	for (size_t i = n_runs; i-- > 0;) {
		cesql_node *r = runs[i];
		for (size_t j = 0; j < r->n_kids; j++)
			if (r->kids[j]->depth + 1 > r->depth)
				r->depth = r->kids[j]->depth + 1;
		if (r->depth > CESQL_MAX_DEPTH)
			fail(p, "the expression nests deeper than %d levels", CESQL_MAX_DEPTH);
	}
	return p->failed ? NULL : runs[0];
}

static cesql_node *parse_expr(parser *p)
{
	if (++p->depth > CESQL_MAX_DEPTH) {
		fail(p, "the expression nests deeper than %d levels", CESQL_MAX_DEPTH);
		return NULL;
	}
	cesql_node *n = logical(p);
	p->depth--;
	return n;
}

/* ---- API ---- */

cesql_expr *cesql_compile(const char *text, cesql_parse_error *err)
{
	cesql_parse_error scratch;
	if (!err)
		err = &scratch;
	memset(err, 0, sizeof *err);
	size_t len = strlen(text);
	if (len > CESQL_MAX_TEXT) {
		snprintf(err->message, sizeof err->message,
			 "the expression is longer than %d bytes", CESQL_MAX_TEXT);
		err->position = CESQL_MAX_TEXT + 1;
		return NULL;
	}
	cesql_expr *e = jr_calloc(1, sizeof *e);
	arena_init(&e->arena);
	e->text = arena_strndup(&e->arena, text, len);
	parser p = {.src = e->text, .len = len, .e = e, .err = err};
	next(&p);
	cesql_node *root = p.failed ? NULL : parse_expr(&p);
	if (root && p.cur.k != T_EOF)
		unexpected(&p, " after the expression");
	if (!root || p.failed) {
		if (!p.failed)
			fail(&p, "not an expression");
		cesql_free(e);
		return NULL;
	}
	e->root = root;
	return e;
}

void cesql_free(cesql_expr *e)
{
	if (!e)
		return;
	arena_free(&e->arena);
	free(e);
}

const char *cesql_source(const cesql_expr *e)
{
	return e->text;
}

const char *cesql_unknown_function(const cesql_expr *e)
{
	return e->unknown_fn;
}

const char *cesql_errkind_name(cesql_errkind k)
{
	switch (k) {
	case CESQL_ERR_PARSE: return "parse";
	case CESQL_ERR_MATH: return "math";
	case CESQL_ERR_CAST: return "cast";
	case CESQL_ERR_MISSING_FUNCTION: return "missingFunction";
	case CESQL_ERR_FUNCTION_EVALUATION: return "functionEvaluation";
	case CESQL_ERR_MISSING_ATTRIBUTE: return "missingAttribute";
	case CESQL_ERR_GENERIC: return "generic";
	}
	return "generic";
}
