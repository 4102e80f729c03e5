/*
 * gcreds_src.h — the credential sources behind gcreds.c: reading a
 * credentials file into a source, and getting an access token from a
 * source over HTTPS (libcurl, blocking). For gcreds.c alone; gcreds.h is the
 * interface of Application Default Credentials.
 */
#ifndef JR_GCREDS_SRC_H
#define JR_GCREDS_SRC_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "mem.h"

#define GCREDS_FETCH_MS 10000       /* one token fetch, every request of its source's chain */
#define GCREDS_MAX_BODY (64 * 1024) /* largest answer or credentials file read */

typedef enum gcreds_src_kind {
	GCREDS_METADATA,
	GCREDS_SERVICE_ACCOUNT,
	GCREDS_USER,
	GCREDS_EXTERNAL,
	GCREDS_IMPERSONATED,
} gcreds_src_kind;

/* One credential source, as read from its file (strings in the gcreds arena). */
typedef struct gcreds_src {
	gcreds_src_kind kind;
	const char *metadata_host;                             /* METADATA */
	const char *client_email, *private_key, *key_id;      /* SERVICE_ACCOUNT */
	const char *token_uri;                                 /* SERVICE_ACCOUNT, USER */
	const char *client_id, *client_secret, *refresh_token; /* USER */
	const char *audience, *subject_token_type, *sts_url;   /* EXTERNAL */
	const char *subject_file, *subject_url, *subject_field;
	const jr_json *subject_headers; /* EXTERNAL, url source: an object of header strings */
	const char *impersonation_url;  /* EXTERNAL (optional), IMPERSONATED */
	const jr_json *delegates;       /* IMPERSONATED: the delegation chain (an array of strings), or NULL */
	struct gcreds_src *inner;              /* IMPERSONATED: the source credentials */
} gcreds_src;


/* A token from a source: token malloc'd (the caller frees it), its lifetime in seconds (1..3600). */
typedef struct gcreds_token {
	char *token;
	int64_t expires_in;
} gcreds_token;

/*
 * gcreds_src_load: the source in the credentials file at path into s (its
 * strings in arena a, which must outlive s); *quota gets its
 * quota_project_id (in a) or NULL. 0, or -1 with err naming the file and
 * what is wrong (unreadable, over GCREDS_MAX_BODY, not JSON, a field
 * missing, a type or credential source that is not supported).
 */
int gcreds_src_load(jr_arena *a, const char *path, gcreds_src *s, const char **quota, char *err,
		    size_t errlen);
/* gcreds_src_kind_name: "metadata server", "service account key", ... (static). */
const char *gcreds_src_kind_name(const gcreds_src *s);
/*
 * gcreds_src_fetch: a new token from s, blocking, every request of the chain
 * within GCREDS_FETCH_MS in all. 0 (t filled), or -1 with err (no secret in
 * it: at most the start of an error answer).
 */
int gcreds_src_fetch(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen);
/* gcreds_src_email: the metadata server's default account into out (cap bytes), best effort; unchanged on failure. */
void gcreds_src_email(const gcreds_src *s, char *out, size_t cap);
/* gcreds_src_stop / gcreds_src_stopped: from then on every transfer is aborted; any thread. */
void gcreds_src_stop(void);
int gcreds_src_stopped(void);

#endif
