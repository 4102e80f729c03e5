/* httpd_framing_error (src/io/httpd.h): the RFC 9112 framing rules, case by case. A head is
 * written as "VERSION|Name: value|Name: value"; NULL means accepted, else the reason must
 * contain the expected text. */
#include <string.h>

#include "cu.h"
#include "httpd.h"

#define MAX_HEADERS 8

/* check: splits spec into a version and headers, and compares the verdict with want. */
static void check(const char *spec, const char *want)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%s", spec);
	jr_header h[MAX_HEADERS];
	size_t n = 0;
	char *save = NULL;
	const char *version = strtok_r(buf, "|", &save);
	for (char *f = strtok_r(NULL, "|", &save); f && n < MAX_HEADERS; f = strtok_r(NULL, "|", &save)) {
		char *colon = strchr(f, ':');
		*colon = '\0';
		h[n++] = (jr_header){f, colon[1] == ' ' ? colon + 2 : colon + 1};
	}
	const char *got = httpd_framing_error(version, h, n);
	if (!want) {
		if (got)
			fprintf(stderr, "\n%s: refused (%s), expected accepted\n", spec, got);
		CU_ASSERT_PTR_NULL(got);
	} else {
		if (!got || !strstr(got, want))
			fprintf(stderr, "\n%s: %s, expected a reason with \"%s\"\n", spec,
				got ? got : "accepted", want);
		CU_ASSERT_TRUE(got && strstr(got, want));
	}
}

static void test_accepted(void)
{
	check("HTTP/1.1|Host: x", NULL);
	check("HTTP/1.1|Host: x|Content-Length: 10", NULL);
	check("HTTP/1.1|host: x|content-length: 10|CONTENT-LENGTH: 010", NULL); /* same value */
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunked", NULL);
	check("HTTP/1.1|Host: x|Transfer-Encoding: CHUNKED", NULL);
	check("HTTP/1.1|Host: x|Transfer-Encoding: , chunked ,", NULL); /* empty elements */
	check("HTTP/1.1|Host:", NULL);                                  /* empty Host is allowed */
	check("HTTP/1.0", NULL);                                        /* no Host needed */
	check("HTTP/1.0|Content-Length: 0", NULL);
	check("HTTP/1.1|Host: x|X-Weird_Name!#$%&'*+-.^`~: v", NULL);
}

static void test_content_length(void)
{
	check("HTTP/1.1|Host: x|Content-Length: 0|Content-Length: 5", "conflicting Content-Length");
	check("HTTP/1.1|Host: x|Content-Length: 5|Content-Length: 50", "conflicting Content-Length");
	check("HTTP/1.1|Host: x|Content-Length: 5|Content-Length: 5, 5", "invalid Content-Length");
	check("HTTP/1.1|Host: x|Content-Length: -1", "invalid Content-Length");
	check("HTTP/1.1|Host: x|Content-Length: ", "invalid Content-Length");
	check("HTTP/1.1|Host: x|Content-Length: +5", "invalid Content-Length");
	/* digit strings compared whole, so no overflow makes two values equal */
	check("HTTP/1.1|Host: x|Content-Length: 18446744073709551616|Content-Length: 0",
	      "conflicting Content-Length");
}

static void test_transfer_encoding(void)
{
	check("HTTP/1.1|Host: x|Content-Length: 5|Transfer-Encoding: chunked",
	      "both Content-Length and Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunked|Content-Length: 5",
	      "both Content-Length and Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: gzip", "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunked, gzip", "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: gzip, chunked", "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunked, chunked", "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunked|Transfer-Encoding: chunked",
	      "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunked;q=1", "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: ", "unsupported Transfer-Encoding");
	check("HTTP/1.1|Host: x|Transfer-Encoding: chunk", "unsupported Transfer-Encoding");
	check("HTTP/1.0|Transfer-Encoding: chunked", "HTTP/1.0");
}

static void test_host_and_names(void)
{
	check("HTTP/1.1", "without Host");
	check("HTTP/1.1|Content-Length: 0", "without Host");
	check("HTTP/1.1|Host: x|Host: y", "more than one Host");
	check("HTTP/1.0|Host: x|Host: x", "more than one Host");
	check("HTTP/1.1|Host: x|Transfer-Encoding : chunked", "invalid header name");
	check("HTTP/1.1|Host: x|Bad\tName: v", "invalid header name");
	check("HTTP/1.1|Host: x|: v", "invalid header name");
	check("HTTP/1.1|Host: x|Na(me): v", "invalid header name");
}

static void test_null_version(void)
{
	jr_header host = {"Host", "x"};
	CU_ASSERT_PTR_NULL(httpd_framing_error(NULL, &host, 1)); /* counts as HTTP/1.1 */
	CU_ASSERT_PTR_NOT_NULL(httpd_framing_error(NULL, NULL, 0));
	jr_header no_value = {"Host", NULL};
	CU_ASSERT_PTR_NULL(httpd_framing_error("HTTP/1.1", &no_value, 1));
}

int main(void)
{
	static const cu_test tests[] = {
		{"accepted", test_accepted},
		{"Content-Length", test_content_length},
		{"Transfer-Encoding", test_transfer_encoding},
		{"Host and header names", test_host_and_names},
		{"NULL version and values", test_null_version},
		{NULL, NULL},
	};
	return cu_run("httpd_framing", tests);
}
