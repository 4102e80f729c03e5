/*
 * jwks.h — the RSA signing keys of a JSON Web Key Set (RFC 7517), for auth.
 *
 * A jr_jwks holds the RS256 keys of one JWKS, by key id. It comes from a
 * file (read once), from JSON text (tests, fuzzing), or from a URL: fetched
 * once when it is made, then again by a thread of its own whenever
 * jwks_verify meets a key id it does not hold or a key set older than the
 * Cache-Control max-age of its response, at most once per
 * JWKS_REFRESH_MIN_S seconds (the fetch at start-up aside). jwks_verify never waits for the network: while a
 * refresh runs it answers from the keys it has (a stale set still serves;
 * an unknown key id is a miss until the refresh brings it). Verification
 * happens here, so the keys never leave the set: a refresh swaps the set
 * under a write lock once no verification holds it.
 *
 * Thread safety: every function but jwks_free may be called from any
 * thread, at the same time. All times are the caller's clock in seconds
 * (the one auth checks exp/iat against), passed in, so tests step time.
 */
#ifndef JR_JWKS_H
#define JR_JWKS_H

#include <stddef.h>
#include <stdint.h>

#define JWKS_MAX_BYTES (1024 * 1024)  /* a JWKS document, file or response */
#define JWKS_MAX_KEYS 64              /* entries of its "keys" array */
#define JWKS_REFRESH_MIN_S 30         /* fetches are started at most this often */
#define JWKS_FETCH_TIMEOUT_MS 5000    /* a whole fetch, connect included */
#define JWKS_DEFAULT_MAX_AGE_S 3600   /* freshness when a response has no max-age */
#define JWKS_MAX_MAX_AGE_S 86400      /* max-age is capped to this */
#define JWKS_GOOGLE_URL "https://www.googleapis.com/oauth2/v3/certs"

typedef struct jr_jwks jr_jwks;

/*
 * jwks_from_json: a fixed key set from JWKS text (len bytes, at most
 * JWKS_MAX_BYTES). Keys that are not RSA signing keys (kty, alg other than
 * RS256, use other than sig), have no kid, repeat a kid, or are shorter than
 * 2048 bits are skipped. NULL with err set when the text is not a JWKS or
 * holds no usable key. The caller frees the result with jwks_free.
 */
jr_jwks *jwks_from_json(const char *text, size_t len, char *err, size_t errlen);

/* jwks_from_file: jwks_from_json on the file at path; err names the file. */
jr_jwks *jwks_from_file(const char *path, char *err, size_t errlen);

/*
 * jwks_from_url: a key set kept fresh from url, which must be https://, or
 * http:// to a loopback host (127.0.0.0/8, [::1], localhost); anything else
 * is an error (NULL, err set) and nothing is contacted. The first fetch
 * happens here, on the caller's thread, waiting at most timeout_ms (<= 0:
 * JWKS_FETCH_TIMEOUT_MS); its failure is not an error: it is logged
 * (JWKS-FETCH-FAILED), the set starts empty, and jwks_verify starts the next
 * fetch. now_s is the caller's clock. Starts the refresh thread; jwks_free
 * stops it.
 */
jr_jwks *jwks_from_url(const char *url, int64_t now_s, int timeout_ms, char *err,
		       size_t errlen);

typedef enum jwks_result {
	JWKS_VERIFIED = 0,
	JWKS_BAD_SIGNATURE,  /* the key exists; the signature does not verify with it */
	JWKS_UNKNOWN_KID,    /* the set has no key named kid */
} jwks_result;

/*
 * jwks_verify: checks sig (slen bytes) as an RS256 signature
 * (RSASSA-PKCS1-v1_5 with SHA-256, OpenSSL's EVP_DigestVerify) over
 * msg[0..mlen) with the key named kid. For a URL set, an unknown kid or a
 * set past its max-age starts a background refresh unless a refresh started
 * less than JWKS_REFRESH_MIN_S seconds before now_s (or still runs);
 * *refresh_started (may be NULL) tells whether this call started one. A
 * stale set still verifies while it is refreshed. The last 64 signatures
 * that verified are remembered (by SHA-256 of kid, msg and sig) until the
 * set changes, so a token sent again costs a hash, not an RSA operation.
 */
jwks_result jwks_verify(jr_jwks *j, const char *kid, int64_t now_s, const void *msg, size_t mlen,
			const unsigned char *sig, size_t slen, int *refresh_started);

/* What a key set holds and has done, for /readyz, metrics and tests. */
typedef struct jwks_info {
	size_t n_keys;
	int64_t expires_s;         /* caller's clock; INT64_MAX for a file or text set */
	uint64_t fetches_started;  /* the first fetch included */
	uint64_t fetches_done;     /* finished, with success or not */
	uint64_t fetch_errors;
	uint64_t cache_hits;       /* jwks_verify answered from its cache of verified signatures */
} jwks_info;

/* jwks_get_info: a consistent snapshot of j's counters. */
void jwks_get_info(jr_jwks *j, jwks_info *out);

/*
 * jwks_wait: waits until at least n fetches have finished (fetches_done >=
 * n) or timeout_ms passed. Returns 0, or -1 on timeout. For tests, and for a
 * caller that wants the outcome of a refresh it started.
 */
int jwks_wait(jr_jwks *j, uint64_t n, int64_t timeout_ms);

/* jwks_free: stops the refresh thread (aborting a fetch in progress) and frees j; NULL is ignored. */
void jwks_free(jr_jwks *j);

/*
 * jwks_b64url_decode: base64url without padding (RFC 7515 §2) of in[0..n)
 * into out (room for cap bytes). Returns the decoded length, or -1 when a
 * character is outside the alphabet (padding included), the length is
 * impossible, the unused trailing bits are not zero, or cap is too small.
 */
long jwks_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);

#endif
