/*
 * auth.c — verifying Google OIDC tokens on push requests.
 *
 * The order of the checks makes the rules of docs/auth.md safe: nothing in the
 * payload is believed before the signature over header.payload verified
 * with a key from the JWKS, and the header is only read for what picks
 * that key (alg must be RS256, kid names the key). In mode cloud_run_iam
 * Cloud Run's IAM check verified the signature and replaced it with
 * AUTH_SIGNATURE_REMOVED: that marker, and nothing else, stands in for the
 * verification, and every other check is the same. Everything that makes a
 * token not a valid Google token (shape, encoding, algorithm, key,
 * signature, issuer, times) is 401; a valid token that is not meant for us
 * (audience) or not from an allowed, verified account is 403.
 *
 * Bounds: the token is at most AUTH_MAX_TOKEN bytes, so its decoded header,
 * payload and signature fit fixed buffers on the stack; the header and the
 * payload are parsed with yajl (jsonparse) into one arena per check, at a
 * small nesting depth. A claim that appears twice is refused rather than
 * read from one of its copies.
 */
#include "auth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"
#include "jsonparse.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"

#define AUTH_MAX_HEADER 1024     /* decoded JOSE header */
#define AUTH_MAX_PAYLOAD (AUTH_MAX_TOKEN / 4 * 3)
#define AUTH_MAX_SIG 1024        /* 8192-bit RSA */
#define AUTH_MAX_KID 256
#define AUTH_HEADER_DEPTH 4
#define AUTH_PAYLOAD_DEPTH 8

struct jr_auth {
	jr_auth_mode mode;
	char **audiences;
	size_t n_audiences;
	char **emails;
	size_t n_emails;
	jr_jwks *jwks;            /* NULL in mode cloud_run_iam */
	jr_metric *checks;
};

jr_auth *auth_new(const jr_config *c, char *err, size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	if (!c->n_auth_audiences)
		return NULL;
	jr_jwks *j = NULL;
	if (c->auth_mode == JR_AUTH_CLOUD_RUN_IAM) {
		/* Cloud Run sets K_SERVICE in a service's containers */
		const char *ks = getenv("K_SERVICE");
		log_kv(ks && *ks ? JR_LOG_INFO : JR_LOG_WARNING, "AUTH-MODE",
		       ks && *ks ? "push tokens: claims checked, signature checked by Cloud Run IAM" :
				   "auth.mode cloud_run_iam outside Cloud Run (no K_SERVICE): token "
				   "signatures are not checked by anyone",
		       "mode", "cloud_run_iam", NULL);
	} else {
		if (c->auth_jwks_file)
			j = jwks_from_file(c->auth_jwks_file, err, errlen);
		else
			j = jwks_from_url(c->auth_jwks_url ? c->auth_jwks_url : JWKS_GOOGLE_URL,
					  (int64_t)time(NULL), 0, err, errlen);
		if (!j)
			return NULL;
	}
	jr_auth *a = jr_calloc(1, sizeof *a);
	a->mode = c->auth_mode;
	a->jwks = j;
	a->n_audiences = c->n_auth_audiences;
	a->audiences = jr_calloc(a->n_audiences, sizeof *a->audiences);
	for (size_t i = 0; i < a->n_audiences; i++)
		a->audiences[i] = jr_strdup(c->auth_audiences[i]);
	a->n_emails = c->n_auth_allowed_emails;
	a->emails = jr_calloc(a->n_emails ? a->n_emails : 1, sizeof *a->emails);
	for (size_t i = 0; i < a->n_emails; i++)
		a->emails[i] = jr_strdup(c->auth_allowed_emails[i]);
	a->checks = metric_register("jobrelay_auth_checks_total", JR_METRIC_COUNTER,
				    "Push authentication verdicts by result (ok, 401, 403).", NULL, 0);
	return a;
}

void auth_free(jr_auth *a)
{
	if (!a)
		return;
	jwks_free(a->jwks);
	for (size_t i = 0; i < a->n_emails; i++)
		free(a->emails[i]);
	free(a->emails);
	for (size_t i = 0; i < a->n_audiences; i++)
		free(a->audiences[i]);
	free(a->audiences);
	free(a);
}

int auth_ready(jr_auth *a)
{
	if (!a->jwks)
		return 1;
	jwks_info in;
	jwks_get_info(a->jwks, &in);
	return in.n_keys > 0;
}

jr_jwks *auth_jwks(jr_auth *a)
{
	return a->jwks;
}

/* ---- claims ---- */

static int str_is(const jr_json *v, const char *lit)
{
	size_t n = strlen(lit);
	return v && v->type == JR_JSON_STRING && v->n == n && memcmp(v->s, lit, n) == 0;
}

/* member1: the member key of obj, or NULL; *dup is set when it occurs more than once. */
static const jr_json *member1(const jr_json *obj, const char *key, int *dup)
{
	const jr_json *v = NULL;
	size_t kl = strlen(key);
	for (size_t i = 0; i < obj->n; i++)
		if (obj->key_lens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) {
			if (v)
				*dup = 1;
			else
				v = obj->items[i];
		}
	return v;
}

/* numeric_date: a JSON number (RFC 7519 NumericDate) into *out; -1 when v is not one. */
static int numeric_date(const jr_json *v, double *out)
{
	char t[40];
	if (!v || v->type != JR_JSON_NUMBER || v->n == 0 || v->n >= sizeof t)
		return -1;
	memcpy(t, v->s, v->n);
	t[v->n] = '\0';
	char *end;
	double d = strtod(t, &end);
	if (*end || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

/* audience_ok: the aud claim (a string, or an array of them) holds one of our audiences. */
static int audience_ok(const jr_auth *a, const jr_json *aud)
{
	if (!aud || (aud->type != JR_JSON_STRING && aud->type != JR_JSON_ARRAY))
		return 0;
	for (size_t k = 0; k < a->n_audiences; k++) {
		if (aud->type == JR_JSON_STRING && str_is(aud, a->audiences[k]))
			return 1;
		for (size_t i = 0; aud->type == JR_JSON_ARRAY && i < aud->n; i++)
			if (str_is(aud->items[i], a->audiences[k]))
				return 1;
	}
	return 0;
}

/* email_ok: the email claim is one of the allowed emails, ASCII case aside. */
static int email_ok(const jr_auth *a, const jr_json *email)
{
	if (!email || email->type != JR_JSON_STRING || email->n == 0)
		return 0;
	for (size_t i = 0; i < a->n_emails; i++)
		if (strlen(a->emails[i]) == email->n &&
		    strncasecmp(a->emails[i], email->s, email->n) == 0 &&
		    !memchr(email->s, '\0', email->n))
			return 1;
	return 0;
}

typedef struct verdict {
	int status;
	const char *why;
} verdict;

static verdict fail(int status, const char *why)
{
	return (verdict){status, why};
}

/*
 * times_check: exp, iat and nbf against now_s with AUTH_SKEW_S of skew, and
 * exp at most AUTH_MAX_LIFETIME_S after iat. With iat <= now + skew that
 * also bounds exp - now by AUTH_MAX_LIFETIME_S + AUTH_SKEW_S.
 */
static verdict times_check(const jr_json *exp, const jr_json *iat, const jr_json *nbf,
			   int64_t now_s)
{
	double e, i, b, now = (double)now_s;
	if (numeric_date(exp, &e))
		return fail(401, "token has no numeric exp");
	if (numeric_date(iat, &i))
		return fail(401, "token has no numeric iat");
	if (nbf && numeric_date(nbf, &b))
		return fail(401, "token nbf is not numeric");
	if (now >= e + AUTH_SKEW_S)
		return fail(401, "token expired");
	if (i > now + AUTH_SKEW_S)
		return fail(401, "token issued in the future");
	if (nbf && b > now + AUTH_SKEW_S)
		return fail(401, "token not yet valid (nbf)");
	if (e - i > AUTH_MAX_LIFETIME_S)
		return fail(401, "token lifetime over one hour");
	return fail(0, "ok");
}

static verdict claims_check(const jr_auth *a, jr_arena *ar, const char *json, size_t len,
			    int64_t now_s)
{
	char perr[96];
	const jr_json *p = jsonparse(ar, json, len, AUTH_PAYLOAD_DEPTH, perr, sizeof perr);
	if (!p || p->type != JR_JSON_OBJECT)
		return fail(401, "token payload is not a JSON object");
	int dup = 0;
	const jr_json *iss = member1(p, "iss", &dup), *aud = member1(p, "aud", &dup),
		      *exp = member1(p, "exp", &dup), *iat = member1(p, "iat", &dup),
		      *nbf = member1(p, "nbf", &dup), *email = member1(p, "email", &dup),
		      *verified = member1(p, "email_verified", &dup);
	if (dup)
		return fail(401, "token repeats a claim");
	if (!str_is(iss, "https://accounts.google.com") && !str_is(iss, "accounts.google.com"))
		return fail(401, "issuer is not Google");
	verdict t = times_check(exp, iat, nbf, now_s);
	if (t.status)
		return t;
	if (!audience_ok(a, aud))
		return fail(403, "audience does not match");
	if (!email_ok(a, email))
		return fail(403, "email not allowed");
	if (!(verified && (verified->type == JR_JSON_TRUE || str_is(verified, "true"))))
		return fail(403, "email not verified");
	return fail(0, "ok");
}

static int finish(const jr_auth *a, verdict v, char *why, size_t whylen)
{
	if (whylen)
		snprintf(why, whylen, "%s", v.why);
	if (a->checks)
		metric_add(a->checks,
			   v.status == 0 ? "result=\"ok\"" :
			   v.status == 401 ? "result=\"401\"" : "result=\"403\"", 1);
	return v.status;
}

int auth_check_claims(const jr_auth *a, const char *json, size_t len, int64_t now_s,
		      char *why, size_t whylen)
{
	jr_arena ar;
	arena_init(&ar);
	verdict v = claims_check(a, &ar, json, len, now_s);
	arena_free(&ar);
	if (whylen)
		snprintf(why, whylen, "%s", v.why);
	return v.status;
}

/* ---- the token ---- */

/* bearer: the token of an Authorization value, trimmed; a failing verdict when there is none. */
static verdict bearer(const char *h, const char **tok, size_t *len)
{
	if (!h)
		return fail(401, "no Authorization header");
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
		return fail(401, "Authorization is not a Bearer token");
	h += 6;
	while (*h == ' ' || *h == '\t')
		h++;
	size_t n = strlen(h);
	while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0)
		return fail(401, "empty Bearer token");
	if (n > AUTH_MAX_TOKEN)
		return fail(401, "token longer than 8192 bytes");
	*tok = h;
	*len = n;
	return fail(0, "ok");
}

/* header_kid: the key id header h (decoded JSON) names, alg checked, into kid; -1 with v set. */
static int header_kid(jr_arena *ar, const unsigned char *h, size_t n, char *kid, verdict *v)
{
	char perr[96];
	const jr_json *hd = jsonparse(ar, (const char *)h, n, AUTH_HEADER_DEPTH, perr, sizeof perr);
	if (!hd || hd->type != JR_JSON_OBJECT) {
		*v = fail(401, "token header is not a JSON object");
		return -1;
	}
	int dup = 0;
	const jr_json *alg = member1(hd, "alg", &dup), *k = member1(hd, "kid", &dup);
	if (dup) {
		*v = fail(401, "token header repeats a parameter");
		return -1;
	}
	if (!str_is(alg, "RS256")) {
		*v = fail(401, "token algorithm is not RS256");
		return -1;
	}
	if (json_get(hd, "crit")) {
		*v = fail(401, "token header has crit parameters");
		return -1;
	}
	if (!k || k->type != JR_JSON_STRING || k->n == 0 || k->n > AUTH_MAX_KID ||
	    memchr(k->s, '\0', k->n)) {
		*v = fail(401, "token header has no usable kid");
		return -1;
	}
	memcpy(kid, k->s, k->n);
	kid[k->n] = '\0';
	return 0;
}

static verdict token_check(jr_auth *a, jr_arena *ar, const char *tok, size_t n, int64_t now_s)
{
	const char *d1 = memchr(tok, '.', n);
	const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', (size_t)(tok + n - d2 - 1)) || d1 == tok)
		return fail(401, "token is not three base64url parts");
	unsigned char h[AUTH_MAX_HEADER], sig[AUTH_MAX_SIG];
	char kid[AUTH_MAX_KID + 1];
	verdict v;
	long hn = jwks_b64url_decode(tok, (size_t)(d1 - tok), h, sizeof h);
	if (hn < 0)
		return fail(401, "token header is not base64url (or longer than 1 KiB)");
	if (header_kid(ar, h, (size_t)hn, kid, &v))
		return v;
	const char *s = d2 + 1;
	size_t sl = (size_t)(tok + n - s);
	int removed = sl == strlen(AUTH_SIGNATURE_REMOVED) &&
		      memcmp(s, AUTH_SIGNATURE_REMOVED, sl) == 0;
	if (a->mode == JR_AUTH_CLOUD_RUN_IAM) {
		if (!removed)
			return fail(401, "token signature was not removed by Cloud Run IAM");
	} else {
		if (removed)
			return fail(401, "token signature removed by Cloud Run IAM (see auth.mode)");
		long sn = jwks_b64url_decode(s, sl, sig, sizeof sig);
		int refresh = 0;
		jwks_result r = jwks_verify(a->jwks, kid, now_s, tok, (size_t)(d2 - tok), sig,
					    sn > 0 ? (size_t)sn : 0, &refresh);
		if (r == JWKS_UNKNOWN_KID)
			return fail(401, refresh ? "unknown key id (JWKS refresh started)" :
						   "unknown key id");
		if (r != JWKS_VERIFIED)
			return fail(401, "bad signature");
	}
	unsigned char p[AUTH_MAX_PAYLOAD];
	long pn = jwks_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), p, sizeof p);
	if (pn < 0)
		return fail(401, "token payload is not base64url");
	return claims_check(a, ar, (const char *)p, (size_t)pn, now_s);
}

int auth_check(jr_auth *a, const char *authorization, int64_t now_s, char *why, size_t whylen)
{
	const char *tok = NULL;
	size_t n = 0;
	verdict v = bearer(authorization, &tok, &n);
	if (v.status == 0) {
		jr_arena ar;
		arena_init(&ar);
		v = token_check(a, &ar, tok, n, now_s);
		arena_free(&ar);
	}
	return finish(a, v, why, whylen);
}
