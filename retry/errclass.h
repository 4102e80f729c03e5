/*
 * errclass.h — the error table (docs/reference.md, error classes), in one place.
 *
 * JR_ERRCLASS_MAP lists each error class with its default policy; JR_GRPC_MAP
 * lists each gRPC status code with its name and the class it falls into. The
 * enums, the name functions and errclass_from_grpc are all generated from
 * these two tables, so a code and its class cannot drift apart.
 */
#ifndef JR_ERRCLASS_H
#define JR_ERRCLASS_H

#include <stdint.h>

/*
 * X(ENUM, "name", default action, max_attempts, initial_ms, max_ms, trips_breaker)
 * credentials: jobrelay could not get an access token, so the call never
 * reached the API; such events are held (JR_ACT_HOLD: no attempt counted,
 * never dead-lettered) until tokens can be had. Its backoff is the token
 * source's retry (src/google/gcreds.h); it has no configurable policy.
 */
#define JR_ERRCLASS_MAP(X)                                                          \
	X(INVALID_EVENT, "invalid_event", JR_ACT_DEAD_LETTER, 1, 0, 0, 0)             \
	X(INVALID_REQUEST, "invalid_request", JR_ACT_DEAD_LETTER, 1, 0, 0, 1)         \
	X(PERMISSION, "permission", JR_ACT_RETRY, 10, 30000, 600000, 1)               \
	X(RESOURCE, "resource", JR_ACT_RETRY, 20, 5000, 600000, 0)                    \
	X(TIMEOUT, "timeout", JR_ACT_RETRY, 5, 2000, 300000, 1)                       \
	X(NETWORK, "network", JR_ACT_RETRY, 8, 1000, 300000, 1)                       \
	X(APPLICATION, "application", JR_ACT_DEAD_LETTER, 1, 0, 0, 0)                 \
	X(UNKNOWN, "unknown", JR_ACT_RETRY, 3, 1000, 60000, 1)                        \
	X(CREDENTIALS, "credentials", JR_ACT_HOLD, 0, 500, 10000, 0)

/* X(code, ENUM, "NAME", class) — every gRPC status code, in numeric order.
 * OK maps to UNKNOWN only to keep the table total; callers never classify OK.
 * CANCELLED here is a cancellation reported by the server or transport: a
 * call that jobrelay cancels itself (shutdown) is never classified.
 * INVALID_ARGUMENT and OUT_OF_RANGE judge the request's arguments, which carry
 * one event's rendered values: they cost that event only (invalid_event, no
 * breaker). NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION and UNIMPLEMENTED
 * are about the job or the deployment: invalid_request trips the job's breaker. */
#define JR_GRPC_MAP(X)                                                   \
	X(0, OK, "OK", JR_ERR_UNKNOWN)                                       \
	X(1, CANCELLED, "CANCELLED", JR_ERR_NETWORK)                         \
	X(2, UNKNOWN, "UNKNOWN", JR_ERR_UNKNOWN)                             \
	X(3, INVALID_ARGUMENT, "INVALID_ARGUMENT", JR_ERR_INVALID_EVENT)     \
	X(4, DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", JR_ERR_TIMEOUT)         \
	X(5, NOT_FOUND, "NOT_FOUND", JR_ERR_INVALID_REQUEST)                 \
	X(6, ALREADY_EXISTS, "ALREADY_EXISTS", JR_ERR_INVALID_REQUEST)       \
	X(7, PERMISSION_DENIED, "PERMISSION_DENIED", JR_ERR_PERMISSION)      \
	X(8, RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", JR_ERR_RESOURCE)      \
	X(9, FAILED_PRECONDITION, "FAILED_PRECONDITION", JR_ERR_INVALID_REQUEST) \
	X(10, ABORTED, "ABORTED", JR_ERR_NETWORK)                            \
	X(11, OUT_OF_RANGE, "OUT_OF_RANGE", JR_ERR_INVALID_EVENT)            \
	X(12, UNIMPLEMENTED, "UNIMPLEMENTED", JR_ERR_INVALID_REQUEST)         \
	X(13, INTERNAL, "INTERNAL", JR_ERR_NETWORK)                          \
	X(14, UNAVAILABLE, "UNAVAILABLE", JR_ERR_NETWORK)                    \
	X(15, DATA_LOSS, "DATA_LOSS", JR_ERR_UNKNOWN)                        \
	X(16, UNAUTHENTICATED, "UNAUTHENTICATED", JR_ERR_PERMISSION)

typedef enum jr_action {
	JR_ACT_RETRY,
	JR_ACT_DEAD_LETTER,
	JR_ACT_DROP,
	JR_ACT_HOLD, /* not configurable: the credentials class only */
} jr_action;

typedef enum jr_errclass {
#define JR_X(e, name, act, att, ini, mx, trip) JR_ERR_##e,
	JR_ERRCLASS_MAP(JR_X)
#undef JR_X
	JR_ERR__COUNT
} jr_errclass;

typedef enum jr_grpc_code {
#define JR_X(n, e, name, cls) JR_GRPC_##e = n,
	JR_GRPC_MAP(JR_X)
#undef JR_X
	JR_GRPC__COUNT
} jr_grpc_code;

/* errclass_name: "network" etc.; "?" for a value outside the enum. */
const char *errclass_name(jr_errclass c);
/* errclass_parse: class from its name; -1 when unknown. */
int errclass_parse(const char *name);
/* errclass_from_grpc: the class of a gRPC status code; codes past 16 are UNKNOWN. */
jr_errclass errclass_from_grpc(int code);
/* errclass_trips_breaker: 1 when failures of c count toward a circuit breaker. */
int errclass_trips_breaker(jr_errclass c);
/* grpc_code_name: "UNAVAILABLE" etc.; "CODE_<n>" is not produced: unknown codes give "UNKNOWN". */
const char *grpc_code_name(int code);
/* action_name / action_parse: "retry", "dead_letter", "drop" ("hold" is named, not parsed); parse gives -1 when unknown. */
const char *action_name(jr_action a);
int action_parse(const char *name);

#endif
