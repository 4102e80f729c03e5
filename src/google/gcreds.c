/*
 * gcreds.c — Application Default Credentials (see gcreds.h for the order,
 * the types and the worker's timing).
 *
 * Design: the discovered source (a gcreds_src, gcreds_src.h, read once) is
 * immutable; everything that changes — the token, its expiry, the failure
 * state and the plugin requests waiting for a token — sits under one mutex.
 * One detached worker thread does every fetch, so at most one token request
 * is under way and callers never block on the network: the gRPC plugin
 * answers at once from the cache, or parks its request for the worker,
 * which answers it (from its own thread, as gRPC requires) when the fetch
 * ends. The worker sleeps on a condition variable until a token is wanted,
 * the held one is due for renewal, or a failed fetch is due for a retry.
 */
#include "gcreds.h"
#include "gcreds_src.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>

#include "log.h"
#include "loop.h"
#include "mem.h"

#define ERR_MARK "jobrelay credentials: "
#define VALID_MARGIN_MS 10000 /* a token this close to expiry is not handed to a call */

/* A plugin request waiting for the worker's fetch. */
typedef struct pending {
	grpc_credentials_plugin_metadata_cb cb;
	void *user_data;
	struct pending *next;
} pending;

struct jr_gcreds {
	jr_arena arena; /* the source's strings; never freed */
	gcreds_src s;
	char source[300], quota[128];
	grpc_slice quota_md;    /* quota as a slice, made once (empty: none) */
	pthread_mutex_t mu;
	pthread_cond_t wake; /* the worker: a token is wanted */
	pthread_cond_t done; /* gcreds_check: a fetch ended */
	/* under mu: */
	char account[256];
	grpc_slice bearer;      /* "Bearer <token>", made once a fetch; empty: none yet */
	int64_t valid_until_ms; /* monotonic: handed to calls until then */
	int64_t renew_at_ms;    /* monotonic: renewed in the background from then on */
	int wanted, fetching, started;
	pthread_t thread; /* the worker, once started */
	int failed;         /* the last fetch failed: the next is at retry_at_ms */
	int64_t retry_at_ms, retry_ms;
	unsigned long fetches; /* fetches ended, for gcreds_check */
	char last_err[400];
	pending *waiting;
};

/* abs_time: the CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec abs_time(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
	ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	return ts;
}

/* ---- the worker and the cache ---- */

static int valid_locked(const jr_gcreds *g, int64_t now)
{
	return GRPC_SLICE_LENGTH(g->bearer) && now < g->valid_until_ms;
}

/*
 * md_fill: the call metadata for bearer (md: 2 entries, each value a new
 * reference to a slice made once, so a call costs no allocation); the count.
 */
static size_t md_fill(const jr_gcreds *g, grpc_slice bearer, grpc_metadata *md)
{
	size_t n = 0;
	memset(md, 0, 2 * sizeof *md);
	md[n].key = grpc_slice_from_static_string("authorization");
	md[n++].value = grpc_slice_ref(bearer);
	if (GRPC_SLICE_LENGTH(g->quota_md)) {
		md[n].key = grpc_slice_from_static_string("x-goog-user-project");
		md[n++].value = grpc_slice_ref(g->quota_md);
	}
	return n;
}

static char *error_text(const jr_gcreds *g)
{
	char e[sizeof g->last_err + sizeof g->source + 64];
	snprintf(e, sizeof e, ERR_MARK "%s: %s", g->source, g->last_err);
	return gpr_strdup(e);
}

/*
 * answer: the waiting plugin requests get bearer (an empty slice: the
 * error); called without mu. bearer's reference is the caller's.
 */
static void answer(jr_gcreds *g, pending *p, grpc_slice bearer, const char *error)
{
	grpc_metadata md[2];
	int ok = GRPC_SLICE_LENGTH(bearer) > 0;
	size_t n = ok ? md_fill(g, bearer, md) : 0;
	while (p) {
		pending *next = p->next;
		if (ok)
			p->cb(p->user_data, md, n, GRPC_STATUS_OK, NULL);
		else
			p->cb(p->user_data, NULL, 0, GRPC_STATUS_UNAUTHENTICATED, error);
		free(p);
		p = next;
	}
	for (size_t i = 0; i < n; i++)
		grpc_slice_unref(md[i].value);
}

/* next_due: ms until the worker must fetch without being asked (-1: never). */
static int64_t next_due(const jr_gcreds *g, int64_t now)
{
	if (g->failed)
		return g->retry_at_ms > now ? g->retry_at_ms - now : 0;
	if (GRPC_SLICE_LENGTH(g->bearer))
		return g->renew_at_ms > now ? g->renew_at_ms - now : 0;
	return -1;
}

static void fetch_ended(jr_gcreds *g, gcreds_token *t, const char *err)
{
	int64_t now = loop_now_ms();
	pending *p = NULL;
	char *error = NULL;
	grpc_slice bearer = grpc_empty_slice();
	int was_failing;
	pthread_mutex_lock(&g->mu);
	g->fetching = 0;
	g->fetches++;
	was_failing = g->failed && !valid_locked(g, now);
	if (t->token) {
		/* renewed GCREDS_EARLY_MS before expiry, or half-way for a short-lived token */
		int64_t life = t->expires_in * 1000;
		char *v = jr_asprintf("Bearer %s", t->token);
		grpc_slice_unref(g->bearer);
		g->bearer = grpc_slice_from_copied_string(v);
		free(v);
		g->renew_at_ms = now + (life < 2 * GCREDS_EARLY_MS ? life / 2 : life - GCREDS_EARLY_MS);
		g->valid_until_ms = now + life - (life < 4 * VALID_MARGIN_MS ? life / 4 : VALID_MARGIN_MS);
		g->failed = 0;
		g->retry_ms = GCREDS_RETRY_MIN_MS;
	} else {
		snprintf(g->last_err, sizeof g->last_err, "%s", err);
		g->failed = 1;
		g->retry_at_ms = now + g->retry_ms;
		g->retry_ms = g->retry_ms * 2 > GCREDS_RETRY_MAX_MS ? GCREDS_RETRY_MAX_MS : g->retry_ms * 2;
	}
	g->wanted = 0;
	if (g->waiting) {
		p = g->waiting;
		g->waiting = NULL;
		if (valid_locked(g, now))
			bearer = grpc_slice_ref(g->bearer);
		else
			error = error_text(g);
	}
	pthread_cond_broadcast(&g->done);
	pthread_mutex_unlock(&g->mu);
	answer(g, p, bearer, error);
	grpc_slice_unref(bearer);
	gpr_free(error);
	if (!t->token)
		log_kv(was_failing ? JR_LOG_DEBUG : JR_LOG_WARNING, "CREDENTIALS-FAILED",
		       "cannot get an access token; calls are held until one can be had", "source",
		       g->source, "error", err, NULL);
	else if (was_failing)
		log_kv(JR_LOG_INFO, "CREDENTIALS-OK", "access tokens can be had again", "source",
		       g->source, NULL);
	free(t->token); /* its copy lives in g->bearer */
}

static void *worker(void *arg)
{
	jr_gcreds *g = arg;
	for (;;) {
		pthread_mutex_lock(&g->mu);
		for (;;) {
			int64_t now = loop_now_ms(), due = next_due(g, now);
			if (gcreds_src_stopped()) {
				pthread_mutex_unlock(&g->mu);
				return NULL;
			}
			if ((g->wanted && !g->failed) || due == 0)
				break;
			if (due < 0) {
				pthread_cond_wait(&g->wake, &g->mu);
			} else {
				struct timespec ts = abs_time(due);
				pthread_cond_timedwait(&g->wake, &g->mu, &ts);
			}
		}
		g->fetching = 1;
		pthread_mutex_unlock(&g->mu);
		gcreds_token t;
		char err[400] = "";
		if (gcreds_src_fetch(&g->s, &t, err, sizeof err) < 0)
			t.token = NULL;
		fetch_ended(g, &t, err);
	}
	return NULL;
}

/* want_locked: a token is needed: start the worker (first time) and wake it. -1 when it cannot start. */
static int want_locked(jr_gcreds *g)
{
	g->wanted = 1;
	if (!g->started) {
		if (pthread_create(&g->thread, NULL, worker, g) != 0) {
			snprintf(g->last_err, sizeof g->last_err, "cannot start the token thread");
			return -1;
		}
		g->started = 1;
	}
	pthread_cond_signal(&g->wake);
	return 0;
}

/* ---- the gRPC plugin ---- */

static int plugin_get(void *state, grpc_auth_metadata_context ctx,
		      grpc_credentials_plugin_metadata_cb cb, void *user_data,
		      grpc_metadata md[GRPC_METADATA_CREDENTIALS_PLUGIN_SYNC_MAX], size_t *n,
		      grpc_status_code *status, const char **details)
{
	(void)ctx;
	jr_gcreds *g = state;
	int64_t now = loop_now_ms();
	pthread_mutex_lock(&g->mu);
	if (valid_locked(g, now)) {
		if (now >= g->renew_at_ms && !g->fetching)
			want_locked(g); /* renew ahead; this call still has a good token */
		*n = md_fill(g, g->bearer, md);
		*status = GRPC_STATUS_OK;
		*details = NULL;
		pthread_mutex_unlock(&g->mu);
		return 1;
	}
	if ((g->failed && (g->fetching || now < g->retry_at_ms)) || gcreds_src_stopped() ||
	    want_locked(g) < 0) {
		/* tokens are failing: answer now rather than wait for a fetch that may hang */
		*n = 0;
		*status = GRPC_STATUS_UNAUTHENTICATED;
		*details = error_text(g);
		pthread_mutex_unlock(&g->mu);
		return 1;
	}
	pending *p = jr_malloc(sizeof *p);
	p->cb = cb;
	p->user_data = user_data;
	p->next = g->waiting;
	g->waiting = p;
	pthread_mutex_unlock(&g->mu);
	return 0;
}

static char *plugin_debug(void *state)
{
	return gpr_strdup(((jr_gcreds *)state)->source);
}

static void plugin_destroy(void *state)
{
	(void)state; /* g lives as long as the process */
}

grpc_call_credentials *gcreds_call_credentials(jr_gcreds *g)
{
	grpc_metadata_credentials_plugin p = {
		.get_metadata = plugin_get, .debug_string = plugin_debug,
		.destroy = plugin_destroy, .state = g, .type = "jobrelay-adc",
	};
	return grpc_metadata_credentials_create_from_plugin(p, GRPC_PRIVACY_AND_INTEGRITY, NULL);
}

/* ---- discovery and the public calls ---- */

static jr_gcreds *the_creds;
static char the_err[600];

static void discover(void)
{
	jr_gcreds *g = jr_calloc(1, sizeof *g);
	arena_init(&g->arena);
	pthread_mutex_init(&g->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_cond_init(&g->done, &ca);
	pthread_condattr_destroy(&ca);
	g->retry_ms = GCREDS_RETRY_MIN_MS;

	const char *path = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	char well[1024] = "";
	if (!path || !*path) {
		const char *cfg = getenv("CLOUDSDK_CONFIG"), *home = getenv("HOME");
		if (cfg && *cfg)
			snprintf(well, sizeof well, "%s/application_default_credentials.json", cfg);
		else if (home && *home)
			snprintf(well, sizeof well, "%s/.config/gcloud/application_default_credentials.json",
				 home);
		path = well[0] && access(well, F_OK) == 0 ? well : NULL;
	}
	int rc = 0;
	if (path) {
		const char *qp = NULL;
		rc = gcreds_src_load(&g->arena, path, &g->s, &qp, the_err, sizeof the_err);
		snprintf(g->quota, sizeof g->quota, "%s", qp ? qp : "");
		snprintf(g->source, sizeof g->source, "%s %s", gcreds_src_kind_name(&g->s), path);
		if (rc == 0 && g->s.kind == GCREDS_SERVICE_ACCOUNT)
			snprintf(g->account, sizeof g->account, "%s", g->s.client_email);
	} else {
		const char *host = getenv("GCE_METADATA_HOST");
		g->s.kind = GCREDS_METADATA;
		g->s.metadata_host = arena_strdup(&g->arena, host && *host ? host : "metadata.google.internal");
		snprintf(g->source, sizeof g->source, "metadata server %s", g->s.metadata_host);
	}
	const char *qp = getenv("GOOGLE_CLOUD_QUOTA_PROJECT");
	if (qp && *qp)
		snprintf(g->quota, sizeof g->quota, "%s", qp);
	if (rc == 0) {
		if (g->quota[0])
			g->quota_md = grpc_slice_from_copied_string(g->quota);
		the_creds = g;
		return;
	}
	arena_free(&g->arena); /* the_err tells why */
	pthread_cond_destroy(&g->wake);
	pthread_cond_destroy(&g->done);
	pthread_mutex_destroy(&g->mu);
	free(g);
}

jr_gcreds *gcreds_default(char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, discover);
	if (!the_creds)
		snprintf(err, errlen, "%s", the_err);
	return the_creds;
}

jr_gcreds *gcreds_active(void)
{
	return the_creds;
}

int gcreds_check(jr_gcreds *g, int64_t timeout_ms, char *err, size_t errlen)
{
	int64_t end = loop_now_ms() + timeout_ms;
	pthread_mutex_lock(&g->mu);
	unsigned long seen = g->fetches;
	int ok;
	while (!(ok = valid_locked(g, loop_now_ms()))) {
		if (g->fetches != seen && g->failed)
			break; /* a fetch asked for after this call began has failed */
		int64_t left = end - loop_now_ms();
		if (left <= 0)
			break;
		if (!g->fetching && want_locked(g) < 0)
			break;
		struct timespec ts = abs_time(left);
		pthread_cond_timedwait(&g->done, &g->mu, &ts);
	}
	if (!ok)
		snprintf(err, errlen, "no access token from %s: %s", g->source,
			 g->last_err[0] ? g->last_err : "timed out");
	int need_email = ok && g->s.kind == GCREDS_METADATA && !g->account[0];
	pthread_mutex_unlock(&g->mu);
	if (need_email) {
		char email[256] = "";
		gcreds_src_email(&g->s, email, sizeof email);
		pthread_mutex_lock(&g->mu);
		snprintf(g->account, sizeof g->account, "%s", email);
		pthread_mutex_unlock(&g->mu);
	}
	return ok ? 0 : -1;
}

const char *gcreds_source(const jr_gcreds *g)
{
	return g->source;
}

const char *gcreds_account(const jr_gcreds *g)
{
	return g->account;
}

const char *gcreds_quota_project(const jr_gcreds *g)
{
	return g->quota;
}

int gcreds_failing(const jr_gcreds *g)
{
	if (!g)
		return 0;
	jr_gcreds *m = (jr_gcreds *)g;
	pthread_mutex_lock(&m->mu);
	int f = m->failed && !valid_locked(m, loop_now_ms());
	pthread_mutex_unlock(&m->mu);
	return f;
}

int64_t gcreds_retry_in_ms(const jr_gcreds *g)
{
	if (!g)
		return 0;
	jr_gcreds *m = (jr_gcreds *)g;
	pthread_mutex_lock(&m->mu);
	int64_t now = loop_now_ms();
	int64_t r = m->failed && m->retry_at_ms > now ? m->retry_at_ms - now : 0;
	pthread_mutex_unlock(&m->mu);
	return r;
}

int gcreds_call_error(int code, const char *message)
{
	/* the details gRPC core writes for a plugin's failure: its prefix, then the plugin's text */
	static const char grpc_prefix[] = "Getting metadata from plugin failed with error: ";
	if (code == 0 || !message)
		return 0;
	if (!strncmp(message, grpc_prefix, sizeof grpc_prefix - 1))
		message += sizeof grpc_prefix - 1;
	return !strncmp(message, ERR_MARK, sizeof ERR_MARK - 1);
}

int gcreds_startup_check(int64_t wait_ms)
{
	static int logged;
	jr_gcreds *g = the_creds;
	if (!g)
		return 0;
	char err[800];
	if (gcreds_check(g, wait_ms, err, sizeof err) < 0) {
		log_kv(JR_LOG_ERROR, "CREDENTIALS-UNAVAILABLE",
		       "cannot get an access token for Google's APIs", "source", g->source, "error",
		       err, NULL);
		return -1;
	}
	if (!logged++)
		log_kv(JR_LOG_INFO, "CREDENTIALS-SOURCE", "application default credentials", "source",
		       g->source, "account", g->account[0] ? g->account : NULL, "quota_project",
		       g->quota[0] ? g->quota : NULL, NULL);
	return 0;
}

void gcreds_shutdown(void)
{
	jr_gcreds *g = the_creds;
	if (!g)
		return;
	gcreds_src_stop();
	pthread_mutex_lock(&g->mu);
	pending *p = g->waiting;
	g->waiting = NULL;
	int started = g->started;
	pthread_cond_broadcast(&g->wake);
	pthread_mutex_unlock(&g->mu);
	if (started)
		pthread_join(g->thread, NULL); /* a transfer under way is aborted by on_progress */
	answer(g, p, grpc_empty_slice(), ERR_MARK "jobrelay is shutting down");
}

void gcreds_token_rejected(jr_gcreds *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->mu);
	g->valid_until_ms = 0; /* the next call waits for a new token */
	g->renew_at_ms = 0;
	pthread_mutex_unlock(&g->mu);
}
