/*
 * gcreds_src.c — the credential sources of Application Default Credentials
 * (gcreds_src.h): credentials files read into a source, and tokens fetched
 * from the metadata server, the OAuth 2.0 token endpoint (jwt-bearer for a
 * service-account key, refresh_token for a user), STS (external accounts)
 * and IAM Credentials' generateAccessToken (impersonation). Every request is
 * bounded in bytes and, for one fetch, in time; nothing secret is logged.
 */
#include "gcreds_src.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "base64.h"
#include "httpc.h"
#include "jsonparse.h"
#include "loop.h"
#include "pct.h"

#define SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define DEFAULT_STS_URL "https://sts.googleapis.com/v1/token"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define ACCESS_TOKEN_TYPE "urn:ietf:params:oauth:token-type:access_token"
#define MAX_TOKEN 8192 /* bytes of an access token */

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

/*
 * token_from: the token and its lifetime in a 200 answer, read from the
 * members named tk and life (expires_in: seconds; expireTime: RFC 3339).
 */
static int token_from(const char *url, long status, const jr_buf *b, const char *tk,
		      const char *life, gcreds_token *t, char *err, size_t errlen)
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
		buf_added(f, pct_encode(v, n, o));
}

/* token_request: rq's answer, read for a token in members tk and life (token_from). */
static int token_request(const http_req *rq, const char *tk, const char *life, gcreds_token *t, char *err,
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
static int post_form(const char *url, jr_buf *form, gcreds_token *t, char *err, size_t errlen)
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
static int sa_assertion(const gcreds_src *s, jr_buf *out, char *err, size_t errlen)
{
	jr_buf h, c;
	buf_init(&h, 0);
	buf_init(&c, 0);
	buf_addlit(&h, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
	if (s->key_id) {
		buf_addlit(&h, ",\"kid\":");
		jstr_write(&h, s->key_id, strlen(s->key_id));
	}
	buf_addc(&h, '}');
	long long now = (long long)time(NULL);
	buf_addlit(&c, "{\"iss\":");
	jstr_write(&c, s->client_email, strlen(s->client_email));
	buf_addlit(&c, ",\"scope\":\"" SCOPE "\",\"aud\":");
	jstr_write(&c, s->token_uri, strlen(s->token_uri));
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

static int fetch(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen);

static int fetch_metadata(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
{
	char url[400];
	snprintf(url, sizeof url,
		 "http://%s/computeMetadata/v1/instance/service-accounts/default/token",
		 s->metadata_host);
	static const char *const hdr[] = {"Metadata-Flavor: Google", NULL};
	http_req rq = {.url = url, .allow_http = 1, .headers = hdr};
	return token_request(&rq, "access_token", "expires_in", t, err, errlen);
}

static int fetch_service_account(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
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

static int fetch_user(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
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
static int subject_raw(const gcreds_src *s, jr_buf *b, char *err, size_t errlen)
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
static int subject_token(const gcreds_src *s, jr_buf *out, char *err, size_t errlen)
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
static int impersonate(const char *url, const jr_json *delegates, const char *bearer, gcreds_token *t,
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

static int fetch_external(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
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
	gcreds_token sts = *t;
	*t = (gcreds_token){0};
	int rc = impersonate(s->impersonation_url, NULL, sts.token, t, err, errlen);
	free(sts.token);
	return rc;
}

static int fetch_impersonated(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
{
	gcreds_token inner = {0};
	if (fetch(s->inner, &inner, err, errlen) < 0)
		return -1;
	int rc = impersonate(s->impersonation_url, s->delegates, inner.token, t, err, errlen);
	free(inner.token);
	return rc;
}

/* fetch: a new token from s (blocking); 0 (t->token malloc'd), or -1 with err. */
static int fetch(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
{
	switch (s->kind) {
	case GCREDS_METADATA:
		return fetch_metadata(s, t, err, errlen);
	case GCREDS_SERVICE_ACCOUNT:
		return fetch_service_account(s, t, err, errlen);
	case GCREDS_USER:
		return fetch_user(s, t, err, errlen);
	case GCREDS_EXTERNAL:
		return fetch_external(s, t, err, errlen);
	case GCREDS_IMPERSONATED:
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

static int src_from_json(jr_arena *a, const jr_json *o, const char *path, gcreds_src *s, char *err,
			 size_t errlen);

static int src_external(jr_arena *a, const jr_json *o, const char *path, gcreds_src *s, char *err,
			size_t errlen)
{
	s->kind = GCREDS_EXTERNAL;
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

static int src_impersonated(jr_arena *a, const jr_json *o, const char *path, gcreds_src *s, char *err,
			    size_t errlen)
{
	s->kind = GCREDS_IMPERSONATED;
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

static int src_from_json(jr_arena *a, const jr_json *o, const char *path, gcreds_src *s, char *err,
			 size_t errlen)
{
	const char *type = json_get_str(o, "type");
	memset(s, 0, sizeof *s);
	if (!type) {
		snprintf(err, errlen, "credentials file %s: no \"type\"", path);
		return -1;
	}
	if (!strcmp(type, "service_account")) {
		s->kind = GCREDS_SERVICE_ACCOUNT;
		s->key_id = opt(a, o, "private_key_id", NULL);
		s->token_uri = opt(a, o, "token_uri", DEFAULT_TOKEN_URI);
		return (s->client_email = need(a, o, "client_email", path, err, errlen)) &&
				       (s->private_key = need(a, o, "private_key", path, err, errlen))
			       ? 0
			       : -1;
	}
	if (!strcmp(type, "authorized_user")) {
		s->kind = GCREDS_USER;
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

/* gcreds_src_load: see gcreds_src.h. */
int gcreds_src_load(jr_arena *a, const char *path, gcreds_src *s, const char **quota, char *err,
		    size_t errlen)
{
	jr_buf b;
	buf_init(&b, GCREDS_MAX_BODY);
	char perr[160];
	*quota = NULL;
	if (read_file_max("credentials file", path, &b, err, errlen) < 0) {
		buf_free(&b);
		return -1;
	}
	const jr_json *root = jsonparse(a, b.data, b.len, 16, perr, sizeof perr);
	buf_free(&b);
	if (!root || root->type != JR_JSON_OBJECT) {
		snprintf(err, errlen, "credentials file %s: not a JSON object (%s)", path,
			 root ? "another JSON value" : perr);
		return -1;
	}
	if (src_from_json(a, root, path, s, err, errlen) < 0)
		return -1;
	*quota = json_get_str(root, "quota_project_id");
	return 0;
}

const char *gcreds_src_kind_name(const gcreds_src *s)
{
	static const char *const kinds[] = {
		[GCREDS_METADATA] = "metadata server", [GCREDS_SERVICE_ACCOUNT] = "service account key",
		[GCREDS_USER] = "user credentials", [GCREDS_EXTERNAL] = "external account",
		[GCREDS_IMPERSONATED] = "impersonated service account",
	};
	return kinds[s->kind];
}

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

int gcreds_src_fetch(const gcreds_src *s, gcreds_token *t, char *err, size_t errlen)
{
	pthread_once(&curl_once, curl_init);
	*t = (gcreds_token){0};
	fetch_deadline = loop_now_ms() + GCREDS_FETCH_MS;
	int rc = fetch(s, t, err, errlen);
	fetch_deadline = 0;
	return rc;
}

void gcreds_src_email(const gcreds_src *s, char *out, size_t cap)
{
	pthread_once(&curl_once, curl_init);
	char url[400], err[200];
	snprintf(url, sizeof url,
		 "http://%s/computeMetadata/v1/instance/service-accounts/default/email",
		 s->metadata_host);
	static const char *const hdr[] = {"Metadata-Flavor: Google", NULL};
	http_req rq = {.url = url, .allow_http = 1, .headers = hdr};
	jr_buf b;
	buf_init(&b, 1024);
	long status;
	if (http_do(&rq, &b, &status, err, sizeof err) == 0 && status == 200 && b.len &&
	    b.len < 256 && !strpbrk(b.data, "\r\n\"\\"))
		snprintf(out, cap, "%s", b.data);
	buf_free(&b);
}

void gcreds_src_stop(void)
{
	atomic_store(&stopping, 1);
}

int gcreds_src_stopped(void)
{
	return atomic_load(&stopping);
}
