/*
 * fuzz_jwt.c — libFuzzer entry point for push authentication: the
 * Authorization header and token parser (auth_check), the claim checks
 * (auth_check_claims) and the JWKS parser (jwks_from_json).
 *
 * At start it makes an RSA key, writes its JWKS (kid "fuzz") to a temp file
 * and builds a checker from it, so:
 * - an input that starts with '{' is JSON: it goes to auth_check_claims and
 *   to jwks_from_json;
 * - any other input is an Authorization value, checked as it is. The key
 *   was made in this process, so nothing in the corpus can carry a valid
 *   signature: a pass (0) would be a forgery, and aborts.
 * - When such an input has an odd length and looks like "Bearer h.p.s", it
 *   is checked a second time with s replaced by a valid signature over h.p,
 *   so mutated headers and payloads reach the claim checks through the
 *   real path (a token's trailing blank, which auth ignores, flips the
 *   parity of a seed).
 * - Every such input is also checked by a second checker in mode
 *   cloud_run_iam (no JWKS), where a pass needs the token to end in
 *   ".SIGNATURE_REMOVED_BY_GOOGLE"; the re-signed variant is checked there
 *   too with that marker in place of the signature.
 * Every verdict must be 0, 401 or 403 with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "auth.h"
#include "config.h"
#include "jwks.h"
#include "log.h"
#include "mem.h"

#define FUZZ_NOW 1700000000
#define FUZZ_MAX_INPUT 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static jr_auth *auth, *iam;
static EVP_PKEY *key;
static char jwks_path[64];

static void b64url(jr_buf *out, const unsigned char *p, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | p[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			buf_addc(out, al[(acc >> bits) & 63]);
		}
	}
	if (bits)
		buf_addc(out, al[(acc << (6 - bits)) & 63]);
}

static void bn_b64(jr_buf *out, const char *param)
{
	BIGNUM *bn = NULL;
	unsigned char b[512];
	if (!EVP_PKEY_get_bn_param(key, param, &bn))
		abort();
	b64url(out, b, (size_t)BN_bn2bin(bn, b));
	BN_free(bn);
}

static void cleanup(void)
{
	auth_free(auth);
	auth_free(iam);
	EVP_PKEY_free(key);
	unlink(jwks_path);
}

static void setup(void)
{
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	key = EVP_RSA_gen(2048);
	jr_buf j;
	buf_init(&j, 0);
	buf_adds(&j, "{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"RS256\",\"use\":\"sig\",\"kid\":\"fuzz\",\"n\":\"");
	bn_b64(&j, OSSL_PKEY_PARAM_RSA_N);
	buf_adds(&j, "\",\"e\":\"");
	bn_b64(&j, OSSL_PKEY_PARAM_RSA_E);
	buf_adds(&j, "\"}]}");
	snprintf(jwks_path, sizeof jwks_path, "/tmp/fuzz_jwt-XXXXXX");
	int fd = mkstemp(jwks_path);
	if (fd < 0 || write(fd, j.data, j.len) != (ssize_t)j.len)
		abort();
	close(fd);
	buf_free(&j);
	static char *emails[] = {"trigger@fuzz-project.iam.gserviceaccount.com"};
	jr_config c;
	config_defaults(&c);
	static char *audiences[] = {"https://jobrelay.example/"};
	c.auth_audiences = audiences;
	c.n_auth_audiences = 1;
	c.auth_allowed_emails = emails;
	c.n_auth_allowed_emails = 1;
	c.auth_jwks_file = jwks_path;
	char err[256];
	auth = auth_new(&c, err, sizeof err);
	c.auth_mode = JR_AUTH_CLOUD_RUN_IAM;
	c.auth_jwks_file = NULL;
	iam = auth_new(&c, err, sizeof err);
	if (!auth || !iam) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	atexit(cleanup);
}

static int check(const char *value, int forged_ok)
{
	char why[128] = "";
	int st = auth_check(auth, value, FUZZ_NOW, why, sizeof why);
	if ((st != 0 && st != 401 && st != 403) || !why[0])
		abort();
	if (st == 0 && !forged_ok)
		abort(); /* passed without a signature from our key */
	return st;
}

/* check_iam: value checked in mode cloud_run_iam; a pass needs the marker as the signature. */
static void check_iam(const char *value)
{
	char why[128] = "";
	int st = auth_check(iam, value, FUZZ_NOW, why, sizeof why);
	if ((st != 0 && st != 401 && st != 403) || !why[0])
		abort();
	if (st == 0) {
		static const char mark[] = "." AUTH_SIGNATURE_REMOVED;
		size_t n = strlen(value), ml = sizeof mark - 1;
		while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
			n--;
		if (n < ml || memcmp(value + n - ml, mark, ml) != 0)
			abort(); /* passed without the marker of Cloud Run IAM */
	}
}

/* resign: value "Bearer h.p.s" checked again with a valid signature over h.p, and stripped. */
static void resign(const char *value)
{
	const char *tok = strchr(value, ' ');
	if (!tok)
		return;
	tok++;
	const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (!d2)
		return;
	unsigned char sig[512];
	size_t sl = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)tok, (size_t)(d2 - tok)) != 1)
		abort();
	EVP_MD_CTX_free(md);
	jr_buf b;
	buf_init(&b, 0);
	buf_add(&b, value, (size_t)(d2 + 1 - value));
	b64url(&b, sig, sl);
	check(b.data, 1);
	buf_reset(&b);
	buf_add(&b, value, (size_t)(d2 + 1 - value));
	buf_adds(&b, AUTH_SIGNATURE_REMOVED);
	check(b.data, 0); /* the marker never passes in mode verify */
	check_iam(b.data);
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!auth)
		setup();
	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (size && data[0] == '{') {
		char why[128] = "";
		int st = auth_check_claims(auth, (const char *)data, size, FUZZ_NOW, why, sizeof why);
		if ((st != 0 && st != 401 && st != 403) || !why[0])
			abort();
		char err[256];
		jwks_free(jwks_from_json((const char *)data, size, err, sizeof err));
		return 0;
	}
	char *s = jr_strndup((const char *)data, size);
	check(s, 0);
	check_iam(s);
	if (size % 2 && strlen(s) == size)
		resign(s);
	free(s);
	return 0;
}
