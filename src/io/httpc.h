/*
 * httpc.h — the settings every libcurl request of jobrelay shares (the
 * JWKS of push authentication, access tokens for Google's APIs).
 */
#ifndef JR_HTTPC_H
#define JR_HTTPC_H

#include <curl/curl.h>

#define HTTPC_HTTP 1       /* http:// allowed as well as https:// (to any host) */
#define HTTPC_NOPROXY 2    /* never through a proxy (the metadata server) */
#define HTTPC_LINK_LOCAL 4 /* httpc_url_check: http:// also to a link-local IPv4 host */

/*
 * httpc_url_check: url may be fetched: https://, or http:// to a loopback
 * host, to a link-local one with HTTPC_LINK_LOCAL (an instance metadata
 * service), or to any with HTTPC_HTTP. *plain gets 1 for an http:// URL so
 * let through (it must not go through a proxy unless HTTPC_HTTP allowed it).
 * 0, or -1 with err naming what ("jwks_url") and url.
 */
int httpc_url_check(const char *what, const char *url, int flags, int *plain, char *err,
		    size_t errlen);

/*
 * httpc_easy: a new easy handle for url: no redirects, no signals,
 * timeout_ms for connecting and for the whole transfer, a body of at most
 * max_bytes, jobrelay's user agent, error text into errbuf
 * (CURL_ERROR_SIZE bytes, owned by the caller), https only unless flags has
 * HTTPC_HTTP, and the CA bundle named by $SSL_CERT_FILE when it is set
 * (OpenSSL's variable; libcurl on its own reads only its built-in path).
 * NULL when libcurl cannot make one. The caller adds the rest and frees it
 * with curl_easy_cleanup.
 */
CURL *httpc_easy(const char *url, int flags, long timeout_ms, long max_bytes, char *errbuf);

#endif
