#include "httpc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "version.h"

CURL *httpc_easy(const char *url, int flags, long timeout_ms, long max_bytes, char *errbuf)
{
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, flags & HTTPC_HTTP ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "jobrelay/" JR_VERSION);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (flags & HTTPC_NOPROXY)
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	const char *ca = getenv("SSL_CERT_FILE");
	if (ca && *ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	return c;
}

static int host_is_loopback(const char *h)
{
	unsigned char a[16];
	if (strcasecmp(h, "localhost") == 0 || strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0)
		return 1;
	return strncmp(h, "127.", 4) == 0 && inet_pton(AF_INET, h, a) == 1;
}

static int host_is_link_local(const char *h)
{
	unsigned char a[4];
	return inet_pton(AF_INET, h, a) == 1 && a[0] == 169 && a[1] == 254;
}

int httpc_url_check(const char *what, const char *url, int flags, int *plain, char *err,
		    size_t errlen)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	*plain = 0;
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		snprintf(err, errlen, "%s %s: not a valid URL", what, url);
	} else {
		curl_url_get(u, CURLUPART_HOST, &host, 0); /* file:// has none */
		int near = host && (host_is_loopback(host) ||
				    ((flags & HTTPC_LINK_LOCAL) && host_is_link_local(host)));
		if (strcmp(scheme, "https") == 0) {
			rc = 0;
		} else if (strcmp(scheme, "http") == 0 && (near || (flags & HTTPC_HTTP))) {
			*plain = 1;
			rc = 0;
		} else if (strcmp(scheme, "http") == 0) {
			snprintf(err, errlen, "%s %s: http:// is only allowed to a loopback host; use https://",
				 what, url);
		} else {
			snprintf(err, errlen, "%s %s: expected an https:// URL", what, url);
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}
