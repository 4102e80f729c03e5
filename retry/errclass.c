#include "errclass.h"

#include <string.h>

static const char *const class_names[] = {
#define JR_X(e, name, act, att, ini, mx, trip) name,
	JR_ERRCLASS_MAP(JR_X)
#undef JR_X
};

static const unsigned char class_trips[] = {
#define JR_X(e, name, act, att, ini, mx, trip) trip,
	JR_ERRCLASS_MAP(JR_X)
#undef JR_X
};

static const struct {
	const char *name;
	jr_errclass cls;
} grpc_codes[] = {
#define JR_X(n, e, name, cls) [n] = {name, cls},
	JR_GRPC_MAP(JR_X)
#undef JR_X
};

static const char *const action_names[] = {"retry", "dead_letter", "drop", "hold"};

const char *errclass_name(jr_errclass c)
{
	return (unsigned)c < JR_ERR__COUNT ? class_names[c] : "?";
}

int errclass_parse(const char *name)
{
	for (int i = 0; i < JR_ERR__COUNT; i++)
		if (strcmp(class_names[i], name) == 0)
			return i;
	return -1;
}

jr_errclass errclass_from_grpc(int code)
{
	if (code < 0 || code >= JR_GRPC__COUNT)
		return JR_ERR_UNKNOWN;
	return grpc_codes[code].cls;
}

int errclass_trips_breaker(jr_errclass c)
{
	return (unsigned)c < JR_ERR__COUNT ? class_trips[c] : 1;
}

const char *grpc_code_name(int code)
{
	if (code < 0 || code >= JR_GRPC__COUNT)
		return "UNKNOWN";
	return grpc_codes[code].name;
}

const char *action_name(jr_action a)
{
	return (unsigned)a < sizeof action_names / sizeof action_names[0] ? action_names[a] : "?";
}

int action_parse(const char *name)
{
	for (unsigned i = 0; i < JR_ACT_HOLD; i++)
		if (strcmp(action_names[i], name) == 0)
			return (int)i;
	return -1;
}
