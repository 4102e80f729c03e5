/*
 * auth.h — push authentication for `serve` (docs/auth.md).
 *
 * Pub/Sub push and Eventarc send `Authorization: Bearer <JWT>`, a Google
 * OIDC token signed RS256. auth_check verifies it against the keys of a
 * JWKS (jwks.h) and the auth: section of the config: issuer, audiences,
 * allowed emails, email_verified, exp/iat/nbf with AUTH_SKEW_S of skew, and
 * a lifetime (exp - iat) of at most AUTH_MAX_LIFETIME_S. In mode
 * cloud_run_iam (behind Cloud Run's IAM check, which verified the signature
 * and replaced it with AUTH_SIGNATURE_REMOVED) there is no JWKS: the token
 * must carry that marker as its signature, and every other check is made.
 * It answers 0 (pass), 401 (no valid Google token) or 403 (a valid token
 * that is not allowed here), with a short reason for the log line that never
 * contains anything of the token. docs/auth.md has the whole rule set.
 *
 * Thread safety: auth_check may be called from any thread, from several at
 * once; auth_new and auth_free from one thread, outside any auth_check.
 */
#ifndef JR_AUTH_H
#define JR_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jwks.h"

#define AUTH_MAX_TOKEN 8192  /* bytes of the token itself */
#define AUTH_SKEW_S 60       /* clock skew allowed on exp, iat and nbf */
#define AUTH_MAX_LIFETIME_S 3600 /* exp - iat; Google's ID tokens live one hour */
/* what Cloud Run IAM puts in place of the signature of a token it verified */
#define AUTH_SIGNATURE_REMOVED "SIGNATURE_REMOVED_BY_GOOGLE"

typedef struct jr_auth jr_auth;

/*
 * auth_new: the checker for c's auth: section (c->n_auth_audiences > 0), or
 * NULL with err[0] = '\0' when c has no auth: section. In mode
 * cloud_run_iam no JWKS is read or fetched (an AUTH-MODE line is logged, a
 * warning when K_SERVICE is unset, i.e. not on Cloud Run). With auth.jwks_file the
 * file is read now; with auth.jwks_url (default JWKS_GOOGLE_URL) the first
 * fetch happens now, on this thread (at most JWKS_FETCH_TIMEOUT_MS): its
 * failure is only logged, and tokens get 401 until a later fetch succeeds
 * (see auth_ready). NULL with err set for an unreadable or invalid
 * jwks_file, or a jwks_url that is neither https:// nor http:// to a
 * loopback host. Copies what it needs from c. Free with auth_free.
 */
jr_auth *auth_new(const jr_config *c, char *err, size_t errlen);

/*
 * auth_check: the verdict on one request whose token header value is
 * authorization (NULL when the request has none; the caller passes
 * X-Serverless-Authorization instead when the request has that header, as
 * Cloud Run does), at now_s (Unix seconds):
 * 0 when it passes, 401 or 403 otherwise, with why (whylen bytes,
 * NUL-terminated, never empty on 401/403) a short fixed reason such as
 * "token expired" or "email not allowed", for logs; on 0, why is "ok".
 * A token naming a key id the JWKS lacks starts a rate-limited refresh of a
 * jwks_url set (jwks.h) and gets 401: its retry passes once the refresh
 * brought the key. Never blocks on the network.
 */
int auth_check(jr_auth *a, const char *authorization, int64_t now_s, char *why, size_t whylen);

/*
 * auth_check_claims: the claim checks of auth_check alone (iss, exp, iat,
 * nbf, lifetime: 401; aud, email, email_verified: 403) on the decoded payload JSON
 * json[0..len). It verifies no signature, so it decides nothing about a
 * request on its own: it is exported for tests and the fuzz target.
 */
int auth_check_claims(const jr_auth *a, const char *json, size_t len, int64_t now_s,
		      char *why, size_t whylen);

/* auth_ready: 1 when the checker holds a key or needs none (cloud_run_iam), else 0 (for /readyz). */
int auth_ready(jr_auth *a);

/* auth_jwks: the key set a checks against, owned by a (tests wait on its refreshes); NULL in cloud_run_iam. */
jr_jwks *auth_jwks(jr_auth *a);

/* auth_free: releases a (stopping its JWKS refresh thread); NULL is ignored. */
void auth_free(jr_auth *a);

#endif
