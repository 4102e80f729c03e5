#include "httpc.h"

#include <stdlib.h>

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
