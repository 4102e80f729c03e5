/*
 * repeat.h — may this delivery be a repeat whose job already started?
 * (docs/operations.md, "Exactly-once job starts").
 *
 * Every execution jobrelay starts carries JOBRELAY_KEY (source, id, route)
 * in its overrides. A delivery that may repeat one already dispatched — by
 * an instance that crashed before its ack, by another instance after a lost
 * lease, or by this one after a RunJob that ended without an answer — is
 * "suspected": the dispatcher then looks for an execution with its key
 * (runner.find) before RunJob. This decides which deliveries are suspected,
 * and how far back the lookup goes.
 *
 * Modes (repeat_check.mode):
 *   never          no delivery is suspected (no lookup, ever);
 *   on_redelivery  (default) a delivery that came in a Pub/Sub message is
 *                  suspected when its delivery_attempt > 1 (Pub/Sub reports
 *                  it when the subscription has a dead-letter policy; less
 *                  the deliveries this process held or shed, which started
 *                  nothing), or — only when no attempt is reported, the age
 *                  being a proxy for it — its publish time is min_age or
 *                  more before now, or this
 *                  process saw an earlier RunJob of the key end without an
 *                  answer that a lookup could settle (seen). Events with no
 *                  Pub/Sub message (binary CloudEvents over HTTP, replayed
 *                  files) are never suspected in this mode;
 *   always         every delivery is suspected.
 *
 * Why min_age defaults to 10 s: Pub/Sub hands a fresh message to a
 * subscriber within milliseconds of its publication (seconds under a
 * backlog), while a redelivery after a lost lease comes at least one ack
 * deadline (10 s at the least Pub/Sub allows) after the first delivery. So
 * a message older than 10 s is either a backlog or a possible repeat: both
 * are worth one lookup. A shorter min_age turns backlogs into lookups; a
 * longer one misses redeliveries of short-deadline subscriptions.
 *
 * Pure: the caller passes the wall-clock time (Unix ms; publish times are
 * wall-clock times) and what it knows about the delivery.
 */
#ifndef JR_REPEAT_H
#define JR_REPEAT_H

#include <stdint.h>

#define REPEAT_MIN_AGE_MS 10000     /* repeat_check.min_age default */
#define REPEAT_LOOKBACK_MS 3600000  /* repeat_check.lookback default: no publish time */
#define REPEAT_SKEW_MS 60000        /* the lookup starts this long before the publish time */

typedef enum jr_repeat_mode {
	JR_REPEAT_NEVER,
	JR_REPEAT_ON_REDELIVERY,
	JR_REPEAT_ALWAYS,
} jr_repeat_mode;

/* The setting (config.h: cfg->repeat). */
typedef struct jr_repeat_conf {
	jr_repeat_mode mode;
	int64_t min_age_ms;   /* on_redelivery: a message this old or older is suspected */
	int64_t lookback_ms;  /* no publish time: the lookup starts this long before now */
} jr_repeat_conf;

/* What the caller knows about one route delivery. */
typedef struct jr_repeat_in {
	int has_message;      /* the event came in a Pub/Sub message */
	int delivery_attempt; /* the message's delivery_attempt less this process's holds of
			       * the event (at least 1), 0 when not reported */
	int64_t publish_ms;   /* the message's publish time (Unix ms), -1 when unknown or not a
			       * delivery's (a replayed record's) */
	int seen;             /* this process saw a RunJob of the key end with no answer
			       * that a lookup settled */
} jr_repeat_in;

/* Why a delivery is suspected (JR_REPEAT_NOT: it is not). */
typedef enum jr_repeat_why {
	JR_REPEAT_NOT,
	JR_REPEAT_BY_MODE,     /* mode always */
	JR_REPEAT_BY_ATTEMPT,  /* delivery_attempt > 1 */
	JR_REPEAT_BY_AGE,      /* published min_age or more ago */
	JR_REPEAT_BY_SEEN,     /* seen by this process */
} jr_repeat_why;

/* repeat_conf_default: mode on_redelivery, min_age 10 s, lookback 1 h. */
jr_repeat_conf repeat_conf_default(void);
/* repeat_suspect: whether (and why) the delivery in may repeat one that started its job. */
jr_repeat_why repeat_suspect(const jr_repeat_conf *c, const jr_repeat_in *in, int64_t now_ms);
/* repeat_why_name: "attempt", "age", "seen", "always"; "no" for JR_REPEAT_NOT. */
const char *repeat_why_name(jr_repeat_why why);
/*
 * repeat_since_ms: where a lookup for a suspected delivery starts (Unix ms):
 * REPEAT_SKEW_MS before its publish time (the clocks of Pub/Sub and Cloud
 * Run may differ), or lookback_ms before now when publish_ms < 0; never
 * after now.
 */
int64_t repeat_since_ms(const jr_repeat_conf *c, int64_t publish_ms, int64_t now_ms);
/* repeat_mode_parse: "never", "on_redelivery", "always" into *m; -1 for anything else. */
int repeat_mode_parse(const char *s, jr_repeat_mode *m);
const char *repeat_mode_name(jr_repeat_mode m);
/*
 * repeat_time_ms: an RFC 3339 time ("2024-05-01T12:00:00.123456Z", or with
 * a "+01:00" offset) as Unix ms in *ms; -1 when s is not one.
 */
int repeat_time_ms(const char *s, int64_t *ms);

#endif
