/*
 * cesql_int.h — what the CESQL compiler (cesql.c) hands the evaluator
 * (cesql_eval.c): the node tree and the built-in function table. Private to
 * those two files. Every node lives in its expression's arena.
 */
#ifndef JR_CESQL_INT_H
#define JR_CESQL_INT_H

#include "cesql.h"

#define CESQL_MAX_ARGS 16 /* arguments of one function call */

typedef enum cesql_op {
	OP_LIT,      /* lit */
	OP_ATTR,     /* name, attr */
	OP_EXISTS,   /* name, attr */
	OP_NOT,      /* kids[0] */
	OP_NEG,      /* kids[0] */
	OP_AND,      /* kids[0..n): n-ary, left to right, short-circuit */
	OP_OR,
	OP_XOR,
	OP_MUL,      /* kids[0], kids[1] */
	OP_DIV,
	OP_MOD,
	OP_ADD,
	OP_SUB,
	OP_EQ,
	OP_NE,
	OP_LT,
	OP_LE,
	OP_GT,
	OP_GE,
	OP_LIKE,     /* kids[0], pat; negate */
	OP_IN,       /* kids[0] IN kids[1..n); negate */
	OP_CALL,     /* fn, kids = arguments */
	OP_NOFN,     /* name: no built-in of that name and arity */
} cesql_op;

/* One step of a LIKE pattern: a literal byte, one character, or any run. */
typedef enum like_kind { LIKE_BYTE, LIKE_ONE, LIKE_ANY } like_kind;
typedef struct like_step {
	unsigned char kind;
	unsigned char c;
} like_step;

typedef struct cesql_ctx cesql_ctx;
typedef struct cesql_builtin {
	const char *name;
	int min_args;
	int max_args;          /* -1: variadic (every extra argument a String) */
	cesql_type ret;
	cesql_type params[3];  /* parameter types, cast to before the call */
	int raw;               /* 1: the argument is passed as it is (casting functions) */
	void (*fn)(cesql_ctx *c, const cesql_value *a, size_t n, cesql_value *out);
} cesql_builtin;

typedef struct cesql_node cesql_node;
struct cesql_node {
	cesql_op op;
	int negate;
	int depth;
	cesql_value lit;
	const char *name;
	int attr;                    /* event_attr_id(name) */
	const cesql_builtin *fn;
	const like_step *pat;
	size_t n_pat;
	cesql_node **kids;
	size_t n_kids;
};

struct cesql_expr {
	jr_arena arena;
	cesql_node *root;
	const char *text;
	const char *unknown_fn;
	size_t n_nodes;
};

/* Shared by the evaluator and the functions (cesql_eval.c). */
/* cesql_add_err: records an error of kind k (what: static text; name: an attribute or function, or NULL). */
void cesql_add_err(cesql_ctx *c, cesql_errkind k, const char *what, const char *name);
/* cesql_salloc: n bytes of the evaluation's scratch, or NULL after a generic error. */
char *cesql_salloc(cesql_ctx *c, size_t n);
/* cesql_zero: the zero value of t (false, 0, ""). */
cesql_value cesql_zero(cesql_type t);
/* Casts of section 3.7; on failure a CastError and the zero value. */
cesql_value cesql_to_string(cesql_ctx *c, cesql_value x);
cesql_value cesql_to_int(cesql_ctx *c, cesql_value x);
/* cesql_to_bool: explicit_cast lets an Integer through (BOOL(x)); implicitly that is a CastError. */
cesql_value cesql_to_bool(cesql_ctx *c, cesql_value x, int explicit_cast);
/* cesql_parse_i32: s (n bytes) as a base-10 32-bit integer with an optional sign; 0, or -1. */
int cesql_parse_i32(const char *s, size_t n, int32_t *out);
/* cesql_str_bool: 1 or 0 for "true" or "false" in any case; -1 otherwise. */
int cesql_str_bool(const char *s, size_t n);
/* cesql_char_len: bytes of the UTF-8 character at s (n > 0 bytes left); 1 for an invalid byte. */
size_t cesql_char_len(const char *s, size_t n);

/* cesql_builtin_find: the built-in named name (upper case) taking n arguments, or NULL. */
const cesql_builtin *cesql_builtin_find(const char *name, size_t n);

#endif
