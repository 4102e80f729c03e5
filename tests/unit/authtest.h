/*
 * authtest.h — what test_auth.c and test_jwks.c share: RSA keys made with
 * OpenSSL in the test, their JWKs, tokens signed in the test (RS256, and
 * HS256 for the algorithm-confusion case), and a small HTTP server
 * (libmicrohttpd on 127.0.0.1:0) that serves a JWKS the test sets and
 * counts the requests it answered. Static inline functions: each test file gets
 * its own copy.
 */
#ifndef JR_TEST_AUTHTEST_H
#define JR_TEST_AUTHTEST_H

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mem.h"

/* at_b64url: base64url without padding of p[0..n), appended to out. */
static inline void at_b64url(jr_buf *out, const unsigned char *p, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		char c[4] = {al[v >> 18], al[(v >> 12) & 63], al[(v >> 6) & 63], al[v & 63]};
		buf_add(out, c, 4);
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		char c[2] = {al[v >> 18], al[(v >> 12) & 63]};
		buf_add(out, c, 2);
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		char c[3] = {al[v >> 18], al[(v >> 12) & 63], al[(v >> 6) & 63]};
		buf_add(out, c, 3);
	}
}

static inline void at_b64url_str(jr_buf *out, const char *s)
{
	at_b64url(out, (const unsigned char *)s, strlen(s));
}

/* at_keygen: a fresh RSA key of bits bits. */
static inline EVP_PKEY *at_keygen(unsigned bits)
{
	EVP_PKEY *k = EVP_RSA_gen(bits);
	if (!k)
		abort();
	return k;
}

static inline void at_bn_b64(jr_buf *out, EVP_PKEY *k, const char *param)
{
	BIGNUM *bn = NULL;
	if (!EVP_PKEY_get_bn_param(k, param, &bn))
		abort();
	unsigned char b[1024];
	int n = BN_bn2bin(bn, b);
	at_b64url(out, b, (size_t)n);
	BN_free(bn);
}

/* at_jwk: the public JWK of k with kid and extra members (e.g. "\"use\":\"sig\","); caller frees. */
static inline char *at_jwk(EVP_PKEY *k, const char *kid, const char *extra)
{
	jr_buf b;
	buf_init(&b, 0);
	buf_printf(&b, "{%s\"kty\":\"RSA\",\"alg\":\"RS256\",\"kid\":\"%s\",\"n\":\"", extra ? extra : "",
		   kid);
	at_bn_b64(&b, k, OSSL_PKEY_PARAM_RSA_N);
	buf_adds(&b, "\",\"e\":\"");
	at_bn_b64(&b, k, OSSL_PKEY_PARAM_RSA_E);
	buf_adds(&b, "\"}");
	return buf_take(&b);
}

/* at_jwks: {"keys":[...]} of n keys named kids[i]; caller frees. */
static inline char *at_jwks(size_t n, EVP_PKEY **keys, const char **kids)
{
	jr_buf b;
	buf_init(&b, 0);
	buf_adds(&b, "{\"keys\":[");
	for (size_t i = 0; i < n; i++) {
		char *j = at_jwk(keys[i], kids[i], NULL);
		buf_printf(&b, "%s%s", i ? "," : "", j);
		free(j);
	}
	buf_adds(&b, "]}");
	return buf_take(&b);
}

/* at_token_rs256: header.payload.signature with k (RS256, the JSON texts as given); caller frees. */
static inline char *at_token_rs256(EVP_PKEY *k, const char *header, const char *payload)
{
	jr_buf b;
	buf_init(&b, 0);
	at_b64url_str(&b, header);
	buf_addc(&b, '.');
	at_b64url_str(&b, payload);
	unsigned char sig[1024];
	size_t sl = sizeof sig;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL) != 1 ||
	    EVP_DigestSign(md, sig, &sl, (const unsigned char *)b.data, b.len) != 1)
		abort();
	EVP_MD_CTX_free(md);
	buf_addc(&b, '.');
	at_b64url(&b, sig, sl);
	return buf_take(&b);
}

/* at_token_hs256: the same with HMAC-SHA256 under secret; caller frees. */
static inline char *at_token_hs256(const void *secret, size_t sn, const char *header, const char *payload)
{
	jr_buf b;
	buf_init(&b, 0);
	at_b64url_str(&b, header);
	buf_addc(&b, '.');
	at_b64url_str(&b, payload);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned ml = 0;
	if (!HMAC(EVP_sha256(), secret, (int)sn, (const unsigned char *)b.data, b.len, mac, &ml))
		abort();
	buf_addc(&b, '.');
	at_b64url(&b, mac, ml);
	return buf_take(&b);
}

/* at_public_pem: the SubjectPublicKeyInfo PEM of k (the classic HS256 "secret"); caller frees. */
static inline char *at_public_pem(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (!PEM_write_bio_PUBKEY(bio, k))
		abort();
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	char *s = jr_strndup(p, (size_t)n);
	BIO_free(bio);
	return s;
}

/* ---- a JWKS server on loopback ---- */

typedef struct at_server {
	struct MHD_Daemon *d;
	int port;
	char url[64];
	pthread_mutex_t mu;
	char *body;               /* what GET answers */
	size_t body_len;
	unsigned status;          /* default 200 */
	char cache_control[128];  /* "" : no header */
	char age[16];             /* "" : no header */
	char location[128];       /* "" : no header */
	int requests;
} at_server;

static inline enum MHD_Result at_handler(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	at_server *s = cls;
	pthread_mutex_lock(&s->mu);
	s->requests++;
	struct MHD_Response *r = MHD_create_response_from_buffer(s->body_len, s->body,
								 MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (s->cache_control[0])
		MHD_add_response_header(r, "Cache-Control", s->cache_control);
	if (s->age[0])
		MHD_add_response_header(r, "Age", s->age);
	if (s->location[0])
		MHD_add_response_header(r, "Location", s->location);
	unsigned status = s->status;
	pthread_mutex_unlock(&s->mu);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* at_server_set: what the server answers from now on (body copied). */
static inline void at_server_set(at_server *s, unsigned status, const char *body, size_t len,
			  const char *cache_control)
{
	pthread_mutex_lock(&s->mu);
	free(s->body);
	s->body = jr_malloc(len + 1);
	memcpy(s->body, body, len);
	s->body_len = len;
	s->status = status;
	snprintf(s->cache_control, sizeof s->cache_control, "%s", cache_control ? cache_control : "");
	pthread_mutex_unlock(&s->mu);
}

/* at_server_headers: the Age and Location headers answered from now on ("" : none). */
static inline void at_server_headers(at_server *s, const char *age, const char *location)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->age, sizeof s->age, "%s", age);
	snprintf(s->location, sizeof s->location, "%s", location);
	pthread_mutex_unlock(&s->mu);
}

static inline int at_server_requests(at_server *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* at_server_start: listening on 127.0.0.1 (an ephemeral port) when it returns. */
static inline void at_server_start(at_server *s)
{
	memset(s, 0, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	s->status = 200;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, at_handler, s,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_END);
	if (!s->d)
		abort();
	s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/oauth2/v3/certs", s->port);
}

static inline void at_server_stop(at_server *s)
{
	MHD_stop_daemon(s->d);
	free(s->body);
	pthread_mutex_destroy(&s->mu);
}

/* at_silent_listener: a loopback socket that accepts connections (backlog) and never answers; its port in *port. */
static inline int at_silent_listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sin;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl))
		abort();
	*port = ntohs(sin.sin_port);
	return fd;
}

#endif
