/*
 * Push authentication (docs/auth.md): the JWT matrix. Keys are made here
 * with OpenSSL and tokens signed here; the JWKS is a file in a temp dir, or
 * for the refresh cases served by a libmicrohttpd server on 127.0.0.1.
 * Times are passed in, never read: NOW is a fixed Unix time.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "auth.h"
#include "authtest.h"
#include "config.h"
#include "cu.h"
#include "log.h"

#define AUD "https://jobrelay-abc-ew.a.run.app/"
#define EMAIL "eventarc-trigger@acme-prod.iam.gserviceaccount.com"
#define GOOGLE "https://accounts.google.com"
#define HDR_K1 "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"

static EVP_PKEY *key1, *key2;
static char dir[64], jwks_path[128];
static int64_t NOW;

/* claims: a payload; NULL strings leave the claim out, verified is JSON text. */
static char *claims(const char *iss, const char *aud_json, const char *email, const char *verified,
		    int64_t iat, int64_t exp, const char *extra)
{
	jr_buf b;
	buf_init(&b, 0);
	buf_adds(&b, "{");
	if (iss)
		buf_printf(&b, "\"iss\":\"%s\",", iss);
	if (aud_json)
		buf_printf(&b, "\"aud\":%s,", aud_json);
	if (email)
		buf_printf(&b, "\"email\":\"%s\",", email);
	if (verified)
		buf_printf(&b, "\"email_verified\":%s,", verified);
	if (extra)
		buf_printf(&b, "%s,", extra);
	buf_printf(&b, "\"sub\":\"1234567890\",\"azp\":\"1234567890\",\"iat\":%lld,\"exp\":%lld}",
		   (long long)iat, (long long)exp);
	return buf_take(&b);
}

static char *good_claims(void)
{
	return claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 10, NOW + 3590, NULL);
}

static void make_config(jr_config *c, const char *jwks_file, const char *jwks_url)
{
	config_defaults(c);
	c->auth_audiences = jr_calloc(1, sizeof(char *));
	c->auth_audiences[0] = jr_strdup(AUD);
	c->n_auth_audiences = 1;
	c->auth_allowed_emails = jr_calloc(2, sizeof(char *));
	c->auth_allowed_emails[0] = jr_strdup("someone-else@acme-prod.iam.gserviceaccount.com");
	c->auth_allowed_emails[1] = jr_strdup(EMAIL);
	c->n_auth_allowed_emails = 2;
	c->auth_jwks_file = jwks_file ? jr_strdup(jwks_file) : NULL;
	c->auth_jwks_url = jwks_url ? jr_strdup(jwks_url) : NULL;
}

static jr_auth *file_auth(void)
{
	jr_config c;
	make_config(&c, jwks_path, NULL);
	char err[256];
	jr_auth *a = auth_new(&c, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	config_free(&c);
	return a;
}

/*
 * verdict: auth_check of "Bearer <token>" at now; also checks that the
 * reason is set and holds nothing of the token.
 */
static int verdict_at(jr_auth *a, const char *token, int64_t now, char *why, size_t wl)
{
	char *h = jr_asprintf("Bearer %s", token);
	int st = auth_check(a, h, now, why, wl);
	free(h);
	CU_ASSERT(why[0] != '\0');
	const char *dot = strchr(token, '.');
	size_t first = dot ? (size_t)(dot - token) : strlen(token);
	if (first >= 8) {
		char part[9];
		memcpy(part, token, 8);
		part[8] = '\0';
		CU_ASSERT_PTR_NULL(strstr(why, part));
	}
	CU_ASSERT_PTR_NULL(strstr(why, EMAIL));
	CU_ASSERT_PTR_NULL(strstr(why, "k1"));
	return st;
}

static int verdict(jr_auth *a, const char *token, char *why, size_t wl)
{
	return verdict_at(a, token, NOW, why, wl);
}

/* check_payload: the verdict on a token signed by key1 (kid k1) carrying payload p (freed). */
static int check_payload(jr_auth *a, char *p, int64_t now, char *why, size_t wl)
{
	char *t = at_token_rs256(key1, HDR_K1, p);
	int st = verdict_at(a, t, now, why, wl);
	free(t);
	free(p);
	return st;
}

static void test_valid(void)
{
	jr_auth *a = file_auth();
	char why[128];
	CU_ASSERT_EQUAL(check_payload(a, good_claims(), NOW, why, sizeof why), 0);
	CU_ASSERT_STRING_EQUAL(why, "ok");
	/* the scheme is case-insensitive, and surrounding blanks are allowed */
	char *gp = good_claims();
	char *t = at_token_rs256(key1, HDR_K1, gp);
	free(gp);
	char *h = jr_asprintf("  bearer   %s  ", t);
	CU_ASSERT_EQUAL(auth_check(a, h, NOW, why, sizeof why), 0);
	free(h);
	free(t);
	CU_ASSERT_EQUAL(auth_ready(a), 1);
	auth_free(a);
}

static void test_both_issuers(void)
{
	jr_auth *a = file_auth();
	char why[128];
	CU_ASSERT_EQUAL(check_payload(a, claims("accounts.google.com", "\"" AUD "\"", EMAIL, "true",
						NOW, NOW + 60, NULL), NOW, why, sizeof why), 0);
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW,
						NOW + 60, NULL), NOW, why, sizeof why), 0);
	auth_free(a);
}

static void test_wrong_issuer(void)
{
	jr_auth *a = file_auth();
	char why[128];
	static const char *bad[] = {"https://evil.example", "http://accounts.google.com",
				    "https://accounts.google.com/", "accounts.google.com.evil", ""};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CU_ASSERT_EQUAL(check_payload(a, claims(bad[i], "\"" AUD "\"", EMAIL, "true", NOW,
							NOW + 60, NULL), NOW, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "issuer is not Google");
	}
	CU_ASSERT_EQUAL(check_payload(a, claims(NULL, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 60,
						NULL), NOW, why, sizeof why), 401);
	auth_free(a);
}

static void test_expired_and_skew(void)
{
	jr_auth *a = file_auth();
	char why[128];
	/* exp passed long ago */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 7200,
						NOW - 3600, NULL), NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token expired");
	/* exp 59 s ago: within the skew; 60 s ago: expired */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 3600,
						NOW - 59, NULL), NOW, why, sizeof why), 0);
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 3600,
						NOW - 60, NULL), NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token expired");
	/* the same token, judged at different times */
	char *gp = good_claims();
	char *t = at_token_rs256(key1, HDR_K1, gp);
	free(gp);
	CU_ASSERT_EQUAL(verdict_at(a, t, NOW + 3590 + 59, why, sizeof why), 0);
	/* (its signature is now a cached success: the times are checked all the same) */
	CU_ASSERT_EQUAL(verdict_at(a, t, NOW + 3590 + 60, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token expired");
	CU_ASSERT_EQUAL(verdict_at(a, t, NOW - 10 - 60, why, sizeof why), 0);
	CU_ASSERT_EQUAL(verdict_at(a, t, NOW - 10 - 61, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token issued in the future");
	free(t);
	/* exp and iat are required, and numbers */
	CU_ASSERT_EQUAL(check_payload(a, jr_strdup("{\"iss\":\"" GOOGLE "\",\"aud\":\"" AUD
						   "\",\"email\":\"" EMAIL
						   "\",\"email_verified\":true,\"iat\":1}"),
				      NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token has no numeric exp");
	char *p = jr_asprintf("{\"iss\":\"" GOOGLE "\",\"aud\":\"" AUD "\",\"email\":\"" EMAIL
			      "\",\"email_verified\":true,\"exp\":%lld}", (long long)NOW + 100);
	CU_ASSERT_EQUAL(check_payload(a, p, NOW, why, sizeof why), 401);
	p = jr_asprintf("{\"iss\":\"" GOOGLE "\",\"aud\":\"" AUD "\",\"email\":\"" EMAIL
			"\",\"email_verified\":true,\"iat\":%lld,\"exp\":\"%lld\"}",
			(long long)NOW, (long long)NOW + 100);
	CU_ASSERT_EQUAL(check_payload(a, p, NOW, why, sizeof why), 401);
	/* a fractional NumericDate is a NumericDate */
	p = jr_asprintf("{\"iss\":\"" GOOGLE "\",\"aud\":\"" AUD "\",\"email\":\"" EMAIL
			"\",\"email_verified\":true,\"iat\":%lld.5,\"exp\":%lld.25}",
			(long long)NOW, (long long)NOW + 100);
	CU_ASSERT_EQUAL(check_payload(a, p, NOW, why, sizeof why), 0);
	auth_free(a);
}

static void test_not_yet_valid(void)
{
	jr_auth *a = file_auth();
	char why[128];
	/* iat an hour ahead */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW + 3600,
						NOW + 7200, NULL), NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token issued in the future");
	/* iat 60 s ahead: within the skew; 61 s: not */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW + 60,
						NOW + 3600, NULL), NOW, why, sizeof why), 0);
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW + 61,
						NOW + 3600, NULL), NOW, why, sizeof why), 401);
	/* nbf, when present, the same way */
	char *nbf = jr_asprintf("\"nbf\":%lld", (long long)NOW + 61);
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW,
						NOW + 3600, nbf), NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token not yet valid (nbf)");
	free(nbf);
	nbf = jr_asprintf("\"nbf\":%lld", (long long)NOW + 60);
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW,
						NOW + 3600, nbf), NOW, why, sizeof why), 0);
	free(nbf);
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW,
						NOW + 3600, "\"nbf\":\"soon\""), NOW, why, sizeof why), 401);
	auth_free(a);
}

static void test_wrong_audience(void)
{
	jr_auth *a = file_auth();
	char why[128];
	static const char *bad[] = {"\"https://other.a.run.app/\"", "\"https://jobrelay-abc-ew.a.run.app\"",
				    "[\"https://other/\"]", "[]", "42", "null"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, bad[i], EMAIL, "true", NOW, NOW + 60,
							NULL), NOW, why, sizeof why), 403);
		CU_ASSERT_STRING_EQUAL(why, "audience does not match");
	}
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, NULL, EMAIL, "true", NOW, NOW + 60, NULL),
				      NOW, why, sizeof why), 403);
	/* an array that holds our audience passes (RFC 7519 §4.1.3) */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "[\"https://other/\",\"" AUD "\"]", EMAIL,
						"true", NOW, NOW + 60, NULL), NOW, why, sizeof why), 0);
	auth_free(a);
}

static void test_wrong_email(void)
{
	jr_auth *a = file_auth();
	char why[128];
	static const char *bad[] = {"attacker@evil.example", "eventarc-trigger@acme-prod.iam.gserviceaccount.co",
				    "", "xeventarc-trigger@acme-prod.iam.gserviceaccount.com"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", bad[i], "true", NOW,
							NOW + 60, NULL), NOW, why, sizeof why), 403);
		CU_ASSERT_STRING_EQUAL(why, "email not allowed");
	}
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", NULL, "true", NOW, NOW + 60,
						NULL), NOW, why, sizeof why), 403);
	/* ASCII case does not matter in an email */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"",
						"Eventarc-Trigger@ACME-prod.iam.gserviceaccount.com",
						"true", NOW, NOW + 60, NULL), NOW, why, sizeof why), 0);
	/* an embedded NUL does not cut the comparison short */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL "\\u0000x", "true", NOW,
						NOW + 60, NULL), NOW, why, sizeof why), 403);
	auth_free(a);
}

static void test_email_not_verified(void)
{
	jr_auth *a = file_auth();
	char why[128];
	static const char *bad[] = {"false", "\"false\"", "null", "1", NULL};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, bad[i], NOW,
							NOW + 60, NULL), NOW, why, sizeof why), 403);
		CU_ASSERT_STRING_EQUAL(why, "email not verified");
	}
	/* some Google tokens carry it as a string */
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "\"true\"", NOW,
						NOW + 60, NULL), NOW, why, sizeof why), 0);
	auth_free(a);
}

static void test_repeated_claim(void)
{
	jr_auth *a = file_auth();
	char why[128];
	CU_ASSERT_EQUAL(check_payload(a, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 60,
						"\"email\":\"attacker@evil.example\""),
				      NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token repeats a claim");
	char *p = good_claims();
	char *t = at_token_rs256(key1, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"alg\":\"none\"}", p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	free(t);
	free(p);
	auth_free(a);
}

static void test_unknown_kid_file(void)
{
	jr_auth *a = file_auth();
	char why[128];
	char *p = good_claims();
	char *t = at_token_rs256(key2, "{\"alg\":\"RS256\",\"kid\":\"k2\"}", p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id");
	free(t);
	/* no kid at all */
	t = at_token_rs256(key1, "{\"alg\":\"RS256\"}", p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token header has no usable kid");
	free(t);
	free(p);
	auth_free(a);
}

static void test_alg_none(void)
{
	jr_auth *a = file_auth();
	char why[128];
	char *p = good_claims();
	static const char *hdrs[] = {"{\"alg\":\"none\",\"kid\":\"k1\"}", "{\"alg\":\"none\"}",
				     "{\"alg\":\"None\",\"kid\":\"k1\"}", "{\"kid\":\"k1\"}",
				     "{\"alg\":\"RS384\",\"kid\":\"k1\"}", "{\"alg\":\"PS256\",\"kid\":\"k1\"}"};
	for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++) {
		jr_buf b;
		buf_init(&b, 0);
		at_b64url_str(&b, hdrs[i]);
		buf_addc(&b, '.');
		at_b64url_str(&b, p);
		buf_addc(&b, '.');
		CU_ASSERT_EQUAL(verdict(a, b.data, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token algorithm is not RS256");
		/* with a real RS256 signature over it, still refused */
		char *t = at_token_rs256(key1, hdrs[i], p);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
		free(t);
		buf_free(&b);
	}
	/* RS256 with no signature part at all */
	jr_buf b;
	buf_init(&b, 0);
	at_b64url_str(&b, HDR_K1);
	buf_addc(&b, '.');
	at_b64url_str(&b, p);
	buf_addc(&b, '.');
	CU_ASSERT_EQUAL(verdict(a, b.data, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "bad signature");
	buf_free(&b);
	/* crit is refused: we understand no extension */
	char *t = at_token_rs256(key1, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"exp\"],\"exp\":1}", p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token header has crit parameters");
	free(t);
	free(p);
	auth_free(a);
}

static void test_hs256_confusion(void)
{
	jr_auth *a = file_auth();
	char why[128];
	char *p = good_claims();
	char *pem = at_public_pem(key1);
	char *t = at_token_hs256(pem, strlen(pem), "{\"alg\":\"HS256\",\"kid\":\"k1\"}", p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token algorithm is not RS256");
	free(t);
	/* the same MAC under a header that claims RS256: a 32-byte "signature" */
	t = at_token_hs256(pem, strlen(pem), HDR_K1, p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "bad signature");
	free(t);
	free(pem);
	free(p);
	auth_free(a);
}

static void test_bad_signature(void)
{
	jr_auth *a = file_auth();
	char why[128];
	char *p = good_claims();
	/* one bit of the signature flipped */
	char *t = at_token_rs256(key1, HDR_K1, p);
	char *last = strrchr(t, '.') + 5;
	*last = *last == 'A' ? 'B' : 'A';
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "bad signature");
	free(t);
	/* signed by another key under k1's name */
	t = at_token_rs256(key2, HDR_K1, p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "bad signature");
	free(t);
	/* the payload swapped after signing */
	t = at_token_rs256(key1, HDR_K1, p);
	char *other = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 999999, NULL);
	jr_buf b;
	buf_init(&b, 0);
	buf_add(&b, t, (size_t)(strchr(t, '.') - t + 1));
	at_b64url_str(&b, other);
	buf_adds(&b, strrchr(t, '.'));
	CU_ASSERT_EQUAL(verdict(a, b.data, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "bad signature");
	/* a signature one byte short, and one byte long */
	buf_reset(&b);
	buf_add(&b, t, strlen(t) - 3);
	CU_ASSERT_EQUAL(verdict(a, b.data, why, sizeof why), 401);
	buf_reset(&b);
	buf_printf(&b, "%sAAA", t);
	CU_ASSERT_EQUAL(verdict(a, b.data, why, sizeof why), 401);
	buf_free(&b);
	free(other);
	free(t);
	free(p);
	auth_free(a);
}

static void test_malformed(void)
{
	jr_auth *a = file_auth();
	char why[128];
	char *p = good_claims();
	char *good = at_token_rs256(key1, HDR_K1, p);
	static const char *bad[] = {
		"abc", "a.b", "a.b.c.d", "..", ".e30.x", "*.*.*", "eyJ=.e30.AA",
		"eyJhbGciOiJSUzI1NiJ9", /* one part */
		"bm90IGpzb24.e30.AAAA", /* header "not json" */
		"WyJSUzI1NiJd.e30.AAAA", /* header is an array */
		"e30.e30.AAAA",          /* header {} */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		CU_ASSERT_EQUAL(verdict(a, bad[i], why, sizeof why), 401);
	/* a good token with one more part, or with its dots moved */
	char *t = jr_asprintf("%s.AAAA", good);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token is not three base64url parts");
	free(t);
	/* padding and standard base64 characters are not base64url */
	t = jr_asprintf("%s=", good);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	free(t);
	t = jr_strdup(good);
	for (char *c = strrchr(t, '.'); *c; c++)
		if (*c == '-' || *c == '_') {
			*c = *c == '-' ? '+' : '/';
			break;
		}
	if (strpbrk(strrchr(t, '.'), "+/"))
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	free(t);
	/* a signed payload that is not JSON, or not an object */
	static const char *payloads[] = {"not json", "[1,2]", "\"s\"", "", "{\"iss\":"};
	for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
		t = at_token_rs256(key1, HDR_K1, payloads[i]);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token payload is not a JSON object");
		free(t);
	}
	/* deep nesting in the payload is refused, not recursed */
	jr_buf deep;
	buf_init(&deep, 0);
	buf_adds(&deep, "{\"x\":");
	for (int i = 0; i < 200; i++)
		buf_addc(&deep, '[');
	for (int i = 0; i < 200; i++)
		buf_addc(&deep, ']');
	buf_addc(&deep, '}');
	t = at_token_rs256(key1, HDR_K1, deep.data);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	free(t);
	buf_free(&deep);
	/* huge: past 8 KiB, whatever it holds */
	char *big = jr_malloc(9000 + 1);
	memset(big, 'A', 9000);
	big[9000] = '\0';
	big[3000] = big[6000] = '.';
	CU_ASSERT_EQUAL(verdict(a, big, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token longer than 8192 bytes");
	free(big);
	/* a signed token whose header is over 1 KiB */
	jr_buf h;
	buf_init(&h, 0);
	buf_adds(&h, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"pad\":\"");
	for (int i = 0; i < 1100; i++)
		buf_addc(&h, 'x');
	buf_adds(&h, "\"}");
	t = at_token_rs256(key1, h.data, p);
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
	free(t);
	buf_free(&h);
	free(good);
	free(p);
	auth_free(a);
}

static void test_missing_or_not_bearer(void)
{
	jr_auth *a = file_auth();
	char why[128];
	CU_ASSERT_EQUAL(auth_check(a, NULL, NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "no Authorization header");
	static const char *bad[] = {"", "Bearer", "Bearer ", "Bearer   \t", "Basic dXNlcjpwYXNz",
				    "BearerX abc", "Token abc.def.ghi", "bearer"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		CU_ASSERT_EQUAL(auth_check(a, bad[i], NOW, why, sizeof why), 401);
		CU_ASSERT(why[0] != '\0');
	}
	/* a valid token under another scheme */
	char *p = good_claims();
	char *t = at_token_rs256(key1, HDR_K1, p);
	char *h = jr_asprintf("Basic %s", t);
	CU_ASSERT_EQUAL(auth_check(a, h, NOW, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "Authorization is not a Bearer token");
	free(h);
	free(t);
	free(p);
	/* a tiny why buffer is still a NUL-terminated string */
	char tiny[4];
	CU_ASSERT_EQUAL(auth_check(a, NULL, NOW, tiny, sizeof tiny), 401);
	CU_ASSERT_EQUAL(strlen(tiny), 3);
	auth_free(a);
}

static void test_claims_only(void)
{
	jr_auth *a = file_auth();
	char why[128];
	char *p = good_claims();
	CU_ASSERT_EQUAL(auth_check_claims(a, p, strlen(p), NOW, why, sizeof why), 0);
	free(p);
	p = claims(GOOGLE, "\"" AUD "\"", "x@y", "true", NOW, NOW + 60, NULL);
	CU_ASSERT_EQUAL(auth_check_claims(a, p, strlen(p), NOW, why, sizeof why), 403);
	free(p);
	auth_free(a);
}

static void test_new_errors(void)
{
	jr_config c;
	char err[256];
	/* no auth: section */
	config_defaults(&c);
	err[0] = 'x';
	CU_ASSERT_PTR_NULL(auth_new(&c, err, sizeof err));
	CU_ASSERT_STRING_EQUAL(err, "");
	config_free(&c);
	/* a jwks_file that is missing, not JSON, or without a usable key */
	char path[160];
	snprintf(path, sizeof path, "%s/absent.json", dir);
	make_config(&c, path, NULL);
	CU_ASSERT_PTR_NULL(auth_new(&c, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	config_free(&c);
	static const char *bodies[] = {"not json", "{\"keys\":[]}", "{\"keys\":[{\"kty\":\"EC\"}]}"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/bad%zu.json", dir, i);
		FILE *f = fopen(path, "w");
		fputs(bodies[i], f);
		fclose(f);
		make_config(&c, path, NULL);
		err[0] = '\0';
		CU_ASSERT_PTR_NULL(auth_new(&c, err, sizeof err));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
		config_free(&c);
	}
	/* a jwks_url over plain http to a host that is not loopback: refused, not contacted */
	make_config(&c, NULL, "http://www.googleapis.com/oauth2/v3/certs");
	CU_ASSERT_PTR_NULL(auth_new(&c, err, sizeof err));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "loopback"));
	config_free(&c);
}

/* The JWKS from a URL: an unknown kid starts a refresh that brings the new key; rate-limited. */
static void test_unknown_kid_refresh(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *k3 = at_keygen(2048);
	EVP_PKEY *ks[] = {key1, key2, k3};
	const char *kids[] = {"k1", "k2", "k3"};
	char *j1 = at_jwks(1, ks, kids), *j12 = at_jwks(2, ks, kids), *j123 = at_jwks(3, ks, kids);
	at_server_set(&s, 200, j1, strlen(j1), "public, max-age=3600");
	jr_config c;
	make_config(&c, NULL, s.url);
	char err[256], why[128];
	jr_auth *a = auth_new(&c, err, sizeof err);
	int64_t t0 = (int64_t)time(NULL);
	config_free(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(at_server_requests(&s), 1);
	CU_ASSERT_EQUAL(auth_ready(a), 1);
	jr_jwks *j = auth_jwks(a);
	jwks_info in;

	char *p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", t0 + 40, t0 + 3600, NULL);
	char *tok1 = at_token_rs256(key1, HDR_K1, p);
	char *tok2 = at_token_rs256(key2, "{\"alg\":\"RS256\",\"kid\":\"k2\"}", p);
	char *tok3 = at_token_rs256(k3, "{\"alg\":\"RS256\",\"kid\":\"k3\"}", p);
	CU_ASSERT_EQUAL(verdict_at(a, tok1, t0 + 40, why, sizeof why), 0);

	/* Google publishes k2; a token signed with it arrives: 401, and a refresh starts */
	at_server_set(&s, 200, j12, strlen(j12), "public, max-age=3600");
	CU_ASSERT_EQUAL(verdict_at(a, tok2, t0 + 40, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id (JWKS refresh started)");
	CU_ASSERT_EQUAL(jwks_wait(j, 2, 10000), 0);
	CU_ASSERT_EQUAL(at_server_requests(&s), 2);
	/* its retry passes; the old key still works */
	CU_ASSERT_EQUAL(verdict_at(a, tok2, t0 + 41, why, sizeof why), 0);
	CU_ASSERT_EQUAL(verdict_at(a, tok1, t0 + 41, why, sizeof why), 0);

	/* another unknown kid within 30 s of that refresh: no fetch */
	at_server_set(&s, 200, j123, strlen(j123), "public, max-age=3600");
	CU_ASSERT_EQUAL(verdict_at(a, tok3, t0 + 69, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id");
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.fetches_started, 2);
	/* 30 s after it: one fetch, and k3 passes after it */
	CU_ASSERT_EQUAL(verdict_at(a, tok3, t0 + 70, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id (JWKS refresh started)");
	CU_ASSERT_EQUAL(jwks_wait(j, 3, 10000), 0);
	CU_ASSERT_EQUAL(verdict_at(a, tok3, t0 + 71, why, sizeof why), 0);
	/* the server saw exactly the three fetches counted */
	CU_ASSERT_EQUAL(at_server_requests(&s), 3);
	jwks_get_info(j, &in);
	CU_ASSERT_EQUAL(in.fetches_started, 3);
	CU_ASSERT_EQUAL(in.fetch_errors, 0);

	free(tok1);
	free(tok2);
	free(tok3);
	free(p);
	free(j1);
	free(j12);
	free(j123);
	EVP_PKEY_free(k3);
	auth_free(a);
	at_server_stop(&s);
}

/* A jwks_url that cannot be fetched at start: not an error; 401 until a fetch succeeds. */
static void test_url_down_at_start(void)
{
	at_server s;
	at_server_start(&s);
	at_server_set(&s, 503, "unavailable", 11, NULL);
	jr_config c;
	make_config(&c, NULL, s.url);
	char err[256], why[128];
	jr_auth *a = auth_new(&c, err, sizeof err);
	int64_t t0 = (int64_t)time(NULL);
	config_free(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(auth_ready(a), 0);
	char *p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", t0, t0 + 3600, NULL);
	char *t = at_token_rs256(key1, HDR_K1, p);
	/* the first token starts a refresh at once; the server still fails */
	CU_ASSERT_EQUAL(verdict_at(a, t, t0 + 1, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id (JWKS refresh started)");
	CU_ASSERT_EQUAL(jwks_wait(auth_jwks(a), 2, 10000), 0);
	CU_ASSERT_EQUAL(auth_ready(a), 0);
	/* the next ones wait for the rate limit */
	CU_ASSERT_EQUAL(verdict_at(a, t, t0 + 2, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id");
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *j1 = at_jwks(1, ks, kids);
	at_server_set(&s, 200, j1, strlen(j1), "max-age=600");
	CU_ASSERT_EQUAL(verdict_at(a, t, t0 + 30, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id");
	CU_ASSERT_EQUAL(verdict_at(a, t, t0 + 31, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "unknown key id (JWKS refresh started)");
	CU_ASSERT_EQUAL(jwks_wait(auth_jwks(a), 3, 10000), 0);
	CU_ASSERT_EQUAL(auth_ready(a), 1);
	CU_ASSERT_EQUAL(verdict_at(a, t, t0 + 32, why, sizeof why), 0);
	free(j1);
	free(t);
	free(p);
	auth_free(a);
	at_server_stop(&s);
}

/* Checks on several threads while refreshes swap the key set under them. */
typedef struct worker {
	jr_auth *a;
	const char *header;
	int64_t now;
	atomic_int *stop;
	int checks, passed;
} worker;

static void *worker_run(void *arg)
{
	worker *w = arg;
	char why[128];
	do {
		w->passed += auth_check(w->a, w->header, w->now, why, sizeof why) == 0;
		w->checks++;
	} while (!atomic_load(w->stop) || w->checks < 50);
	return NULL;
}

static void test_concurrent_checks(void)
{
	at_server s;
	at_server_start(&s);
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *j1 = at_jwks(1, ks, kids);
	at_server_set(&s, 200, j1, strlen(j1), "max-age=0");
	jr_config c;
	make_config(&c, NULL, s.url);
	char err[256];
	jr_auth *a = auth_new(&c, err, sizeof err);
	config_free(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	int64_t t0 = (int64_t)time(NULL);
	char *p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", t0, t0 + 3600, NULL);
	char *t = at_token_rs256(key1, HDR_K1, p);
	char *h = jr_asprintf("Bearer %s", t);
	atomic_int stop = 0;
	worker w[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		/* at t0 + 30 one of them may start the first refresh instead of the loop below */
		w[i] = (worker){.a = a, .header = h, .now = t0 + 30, .stop = &stop};
		pthread_create(&th[i], NULL, worker_run, &w[i]);
	}
	/* max-age=0: every check past the rate limit starts a refresh that swaps the set */
	char why[128];
	for (int i = 1; i <= 5; i++) {
		CU_ASSERT_EQUAL(auth_check(a, h, t0 + 30 * i, why, sizeof why), 0);
		CU_ASSERT_EQUAL(jwks_wait(auth_jwks(a), (uint64_t)i + 1, 10000), 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].passed, w[i].checks);
	}
	CU_ASSERT_EQUAL(at_server_requests(&s), 6);
	free(h);
	free(t);
	free(p);
	free(j1);
	auth_free(a);
	at_server_stop(&s);
}

/* ---- auth.mode cloud_run_iam, several audiences, the maximum lifetime ---- */

#define AUD2 "https://jobrelay-eventarc.example/"

/* stripped: header.payload as Cloud Run IAM hands it on, signature replaced by its marker. */
static char *stripped(const char *hdr, const char *payload)
{
	jr_buf b;
	buf_init(&b, 0);
	at_b64url_str(&b, hdr);
	buf_addc(&b, '.');
	at_b64url_str(&b, payload);
	buf_adds(&b, "." AUTH_SIGNATURE_REMOVED);
	return buf_take(&b);
}

/* mode_auth: a checker in mode, with audiences AUD (and AUD2 when two), emails as file_auth. */
static jr_auth *mode_auth(jr_auth_mode mode, int two)
{
	jr_config c;
	make_config(&c, mode == JR_AUTH_VERIFY ? jwks_path : NULL, NULL);
	c.auth_mode = mode;
	if (two) {
		c.auth_audiences = jr_realloc(c.auth_audiences, 2 * sizeof(char *));
		c.auth_audiences[1] = jr_strdup(AUD2);
		c.n_auth_audiences = 2;
	}
	char err[256];
	jr_auth *a = auth_new(&c, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	config_free(&c);
	return a;
}

/* mode_token: the token of hdr.payload as each mode receives it: signed by key1, or stripped. */
static char *mode_token(jr_auth_mode mode, const char *hdr, const char *payload)
{
	return mode == JR_AUTH_VERIFY ? at_token_rs256(key1, hdr, payload) : stripped(hdr, payload);
}

static void test_cloud_run_iam_stripped(void)
{
	jr_auth *iam = mode_auth(JR_AUTH_CLOUD_RUN_IAM, 0), *ver = file_auth();
	char why[128];
	char *p = good_claims();
	char *t = stripped(HDR_K1, p);
	/* accepted in cloud_run_iam, refused in verify (with a reason that says why) */
	CU_ASSERT_EQUAL(verdict(iam, t, why, sizeof why), 0);
	CU_ASSERT_STRING_EQUAL(why, "ok");
	CU_ASSERT_EQUAL(verdict(ver, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token signature removed by Cloud Run IAM (see auth.mode)");
	free(t);
	/* cloud_run_iam takes the marker only: a real signature, even a good one, is refused */
	t = at_token_rs256(key1, HDR_K1, p);
	CU_ASSERT_EQUAL(verdict(iam, t, why, sizeof why), 401);
	CU_ASSERT_STRING_EQUAL(why, "token signature was not removed by Cloud Run IAM");
	CU_ASSERT_EQUAL(verdict(ver, t, why, sizeof why), 0);
	free(t);
	/* nor an empty signature, or anything that is not exactly the marker */
	static const char *sigs[] = {"", "SIGNATURE_REMOVED_BY_GOOGLF", "signature_removed_by_google",
				     "SIGNATURE_REMOVED_BY_GOOGLEA", "SIGNATURE_REMOVED_BY_GOOGL",
				     "AAAA"};
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		jr_buf b;
		buf_init(&b, 0);
		at_b64url_str(&b, HDR_K1);
		buf_addc(&b, '.');
		at_b64url_str(&b, p);
		buf_printf(&b, ".%s", sigs[i]);
		CU_ASSERT_EQUAL(verdict(iam, b.data, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token signature was not removed by Cloud Run IAM");
		buf_free(&b);
	}
	/* no JWKS: ready at once, and no key set */
	CU_ASSERT_EQUAL(auth_ready(iam), 1);
	CU_ASSERT_PTR_NULL(auth_jwks(iam));
	free(p);
	auth_free(iam);
	auth_free(ver);
}

static void test_cloud_run_iam_fetches_nothing(void)
{
	/* a jwks_url left in the config (the loader refuses it) is neither checked nor fetched */
	at_server s;
	at_server_start(&s);
	at_server_set(&s, 200, "{\"keys\":[]}", 11, NULL);
	jr_config c;
	make_config(&c, NULL, s.url);
	c.auth_mode = JR_AUTH_CLOUD_RUN_IAM;
	char err[256];
	jr_auth *a = auth_new(&c, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL(a);
	config_free(&c);
	char *p = good_claims();
	char *t = stripped(HDR_K1, p);
	char why[128];
	CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 0);
	CU_ASSERT_EQUAL(at_server_requests(&s), 0);
	free(t);
	free(p);
	auth_free(a);
	at_server_stop(&s);
}

/* One case of the refusal matrix: a header and a payload, and the verdict both modes give. */
typedef struct mcase {
	const char *name;
	const char *hdr;
	char *payload;
	int status;
	const char *why;
} mcase;

static void test_matrix_both_modes(void)
{
	char *nbf = jr_asprintf("\"nbf\":%lld", (long long)NOW + 61);
	mcase cases[] = {
		{"valid", HDR_K1, good_claims(), 0, "ok"},
		{"issuer without scheme", HDR_K1,
		 claims("accounts.google.com", "\"" AUD "\"", EMAIL, "true", NOW, NOW + 60, NULL), 0, "ok"},
		{"expired", HDR_K1, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 3660, NOW - 60,
					   NULL), 401, "token expired"},
		{"issued in the future", HDR_K1, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW + 61,
							NOW + 3600, NULL), 401,
		 "token issued in the future"},
		{"nbf ahead", HDR_K1, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 60, nbf),
		 401, "token not yet valid (nbf)"},
		{"lifetime over an hour", HDR_K1, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW,
							 NOW + 3601, NULL), 401,
		 "token lifetime over one hour"},
		{"wrong issuer", HDR_K1, claims("https://evil.example", "\"" AUD "\"", EMAIL, "true", NOW,
						NOW + 60, NULL), 401, "issuer is not Google"},
		{"no issuer", HDR_K1, claims(NULL, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 60, NULL),
		 401, "issuer is not Google"},
		{"wrong audience", HDR_K1, claims(GOOGLE, "\"https://other.a.run.app/\"", EMAIL, "true",
						  NOW, NOW + 60, NULL), 403, "audience does not match"},
		{"wrong email", HDR_K1, claims(GOOGLE, "\"" AUD "\"", "attacker@evil.example", "true",
					       NOW, NOW + 60, NULL), 403, "email not allowed"},
		{"email not verified", HDR_K1, claims(GOOGLE, "\"" AUD "\"", EMAIL, "false", NOW,
						      NOW + 60, NULL), 403, "email not verified"},
		{"repeated claim", HDR_K1, claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 60,
						  "\"email\":\"attacker@evil.example\""), 401,
		 "token repeats a claim"},
		{"payload not an object", HDR_K1, jr_strdup("[1,2]"), 401,
		 "token payload is not a JSON object"},
		{"alg none", "{\"alg\":\"none\",\"kid\":\"k1\"}", good_claims(), 401,
		 "token algorithm is not RS256"},
		{"alg HS256", "{\"alg\":\"HS256\",\"kid\":\"k1\"}", good_claims(), 401,
		 "token algorithm is not RS256"},
		{"no alg", "{\"kid\":\"k1\"}", good_claims(), 401, "token algorithm is not RS256"},
		{"crit", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"x\"],\"x\":1}", good_claims(), 401,
		 "token header has crit parameters"},
		{"repeated alg", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"alg\":\"none\"}", good_claims(), 401,
		 "token header repeats a parameter"},
		{"no kid", "{\"alg\":\"RS256\"}", good_claims(), 401, "token header has no usable kid"},
		{"header not an object", "[\"RS256\"]", good_claims(), 401,
		 "token header is not a JSON object"},
	};
	jr_auth_mode modes[] = {JR_AUTH_VERIFY, JR_AUTH_CLOUD_RUN_IAM};
	char why[128];
	for (size_t m = 0; m < 2; m++) {
		jr_auth *a = mode_auth(modes[m], 0);
		for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
			char *t = mode_token(modes[m], cases[i].hdr, cases[i].payload);
			int st = verdict(a, t, why, sizeof why);
			CU_ASSERT_EQUAL(st, cases[i].status);
			CU_ASSERT_STRING_EQUAL(why, cases[i].why);
			if (st != cases[i].status || strcmp(why, cases[i].why))
				fprintf(stderr, "\n%s mode: %s: %d %s\n",
					m ? "cloud_run_iam" : "verify", cases[i].name, st, why);
			free(t);
		}
		/* malformed: the same in both modes */
		static const char *bad[] = {"abc", "a.b", "a.b.c.d", "..", ".e30.x", "*.*.*",
					    "e30.e30." AUTH_SIGNATURE_REMOVED,
					    "bm90IGpzb24.e30." AUTH_SIGNATURE_REMOVED,
					    "eyJ=.e30." AUTH_SIGNATURE_REMOVED};
		for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
			CU_ASSERT_EQUAL(verdict(a, bad[i], why, sizeof why), 401);
		CU_ASSERT_EQUAL(auth_check(a, NULL, NOW, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "no Authorization header");
		char *p = good_claims();
		char *t = mode_token(modes[m], HDR_K1, p);
		char *h = jr_asprintf("Basic %s", t);
		CU_ASSERT_EQUAL(auth_check(a, h, NOW, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "Authorization is not a Bearer token");
		free(h);
		/* a good token one part longer */
		h = jr_asprintf("Bearer %s.AAAA", t);
		CU_ASSERT_EQUAL(auth_check(a, h, NOW, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token is not three base64url parts");
		free(h);
		free(t);
		free(p);
		auth_free(a);
	}
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		free(cases[i].payload);
	free(nbf);
}

static void test_max_lifetime(void)
{
	jr_auth_mode modes[] = {JR_AUTH_VERIFY, JR_AUTH_CLOUD_RUN_IAM};
	char why[128];
	for (size_t m = 0; m < 2; m++) {
		jr_auth *a = mode_auth(modes[m], 0);
		/* exactly an hour (Google's) passes; a second more does not */
		char *p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 100, NOW + 3500, NULL);
		char *t = mode_token(modes[m], HDR_K1, p);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 0);
		free(t);
		free(p);
		p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW - 100, NOW + 3501, NULL);
		t = mode_token(modes[m], HDR_K1, p);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token lifetime over one hour");
		free(t);
		free(p);
		/* a year-long token issued now */
		p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 86400 * 365, NULL);
		t = mode_token(modes[m], HDR_K1, p);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token lifetime over one hour");
		free(t);
		free(p);
		/* exp far ahead with an hour's lifetime needs iat ahead too: refused, so exp - now is bounded */
		p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW + 3600, NOW + 7200, NULL);
		t = mode_token(modes[m], HDR_K1, p);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 401);
		CU_ASSERT_STRING_EQUAL(why, "token issued in the future");
		free(t);
		free(p);
		/* the furthest exp that passes: now + skew + one hour */
		p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW + AUTH_SKEW_S,
			   NOW + AUTH_SKEW_S + AUTH_MAX_LIFETIME_S, NULL);
		t = mode_token(modes[m], HDR_K1, p);
		CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), 0);
		free(t);
		free(p);
		/* the claim checks alone hold the bound too */
		p = claims(GOOGLE, "\"" AUD "\"", EMAIL, "true", NOW, NOW + 7200, NULL);
		CU_ASSERT_EQUAL(auth_check_claims(a, p, strlen(p), NOW, why, sizeof why), 401);
		free(p);
		auth_free(a);
	}
}

static void test_several_audiences(void)
{
	jr_auth_mode modes[] = {JR_AUTH_VERIFY, JR_AUTH_CLOUD_RUN_IAM};
	char why[128];
	for (size_t m = 0; m < 2; m++) {
		jr_auth *a = mode_auth(modes[m], 1);
		static const struct {
			const char *aud;
			int status;
		} cases[] = {
			{"\"" AUD "\"", 0},
			{"\"" AUD2 "\"", 0},
			{"[\"https://other/\",\"" AUD2 "\"]", 0},
			{"\"https://other/\"", 403},
			{"[\"https://other/\"]", 403},
			{"\"https://jobrelay-eventarc.example\"", 403},
			{"\"" AUD AUD2 "\"", 403},
		};
		for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
			char *p = claims(GOOGLE, cases[i].aud, EMAIL, "true", NOW, NOW + 60, NULL);
			char *t = mode_token(modes[m], HDR_K1, p);
			CU_ASSERT_EQUAL(verdict(a, t, why, sizeof why), cases[i].status);
			free(t);
			free(p);
		}
		auth_free(a);
	}
}

int main(void)
{
	log_setup(2, JR_LOG_TEXT, JR_LOG_WARNING);
	NOW = 1700000000;
	key1 = at_keygen(2048);
	key2 = at_keygen(2048);
	snprintf(dir, sizeof dir, "/tmp/jr-test-auth-XXXXXX");
	if (!mkdtemp(dir))
		return 2;
	snprintf(jwks_path, sizeof jwks_path, "%s/jwks.json", dir);
	EVP_PKEY *ks[] = {key1};
	const char *kids[] = {"k1"};
	char *jw = at_jwks(1, ks, kids);
	FILE *f = fopen(jwks_path, "w");
	fputs(jw, f);
	fclose(f);
	free(jw);

	static const cu_test tests[] = {
		{"valid token", test_valid},
		{"both issuer spellings", test_both_issuers},
		{"wrong issuer: 401", test_wrong_issuer},
		{"expired, and exp/iat within the skew", test_expired_and_skew},
		{"not yet valid (iat, nbf)", test_not_yet_valid},
		{"wrong audience: 403", test_wrong_audience},
		{"wrong email: 403", test_wrong_email},
		{"email_verified false: 403", test_email_not_verified},
		{"a repeated claim or header parameter: 401", test_repeated_claim},
		{"unknown kid with a jwks_file: 401", test_unknown_kid_file},
		{"alg none and other algorithms: 401", test_alg_none},
		{"HS256 with the public key as secret: 401", test_hs256_confusion},
		{"bad signature: 401", test_bad_signature},
		{"malformed tokens: 401", test_malformed},
		{"missing header, not Bearer: 401", test_missing_or_not_bearer},
		{"claim checks alone", test_claims_only},
		{"auth_new: no section, bad jwks_file, http jwks_url", test_new_errors},
		{"unknown kid: JWKS refresh from a URL, rate-limited", test_unknown_kid_refresh},
		{"jwks_url down at start, then up", test_url_down_at_start},
		{"checks on several threads while the key set is swapped", test_concurrent_checks},
		{"cloud_run_iam: the stripped token passes there, 401 in verify", test_cloud_run_iam_stripped},
		{"cloud_run_iam: no JWKS fetched", test_cloud_run_iam_fetches_nothing},
		{"the refusal matrix in both modes", test_matrix_both_modes},
		{"exp - iat at most an hour, in both modes", test_max_lifetime},
		{"several audiences, in both modes", test_several_audiences},
		{NULL, NULL},
	};
	int rc = cu_run("auth", tests);
	EVP_PKEY_free(key1);
	EVP_PKEY_free(key2);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
