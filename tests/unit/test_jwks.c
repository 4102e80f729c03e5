/*
 * JWKS loading, caching and fetching: base64url, which keys a JWKS yields,
 * file errors, URL rules, and fetches from a libmicrohttpd server on
 * 127.0.0.1 (Cache-Control max-age and Age, refresh on expiry and on an
 * unknown kid, the rate limit, failures that keep the keys held, size and
 * time bounds). Times are passed in; the refresh thread is waited for with
 * jwks_wait, never with sleeps.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "authtest.h"
#include "cu.h"
#include "jwks.h"
#include "log.h"

static EVP_PKEY *key1, *key2;
static char dir[64];

static void test_b64url(void)
{
	unsigned char o[16];
	CU_ASSERT_EQUAL(jwks_b64url_decode("", 0, o, sizeof o), 0);
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zg", 2, o, sizeof o), 1);
	CU_ASSERT_EQUAL(o[0], 'f');
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zm8", 3, o, sizeof o), 2);
	CU_ASSERT_EQUAL(memcmp(o, "fo", 2), 0);
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zm9vYmFy", 8, o, sizeof o), 6);
	CU_ASSERT_EQUAL(memcmp(o, "foobar", 6), 0);
	CU_ASSERT_EQUAL(jwks_b64url_decode("-_8", 3, o, sizeof o), 2);
	CU_ASSERT_EQUAL(o[0], 0xfb);
	CU_ASSERT_EQUAL(o[1], 0xff);
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zg==", 4, o, sizeof o), -1); /* padding */
	CU_ASSERT_EQUAL(jwks_b64url_decode("Z", 1, o, sizeof o), -1);    /* impossible length */
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zh", 2, o, sizeof o), -1);   /* non-zero spare bits */
	CU_ASSERT_EQUAL(jwks_b64url_decode("+/8", 3, o, sizeof o), -1);  /* base64, not base64url */
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zm9v", 4, o, 2), -1);        /* too long for the room */
	CU_ASSERT_EQUAL(jwks_b64url_decode("Zm\0v", 4, o, sizeof o), -1);
}

/* vr: jwks_verify of a message signed with key under the name kid, at t. */
static jwks_result vr(jr_jwks *j, const char *kid, EVP_PKEY *key, int64_t t, int *started)
{
	static const char msg[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0";
	unsigned char sig[1024];
	size_t sl = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)msg, sizeof msg - 1) != 1)
		abort();
	EVP_MD_CTX_free(md);
	jwks_result r = jwks_verify(j, kid, t, msg, sizeof msg - 1, sig, sl, started);
	/* the same signature over another message never verifies (a refresh this
	 * call started may have removed the key meanwhile: then it is unknown) */
	if (r == JWKS_VERIFIED)
		CU_ASSERT_NOT_EQUAL(jwks_verify(j, kid, t, msg, sizeof msg - 2, sig, sl, NULL),
				    JWKS_VERIFIED);
	return r;
}

static char *jwks_of(const char *entries)
{
	return jr_asprintf("{\"keys\":[%s]}", entries);
}

static void test_which_keys(void)
{
	char err[256];
	char *k1 = at_jwk(key1, "k1", "\"use\":\"sig\",");
	char *k2 = at_jwk(key2, "k2", NULL);
	char *k1enc = at_jwk(key1, "enc", "\"use\":\"enc\",");
	char *k1dup = at_jwk(key2, "k1", NULL);
	EVP_PKEY *small = at_keygen(1024);
	char *ksmall = at_jwk(small, "small", NULL);
	/* kty, alg and use that are not ours, a missing kid, a repeated kid, a short key, junk */
	char *all = jr_asprintf(
		"%s,%s,%s,%s,%s,"
		"{\"kty\":\"EC\",\"kid\":\"ec\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"},"
		"{\"kty\":\"RSA\",\"alg\":\"RS384\",\"kid\":\"rs384\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
		"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
		"{\"kty\":\"RSA\",\"kid\":\"bad-n\",\"n\":\"***\",\"e\":\"AQAB\"},"
		"{\"kty\":\"RSA\",\"kid\":\"no-e\",\"n\":\"AQAB\"},"
		"42,null",
		k1, k2, k1enc, k1dup, ksmall);
	char *text = jwks_of(all);
	jr_jwks *j = jwks_from_json(text, strlen(text), err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	jwks_info in;
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.n_keys, 2);
	CU_ASSERT_EQUAL(in.expires_s, INT64_MAX);
	int started = -1;
	CU_ASSERT_EQUAL(vr(j, "k1", key1, 0, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(started, 0);
	CU_ASSERT_EQUAL(vr(j, "k1", key2, 0, NULL), JWKS_BAD_SIGNATURE); /* the first k1, not the repeat */
	CU_ASSERT_EQUAL(vr(j, "k2", key2, 0, NULL), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(vr(j, "k2", key1, 0, NULL), JWKS_BAD_SIGNATURE);
	static const char *absent[] = {"enc", "small", "ec", "rs384", "bad-n", "no-e", "", "K1"};
	for (size_t i = 0; i < sizeof absent / sizeof *absent; i++) {
		CU_ASSERT_EQUAL(vr(j, absent[i], key1, 0, &started), JWKS_UNKNOWN_KID);
		CU_ASSERT_EQUAL(started, 0); /* a fixed set never refreshes */
	}
	/* an empty signature, or one of the wrong length */
	unsigned char sig[256] = {0};
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", 0, "x", 1, sig, 0, NULL), JWKS_BAD_SIGNATURE);
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", 0, "x", 1, sig, 255, NULL), JWKS_BAD_SIGNATURE);
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", 0, "x", 1, sig, 256, NULL), JWKS_BAD_SIGNATURE);
	jwks_free(j);
	free(text);
	free(all);
	free(k1);
	free(k2);
	free(k1enc);
	free(k1dup);
	free(ksmall);
	EVP_PKEY_free(small);
}

static void test_not_a_jwks(void)
{
	char err[256];
	static const struct {
		const char *text, *err;
	} cases[] = {
		{"", "not JSON"},
		{"{\"keys\":", "not JSON"},
		{"[]", "no \"keys\" array"},
		{"{\"keys\":{}}", "no \"keys\" array"},
		{"{\"keys\":[]}", "no usable RS256 key"},
		{"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}", "no usable RS256 key"},
		{"{\"keys\":[[[[[[[[[[1]]]]]]]]]]}", "not JSON"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		err[0] = '\0';
		CU_ASSERT_PTR_NULL(jwks_from_json(cases[i].text, strlen(cases[i].text), err, sizeof err));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].err));
	}
	/* more than JWKS_MAX_KEYS entries */
	jr_buf b;
	buf_init(&b, 0);
	buf_adds(&b, "{\"keys\":[");
	for (int i = 0; i <= JWKS_MAX_KEYS; i++)
		buf_adds(&b, i ? ",{}" : "{}");
	buf_adds(&b, "]}");
	CU_ASSERT_PTR_NULL(jwks_from_json(b.data, b.len, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than 64"));
	/* more than JWKS_MAX_BYTES */
	buf_reset(&b);
	buf_adds(&b, "{\"keys\":[],\"pad\":\"");
	while (b.len <= JWKS_MAX_BYTES)
		buf_adds(&b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	buf_adds(&b, "\"}");
	CU_ASSERT_PTR_NULL(jwks_from_json(b.data, b.len, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than"));
	buf_free(&b);
}

static void test_file(void)
{
	char err[256], path[160];
	snprintf(path, sizeof path, "%s/missing.json", dir);
	CU_ASSERT_PTR_NULL(jwks_from_file(path, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file"));
	CU_ASSERT_PTR_NULL(jwks_from_file(dir, err, sizeof err)); /* a directory */
	CU_ASSERT_PTR_NOT_NULL(strstr(err, dir));
	/* a file past the size bound is not read whole */
	snprintf(path, sizeof path, "%s/big.json", dir);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 2 * 1024; i++)
		fprintf(f, "%01024d", 0);
	fclose(f);
	CU_ASSERT_PTR_NULL(jwks_from_file(path, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "larger than"));
	/* and a good one */
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *text = at_jwks(1, ks, kids);
	snprintf(path, sizeof path, "%s/good.json", dir);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	free(text);
	jr_jwks *j = jwks_from_file(path, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(vr(j, "k1", key1, 0, NULL), JWKS_VERIFIED);
	jwks_free(j);
}

static void test_url_rules(void)
{
	char err[256];
	static const struct {
		const char *url, *err;
	} bad[] = {
		{"http://www.googleapis.com/oauth2/v3/certs", "only allowed to a loopback host"},
		{"http://10.0.0.1/certs", "only allowed to a loopback host"},
		{"http://127.0.0.1.evil.example/certs", "only allowed to a loopback host"},
		{"http://169.254.169.254/computeMetadata/v1/", "only allowed to a loopback host"},
		{"ftp://127.0.0.1/certs", "expected an https:// URL"},
		{"file:///etc/passwd", "expected an https:// URL"},
		{"not a url", "not a valid URL"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = '\0';
		CU_ASSERT_PTR_NULL(jwks_from_url(bad[i].url, 0, 100, err, sizeof err));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].err));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].url));
	}
}

/* url_set: a key set from server s, made at t0; checks the first fetch succeeded. */
static jr_jwks *url_set(at_server *s, int64_t t0)
{
	char err[256];
	jr_jwks *j = jwks_from_url(s->url, t0, 5000, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	return j;
}

static void test_fetch_and_max_age(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *ks[] = {key1, key2};
	const char *kids[] = {"k1", "k2"};
	char *j1 = at_jwks(1, ks, kids), *j2 = at_jwks(1, ks + 1, kids + 1);
	const int64_t t0 = 1700000000;
	jwks_info in;

	/* Google's own header: max-age less Age */
	at_server_set(&s, 200, j1, strlen(j1), "public, max-age=100, must-revalidate, no-transform");
	at_server_headers(&s, "40", "");
	jr_jwks *j = url_set(&s, t0);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.n_keys, 1);
	CU_ASSERT_EQUAL(in.expires_s, t0 + 60);
	CU_ASSERT_EQUAL(in.fetches_started, 1);
	CU_ASSERT_EQUAL(in.fetches_done, 1);
	at_server_headers(&s, "", "");

	/* fresh: a known kid starts nothing */
	int started = -1;
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t0 + 59, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(started, 0);
	/* stale: the key still serves, and a refresh starts; the server now has rotated to k2 */
	at_server_set(&s, 200, j2, strlen(j2), "max-age=300");
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t0 + 60, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(started, 1);
	/* while it runs, or once it is asked for, no second one */
	CU_ASSERT_EQUAL(vr(j, "k9", key1, t0 + 61, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 0);
	CU_ASSERT_EQUAL(jwks_wait(j, 2, 10000), 0);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.expires_s, t0 + 60 + 300);
	CU_ASSERT_EQUAL(in.fetch_errors, 0);
	/* k1 left the set: unknown now, and within 30 s of the last fetch nothing starts */
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t0 + 89, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 0);
	CU_ASSERT_EQUAL(vr(j, "k2", key2, t0 + 89, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(at_server_requests(&s), 2);
	jwks_free(j);

	/* no Cache-Control: an hour; no-cache or max-age=0: stale at once */
	at_server_set(&s, 200, j1, strlen(j1), NULL);
	j = url_set(&s, t0);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.expires_s, t0 + JWKS_DEFAULT_MAX_AGE_S);
	jwks_free(j);
	at_server_set(&s, 200, j1, strlen(j1), "no-cache");
	j = url_set(&s, t0);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.expires_s, t0);
	/* stale at once, yet still one refresh per 30 s at most */
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t0, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(started, 1);
	CU_ASSERT_EQUAL(jwks_wait(j, 2, 10000), 0);
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t0 + 29, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(started, 0);
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t0 + 30, &started), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(started, 1);
	CU_ASSERT_EQUAL(jwks_wait(j, 3, 10000), 0);
	jwks_free(j);
	/* a huge max-age is capped */
	at_server_set(&s, 200, j1, strlen(j1), "max-age=99999999999999999999");
	j = url_set(&s, t0);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.expires_s, t0 + JWKS_MAX_MAX_AGE_S);
	jwks_free(j);

	free(j1);
	free(j2);
	at_server_stop(&s);
}

static void test_rate_limit(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *j1 = at_jwks(1, ks, kids);
	at_server_set(&s, 200, j1, strlen(j1), "max-age=3600");
	const int64_t t0 = 1700000000;
	jr_jwks *j = url_set(&s, t0);
	int started;
	/* the fetch at start opens no window: the first unknown kid refreshes at once */
	CU_ASSERT_EQUAL(vr(j, "nope", key1, t0 + 5, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 1);
	CU_ASSERT_EQUAL(jwks_wait(j, 2, 10000), 0);
	/* right after it, and for 30 s more, nothing */
	for (int64_t t = t0 + 5; t < t0 + 35; t += 3) {
		CU_ASSERT_EQUAL(vr(j, "nope", key1, t, &started), JWKS_UNKNOWN_KID);
		CU_ASSERT_EQUAL(started, 0);
	}
	/* a clock that went back starts nothing */
	CU_ASSERT_EQUAL(vr(j, "nope", key1, t0 - 1000, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 0);
	CU_ASSERT_EQUAL(vr(j, "nope", key1, t0 + 35, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 1);
	CU_ASSERT_EQUAL(jwks_wait(j, 3, 10000), 0);
	jwks_info in;
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.fetches_started, 3);
	CU_ASSERT_EQUAL(at_server_requests(&s), 3);
	jwks_free(j);
	free(j1);
	at_server_stop(&s);
}

/* refresh_with: starts a refresh on j at t against what s serves now; returns after it finished. */
static void refresh_with(jr_jwks *j, int64_t t, uint64_t nth)
{
	int started;
	CU_ASSERT_EQUAL(vr(j, "missing", key1, t, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 1);
	CU_ASSERT_EQUAL(jwks_wait(j, nth, 10000), 0);
}

static void test_failures_keep_keys(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *j1 = at_jwks(1, ks, kids);
	at_server_set(&s, 200, j1, strlen(j1), "max-age=3600");
	const int64_t t0 = 1700000000;
	jr_jwks *j = url_set(&s, t0);
	jwks_info in;
	uint64_t n = 1;
	int64_t t = t0;

	at_server_set(&s, 500, "oops", 4, NULL);                     /* server error */
	refresh_with(j, t += 30, ++n);
	at_server_set(&s, 200, "<html>", 6, NULL);                   /* not JSON */
	refresh_with(j, t += 30, ++n);
	at_server_set(&s, 200, "{\"keys\":[]}", 11, NULL);           /* no key */
	refresh_with(j, t += 30, ++n);
	char *big = jr_malloc(2 * JWKS_MAX_BYTES);                   /* past the size bound */
	memset(big, ' ', 2 * JWKS_MAX_BYTES);
	at_server_set(&s, 200, big, 2 * JWKS_MAX_BYTES, NULL);
	free(big);
	refresh_with(j, t += 30, ++n);
	at_server_set(&s, 302, "", 0, NULL);                         /* redirects are not followed */
	at_server_headers(&s, "", "http://127.0.0.1:9/elsewhere");
	refresh_with(j, t += 30, ++n);
	at_server_headers(&s, "", "");

	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.fetch_errors, 5);
	CU_ASSERT_EQUAL(in.n_keys, 1);
	CU_ASSERT_EQUAL(in.expires_s, t0 + 3600);
	CU_ASSERT_EQUAL(vr(j, "k1", key1, t, NULL), JWKS_VERIFIED);
	CU_ASSERT_EQUAL(at_server_requests(&s), 6);
	jwks_free(j);
	free(j1);
	at_server_stop(&s);
}

/* A server that accepts and never answers: the fetch ends at its timeout; jwks_free during a refresh. */
static void test_timeouts(void)
{
	int port;
	int fd = at_silent_listener(&port);
	char url[64], err[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/certs", port);
	const int64_t t0 = 1700000000;
	jr_jwks *j = jwks_from_url(url, t0, 200, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	jwks_info in;
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.n_keys, 0);
	CU_ASSERT_EQUAL(in.fetch_errors, 1);
	/* a refresh in the background fails the same way */
	refresh_with(j, t0 + 30, 2);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.fetch_errors, 2);
	jwks_free(j);
	/* jwks_free right after a refresh was asked for: the thread stops (fetching or not) */
	j = jwks_from_url(url, t0, 200, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	int started;
	CU_ASSERT_EQUAL(vr(j, "x", key1, t0 + 30, &started), JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 1);
	jwks_free(j);
	close(fd);
}

/* localhost is loopback too */
static void test_localhost(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *j1 = at_jwks(1, ks, kids), url[80], err[256];
	at_server_set(&s, 200, j1, strlen(j1), "max-age=10");
	snprintf(url, sizeof url, "http://localhost:%d/certs", s.port);
	jr_jwks *j = jwks_from_url(url, 0, 5000, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	jwks_info in;
	jwks_get_info(j, &in);
	/* localhost may resolve to ::1 first, where nothing listens; curl then tries 127.0.0.1 */
	CU_ASSERT_EQUAL(in.n_keys, 1);
	jwks_free(j);
	free(j1);
	at_server_stop(&s);
}

/* The cache of verified signatures: hits repeat successes only, and a new key set starts afresh. */
static void test_verified_cache(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *ks[] = {key1, key2};
	const char *kids[] = {"k1", "k2"};
	char *j1 = at_jwks(1, ks, kids), *j2 = at_jwks(1, ks + 1, kids + 1);
	at_server_set(&s, 200, j1, strlen(j1), "max-age=3600");
	const int64_t t0 = 1700000000;
	jr_jwks *j = url_set(&s, t0);
	jwks_info in;
	static const char msg[] = "header.payload";
	unsigned char sig[256];
	size_t sl = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key1, NULL) != 1 ||
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)msg, sizeof msg - 1) != 1)
		abort();
	EVP_MD_CTX_free(md);

	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0, msg, sizeof msg - 1, sig, sl, NULL), JWKS_VERIFIED);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.cache_hits, 0);
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0, msg, sizeof msg - 1, sig, sl, NULL), JWKS_VERIFIED);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.cache_hits, 1);
	/* any other byte, or the same bytes under another kid: no hit, and no pass */
	sig[10] ^= 1;
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0, msg, sizeof msg - 1, sig, sl, NULL), JWKS_BAD_SIGNATURE);
	sig[10] ^= 1;
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0, msg, sizeof msg - 2, sig, sl, NULL), JWKS_BAD_SIGNATURE);
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0, msg, sizeof msg - 1, sig, sl - 1, NULL), JWKS_BAD_SIGNATURE);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.cache_hits, 1);
	/* the set rotates to k2 only, under a JWKS that names key2 "k1" as well */
	char *k2as1 = at_jwk(key2, "k1", NULL);
	char *rot = jr_asprintf("{\"keys\":[%s]}", k2as1);
	at_server_set(&s, 200, rot, strlen(rot), "max-age=3600");
	int started;
	CU_ASSERT_EQUAL(jwks_verify(j, "k9", t0 + 30, msg, sizeof msg - 1, sig, sl, &started),
			JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(started, 1);
	CU_ASSERT_EQUAL(jwks_wait(j, 2, 10000), 0);
	/* the cached success was against the old k1: it does not carry over */
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0 + 31, msg, sizeof msg - 1, sig, sl, NULL),
			JWKS_BAD_SIGNATURE);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.cache_hits, 1);
	/* and a kid that left the set is unknown, cached or not */
	at_server_set(&s, 200, j2, strlen(j2), "max-age=3600");
	CU_ASSERT_EQUAL(jwks_verify(j, "k9", t0 + 61, msg, sizeof msg - 1, sig, sl, &started),
			JWKS_UNKNOWN_KID);
	CU_ASSERT_EQUAL(jwks_wait(j, 3, 10000), 0);
	CU_ASSERT_EQUAL(jwks_verify(j, "k1", t0 + 62, msg, sizeof msg - 1, sig, sl, NULL),
			JWKS_UNKNOWN_KID);
	free(rot);
	free(k2as1);
	free(j1);
	free(j2);
	jwks_free(j);
	at_server_stop(&s);
}

int main(void)
{
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	key1 = at_keygen(2048);
	key2 = at_keygen(2048);
	snprintf(dir, sizeof dir, "/tmp/jr-test-jwks-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	static const cu_test tests[] = {
		{"base64url", test_b64url},
		{"which JWKS entries become keys", test_which_keys},
		{"text that is not a usable JWKS", test_not_a_jwks},
		{"jwks_file", test_file},
		{"jwks_url: https, or http to loopback only", test_url_rules},
		{"fetch, Cache-Control max-age and Age, refresh on expiry", test_fetch_and_max_age},
		{"one fetch per 30 s at most", test_rate_limit},
		{"failed refreshes keep the keys held", test_failures_keep_keys},
		{"fetch timeout; jwks_free during a fetch", test_timeouts},
		{"localhost URL", test_localhost},
		{"cache of verified signatures", test_verified_cache},
		{NULL, NULL},
	};
	int rc = cu_run("jwks", tests);
	EVP_PKEY_free(key1);
	EVP_PKEY_free(key2);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
