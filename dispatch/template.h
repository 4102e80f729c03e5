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
/*
 * tmpl_render: appends the rendering for ev to out. route is the route name.
 * Returns 0; or -1 with *missing set to the first required name that is
 * absent (points into t); or -2 when out's max is reached; or -3 with
 * *missing set to the name whose value holds a NUL byte (a JSON "\u0000" in a
 * string, text data), which no environment value or argument can carry.
 */
int tmpl_render(const jr_tmpl *t, jr_event *ev, const char *route, jr_buf *out,
		const char **missing);

#endif
