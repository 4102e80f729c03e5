/*
 * jsonparse.h — JSON text into the jr_json tree (dispatch/json.h), with yajl.
 */
#ifndef JR_JSONPARSE_H
#define JR_JSONPARSE_H

#include <stddef.h>

#include "json.h"
#include "mem.h"

/*
 * jsonparse: parses text[0..len) as exactly one JSON value (surrounding
 * whitespace allowed; a UTF-8 BOM is skipped) into nodes allocated in a.
 * Nesting deeper than max_depth is an error, and so is a string (key or value)
 * that is not valid UTF-8 by RFC 3629 (overlong forms, surrogates, past
 * U+10FFFF) or a \uD800-\uDFFF escape that is not half of a pair; \u0000 is
 * kept as a NUL byte (the node's length counts it). Returns the root, or NULL with a
 * short reason written to err[errlen] ("invalid JSON at byte 17: ...",
 * "nesting deeper than 64", "trailing data after the value").
 */
jr_json *jsonparse(jr_arena *a, const char *text, size_t len, int max_depth,
		   char *err, size_t errlen);
/*
 * jsonparse_yajl: jsonparse without its fast path for plain documents: yajl
 * alone. The same result for every input; the reference the fast path is
 * tested against (tests/unit/test_jsonparse.c).
 */
jr_json *jsonparse_yajl(jr_arena *a, const char *text, size_t len, int max_depth,
			char *err, size_t errlen);

#endif
