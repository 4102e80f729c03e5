/*
 * auth_bench.c — what one auth_check costs, on one thread: a valid token
 * seen for the first time (RSA verification), the same token again (the
 * cache of verified signatures), a bad signature, an unknown kid, no header.
 * Keys and tokens are made here (tests/unit/authtest.h); the JWKS is a file
 * in /tmp. Built with the project (bench/CMakeLists.txt):
 *
 *   cmake -S . -B build && cmake --build build -j && build/bench/auth_bench 50000
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>
#include "auth.h"
#include "authtest.h"
#include "config.h"
#include "log.h"

static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}

static void run(jr_auth *a, const char *name, const char *h, int n, int64_t t0)
{
	char why[128]; int st = 0;
	double s = now();
	for (int i = 0; i < n; i++) st = auth_check(a, h, t0, why, sizeof why);
	double e = now() - s;
	printf("%-16s status %3d  %8.1f us/check  %8.0f checks/s\n", name, st, e / n * 1e6, n / e);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	log_setup(2, JR_LOG_TEXT, JR_LOG_ERROR);
	EVP_PKEY *k = at_keygen(2048), *k2 = at_keygen(2048);
	EVP_PKEY *ks[] = {k}; const char *kids[] = {"k1"};
	char *jw = at_jwks(1, ks, kids);
	char path[] = "/tmp/auth_bench-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	FILE *f = fopen(path, "w"); fputs(jw, f); fclose(f);
	jr_config c; config_defaults(&c);
	static char *em[] = {"trigger@acme-prod.iam.gserviceaccount.com"};
	static char *au[] = {"https://jobrelay-abc-ew.a.run.app/"}; c.auth_audiences = au; c.n_auth_audiences = 1; c.auth_allowed_emails = em; c.n_auth_allowed_emails = 1; c.auth_jwks_file = path;
	char err[256]; jr_auth *a = auth_new(&c, err, sizeof err);
	int64_t t0 = 1700000000;
	char *p = jr_asprintf("{\"aud\":\"https://jobrelay-abc-ew.a.run.app/\",\"azp\":\"1\",\"email\":\"trigger@acme-prod.iam.gserviceaccount.com\",\"email_verified\":true,\"exp\":%lld,\"iat\":%lld,\"iss\":\"https://accounts.google.com\",\"sub\":\"1\"}", (long long)t0+3600, (long long)t0);
	char *good = at_token_rs256(k, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", p);
	char *bad = at_token_rs256(k2, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", p);
	char *unk = at_token_rs256(k2, "{\"alg\":\"RS256\",\"kid\":\"k2\",\"typ\":\"JWT\"}", p);
	char *hg = jr_asprintf("Bearer %s", good), *hb = jr_asprintf("Bearer %s", bad), *hu = jr_asprintf("Bearer %s", unk);
	printf("token %zu bytes, RSA 2048\n", strlen(good));
	/* 65 distinct valid tokens in turn: more than the 64 cached signatures, so every check verifies */
	enum { NT = 65 };
	char *hs[NT];
	for (int i = 0; i < NT; i++) {
		char *pi = jr_asprintf("{\"aud\":\"https://jobrelay-abc-ew.a.run.app/\",\"azp\":\"%d\",\"email\":\"trigger@acme-prod.iam.gserviceaccount.com\",\"email_verified\":true,\"exp\":%lld,\"iat\":%lld,\"iss\":\"https://accounts.google.com\",\"sub\":\"1\"}", i, (long long)t0+3600, (long long)t0);
		char *ti = at_token_rs256(k, "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", pi);
		hs[i] = jr_asprintf("Bearer %s", ti);
		free(pi); free(ti);
	}
	{
		char why[128]; int st = 0;
		double s = now();
		for (int i = 0; i < n; i++) st = auth_check(a, hs[i % NT], t0, why, sizeof why);
		double e = now() - s;
		printf("%-16s status %3d  %8.1f us/check  %8.0f checks/s\n", "valid, uncached", st, e / n * 1e6, n / e);
	}
	run(a, "valid, repeated", hg, n, t0);
	run(a, "bad signature", hb, n, t0);
	run(a, "unknown kid", hu, n, t0);
	run(a, "no header", NULL, n, t0);
	auth_free(a);
	unlink(path);
	return 0;
}
