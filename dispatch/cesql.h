/*
 * cesql.h — CloudEvents SQL Expression Language v1 (CESQL), compiled once and
 * evaluated per event (tests/data/cloudevents-spec/cesql/spec.md).
 *
 * cesql_compile parses an expression into a tree that the returned cesql_expr
 * owns (one arena; cesql_free releases it). Every size is bounded at compile
 * time: the text (CESQL_MAX_TEXT), the number of nodes (CESQL_MAX_NODES) and
 * the nesting depth (CESQL_MAX_DEPTH), which bounds the recursion of
 * cesql_eval too.
 *
 * cesql_eval allocates nothing: strings it reads stay in the event, strings
 * that functions or casts make go into a caller's cesql_scratch (reset at the
 * start of each evaluation); when the scratch is full the operation yields
 * its zero value and a generic error. An evaluation always yields a value and
 * the list of errors met on the way (the spec's "complete evaluation" mode),
 * the first CESQL_MAX_ERRORS of them kept.
 */
#ifndef JR_CESQL_H
#define JR_CESQL_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define CESQL_MAX_TEXT 16384   /* bytes of expression text */
#define CESQL_MAX_NODES 2048   /* nodes of one compiled expression */
#define CESQL_MAX_DEPTH 64     /* nesting of the tree (and of the evaluation) */
#define CESQL_MAX_ERRORS 8     /* errors kept by one evaluation (all are counted) */
#define CESQL_SCRATCH_DEFAULT 8192 /* what route matching gives one evaluation */

typedef enum cesql_type {
	CESQL_BOOLEAN,
	CESQL_INTEGER,
	CESQL_STRING,
} cesql_type;

/* The spec's error kinds (section 3.3); names as the conformance kit spells them. */
typedef enum cesql_errkind {
	CESQL_ERR_PARSE = 1,
	CESQL_ERR_MATH,
	CESQL_ERR_CAST,
	CESQL_ERR_MISSING_FUNCTION,
	CESQL_ERR_FUNCTION_EVALUATION,
	CESQL_ERR_MISSING_ATTRIBUTE,
	CESQL_ERR_GENERIC,
} cesql_errkind;

/* A value: b for Boolean, i for Integer, s/n for String (not NUL-terminated; may point into the event, the expression or the scratch). */
typedef struct cesql_value {
	cesql_type type;
	int b;
	int32_t i;
	const char *s;
	size_t n;
} cesql_value;

/* One error: its kind and a static description, with the name it concerns (attribute, function) or NULL. */
typedef struct cesql_error {
	cesql_errkind kind;
	const char *what;
	const char *name;
} cesql_error;

typedef struct cesql_result {
	cesql_value value;
	cesql_error errors[CESQL_MAX_ERRORS];
	size_t n_errors;       /* every error met; the first CESQL_MAX_ERRORS are in errors */
} cesql_result;

/* The caller's buffer for strings made during one evaluation. */
typedef struct cesql_scratch {
	char *buf;
	size_t cap;
	size_t used;
} cesql_scratch;

/* A compile error: what and where (1-based byte position in the text). */
typedef struct cesql_parse_error {
	char message[160];
	size_t position;
} cesql_parse_error;

typedef struct cesql_expr cesql_expr;

/* cesql_compile: the compiled expression, or NULL with *err filled. The text is copied. */
cesql_expr *cesql_compile(const char *text, cesql_parse_error *err);
/* cesql_free: releases e; NULL is a no-op. */
void cesql_free(cesql_expr *e);
/* cesql_source: the text e was compiled from. */
const char *cesql_source(const cesql_expr *e);
/*
 * cesql_unknown_function: the name of the first function call that no
 * built-in answers (by name and arity), or NULL. Such a call compiles (the
 * spec makes it a MissingFunctionError at evaluation); a filter refuses it
 * at config load.
 */
const char *cesql_unknown_function(const cesql_expr *e);
/*
 * cesql_eval: evaluates e against ev into *res (value and errors). Returns 0
 * when no error was met, -1 otherwise. Allocates nothing; s is reset first
 * and a String result may point into it, so read it before s is reused.
 */
int cesql_eval(const cesql_expr *e, const jr_event *ev, cesql_scratch *s, cesql_result *res);
/*
 * cesql_eval_view: cesql_eval with extensions read through event_ext_view
 * (event.h): payload, when not NULL, is a route's decoded message body, whose
 * scalar top-level members are then the attributes payloadNAME (and a scalar
 * body itself `payload`). Their types are those of extensions: a JSON string
 * is a String, a number an Integer when it is a 32-bit integer (else a String
 * of its text), true and false Booleans.
 */
int cesql_eval_view(const cesql_expr *e, const jr_event *ev, const jr_json *payload,
		    cesql_scratch *s, cesql_result *res);
/* cesql_errkind_name: "parse", "math", "cast", "missingFunction", "functionEvaluation", "missingAttribute", "generic". */
const char *cesql_errkind_name(cesql_errkind k);

#endif
