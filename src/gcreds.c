/*
 * gcreds.c — Application Default Credentials (see gcreds.h for the order,
 * the types and the worker's timing).
 *
 * Design: the discovered source (a `src`, read from its file once) is
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

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "event.h"
#include "grpcx.h"
#include "httpc.h"
#include "json.h"
#include "jsonparse.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "version.h"

#define SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define DEFAULT_STS_URL "https://sts.googleapis.com/v1/token"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define ACCESS_TOKEN_TYPE "urn:ietf:params:oauth:token-type:access_token"
#define ERR_MARK "jobrelay credentials: "
#define VALID_MARGIN_MS 10000 /* a token this close to expiry is not handed to a call */
#define MAX_TOKEN 8192        /* bytes of an access token */

typedef enum src_kind {
	SRC_METADATA,
	SRC_SERVICE_ACCOUNT,
	SRC_USER,
	SRC_EXTERNAL,
	SRC_IMPERSONATED,
} src_kind;

/* One credential source, as read from its file (strings in the gcreds arena). */
typedef struct src {
	src_kind kind;
	const char *metadata_host;                             /* METADATA */
	const char *client_email, *private_key, *key_id;      /* SERVICE_ACCOUNT */
	const char *token_uri;                                 /* SERVICE_ACCOUNT, USER */
	const char *client_id, *client_secret, *refresh_token; /* USER */
	const char *audience, *subject_token_type, *sts_url;   /* EXTERNAL */
	const char *subject_file, *subject_url, *subject_field;
	const jr_json *subject_headers; /* EXTERNAL, url source: an object of header strings */
	const char *impersonation_url;  /* EXTERNAL (optional), IMPERSONATED */
	const jr_json *delegates;       /* IMPERSONATED: the delegation chain (an array of strings), or NULL */
	struct src *inner;              /* IMPERSONATED: the source credentials */
} src;

/* A plugin request waiting for the worker's fetch. */
typedef struct pending {
	grpc_credentials_plugin_metadata_cb cb;
	void *user_data;
	struct pending *next;
} pending;

struct jr_gcreds {
	jr_arena arena; /* the source's strings; never freed */
	src s;
	char source[300], quota[128];
	pthread_mutex_t mu;
	pthread_cond_t wake; /* the worker: a token is wanted */
	pthread_cond_t done; /* gcreds_check: a fetch ended */
	/* under mu: */
	char account[256];
	char *token;
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

/* ---- HTTP: one bounded request with libcurl ---- */

typedef struct http_req {
	const char *url;
	int allow_http;           /* plain http to any host (the metadata server) */
	const char *const *headers; /* NULL-terminated "Name: value", or NULL */
	const char *body;         /* POST body, or NULL for GET */
} http_req;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	return buf_add(arg, p, size * nmemb) == 0 ? size * nmemb : 0;
}

/*
 * One fetch (every request of a source's chain: subject token, STS,
 * generateAccessToken) has GCREDS_FETCH_MS in all, so a call waiting for it
 * is answered well within its own deadline. fetch_deadline is the worker's
 * (0 elsewhere: a request gets the whole budget); stopping aborts transfers.
 */
static _Thread_local int64_t fetch_deadline;
static atomic_int stopping;

static int64_t fetch_left_ms(void)
{
	return fetch_deadline ? fetch_deadline - loop_now_ms() : GCREDS_FETCH_MS;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)arg, (void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(&stopping); /* non-zero aborts the transfer */
}

/* http_do: rq into out (at most GCREDS_MAX_BODY bytes); 0 and *status, or -1 with err. */
static int http_do(const http_req *rq, jr_buf *out, long *status, char *err, size_t errlen)
{
	int plain = 0;
	if (httpc_url_check("token source", rq->url, rq->allow_http ? HTTPC_HTTP : HTTPC_LINK_LOCAL,
			    &plain, err, errlen) < 0)
		return -1;
	int64_t left = fetch_left_ms();
	if (left <= 0) {
		snprintf(err, errlen, "%s: not asked: the token fetch took over %d ms", rq->url,
			 GCREDS_FETCH_MS);
		return -1;
	}
	char cerr[CURL_ERROR_SIZE];
	CURL *c = httpc_easy(rq->url, HTTPC_HTTP | (plain ? HTTPC_NOPROXY : 0),
			     (long)left, GCREDS_MAX_BODY, cerr);
	if (!c) {
		snprintf(err, errlen, "curl_easy_init failed");
		return -1;
	}
	struct curl_slist *hl = NULL;
	for (size_t i = 0; rq->headers && rq->headers[i]; i++)
		hl = curl_slist_append(hl, rq->headers[i]);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (hl)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	if (rq->body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
	CURLcode rc = curl_easy_perform(c);
	*status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", rq->url, cerr[0] ? cerr : curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

/* http_error: err = "<url>: HTTP <status>: <start of the answer, printable ASCII only>". */
static void http_error(const char *url, long status, const jr_buf *b, char *err, size_t errlen)
{
	char text[161];
	size_t n = 0;
	for (size_t i = 0; i < b->len && n < sizeof text - 1; i++) {
		unsigned char ch = (unsigned char)b->data[i];
		text[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
	}
	text[n] = '\0';
	snprintf(err, errlen, "%s: HTTP %ld: %s", url, status, text);
}

/* ---- token answers ---- */

typedef struct tok {
	char *token;        /* malloc'd */
	int64_t expires_in; /* seconds */
} tok;

/*
 * token_from: the token and its lifetime in a 200 answer, read from the
 * members named tk and life (expires_in: seconds; expireTime: RFC 3339).
 */
static int token_from(const char *url, long status, const jr_buf *b, const char *tk,
		      const char *life, tok *t, char *err, size_t errlen)
{
	if (status != 200) {
		http_error(url, status, b, err, errlen);
		return -1;
	}
	jr_arena a;
	arena_init(&a);
	char perr[128];
	const jr_json *root = jsonparse(&a, b->data, b->len, 16, perr, sizeof perr);
	const jr_json *tv = root ? json_get(root, tk) : NULL;
	const jr_json *lv = root ? json_get(root, life) : NULL;
	int rc = -1;
	if (!root) {
		snprintf(err, errlen, "%s: answer is not JSON (%s)", url, perr);
	} else if (!tv || tv->type != JR_JSON_STRING || tv->n == 0 || tv->n > MAX_TOKEN ||
		   memchr(tv->s, '\0', tv->n) || strpbrk(tv->s, "\r\n")) {
		snprintf(err, errlen, "%s: answer has no usable \"%s\"", url, tk);
	} else {
		int64_t secs = 3600;
		if (lv && lv->type == JR_JSON_NUMBER) {
			secs = strtoll(lv->s, NULL, 10);
		} else if (lv && lv->type == JR_JSON_STRING) { /* "2026-12-07T17:00:00Z" */
			struct tm tm = {0};
			const char *end = strptime(lv->s, "%Y-%m-%dT%H:%M:%S", &tm);
			if (end)
				secs = (int64_t)timegm(&tm) - (int64_t)time(NULL);
		}
		t->token = jr_strndup(tv->s, tv->n);
		/* Google's access tokens live an hour at most; a clock or an answer off by more is not trusted */
		t->expires_in = secs < 1 ? 1 : secs > 3600 ? 3600 : secs;
		rc = 0;
	}
	arena_free(&a);
	return rc;
}

/* form_add: "&k=v" (or "k=v" first) with v percent-encoded. */
static void form_add(jr_buf *f, const char *k, const char *v)
{
	if (f->len)
		buf_addc(f, '&');
	buf_adds(f, k);
	buf_addc(f, '=');
	size_t n = strlen(v);
	char *o = buf_space(f, 3 * n + 1);
	if (o)
		buf_added(f, grpcx_urlencode(v, n, o));
}

/* token_request: rq's answer, read for a token in members tk and life (token_from). */
static int token_request(const http_req *rq, const char *tk, const char *life, tok *t, char *err,
			 size_t errlen)
{
	jr_buf b;
	buf_init(&b, GCREDS_MAX_BODY);
	long status;
	int rc = http_do(rq, &b, &status, err, errlen);
	if (rc == 0)
		rc = token_from(rq->url, status, &b, tk, life, t, err, errlen);
	buf_free(&b);
	return rc;
}

/* post_form: POST form (freed) to url; the token from its answer (OAuth 2.0 token endpoint). */
static int post_form(const char *url, jr_buf *form, tok *t, char *err, size_t errlen)
{
	static const char *const hdr[] = {"Content-Type: application/x-www-form-urlencoded",
					  "Accept: application/json", NULL};
	http_req rq = {.url = url, .headers = hdr, .body = form->data};
	int rc = token_request(&rq, "access_token", "expires_in", t, err, errlen);
	buf_free(form);
	return rc;
}

/* ---- the sources ---- */

static int b64url(jr_buf *out, const void *p, size_t n)
{
	size_t start = out->len;
	if (base64_encode(out, p, n) < 0)
		return -1;
	while (out->len > start && out->data[out->len - 1] == '=')
		out->data[--out->len] = '\0';
	for (size_t i = start; i < out->len; i++)
		out->data[i] = out->data[i] == '+' ? '-' : out->data[i] == '/' ? '_' : out->data[i];
	return 0;
}

/* sa_assertion: the signed RS256 JWT of the jwt-bearer grant (RFC 7523) into out. */
static int sa_assertion(const src *s, jr_buf *out, char *err, size_t errlen)
{
	jr_buf h, c;
	buf_init(&h, 0);
	buf_init(&c, 0);
	buf_addlit(&h, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
	if (s->key_id) {
		buf_addlit(&h, ",\"kid\":");
		json_write_string(&h, s->key_id, strlen(s->key_id));
	}
	buf_addc(&h, '}');
	long long now = (long long)time(NULL);
	buf_addlit(&c, "{\"iss\":");
	json_write_string(&c, s->client_email, strlen(s->client_email));
	buf_addlit(&c, ",\"scope\":\"" SCOPE "\",\"aud\":");
	json_write_string(&c, s->token_uri, strlen(s->token_uri));
	buf_printf(&c, ",\"iat\":%lld,\"exp\":%lld}", now, now + 3600);
	b64url(out, h.data, h.len);
	buf_addc(out, '.');
	b64url(out, c.data, c.len);
	buf_free(&h);
	buf_free(&c);

	int rc = -1;
	BIO *bio = BIO_new_mem_buf(s->private_key, -1);
	EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t slen = sizeof sig;
	if (!key) {
		snprintf(err, errlen, "the key file's private_key is not a PEM private key");
	} else if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		   EVP_DigestSign(md, sig, &slen, (const unsigned char *)out->data, out->len) == 1) {
		buf_addc(out, '.');
		b64url(out, sig, slen);
		rc = 0;
	} else {
		snprintf(err, errlen, "cannot sign with the key file's private_key (RS256)");
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	BIO_free(bio);
	return rc;
}

static int fetch(const src *s, tok *t, char *err, size_t errlen);

static int fetch_metadata(const src *s, tok *t, char *err, size_t errlen)
{
	char url[400];
	snprintf(url, sizeof url,
		 "http://%s/computeMetadata/v1/instance/service-accounts/default/token",
		 s->metadata_host);
	static const char *const hdr[] = {"Metadata-Flavor: Google", NULL};
	http_req rq = {.url = url, .allow_http = 1, .headers = hdr};
	return token_request(&rq, "access_token", "expires_in", t, err, errlen);
}

static int fetch_service_account(const src *s, tok *t, char *err, size_t errlen)
{
	jr_buf a, f;
	buf_init(&a, 0);
	buf_init(&f, 0);
	if (sa_assertion(s, &a, err, errlen) < 0) {
		buf_free(&a);
		return -1;
	}
	form_add(&f, "grant_type", JWT_BEARER);
	form_add(&f, "assertion", a.data);
	buf_free(&a);
	return post_form(s->token_uri, &f, t, err, errlen);
}

static int fetch_user(const src *s, tok *t, char *err, size_t errlen)
{
	jr_buf f;
	buf_init(&f, 0);
	form_add(&f, "grant_type", "refresh_token");
	form_add(&f, "client_id", s->client_id);
	form_add(&f, "client_secret", s->client_secret);
	form_add(&f, "refresh_token", s->refresh_token);
	return post_form(s->token_uri, &f, t, err, errlen);
}

/* read_file_max: the file at path into b (bounded by b's max); -1 with err. */
static int read_file_max(const char *what, const char *path, jr_buf *b, char *err, size_t errlen)
{
	const char *why;
	if (buf_read_file(b, path, &why) == 0)
		return 0;
	if (why == BUF_TOO_LARGE)
		snprintf(err, errlen, "%s %s: over %zu bytes", what, path, b->max);
	else
		snprintf(err, errlen, "%s %s: %s", what, path, why);
	return -1;
}

/* subject_raw: the subject token source's bytes (its file, or its URL's answer) into b. */
static int subject_raw(const src *s, jr_buf *b, char *err, size_t errlen)
{
	if (s->subject_file)
		return read_file_max("subject token file", s->subject_file, b, err, errlen);
	const char *hv[9] = {NULL};
	char hbuf[8][512];
	size_t nh = 0;
	for (size_t i = 0; s->subject_headers && i < s->subject_headers->n && nh < 8; i++) {
		const jr_json *v = s->subject_headers->items[i];
		if (v->type != JR_JSON_STRING)
			continue;
		snprintf(hbuf[nh], sizeof hbuf[nh], "%s: %s", s->subject_headers->keys[i], v->s);
		hv[nh] = hbuf[nh];
		nh++;
	}
	http_req rq = {.url = s->subject_url, .headers = hv};
	long status;
	if (http_do(&rq, b, &status, err, errlen) < 0)
		return -1;
	if (status != 200) {
		http_error(s->subject_url, status, b, err, errlen);
		return -1;
	}
	return 0;
}

/* subject_token: an external account's subject token (text, or a field of a JSON source) into out. */
static int subject_token(const src *s, jr_buf *out, char *err, size_t errlen)
{
	jr_buf b;
	buf_init(&b, GCREDS_MAX_BODY);
	int rc = subject_raw(s, &b, err, errlen);
	if (rc == 0 && s->subject_field) {
		jr_arena a;
		arena_init(&a);
		char perr[128];
		const jr_json *root = jsonparse(&a, b.data, b.len, 16, perr, sizeof perr);
		const char *v = root ? json_get_str(root, s->subject_field) : NULL;
		if (v && *v)
			buf_adds(out, v);
		else
			rc = -1;
		arena_free(&a);
		if (rc < 0)
			snprintf(err, errlen, "subject token: no string \"%s\" in the JSON source",
				 s->subject_field);
	} else if (rc == 0) {
		size_t n = b.len;
		while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' || b.data[n - 1] == ' '))
			n--;
		if (n)
			buf_add(out, b.data, n);
		else
			rc = -1;
		if (rc < 0)
			snprintf(err, errlen, "subject token source is empty");
	}
	buf_free(&b);
	return rc;
}

/*
 * impersonate: generateAccessToken at url with the bearer token of the
 * source credentials, through the delegation chain delegates (NULL: none).
 */
static int impersonate(const char *url, const jr_json *delegates, const char *bearer, tok *t,
		       char *err, size_t errlen)
{
	char *auth = jr_asprintf("Authorization: Bearer %s", bearer);
	const char *hdr[] = {"Content-Type: application/json", auth, NULL};
	jr_buf body;
	buf_init(&body, GCREDS_MAX_BODY);
	buf_addlit(&body, "{\"scope\":[\"" SCOPE "\"],\"lifetime\":\"3600s\"");
	if (delegates && delegates->type == JR_JSON_ARRAY && delegates->n) {
		buf_addlit(&body, ",\"delegates\":");
		json_write(&body, delegates);
	}
	buf_addc(&body, '}');
	http_req rq = {.url = url, .headers = hdr, .body = body.data};
	int rc = token_request(&rq, "accessToken", "expireTime", t, err, errlen);
	buf_free(&body);
	free(auth);
	return rc;
}

static int fetch_external(const src *s, tok *t, char *err, size_t errlen)
{
	jr_buf st, f;
	buf_init(&st, GCREDS_MAX_BODY);
	buf_init(&f, 0);
	if (subject_token(s, &st, err, errlen) < 0) {
		buf_free(&st);
		return -1;
	}
	form_add(&f, "grant_type", TOKEN_EXCHANGE);
	form_add(&f, "audience", s->audience);
	form_add(&f, "scope", SCOPE);
	form_add(&f, "requested_token_type", ACCESS_TOKEN_TYPE);
	form_add(&f, "subject_token", st.data);
	form_add(&f, "subject_token_type", s->subject_token_type);
	buf_free(&st);
	if (post_form(s->sts_url, &f, t, err, errlen) < 0 || !s->impersonation_url)
		return t->token ? 0 : -1;
	tok sts = *t;
	*t = (tok){0};
	int rc = impersonate(s->impersonation_url, NULL, sts.token, t, err, errlen);
	free(sts.token);
	return rc;
}

static int fetch_impersonated(const src *s, tok *t, char *err, size_t errlen)
{
	tok inner = {0};
	if (fetch(s->inner, &inner, err, errlen) < 0)
		return -1;
	int rc = impersonate(s->impersonation_url, s->delegates, inner.token, t, err, errlen);
	free(inner.token);
	return rc;
}

/* fetch: a new token from s (blocking); 0 (t->token malloc'd), or -1 with err. */
static int fetch(const src *s, tok *t, char *err, size_t errlen)
{
	switch (s->kind) {
	case SRC_METADATA:
		return fetch_metadata(s, t, err, errlen);
	case SRC_SERVICE_ACCOUNT:
		return fetch_service_account(s, t, err, errlen);
	case SRC_USER:
		return fetch_user(s, t, err, errlen);
	case SRC_EXTERNAL:
		return fetch_external(s, t, err, errlen);
	case SRC_IMPERSONATED:
		return fetch_impersonated(s, t, err, errlen);
	}
	return -1;
}

/* ---- reading a credentials file ---- */

/* need: the string member k of o (copied into a), or NULL with err naming the file and key. */
static const char *need(jr_arena *a, const jr_json *o, const char *k, const char *path, char *err,
			size_t errlen)
{
	const char *v = json_get_str(o, k);
	if (!v || !*v) {
		snprintf(err, errlen, "credentials file %s: no \"%s\"", path, k);
		return NULL;
	}
	return arena_strdup(a, v);
}

static const char *opt(jr_arena *a, const jr_json *o, const char *k, const char *dflt)
{
	const char *v = json_get_str(o, k);
	return v && *v ? arena_strdup(a, v) : dflt;
}

static int src_from_json(jr_arena *a, const jr_json *o, const char *path, src *s, char *err,
			 size_t errlen);

static int src_external(jr_arena *a, const jr_json *o, const char *path, src *s, char *err,
			size_t errlen)
{
	s->kind = SRC_EXTERNAL;
	const jr_json *cs = json_get(o, "credential_source");
	if (!(s->audience = need(a, o, "audience", path, err, errlen)) ||
	    !(s->subject_token_type = need(a, o, "subject_token_type", path, err, errlen)))
		return -1;
	s->sts_url = opt(a, o, "token_url", DEFAULT_STS_URL);
	s->impersonation_url = opt(a, o, "service_account_impersonation_url", NULL);
	if (!cs || cs->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "credentials file %s: no \"credential_source\"", path);
		return -1;
	}
	if (json_get(cs, "environment_id") || json_get(cs, "executable")) {
		snprintf(err, errlen,
			 "credentials file %s: external_account with an %s credential source is not "
			 "supported (file and url sources are)",
			 path, json_get(cs, "executable") ? "executable" : "AWS");
		return -1;
	}
	s->subject_file = opt(a, cs, "file", NULL);
	s->subject_url = opt(a, cs, "url", NULL);
	const jr_json *hd = json_get(cs, "headers");
	s->subject_headers = hd && hd->type == JR_JSON_OBJECT ? hd : NULL;
	const jr_json *fmt = json_get(cs, "format");
	const char *ft = fmt ? json_get_str(fmt, "type") : NULL;
	if (ft && !strcmp(ft, "json") &&
	    !(s->subject_field = need(a, fmt, "subject_token_field_name", path, err, errlen)))
		return -1;
	if (!s->subject_file == !s->subject_url) {
		snprintf(err, errlen, "credentials file %s: credential_source needs one of \"file\" or \"url\"",
			 path);
		return -1;
	}
	return 0;
}

static int src_impersonated(jr_arena *a, const jr_json *o, const char *path, src *s, char *err,
			    size_t errlen)
{
	s->kind = SRC_IMPERSONATED;
	const jr_json *in = json_get(o, "source_credentials");
	if (!(s->impersonation_url = need(a, o, "service_account_impersonation_url", path, err, errlen)))
		return -1;
	if (!in || in->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "credentials file %s: no \"source_credentials\"", path);
		return -1;
	}
	const char *it = json_get_str(in, "type");
	if (it && !strcmp(it, "impersonated_service_account")) {
		snprintf(err, errlen, "credentials file %s: nested impersonation is not supported", path);
		return -1;
	}
	s->delegates = json_get(o, "delegates"); /* the file's tree lives in the arena */
	s->inner = arena_alloc(a, sizeof *s->inner);
	return src_from_json(a, in, path, s->inner, err, errlen);
}

static int src_from_json(jr_arena *a, const jr_json *o, const char *path, src *s, char *err,
			 size_t errlen)
{
	const char *type = json_get_str(o, "type");
	memset(s, 0, sizeof *s);
	if (!type) {
		snprintf(err, errlen, "credentials file %s: no \"type\"", path);
		return -1;
	}
	if (!strcmp(type, "service_account")) {
		s->kind = SRC_SERVICE_ACCOUNT;
		s->key_id = opt(a, o, "private_key_id", NULL);
		s->token_uri = opt(a, o, "token_uri", DEFAULT_TOKEN_URI);
		return (s->client_email = need(a, o, "client_email", path, err, errlen)) &&
				       (s->private_key = need(a, o, "private_key", path, err, errlen))
			       ? 0
			       : -1;
	}
	if (!strcmp(type, "authorized_user")) {
		s->kind = SRC_USER;
		s->token_uri = opt(a, o, "token_uri", DEFAULT_TOKEN_URI);
		return (s->client_id = need(a, o, "client_id", path, err, errlen)) &&
				       (s->client_secret = need(a, o, "client_secret", path, err, errlen)) &&
				       (s->refresh_token = need(a, o, "refresh_token", path, err, errlen))
			       ? 0
			       : -1;
	}
	if (!strcmp(type, "external_account"))
		return src_external(a, o, path, s, err, errlen);
	if (!strcmp(type, "impersonated_service_account"))
		return src_impersonated(a, o, path, s, err, errlen);
	snprintf(err, errlen, "credentials file %s: type \"%.40s\" is not supported (service_account, "
			      "authorized_user, external_account, impersonated_service_account are)",
		 path, type);
	return -1;
}

/* load_file: g's source from the credentials file at path. */
static int load_file(jr_gcreds *g, const char *path, char *err, size_t errlen)
{
	jr_buf b;
	buf_init(&b, GCREDS_MAX_BODY);
	char perr[160];
	const jr_json *root = NULL;
	if (read_file_max("credentials file", path, &b, err, errlen) < 0) {
		buf_free(&b);
		return -1;
	}
	root = jsonparse(&g->arena, b.data, b.len, 16, perr, sizeof perr);
	buf_free(&b);
	if (!root || root->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "credentials file %s: not a JSON object (%s)", path,
			 root ? "another JSON value" : perr);
		return -1;
	}
	if (src_from_json(&g->arena, root, path, &g->s, err, errlen) < 0)
		return -1;
	const char *qp = json_get_str(root, "quota_project_id");
	snprintf(g->quota, sizeof g->quota, "%s", qp ? qp : "");
	static const char *const kinds[] = {
		[SRC_SERVICE_ACCOUNT] = "service account key", [SRC_USER] = "user credentials",
		[SRC_EXTERNAL] = "external account", [SRC_IMPERSONATED] = "impersonated service account",
	};
	snprintf(g->source, sizeof g->source, "%s %s", kinds[g->s.kind], path);
	if (g->s.kind == SRC_SERVICE_ACCOUNT)
		snprintf(g->account, sizeof g->account, "%s", g->s.client_email);
	return 0;
}

/* ---- the worker and the cache ---- */

static int valid_locked(const jr_gcreds *g, int64_t now)
{
	return g->token && now < g->valid_until_ms;
}

/* md_fill: the call metadata for token (md: 2 entries); the count. */
static size_t md_fill(const jr_gcreds *g, const char *token, grpc_metadata *md)
{
	char *v = jr_asprintf("Bearer %s", token);
	size_t n = 0;
	memset(md, 0, 2 * sizeof *md);
	md[n].key = grpc_slice_from_static_string("authorization");
	md[n++].value = grpc_slice_from_copied_string(v);
	if (g->quota[0]) {
		md[n].key = grpc_slice_from_static_string("x-goog-user-project");
		md[n++].value = grpc_slice_from_copied_string(g->quota);
	}
	free(v);
	return n;
}

static char *error_text(const jr_gcreds *g)
{
	char e[sizeof g->last_err + sizeof g->source + 64];
	snprintf(e, sizeof e, ERR_MARK "%s: %s", g->source, g->last_err);
	return gpr_strdup(e);
}

/* answer: the waiting plugin requests get token (NULL: the error); called without mu. */
static void answer(jr_gcreds *g, pending *p, const char *token, const char *error)
{
	grpc_metadata md[2];
	size_t n = token ? md_fill(g, token, md) : 0;
	while (p) {
		pending *next = p->next;
		if (token)
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
	if (g->token)
		return g->renew_at_ms > now ? g->renew_at_ms - now : 0;
	return -1;
}

static void fetch_ended(jr_gcreds *g, tok *t, const char *err)
{
	int64_t now = loop_now_ms();
	pending *p = NULL;
	char *token = NULL, *error = NULL;
	int was_failing;
	pthread_mutex_lock(&g->mu);
	g->fetching = 0;
	g->fetches++;
	was_failing = g->failed && !valid_locked(g, now);
	if (t->token) {
		/* renewed GCREDS_EARLY_MS before expiry, or half-way for a short-lived token */
		int64_t life = t->expires_in * 1000;
		free(g->token);
		g->token = t->token;
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
			token = jr_strdup(g->token);
		else
			error = error_text(g);
	}
	pthread_cond_broadcast(&g->done);
	pthread_mutex_unlock(&g->mu);
	answer(g, p, token, error);
	free(token);
	gpr_free(error);
	if (!t->token)
		log_kv(was_failing ? JR_LOG_DEBUG : JR_LOG_WARNING, "CREDENTIALS-FAILED",
		       "cannot get an access token; calls are held until one can be had", "source",
		       g->source, "error", err, NULL);
	else if (was_failing)
		log_kv(JR_LOG_INFO, "CREDENTIALS-OK", "access tokens can be had again", "source",
		       g->source, NULL);
}

static void *worker(void *arg)
{
	jr_gcreds *g = arg;
	for (;;) {
		pthread_mutex_lock(&g->mu);
		for (;;) {
			int64_t now = loop_now_ms(), due = next_due(g, now);
			if (atomic_load(&stopping)) {
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
		tok t = {0};
		char err[400] = "";
		fetch_deadline = loop_now_ms() + GCREDS_FETCH_MS;
		if (fetch(&g->s, &t, err, sizeof err) < 0)
			t.token = NULL;
		fetch_deadline = 0;
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
		*n = md_fill(g, g->token, md);
		*status = GRPC_STATUS_OK;
		*details = NULL;
		pthread_mutex_unlock(&g->mu);
		return 1;
	}
	if ((g->failed && (g->fetching || now < g->retry_at_ms)) || atomic_load(&stopping) ||
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

/* metadata_email: the metadata server's account (best effort, after a token was had). */
static void metadata_email(jr_gcreds *g)
{
	char url[400], err[200];
	snprintf(url, sizeof url,
		 "http://%s/computeMetadata/v1/instance/service-accounts/default/email",
		 g->s.metadata_host);
	static const char *const hdr[] = {"Metadata-Flavor: Google", NULL};
	http_req rq = {.url = url, .allow_http = 1, .headers = hdr};
	jr_buf b;
	buf_init(&b, 1024);
	long status;
	if (http_do(&rq, &b, &status, err, sizeof err) == 0 && status == 200 && b.len &&
	    b.len < 256 && !strpbrk(b.data, "\r\n\"\\")) {
		pthread_mutex_lock(&g->mu);
		snprintf(g->account, sizeof g->account, "%s", b.data);
		pthread_mutex_unlock(&g->mu);
	}
	buf_free(&b);
}

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
	curl_global_init(CURL_GLOBAL_DEFAULT);

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
		rc = load_file(g, path, the_err, sizeof the_err);
	} else {
		const char *host = getenv("GCE_METADATA_HOST");
		g->s.kind = SRC_METADATA;
		g->s.metadata_host = arena_strdup(&g->arena, host && *host ? host : "metadata.google.internal");
		snprintf(g->source, sizeof g->source, "metadata server %s", g->s.metadata_host);
	}
	const char *qp = getenv("GOOGLE_CLOUD_QUOTA_PROJECT");
	if (qp && *qp)
		snprintf(g->quota, sizeof g->quota, "%s", qp);
	if (rc == 0) {
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
	int need_email = ok && g->s.kind == SRC_METADATA && !g->account[0];
	pthread_mutex_unlock(&g->mu);
	if (need_email)
		metadata_email(g);
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
	atomic_store(&stopping, 1);
	pthread_mutex_lock(&g->mu);
	pending *p = g->waiting;
	g->waiting = NULL;
	int started = g->started;
	pthread_cond_broadcast(&g->wake);
	pthread_mutex_unlock(&g->mu);
	if (started)
		pthread_join(g->thread, NULL); /* a transfer under way is aborted by on_progress */
	answer(g, p, NULL, ERR_MARK "jobrelay is shutting down");
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
