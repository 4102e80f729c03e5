/*
 * dltopic.h — the Pub/Sub topic dead-letter sink (docs/dead-letter.md).
 *
 * Each record is published as one message with
 * google.pubsub.v1.Publisher/Publish over gRPC core, asynchronously on the
 * loop's completion queue; write() returns 1 and the callback runs once, when
 * Publish returned: ok only with a message id back. At most
 * DLTOPIC_MAX_IN_FLIGHT publishes are in flight; later ones wait in a FIFO
 * (already encoded), which the dispatcher's own bounds keep short.
 *
 * The message: data = the original Pub/Sub message data when the record has
 * a message (the event came from pull or push, or pull's undecodable
 * message), else the structured CloudEvent JSON (HTTP and file events), else
 * the raw undecodable input. Attributes: see dl_topic_attributes.
 *
 * Endpoint: as the subscriber's (grpcx_pubsub_channel): PUBSUB_EMULATOR_HOST
 * in plaintext without credentials, else pubsub.googleapis.com:443 with TLS
 * and Application Default Credentials (gcreds.h). Every call carries
 * x-goog-request-params: topic=<url-encoded topic>.
 */
#ifndef JR_DLTOPIC_H
#define JR_DLTOPIC_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "mem.h"
#include "deadletter.h"

/* Pub/Sub's limits (cloud.google.com/pubsub/quotas), and ours. */
#define DLTOPIC_MAX_ATTRS 100          /* attributes a message */
#define DLTOPIC_KEY_MAX 256            /* bytes of an attribute key */
#define DLTOPIC_VALUE_MAX 1024         /* bytes of an attribute value */
#define DLTOPIC_REQUEST_MAX 10000000   /* bytes of a PublishRequest (10 MB) */
#define DLTOPIC_MAX_IN_FLIGHT 64       /* publishes in flight at once */

/* The attributes jobrelay adds start with this prefix. */
#define DLTOPIC_PREFIX "jobrelay-"
/* The content-type attribute of a message whose data is a structured CloudEvent. */
#define DLTOPIC_STRUCTURED "application/cloudevents+json; charset=UTF-8"

typedef struct dl_topic_attrs {
	jr_kv kv[DLTOPIC_MAX_ATTRS];
	size_t n;
	size_t dropped; /* original attributes left out (invalid, reserved, or past the limit) */
} dl_topic_attrs;

/*
 * dl_topic_attributes: the attributes of r's message (pure; strings point into
 * r or are made in a):
 *   - jobrelay-error-class, -error-code, -error-message (cut to 1024 bytes at
 *     a UTF-8 boundary), -attempts, -origin, -failed-at (RFC 3339, ms, UTC);
 *     -route, -event-id, -event-source when known (omitted otherwise);
 *   - content-type = DLTOPIC_STRUCTURED when the data is the structured
 *     CloudEvent (an event with no Pub/Sub message), so that the message
 *     decodes to the same event again (CloudEvents Pub/Sub binding);
 *   - the original message's attributes (r->ev->message, else r->msg),
 *     except: keys starting with "jobrelay-" (ours replace them), and,
 *     counted in dropped, keys that are empty, over 256 bytes, not UTF-8, or
 *     start with "goog" (reserved by Pub/Sub);
 *   - every value is valid UTF-8 (a byte that is not becomes '?') of at most
 *     1024 bytes (cut at a UTF-8 boundary);
 *   - at most 100 in all: ours always; originals in their order while they
 *     fit, and when some do not, jobrelay-attributes-dropped = the number
 *     left out (of every kind above) takes the last place.
 */
void dl_topic_attributes(const jr_dlrecord *r, jr_arena *a, dl_topic_attrs *out);

/* dl_topic_utf8: s[0..n) as valid UTF-8 ('?' for each bad byte) of at most max bytes, cut at a character boundary, NUL-terminated, in a. */
char *dl_topic_utf8(jr_arena *a, const char *s, size_t n, size_t max);

/*
 * dl_topic_data: the message data of r (above): points *data into r when it
 * is there already, else writes it to scratch (reset first). 0, or -1 past
 * scratch's max.
 */
int dl_topic_data(const jr_dlrecord *r, jr_buf *scratch, const char **data, size_t *len);

/*
 * dl_topic_open: a sink publishing to topic (projects/P/topics/T, copied) on
 * loop l, each Publish with a deadline of timeout_ms. Nothing is sent yet.
 * NULL with err filled when the endpoint or credentials are unusable.
 * close() cancels what is in flight and drives the loop until every callback
 * has run (ok = 0); call it before loop_free.
 */
jr_sink *dl_topic_open(jr_loop *l, const char *topic, int64_t timeout_ms, char *err,
		      size_t errlen);

/* dl_topic_target: "host:port (plaintext|tls)" of a sink from dl_topic_open, for logs. */
const char *dl_topic_target(const jr_sink *s);

/*
 * dl_topic_check: GetTopic on the sink's topic with a deadline of timeout_ms,
 * driving the loop until it answers. Returns the gRPC status code (0: the
 * topic exists) with the status text in err.
 */
int dl_topic_check(jr_sink *s, int64_t timeout_ms, char *err, size_t errlen);

#endif
