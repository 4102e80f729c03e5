/*
 * gcreds.h — Application Default Credentials: jobrelay's own token source
 * for its TLS channels to Google's APIs (Run API, Pub/Sub).
 *
 * gRPC core's own default credentials end a call whose token cannot be had
 * with UNKNOWN and a text, so a credential outage looked like any other error
 * and dead-lettered events; they cannot say which source is in use, never
 * send quota_project_id, and fall back to the metadata server when a file's
 * type is unsupported. This source is discovered once, in Google's order:
 *
 *   1. GOOGLE_APPLICATION_CREDENTIALS names a JSON file;
 *   2. gcloud's file, $CLOUDSDK_CONFIG (else ~/.config/gcloud)
 *      /application_default_credentials.json, when it exists;
 *   3. the metadata server (GCE_METADATA_HOST, else metadata.google.internal).
 *
 * File types: service_account (an RS256 assertion for the jwt-bearer grant at
 * the key's token_uri), authorized_user (the refresh_token grant),
 * external_account (an STS token exchange of a subject token read from a
 * file or URL, then generateAccessToken when it impersonates a service
 * account), impersonated_service_account (its source credentials, then
 * generateAccessToken). Anything else (AWS or executable-sourced external
 * accounts, unknown types) is refused at start-up, naming the type.
 *
 * One worker thread fetches tokens (libcurl, blocking, GCREDS_FETCH_MS at
 * most), keeps the token until GCREDS_EARLY_MS before it expires (renewing
 * it in the background before then), and while fetches fail retries with
 * backoff (GCREDS_RETRY_MIN_MS doubling to GCREDS_RETRY_MAX_MS) on its own,
 * so readiness returns without traffic. A call made while no valid token is
 * held waits for the fetch under way (one fetch, every request of a source's
 * chain, has GCREDS_FETCH_MS in all); while the source is failing it fails at
 * once with a text that gcreds_call_error recognises (gRPC core ends such a
 * call UNAVAILABLE, "Getting metadata from plugin failed with error: ...").
 */
#ifndef JR_GCREDS_H
#define JR_GCREDS_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc_security.h>

#define GCREDS_EARLY_MS 300000     /* a token is renewed this long before it expires */
#define GCREDS_RETRY_MIN_MS 500    /* first retry after a failed fetch */
#define GCREDS_RETRY_MAX_MS 10000  /* the retry interval doubles up to this */

typedef struct jr_gcreds jr_gcreds;

/*
 * gcreds_default: the process's credentials, discovered on the first call
 * (above) and shared by every channel; never freed. NULL with err filled
 * when a credentials file is named or found but cannot be used (missing,
 * unreadable, not JSON, a field missing, a type jobrelay does not support);
 * later calls return the same answer. Reads files only: no network.
 */
jr_gcreds *gcreds_default(char *err, size_t errlen);

/*
 * gcreds_call_credentials: new call credentials that put g's token
 * (authorization: Bearer) and quota project (x-goog-user-project) on every
 * call. The caller composes them with TLS channel credentials and releases
 * them (grpc_call_credentials_release); g outlives them.
 */
grpc_call_credentials *gcreds_call_credentials(jr_gcreds *g);

/*
 * gcreds_check: makes sure a token can be had now: waits up to timeout_ms
 * for one (starting a fetch when none is held). 0, or -1 with err naming the
 * source and the last failure. For the start-up checks (exit 3).
 */
int gcreds_check(jr_gcreds *g, int64_t timeout_ms, char *err, size_t errlen);

/* gcreds_source: the source in use, for logs: "metadata server metadata.google.internal", "service account key /path", ... (static to g). */
const char *gcreds_source(const jr_gcreds *g);
/* gcreds_account: the account when known (a key's client_email, the metadata server's email once a check read it), else "". */
const char *gcreds_account(const jr_gcreds *g);
/* gcreds_quota_project: the quota project sent as x-goog-user-project, else "". */
const char *gcreds_quota_project(const jr_gcreds *g);

/*
 * gcreds_failing: 1 while no valid token is held and the last fetch failed
 * (readiness is then false). Safe from any thread; NULL gives 0.
 */
int gcreds_failing(const jr_gcreds *g);
/* gcreds_retry_in_ms: ms until the next fetch attempt while failing (>= 0), else 0. NULL gives 0. */
int64_t gcreds_retry_in_ms(const jr_gcreds *g);

/*
 * gcreds_call_error: 1 when a call that ended with status code and details
 * message failed because jobrelay's credentials could not give it a token
 * (the call never reached the service).
 */
int gcreds_call_error(int code, const char *message);

/* gcreds_active: the credentials made by gcreds_default, or NULL when none were (plaintext endpoints only). */
jr_gcreds *gcreds_active(void);

/*
 * gcreds_startup_check: for the commands' start-up checks: when a channel
 * uses the credentials (gcreds_active), makes sure a token can be had within
 * wait_ms; logs the source in use, its account and quota project once
 * (CREDENTIALS-SOURCE), or CREDENTIALS-UNAVAILABLE naming the source and the
 * failure. 0 (also when no channel uses them), or -1: exit 3.
 */
int gcreds_startup_check(int64_t wait_ms);

/*
 * gcreds_shutdown: before grpc_shutdown: stops the token thread (a transfer
 * under way is aborted) and answers every call still waiting for a token
 * with an error; later calls fail at once. No-op without credentials.
 */
void gcreds_shutdown(void);

/*
 * gcreds_token_rejected: an API answered UNAUTHENTICATED: the token held is
 * not handed out again; the next call waits for a new one. NULL is a no-op.
 */
void gcreds_token_rejected(jr_gcreds *g);

#endif
