/*
 * header.h — an HTTP header as received, shared by the HTTP server
 * (httpd.h) and the decoders (decode.h) without either including the other.
 */
#ifndef JR_HEADER_H
#define JR_HEADER_H

/* An HTTP header as received; names compared case-insensitively. Strings owned by whoever made it. */
typedef struct jr_header {
	const char *name;
	const char *value;
} jr_header;

#endif
