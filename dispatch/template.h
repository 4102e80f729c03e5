/*
 * template.h — `{{name}}` templates (docs/configuration.md, templates).
 *
 * A template is compiled once (at config load) into literal and variable
 * parts, then rendered per event. Names: CloudEvent attributes and
 * extensions, data, data.PATH, attributes.KEY, message.id|publish_time|
 * ordering_key, route. `{{name?}}` renders empty when missing; a plain
 * missing name fails the render (an invalid_event for that route).
 */
#ifndef JR_TEMPLATE_H
#define JR_TEMPLATE_H

#include "event.h"
#include "mem.h"

typedef struct jr_tmpl jr_tmpl;

/* tmpl_compile: compiles src; NULL with *err (a new string, caller frees) on syntax errors. */
jr_tmpl *tmpl_compile(const char *src, char **err);
/* tmpl_free: NULL is a no-op. */
void tmpl_free(jr_tmpl *t);
/* tmpl_source: the text it was compiled from. */
const char *tmpl_source(const jr_tmpl *t);
/* tmpl_is_literal: 1 when t has no variables. */
int tmpl_is_literal(const jr_tmpl *t);
/* tmpl_uses_payload: 1 when t reads {{payload...}} (the route must set payload:). */
int tmpl_uses_payload(const jr_tmpl *t);

/* Why a render failed: what tmpl_render sets; every pointer is static or into t. */
typedef struct jr_tmpl_err {
	const char *name;  /* the variable as written, without braces and blanks */
	size_t column;     /* -4: column of the failing function in the source */
	const char *why;   /* -4: "b64dec: the input is not base64", ... */
} jr_tmpl_err;

/*
 * tmpl_render: appends the rendering for ev to out. route is the route name;
 * payload values come from ev->payload (route_payload fills it before).
 * Returns 0; or -1 with e->name set to the first required name that is
 * absent; or -2 when out's max is reached; or -3 with e->name set to the
 * name whose value holds a NUL byte (a JSON "\u0000" in a string, text data),
 * which no environment value or argument can carry; or -4 when a function
 * fails (e->name, e->column, e->why). e may be NULL.
 */
int tmpl_render(const jr_tmpl *t, jr_event *ev, const char *route, jr_buf *out,
		jr_tmpl_err *e);

#endif
