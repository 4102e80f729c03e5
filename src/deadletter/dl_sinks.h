/*
 * sinks.h — the dead-letter sinks a command writes to, made from the config
 * in one place (pull, serve and replay all call dl_sinks_open).
 */
#ifndef JR_SINKS_H
#define JR_SINKS_H

#include <stddef.h>

#include "config.h"
#include "loop.h"
#include "deadletter.h"

/*
 * dl_sinks_open: the sinks of c's dead_letter section in *out: NULL when there
 * is none, the NDJSON file sink, the Pub/Sub topic sink (publishing on l),
 * or, with both, one composite sink (dl_sinks_all) that writes the file first,
 * then publishes. When the topic is set it is checked at start-up with
 * GetTopic (deadline: call_timeout, at most 10 s): DLTOPIC-READY, or exit 3
 * when the topic does not exist or Pub/Sub cannot be reached; a caller
 * without the right to read the topic (PERMISSION_DENIED) gets a warning
 * and goes on, as publishing needs only pubsub.topics.publish. Every
 * failure is logged here. Returns 0, 2 (the file cannot be opened, or the
 * Pub/Sub client cannot be made) or 3 (the topic is missing or unreachable).
 * Close the sink before loop_free.
 */
int dl_sinks_open(const jr_config *c, jr_loop *l, jr_sink **out);

/*
 * dl_sinks_all: one sink over members[0..n) (taken over; closed with it). A
 * write goes to each member in order and confirms only when every member
 * confirmed; the first member that fails ends it (later members are not
 * written) and the whole write fails with that member's error. Each
 * member's result is counted in jobrelay_dead_letter_writes_total under the
 * member's name. Its name is the members' joined with '+'.
 */
jr_sink *dl_sinks_all(jr_sink **members, size_t n);

#endif
