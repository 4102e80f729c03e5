/*
 * lazylib.c — libmicrohttpd and libcurl, loaded on first use.
 *
 * `jobrelay pull` without $PORT and `replay` use neither library, yet
 * linking them made every process map them and their dependencies
 * (gnutls with its load-time initialisation, p11-kit, nettle, gmp, krb5,
 * ldap, ssh2, rtmp, nghttp2, ...: about 3.6 MiB of RSS and a share of the
 * start-up relocations; docs/benchmarks.md, "pull"). jobrelay is therefore
 * not linked against them: this file defines the functions src/io/httpd.c,
 * src/google/jwks.c and src/cmd/main.c call, with the prototypes of the libraries' own
 * headers, and each forwards to the real function found with dlopen/dlsym
 * the first time any function of that library is called (pthread_once).
 *
 * The function pointers take their types from the headers (typeof), so a
 * prototype that does not match the library's fails to compile. These
 * definitions are not exported (hidden visibility, no --export-dynamic), so
 * the libraries' own internal calls never reach them.
 *
 * When a library cannot be loaded, one LIBRARY-LOAD-FAILED line names it with
 * dlerror's text and every forwarder returns the library's own failure
 * value (NULL, MHD_NO, CURLE_FAILED_INIT, ...), which callers already handle.
 */
#define CURL_DISABLE_TYPECHECK /* the setopt/getinfo macros would clash with the definitions */
#include <curl/curl.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>

#include "log.h"

#ifndef JR_MHD_SONAME
#define JR_MHD_SONAME "libmicrohttpd.so.12"
#endif
#ifndef JR_CURL_SONAME
#define JR_CURL_SONAME "libcurl.so.4"
#endif

#define MHD_FUNCS(X)                                                                           \
	X(MHD_start_daemon_va) X(MHD_quiesce_daemon) X(MHD_stop_daemon)                        \
	X(MHD_get_connection_values_n) X(MHD_queue_response) X(MHD_suspend_connection)        \
	X(MHD_resume_connection) X(MHD_create_response_from_buffer) X(MHD_destroy_response)    \
	X(MHD_add_response_header) X(MHD_get_connection_info) X(MHD_get_daemon_info)          \
	X(MHD_get_version)

#define CURL_FUNCS(X)                                                                          \
	X(curl_global_init) X(curl_version) X(curl_free) X(curl_easy_init)                     \
	X(curl_easy_setopt) X(curl_easy_getinfo) X(curl_easy_perform) X(curl_easy_cleanup)     \
	X(curl_easy_strerror) X(curl_url) X(curl_url_cleanup) X(curl_url_set) X(curl_url_get)   \
	X(curl_slist_append) X(curl_slist_free_all)

#define FN_PTR(f) static __typeof__(&f) p_##f;
MHD_FUNCS(FN_PTR)
CURL_FUNCS(FN_PTR)

typedef struct lazylib {
	const char *soname;
	pthread_once_t once;
	int ok;
} lazylib;

static lazylib mhd = { JR_MHD_SONAME, PTHREAD_ONCE_INIT, 0 };
static lazylib curl = { JR_CURL_SONAME, PTHREAD_ONCE_INIT, 0 };

/* lib_open: dlopen(l->soname), or NULL with the failure logged. */
static void *lib_open(const lazylib *l)
{
	void *h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		log_kv(JR_LOG_ERROR, "LIBRARY-LOAD-FAILED", "cannot load a library", "library",
		       l->soname, "error", dlerror(), NULL);
	return h;
}

static void lib_missing(const lazylib *l, const char *fn)
{
	log_kv(JR_LOG_ERROR, "LIBRARY-LOAD-FAILED", "a library lacks a function", "library",
	       l->soname, "function", fn, NULL);
}

#define FN_LOAD(f)                                                                             \
	if (!(p_##f = (__typeof__(p_##f))dlsym(h, #f))) {                                      \
		lib_missing(L, #f);                                                            \
		return;                                                                        \
	}

static void mhd_load(void)
{
	lazylib *L = &mhd;
	void *h = lib_open(L);
	if (!h)
		return;
	MHD_FUNCS(FN_LOAD)
	L->ok = 1;
}

static void curl_load(void)
{
	lazylib *L = &curl;
	void *h = lib_open(L);
	if (!h)
		return;
	CURL_FUNCS(FN_LOAD)
	L->ok = 1;
}

static int mhd_ok(void)
{
	pthread_once(&mhd.once, mhd_load);
	return mhd.ok;
}

static int curl_ok(void)
{
	pthread_once(&curl.once, curl_load);
	return curl.ok;
}

/* ---- libmicrohttpd ---- */

struct MHD_Daemon *MHD_start_daemon(unsigned int flags, uint16_t port,
				    MHD_AcceptPolicyCallback apc, void *apc_cls,
				    MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
	if (!mhd_ok())
		return NULL;
	va_list ap;
	va_start(ap, dh_cls);
	struct MHD_Daemon *d = p_MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
	va_end(ap);
	return d;
}

MHD_socket MHD_quiesce_daemon(struct MHD_Daemon *daemon)
{
	return mhd_ok() ? p_MHD_quiesce_daemon(daemon) : MHD_INVALID_SOCKET;
}

void MHD_stop_daemon(struct MHD_Daemon *daemon)
{
	if (mhd_ok())
		p_MHD_stop_daemon(daemon);
}

int MHD_get_connection_values_n(struct MHD_Connection *connection, enum MHD_ValueKind kind,
				MHD_KeyValueIteratorN iterator, void *iterator_cls)
{
	return mhd_ok() ? p_MHD_get_connection_values_n(connection, kind, iterator, iterator_cls)
			: -1;
}

enum MHD_Result MHD_queue_response(struct MHD_Connection *connection, unsigned int status_code,
				   struct MHD_Response *response)
{
	return mhd_ok() ? p_MHD_queue_response(connection, status_code, response) : MHD_NO;
}

void MHD_suspend_connection(struct MHD_Connection *connection)
{
	if (mhd_ok())
		p_MHD_suspend_connection(connection);
}

void MHD_resume_connection(struct MHD_Connection *connection)
{
	if (mhd_ok())
		p_MHD_resume_connection(connection);
}

struct MHD_Response *MHD_create_response_from_buffer(size_t size, void *buffer,
						     enum MHD_ResponseMemoryMode mode)
{
	return mhd_ok() ? p_MHD_create_response_from_buffer(size, buffer, mode) : NULL;
}

void MHD_destroy_response(struct MHD_Response *response)
{
	if (mhd_ok())
		p_MHD_destroy_response(response);
}

enum MHD_Result MHD_add_response_header(struct MHD_Response *response, const char *header,
					const char *content)
{
	return mhd_ok() ? p_MHD_add_response_header(response, header, content) : MHD_NO;
}

/* The info types jobrelay asks for take no further arguments (none do in 0.9.x). */
const union MHD_ConnectionInfo *MHD_get_connection_info(struct MHD_Connection *connection,
							enum MHD_ConnectionInfoType info_type, ...)
{
	return mhd_ok() ? p_MHD_get_connection_info(connection, info_type) : NULL;
}

const union MHD_DaemonInfo *MHD_get_daemon_info(struct MHD_Daemon *daemon,
						enum MHD_DaemonInfoType info_type, ...)
{
	return mhd_ok() ? p_MHD_get_daemon_info(daemon, info_type) : NULL;
}

const char *MHD_get_version(void)
{
	return mhd_ok() ? p_MHD_get_version() : "(not loaded)";
}

/* ---- libcurl ---- */

CURLcode curl_global_init(long flags)
{
	return curl_ok() ? p_curl_global_init(flags) : CURLE_FAILED_INIT;
}

char *curl_version(void)
{
	static char none[] = "libcurl (not loaded)";
	return curl_ok() ? p_curl_version() : none;
}

void curl_free(void *p)
{
	if (curl_ok())
		p_curl_free(p);
}

CURL *curl_easy_init(void)
{
	return curl_ok() ? p_curl_easy_init() : NULL;
}

/* The option number says the type of its one argument (CURLOPTTYPE_*), as in curl itself. */
CURLcode curl_easy_setopt(CURL *c, CURLoption option, ...)
{
	if (!curl_ok())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, option);
	CURLcode rc;
	if (option < CURLOPTTYPE_OBJECTPOINT)
		rc = p_curl_easy_setopt(c, option, va_arg(ap, long));
	else if (option < CURLOPTTYPE_FUNCTIONPOINT)
		rc = p_curl_easy_setopt(c, option, va_arg(ap, void *));
	else if (option < CURLOPTTYPE_OFF_T)
		rc = p_curl_easy_setopt(c, option, va_arg(ap, void (*)(void)));
	else if (option < CURLOPTTYPE_BLOB)
		rc = p_curl_easy_setopt(c, option, va_arg(ap, curl_off_t));
	else
		rc = p_curl_easy_setopt(c, option, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

/* Every CURLINFO takes one pointer. */
CURLcode curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
	if (!curl_ok())
		return CURLE_FAILED_INIT;
	va_list ap;
	va_start(ap, info);
	CURLcode rc = p_curl_easy_getinfo(c, info, va_arg(ap, void *));
	va_end(ap);
	return rc;
}

CURLcode curl_easy_perform(CURL *c)
{
	return curl_ok() ? p_curl_easy_perform(c) : CURLE_FAILED_INIT;
}

void curl_easy_cleanup(CURL *c)
{
	if (curl_ok())
		p_curl_easy_cleanup(c);
}

const char *curl_easy_strerror(CURLcode code)
{
	return curl_ok() ? p_curl_easy_strerror(code) : "libcurl could not be loaded";
}

CURLU *curl_url(void)
{
	return curl_ok() ? p_curl_url() : NULL;
}

void curl_url_cleanup(CURLU *u)
{
	if (curl_ok())
		p_curl_url_cleanup(u);
}

CURLUcode curl_url_set(CURLU *u, CURLUPart what, const char *part, unsigned int flags)
{
	return curl_ok() ? p_curl_url_set(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode curl_url_get(CURLU *u, CURLUPart what, char **part, unsigned int flags)
{
	return curl_ok() ? p_curl_url_get(u, what, part, flags) : CURLUE_OUT_OF_MEMORY;
}

struct curl_slist *curl_slist_append(struct curl_slist *l, const char *s)
{
	return curl_ok() ? p_curl_slist_append(l, s) : NULL;
}

void curl_slist_free_all(struct curl_slist *l)
{
	if (curl_ok())
		p_curl_slist_free_all(l);
}
