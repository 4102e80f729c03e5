/*
 * jwks.c — JWKS loading, caching and fetching.
 *
 * A key set is an array of (kid, EVP_PKEY) pairs, at most JWKS_MAX_KEYS, and
 * is looked up by a linear scan (Google publishes two or three keys). It is
 * swapped whole when a fetch succeeds. Verifications hold a read lock on it
 * (they run side by side); the swap takes the write lock (writers are
 * preferred, so a steady stream of checks cannot starve it), and frees the
 * old set after releasing it, when no verification can still see it. The
 * alternative, handing out references to single keys, leaves the last free
 * of a key to whichever thread drops it, synchronised only by OpenSSL's
 * internal reference count, which ThreadSanitizer cannot see.
 * A mutex guards the rest (refresh state, counters, expiry, the cache).
 *
 * Verified signatures are remembered: Pub/Sub push and Eventarc send the
 * same token with every request for up to an hour, and the RSA verification
 * is nearly all of a check's cost (about 20 us of 23 on this machine). The
 * cache holds the SHA-256 of (kid, signed text, signature) of the last
 * JWKS_VCACHE signatures that verified, each with the generation of the key
 * set it verified against; a swap of the set starts a new generation, so a
 * key that left, or came back with other material under the same kid, is
 * never trusted from the cache. Only verified signatures enter it, and a hit
 * needs the same bytes, so it can only ever repeat an earlier success.
 *
 * Fetching: a URL set owns one thread that sleeps on a condition variable
 * until jwks_verify asks for a refresh, then fetches with libcurl (blocking,
 * bounded by the timeout and JWKS_MAX_BYTES, abortable by jwks_free through
 * the progress callback) and swaps the set in. The decision to refresh is
 * taken in jwks_verify from the caller's clock, so the rate limit (one fetch
 * started per JWKS_REFRESH_MIN_S) and the max-age expiry are stepped by
 * tests like any other policy. The alternative, fetching on the calling
 * thread, would stall the HTTP server for up to the fetch timeout each time
 * Google rotates keys; the price of the thread is that the request which
 * meets a new kid first is refused (401) and its retry passes. Google
 * publishes keys well before signing with them, so in practice the expiry
 * refresh finds them first.
 *
 * The fetch made at start-up does not count against the rate limit: the
 * first refresh may follow it at once (a key met in the first seconds, or
 * a start-up fetch that failed), the ones after it come 30 s apart.
 *
 * A failed refresh keeps the keys already held (they are Google's, and the
 * next refresh comes JWKS_REFRESH_MIN_S later at the earliest).
 */
#include "jwks.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base64.h"
#include "json.h"
#include "jsonparse.h"
#include "httpc.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "version.h"

#define JWKS_MAX_KID 256
#define JWKS_MAX_N_BYTES 1024  /* 8192-bit modulus */
#define JWKS_MIN_BITS 2048
#define JWKS_JSON_DEPTH 8

typedef struct jwks_key {
	char *kid;
	EVP_PKEY *pkey;
} jwks_key;

typedef struct jwks_set {
	jwks_key *keys;
	size_t n;
} jwks_set;

#define JWKS_VCACHE 64

typedef struct jwks_vcache {
	unsigned char h[32];
	uint64_t gen;   /* 0: empty */
} jwks_vcache;

struct jr_jwks {
	pthread_rwlock_t set_lock;
	jwks_set set;           /* under set_lock */
	uint64_t set_gen;       /* under set_lock: 1 + number of swaps */
	EVP_MD *sha256;
	pthread_mutex_t mu;     /* everything below */
	jwks_vcache vc[JWKS_VCACHE];
	unsigned vc_next;
	pthread_cond_t cv;      /* refresh asked (thread), fetch finished (jwks_wait) */
	int64_t expires_s;
	jwks_info info;
	/* URL sets only */
	char *url;
	int loopback;
	int timeout_ms;
	int64_t last_start_s;   /* when the last refresh was asked for; INT64_MIN: none yet */
	int64_t kick_now_s;     /* the clock of the pending refresh */
	int pending, fetching;
	atomic_int stop;
	int has_thread;
	pthread_t thread;
};

/* ---- base64url ---- */

long jwks_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	return base64_decode_to(in, n, out, cap, BASE64_URL_STRICT);
}

/* ---- parsing a JWKS ---- */

static int str_is(const jr_json *v, const char *lit)
{
	size_t n = strlen(lit);
	return v && v->type == JR_JSON_STRING && v->n == n && memcmp(v->s, lit, n) == 0;
}

static void set_free(jwks_set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->keys[i].kid);
		EVP_PKEY_free(s->keys[i].pkey);
	}
	free(s->keys);
	s->keys = NULL;
	s->n = 0;
}

static EVP_PKEY *set_find(const jwks_set *s, const char *kid)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->keys[i].kid, kid) == 0)
			return s->keys[i].pkey;
	return NULL;
}

/* rsa_public_key: an EVP_PKEY from the big-endian modulus and exponent, or NULL. */
static EVP_PKEY *rsa_public_key(const unsigned char *n, size_t nlen, const unsigned char *e,
				size_t elen, const char **why)
{
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	if (!bn || !be || !bld) {
		*why = "out of memory building the key";
		goto out;
	}
	if (BN_num_bits(bn) < JWKS_MIN_BITS) {
		*why = "RSA modulus shorter than 2048 bits";
		goto out;
	}
	if (!BN_is_odd(be) || BN_is_one(be)) {
		*why = "RSA exponent is not an odd number above 1";
		goto out;
	}
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		*why = "OpenSSL refused the RSA key";
		pkey = NULL;
	}
out:
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

/*
 * key_from_jwk: the key of one JWKS entry, or -1 with why set; *warn tells
 * whether the entry looked like one of ours (an RS256 key that is broken)
 * rather than merely another kind of key.
 */
static int key_from_jwk(const jr_json *k, jwks_key *out, const char **why, int *warn)
{
	*warn = 0;
	if (!k || k->type != JR_JSON_OBJECT) {
		*why = "entry is not an object";
		*warn = 1;
		return -1;
	}
	const jr_json *alg = json_get(k, "alg"), *use = json_get(k, "use");
	if (!str_is(json_get(k, "kty"), "RSA")) {
		*why = "kty is not RSA";
		return -1;
	}
	if (alg && !str_is(alg, "RS256")) {
		*why = "alg is not RS256";
		return -1;
	}
	if (use && !str_is(use, "sig")) {
		*why = "use is not sig";
		return -1;
	}
	*warn = 1;
	const jr_json *kid = json_get(k, "kid"), *n = json_get(k, "n"), *e = json_get(k, "e");
	if (!kid || kid->type != JR_JSON_STRING || kid->n == 0 || kid->n > JWKS_MAX_KID ||
	    memchr(kid->s, '\0', kid->n)) {
		*why = "no kid, or not a string of 1 to 256 bytes";
		return -1;
	}
	unsigned char nb[JWKS_MAX_N_BYTES], eb[8];
	long nl = -1, el = -1;
	if (n && n->type == JR_JSON_STRING)
		nl = jwks_b64url_decode(n->s, n->n, nb, sizeof nb);
	if (e && e->type == JR_JSON_STRING)
		el = jwks_b64url_decode(e->s, e->n, eb, sizeof eb);
	if (nl <= 0 || el <= 0) {
		*why = "n or e is not base64url of a modulus up to 8192 bits and an exponent up to 64 bits";
		return -1;
	}
	EVP_PKEY *pkey = rsa_public_key(nb, (size_t)nl, eb, (size_t)el, why);
	if (!pkey)
		return -1;
	out->kid = jr_strndup(kid->s, kid->n);
	out->pkey = pkey;
	return 0;
}

/* set_parse: the usable keys of JWKS text into out (empty on entry); -1 with err. */
static int set_parse(const char *text, size_t len, jwks_set *out, char *err, size_t errlen)
{
	if (len > JWKS_MAX_BYTES) {
		snprintf(err, errlen, "JWKS larger than %d bytes", JWKS_MAX_BYTES);
		return -1;
	}
	jr_arena a;
	arena_init(&a);
	char perr[128];
	int rc = -1;
	const jr_json *root = jsonparse(&a, text, len, JWKS_JSON_DEPTH, perr, sizeof perr);
	const jr_json *keys = root ? json_get(root, "keys") : NULL;
	if (!root) {
		snprintf(err, errlen, "JWKS is not JSON: %s", perr);
	} else if (!keys || keys->type != JR_JSON_ARRAY) {
		snprintf(err, errlen, "JWKS has no \"keys\" array");
	} else if (keys->n > JWKS_MAX_KEYS) {
		snprintf(err, errlen, "JWKS has %zu keys, more than %d", keys->n, JWKS_MAX_KEYS);
	} else {
		out->keys = jr_calloc(keys->n ? keys->n : 1, sizeof *out->keys);
		for (size_t i = 0; i < keys->n; i++) {
			jwks_key k;
			const char *why = NULL;
			int warn;
			if (key_from_jwk(keys->items[i], &k, &why, &warn) == 0 &&
			    set_find(out, k.kid)) {
				why = "repeats an earlier kid";
				free(k.kid);
				EVP_PKEY_free(k.pkey);
			} else if (!why) {
				out->keys[out->n++] = k;
				continue;
			}
			const char *kid = json_get_str(keys->items[i], "kid");
			log_kv(warn ? JR_LOG_WARNING : JR_LOG_DEBUG, "JWKS-KEY-SKIPPED",
			       "JWKS entry skipped", "kid", kid, "reason", why, NULL);
		}
		if (out->n)
			rc = 0;
		else
			snprintf(err, errlen, "JWKS holds no usable RS256 key (%zu entries)", keys->n);
	}
	if (rc)
		set_free(out);
	arena_free(&a);
	return rc;
}

static jr_jwks *jwks_alloc(void)
{
	jr_jwks *j = jr_calloc(1, sizeof *j);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&j->mu, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&j->set_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	j->set_gen = 1;
	j->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!j->sha256)
		abort();
	j->expires_s = INT64_MAX;
	return j;
}

static void note_keys(size_t n)
{
	metric_set(metric_register("jobrelay_jwks_keys", JR_METRIC_GAUGE,
				   "RS256 keys held for push authentication.", NULL, 0),
		   NULL, (double)n);
}

jr_jwks *jwks_from_json(const char *text, size_t len, char *err, size_t errlen)
{
	jwks_set s = {0};
	if (set_parse(text, len, &s, err, errlen))
		return NULL;
	jr_jwks *j = jwks_alloc();
	j->set = s;
	return j;
}

jr_jwks *jwks_from_file(const char *path, char *err, size_t errlen)
{
	jr_buf b;
	buf_init(&b, JWKS_MAX_BYTES);
	const char *why;
	jr_jwks *j = NULL;
	char perr[200];
	if (buf_read_file(&b, path, &why) < 0 && why == BUF_TOO_LARGE)
		snprintf(err, errlen, "jwks_file %s: larger than %d bytes", path, JWKS_MAX_BYTES);
	else if (why)
		snprintf(err, errlen, "jwks_file %s: %s", path, why);
	else if (!(j = jwks_from_json(b.data ? b.data : "", b.len, perr, sizeof perr)))
		snprintf(err, errlen, "jwks_file %s: %s", path, perr);
	buf_free(&b);
	if (j) {
		note_keys(j->set.n);
		log_kv(JR_LOG_INFO, "JWKS-LOADED", "push authentication keys loaded", "file", path,
		       NULL);
	}
	return j;
}

/* ---- fetching ---- */

typedef struct fetch_ctx {
	jr_buf body;
	int64_t max_age;   /* -1: none seen */
	int64_t age;
	int too_big;
	atomic_int *stop;
} fetch_ctx;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	fetch_ctx *fc = arg;
	if (buf_add(&fc->body, p, size * nmemb)) {
		fc->too_big = 1;
		return 0;
	}
	return size * nmemb;
}

/* header_value: the value of header line p[0..n) if its name is name, trimmed; NULL otherwise. */
static const char *header_value(const char *p, size_t n, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':')
		return NULL;
	const char *v = p + nl + 1, *end = p + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*vlen = (size_t)(end - v);
	return v;
}

/* parse_seconds: leading decimal digits of s[0..n) (an optional quote first), capped; -1 when none. */
static int64_t parse_seconds(const char *s, size_t n)
{
	size_t i = 0;
	if (i < n && s[i] == '"')
		i++;
	int64_t v = 0;
	size_t start = i;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		if (v < 10LL * JWKS_MAX_MAX_AGE_S)
			v = v * 10 + (s[i] - '0');
	return i > start ? v : -1;
}

/* cache_control: max-age of a Cache-Control value (no-cache and no-store: 0); -1 when absent. */
static int64_t cache_control(const char *v, size_t n)
{
	int64_t max_age = -1;
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && v[j] != ',')
			j++;
		size_t a = i, b = j;
		while (a < b && (v[a] == ' ' || v[a] == '\t'))
			a++;
		while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
			b--;
		if (b - a > 8 && strncasecmp(v + a, "max-age=", 8) == 0) {
			int64_t s = parse_seconds(v + a + 8, b - a - 8);
			if (s >= 0 && max_age != 0)
				max_age = s;
		} else if ((b - a == 8 && strncasecmp(v + a, "no-cache", 8) == 0) ||
			   (b - a == 8 && strncasecmp(v + a, "no-store", 8) == 0)) {
			max_age = 0;
		}
		i = j + 1;
	}
	return max_age;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	fetch_ctx *fc = arg;
	size_t n = size * nmemb, vl;
	const char *v;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response: forget the last one's */
		fc->max_age = -1;
		fc->age = 0;
	} else if ((v = header_value(p, n, "Cache-Control", &vl))) {
		fc->max_age = cache_control(v, vl);
	} else if ((v = header_value(p, n, "Age", &vl))) {
		int64_t age = parse_seconds(v, vl);
		fc->age = age > 0 ? age : 0;
	}
	return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	fetch_ctx *fc = arg;
	return atomic_load(fc->stop) ? 1 : 0;
}

/* fresh_for: seconds a response stays fresh: max-age less Age, default and cap applied. */
static int64_t fresh_for(const fetch_ctx *fc)
{
	int64_t s = fc->max_age < 0 ? JWKS_DEFAULT_MAX_AGE_S : fc->max_age - fc->age;
	if (s < 0)
		s = 0;
	return s > JWKS_MAX_MAX_AGE_S ? JWKS_MAX_MAX_AGE_S : s;
}

/* fetch_set: GET j->url into a parsed set; -1 with err. Blocks up to j->timeout_ms. */
static int fetch_set(jr_jwks *j, jwks_set *out, int64_t *fresh_s, char *err, size_t errlen)
{
	fetch_ctx fc = {.max_age = -1, .stop = &j->stop};
	buf_init(&fc.body, JWKS_MAX_BYTES);
	char cerr[CURL_ERROR_SIZE];
	CURL *c = httpc_easy(j->url, j->loopback ? HTTPC_HTTP : 0, (long)j->timeout_ms,
			     JWKS_MAX_BYTES, cerr);
	if (!c) {
		snprintf(err, errlen, "curl_easy_init failed");
		buf_free(&fc.body);
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &fc);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &fc);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &fc);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	int ret = -1;
	char perr[200];
	if (fc.too_big || rc == CURLE_FILESIZE_EXCEEDED)
		snprintf(err, errlen, "response larger than %d bytes", JWKS_MAX_BYTES);
	else if (rc != CURLE_OK)
		snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
	else if (status != 200)
		snprintf(err, errlen, "HTTP status %ld", status);
	else if (set_parse(fc.body.data ? fc.body.data : "", fc.body.len, out, perr, sizeof perr))
		snprintf(err, errlen, "%s", perr);
	else
		ret = 0;
	*fresh_s = fresh_for(&fc);
	buf_free(&fc.body);
	return ret;
}

/* fetch_done: applies the outcome of a fetch asked for at t0_s, and wakes waiters. */
static void fetch_done(jr_jwks *j, int rc, jwks_set *s, int64_t t0_s, int64_t fresh_s,
		       const char *err)
{
	jwks_set old = {0};
	pthread_rwlock_wrlock(&j->set_lock);
	if (rc == 0) {
		old = j->set;
		j->set = *s;
		j->set_gen++;
	}
	size_t n = j->set.n;
	pthread_rwlock_unlock(&j->set_lock);
	set_free(&old);
	char fresh[24], keys[24];
	snprintf(fresh, sizeof fresh, "%lld", (long long)fresh_s);
	snprintf(keys, sizeof keys, "%zu", n);
	if (rc == 0) {
		log_kv(JR_LOG_INFO, "JWKS-LOADED", "push authentication keys fetched", "url", j->url,
		       "keys", keys, "max_age_s", fresh, NULL);
		note_keys(n);
	} else {
		log_kv(JR_LOG_WARNING, "JWKS-FETCH-FAILED",
		       n ? "fetching push authentication keys failed; keeping the keys held"
			 : "fetching push authentication keys failed; no key held, tokens are refused",
		       "url", j->url, "error", err, NULL);
	}
	metric_add(metric_register("jobrelay_jwks_fetches_total", JR_METRIC_COUNTER,
				   "JWKS fetches by result.", NULL, 0),
		   rc == 0 ? "result=\"ok\"" : "result=\"error\"", 1);
	pthread_mutex_lock(&j->mu);
	if (rc == 0)
		j->expires_s = t0_s > INT64_MAX - fresh_s ? INT64_MAX : t0_s + fresh_s;
	else
		j->info.fetch_errors++;
	j->fetching = 0;
	j->info.fetches_done++;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

static void *refresher(void *arg)
{
	jr_jwks *j = arg;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!atomic_load(&j->stop) && !j->pending)
			pthread_cond_wait(&j->cv, &j->mu);
		if (atomic_load(&j->stop))
			break;
		j->pending = 0;
		j->fetching = 1;
		int64_t t0 = j->kick_now_s, fresh = 0;
		pthread_mutex_unlock(&j->mu);
		jwks_set s = {0};
		char err[256] = "";
		int rc = fetch_set(j, &s, &fresh, err, sizeof err);
		fetch_done(j, rc, &s, t0, fresh, err);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

jr_jwks *jwks_from_url(const char *url, int64_t now_s, int timeout_ms, char *err,
		       size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, curl_init_once);
	int loopback = 0;
	if (httpc_url_check("jwks_url", url, 0, &loopback, err, errlen))
		return NULL;
	jr_jwks *j = jwks_alloc();
	j->url = jr_strdup(url);
	j->loopback = loopback;
	j->timeout_ms = timeout_ms > 0 ? timeout_ms : JWKS_FETCH_TIMEOUT_MS;
	j->expires_s = INT64_MIN; /* nothing held: the first jwks_verify may refresh */
	j->last_start_s = INT64_MIN; /* the first fetch opens no rate-limit window */
	j->info.fetches_started = 1;
	jwks_set s = {0};
	int64_t fresh = 0;
	char ferr[256] = "";
	int rc = fetch_set(j, &s, &fresh, ferr, sizeof ferr);
	fetch_done(j, rc, &s, now_s, fresh, ferr);
	if (pthread_create(&j->thread, NULL, refresher, j) != 0) {
		snprintf(err, errlen, "jwks_url %s: cannot start the refresh thread", url);
		jwks_free(j);
		return NULL;
	}
	j->has_thread = 1;
	return j;
}

/* refresh_due: whether a URL set should start a fetch now (under j->mu). */
static int refresh_due(const jr_jwks *j, int found, int64_t now_s)
{
	if (!j->url || j->pending || j->fetching)
		return 0;
	if (found && now_s < j->expires_s)
		return 0;
	if (j->last_start_s == INT64_MIN)
		return 1;
	return now_s > j->last_start_s &&
	       (uint64_t)now_s - (uint64_t)j->last_start_s >= JWKS_REFRESH_MIN_S;
}

/* rs256_ok: the RSASSA-PKCS1-v1_5 SHA-256 signature sig over msg verifies with key. */
static int rs256_ok(const jr_jwks *j, EVP_PKEY *key, const void *msg, size_t mlen,
		    const unsigned char *sig, size_t slen)
{
	if (slen == 0 || slen != (size_t)EVP_PKEY_get_size(key))
		return 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestVerifyInit(md, NULL, j->sha256, NULL, key) == 1 &&
		 EVP_DigestVerify(md, sig, slen, msg, mlen) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok;
}

/* vcache_key: SHA-256 over kid, msg and sig, each preceded by its length. */
static void vcache_key(const jr_jwks *j, const char *kid, const void *msg, size_t mlen,
		       const unsigned char *sig, size_t slen, unsigned char h[32])
{
	size_t kl = strlen(kid);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex2(md, j->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(md, &kl, sizeof kl) != 1 || EVP_DigestUpdate(md, kid, kl) != 1 ||
	    EVP_DigestUpdate(md, &mlen, sizeof mlen) != 1 || EVP_DigestUpdate(md, msg, mlen) != 1 ||
	    EVP_DigestUpdate(md, &slen, sizeof slen) != 1 || EVP_DigestUpdate(md, sig, slen) != 1 ||
	    EVP_DigestFinal_ex(md, h, NULL) != 1)
		abort(); /* SHA-256 does not fail but for want of memory */
	EVP_MD_CTX_free(md);
}

/* vcache_has: under j->mu, whether h verified against generation gen. */
static int vcache_has(const jr_jwks *j, const unsigned char h[32], uint64_t gen)
{
	for (size_t i = 0; i < JWKS_VCACHE; i++)
		if (j->vc[i].gen == gen && memcmp(j->vc[i].h, h, 32) == 0)
			return 1;
	return 0;
}

/* refresh_kick: under j->mu, starts a refresh when one is due; returns 1 if it did. */
static int refresh_kick(jr_jwks *j, int found, int64_t now_s)
{
	if (!refresh_due(j, found, now_s))
		return 0;
	j->pending = 1;
	j->kick_now_s = now_s;
	j->last_start_s = now_s;
	j->info.fetches_started++;
	pthread_cond_broadcast(&j->cv);
	return 1;
}

jwks_result jwks_verify(jr_jwks *j, const char *kid, int64_t now_s, const void *msg, size_t mlen,
			const unsigned char *sig, size_t slen, int *refresh_started)
{
	unsigned char h[32];
	jwks_result r = JWKS_UNKNOWN_KID;
	int hit = 0;
	pthread_rwlock_rdlock(&j->set_lock);
	EVP_PKEY *k = set_find(&j->set, kid);
	uint64_t gen = j->set_gen;
	if (k && slen) {
		vcache_key(j, kid, msg, mlen, sig, slen, h);
		pthread_mutex_lock(&j->mu);
		hit = vcache_has(j, h, gen);
		pthread_mutex_unlock(&j->mu);
	}
	if (k)
		r = hit || rs256_ok(j, k, msg, mlen, sig, slen) ? JWKS_VERIFIED : JWKS_BAD_SIGNATURE;
	pthread_rwlock_unlock(&j->set_lock);
	pthread_mutex_lock(&j->mu);
	if (hit)
		j->info.cache_hits++;
	else if (r == JWKS_VERIFIED) {
		memcpy(j->vc[j->vc_next].h, h, 32);
		j->vc[j->vc_next].gen = gen;
		j->vc_next = (j->vc_next + 1) % JWKS_VCACHE;
	}
	int go = refresh_kick(j, k != NULL, now_s);
	pthread_mutex_unlock(&j->mu);
	if (refresh_started)
		*refresh_started = go;
	return r;
}

void jwks_get_info(jr_jwks *j, jwks_info *out)
{
	pthread_mutex_lock(&j->mu);
	*out = j->info;
	out->expires_s = j->expires_s;
	pthread_mutex_unlock(&j->mu);
	pthread_rwlock_rdlock(&j->set_lock);
	out->n_keys = j->set.n;
	pthread_rwlock_unlock(&j->set_lock);
}

int jwks_wait(jr_jwks *j, uint64_t n, int64_t timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += (time_t)(timeout_ms / 1000);
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	pthread_mutex_lock(&j->mu);
	while (j->info.fetches_done < n && rc == 0)
		if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT)
			rc = j->info.fetches_done < n ? -1 : 0;
	pthread_mutex_unlock(&j->mu);
	return rc;
}

void jwks_free(jr_jwks *j)
{
	if (!j)
		return;
	if (j->has_thread) {
		pthread_mutex_lock(&j->mu);
		atomic_store(&j->stop, 1);
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thread, NULL);
	}
	set_free(&j->set);
	pthread_rwlock_destroy(&j->set_lock);
	EVP_MD_free(j->sha256);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j->url);
	free(j);
}
