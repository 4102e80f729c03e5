/*
 * redrive.c — `jobrelay redrive`: dead letters back through the dispatcher.
 *
 * Two sources. The dead-letter subscription is read with unary Pull calls
 * (at most --batch messages each, one call at a time, and only while fewer
 * than `concurrency` deliveries are open); every message received is leased
 * at once for REDRIVE_LEASE_S and the lease extended every
 * REDRIVE_EXTEND_MS until the message is acked or released, so a RunJob
 * with retries may take minutes. A dead-letter file is read with input.c,
 * one record a line, as replay reads it.
 *
 * Each record is decoded back into its event (the file: decode.c, which
 * keeps the parsed record in ev->record; the topic: the message's data and
 * attributes, as `pull` decodes a message, without the jobrelay-*
 * attributes and with the original event's id and source), checked against
 * the filters, and submitted to the dispatcher for the record's route only
 * (every matching route when the record has none). Retries, breaker holds,
 * rate limits, dedup and repeat_check work as in replay. The sink the
 * dispatcher gets refuses every write: a record that fails again is never
 * dead-lettered again (that would loop on the topic).
 *
 * What happens to a record: re-dispatched (every route dispatched, or a
 * duplicate of a dispatch) → acked; failed again, left out by the filters,
 * or a dry run → kept leased until the end of the run, then released
 * (ModifyAckDeadline 0), so that no record is handled twice in one run and
 * all are available again at once. From a file, a record that failed again
 * is written to out (its new record, or the record as read), so that out
 * can be redriven later.
 */
#include "redrive.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <grpc/grpc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config_load.h"
#include "decode.h"
#include "dispatcher.h"
#include "errclass.h"
#include "gcreds.h"
#include "input.h"
#include "jsonparse.h"
#include "log.h"
#include "loop.h"
#include "pubsub.h"
#include "repeat.h"
#include "replay.h"
#include "runjob.h"
#include "runwatch.h"
#include "signals.h"

#define REDRIVE_LEASE_S 60           /* each lease, and each extension */
#define REDRIVE_EXTEND_MS 20000      /* leases are extended this often */
#define REDRIVE_MAX_LEASES 10000     /* messages held at once (in progress, left or failed) */
#define REDRIVE_PULL_TIMEOUT_MS 10000
#define REDRIVE_RETRY_PULL_MS 1000   /* after a Pull that failed with a code worth retrying */
#define REDRIVE_CLOSE_MS 30000       /* at most this long for the last acks and releases */
#define REDRIVE_PREFIX "jobrelay-"

static const char why_unconfirmed[] = "EXECUTION_UNCONFIRMED: its job started (--include-unconfirmed)";

/* What a dead-letter record says about itself (the file's fields, or the topic's attributes). */
typedef struct dl_meta {
	const char *route;   /* NULL: unrouted or undecodable input */
	const char *cls;     /* error class name, NULL when missing */
	const char *code;
	const char *failed_at;
} dl_meta;

/* A message held: leased until acked or released. */
typedef struct lease {
	char *ack_id;
	struct lease *prev, *next;
} lease;

typedef struct redrive {
	const jr_config *cfg;
	const jr_redrive_opts *o;
	jr_loop *loop;
	jr_runjob *api;
	jr_sink sink;
	jr_dispatcher *d;
	jr_pubsub *ps;
	jr_input *in;
	int intake_done, pulling, reached_pubsub;
	int exit3;                   /* the subscription cannot be pulled */
	int pull_failed;             /* a Pull failed after Pub/Sub was reached: some may be left */
	int batch;                   /* messages a Pull asks for: --batch, halved on RESOURCE_EXHAUSTED */
	int signals;                 /* SIGTERM/SIGINT received */
	int64_t last_msg_ms;         /* when a Pull last returned messages (or the start) */
	jr_timer_id pull_timer, extend_timer;
	lease *leases;
	long n_leases, waiting;
	/* counters */
	long read, selected, redriven, failed, left, unconfirmed, invalid, acks_confirmed;
	jr_route_stats *dry;
	jr_buf line;
} redrive;

/* A record on its way through the dispatcher. */
typedef struct item {
	redrive *rd;
	jr_event *ev;
	lease *ls;               /* the message's lease (subscription), or NULL (file) */
	int attempt;
	unsigned char *only;     /* the routes of the next submit, or NULL: every route */
	long good, bad;          /* routes dispatched (or duplicates), routes that were not */
} item;

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- leases ---- */

static lease *lease_take(redrive *rd, const char *ack_id)
{
	lease *l = jr_calloc(1, sizeof *l);
	l->ack_id = jr_strdup(ack_id);
	l->next = rd->leases;
	if (rd->leases)
		rd->leases->prev = l;
	rd->leases = l;
	rd->n_leases++;
	pubsub_modack(rd->ps, ack_id, REDRIVE_LEASE_S);
	return l;
}

/* lease_end: the message is acked (ack = 1) or released now; the lease is gone. */
static void lease_end(redrive *rd, lease *l, int ack)
{
	if (ack)
		pubsub_ack(rd->ps, l->ack_id);
	else
		pubsub_modack(rd->ps, l->ack_id, 0);
	if (l->prev)
		l->prev->next = l->next;
	else
		rd->leases = l->next;
	if (l->next)
		l->next->prev = l->prev;
	rd->n_leases--;
	free(l->ack_id);
	free(l);
}

static void extend_fired(void *arg)
{
	redrive *rd = arg;
	for (lease *l = rd->leases; l; l = l->next)
		pubsub_modack(rd->ps, l->ack_id, REDRIVE_LEASE_S);
	rd->extend_timer = loop_timer_add(rd->loop, REDRIVE_EXTEND_MS, extend_fired, rd);
}

/* on_confirm: unary acks that succeeded. */
static void on_confirm(void *arg, const jr_pubsub_conf *c)
{
	redrive *rd = arg;
	rd->acks_confirmed += (long)c->n[JR_CONF_ACK_OK];
}

/* ---- the records ---- */

/* meta_of_record: the fields of a file record (a parsed JSON object). */
static dl_meta meta_of_record(const jr_json *rec)
{
	const jr_json *err = json_get(rec, "error");
	dl_meta m = {
		.route = json_get_str(rec, "route"),
		.cls = err ? json_get_str(err, "class") : NULL,
		.code = err ? json_get_str(err, "code") : NULL,
		.failed_at = json_get_str(rec, "failed_at"),
	};
	return m;
}

static const char *msg_attr(const jr_pubsub_msg *m, const char *key)
{
	for (size_t i = 0; i < m->n_attrs; i++)
		if (strcmp(m->attrs[i].key, key) == 0)
			return m->attrs[i].value;
	return NULL;
}

static dl_meta meta_of_message(const jr_pubsub_msg *m)
{
	dl_meta d = {
		.route = msg_attr(m, REDRIVE_PREFIX "route"),
		.cls = msg_attr(m, REDRIVE_PREFIX "error-class"),
		.code = msg_attr(m, REDRIVE_PREFIX "error-code"),
		.failed_at = msg_attr(m, REDRIVE_PREFIX "failed-at"),
	};
	return d;
}

/* selected: the record passes the filters (why: what left it out, for the log). */
static int selected(const redrive *rd, const dl_meta *m, const char **why)
{
	const jr_redrive_opts *o = rd->o;
	if (!m->cls) {
		*why = "not a jobrelay dead-letter record (no error class)";
		return 0;
	}
	if (!o->include_unconfirmed && m->code && strcmp(m->code, "EXECUTION_UNCONFIRMED") == 0) {
		*why = why_unconfirmed;
		return 0;
	}
	if (o->route && (!m->route || strcmp(o->route, m->route) != 0)) {
		*why = "--route";
		return 0;
	}
	if (o->classes) {
		int k = 0;
		while (k < JR_ERR__COUNT && strcmp(errclass_name((jr_errclass)k), m->cls) != 0)
			k++;
		if (k == JR_ERR__COUNT || !(o->classes & (1u << k))) {
			*why = "--class";
			return 0;
		}
	}
	if (o->since_ms || o->until_ms) {
		int64_t t;
		if (!m->failed_at || repeat_time_ms(m->failed_at, &t) < 0) {
			*why = "no readable failed_at for --since/--until";
			return 0;
		}
		if ((o->since_ms && t < o->since_ms) || (o->until_ms && t > o->until_ms)) {
			*why = o->since_ms && t < o->since_ms ? "--since" : "--until";
			return 0;
		}
	}
	if (o->limit && rd->selected >= o->limit) {
		*why = "--limit";
		return 0;
	}
	return 1;
}

/* route_only: only[] for the record's route (NULL: every route); -1 when it is not in the config. */
static int route_only(const redrive *rd, const dl_meta *m, unsigned char **only)
{
	*only = NULL;
	if (!m->route)
		return 0;
	for (size_t i = 0; i < rd->cfg->n_routes; i++)
		if (strcmp(rd->cfg->routes[i].name, m->route) == 0) {
			*only = jr_calloc(rd->cfg->n_routes, 1);
			(*only)[i] = 1;
			return 0;
		}
	return -1;
}

/* write_record: a file record that failed again, as read, to out (so out stays redrivable). */
static void write_record(redrive *rd, const jr_json *rec)
{
	if (!rec)
		return;
	buf_reset(&rd->line);
	json_write(&rd->line, rec);
	buf_addc(&rd->line, '\n');
	fwrite(rd->line.data, 1, rd->line.len, rd->o->out);
	fflush(rd->o->out);
}

static void item_free(item *it)
{
	event_free(it->ev);
	free(it->only);
	free(it);
}

/* item_end: the record's end: acked, or kept for the release (subscription); counted. */
static void item_end(item *it, int ok, int record_written)
{
	redrive *rd = it->rd;
	if (ok)
		rd->redriven++;
	else
		rd->failed++;
	if (!ok && !rd->o->dry_run)
		log_kv(JR_LOG_WARNING, "REDRIVE-FAILED-AGAIN",
		       it->ls ? "re-dispatch failed; the dead letter stays in the subscription"
			      : "re-dispatch failed; the record goes to the output",
		       "event_id", it->ev->id, "origin", it->ev->origin, NULL);
	if (it->ls && ok)
		lease_end(rd, it->ls, 1);
	if (!it->ls && !ok && !record_written && !rd->o->dry_run)
		write_record(rd, it->ev->record);
	item_free(it);
}

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o);

static void resubmit(void *arg)
{
	item *it = arg;
	it->rd->waiting--;
	dispatcher_submit(it->rd->d, it->ev, it->attempt, it->only, on_outcome, it);
}

static void on_outcome(void *arg, jr_event *ev, const jr_outcome *o)
{
	item *it = arg;
	redrive *rd = it->rd;
	(void)ev;
	it->good += o->dispatched + o->duplicates;
	it->bad += o->dropped + o->dead_lettered + o->failed + (o->matched == 0);
	if (o->kind == JR_OUTCOME_RETRY) {
		if (!it->only)
			it->only = jr_malloc(rd->cfg->n_routes ? rd->cfg->n_routes : 1);
		memcpy(it->only, o->retry, rd->cfg->n_routes);
		it->attempt++;
		rd->waiting++;
		loop_timer_add(rd->loop, o->delay_ms, resubmit, it);
		return;
	}
	/* FAILED: a dead letter the sink refused; with a file source it went to out */
	item_end(it, o->kind == JR_OUTCOME_DONE && it->bad == 0 && it->good > 0,
		 o->failed > 0 && !it->ls);
}

/* start: one selected record's event, with the lease of its message (or NULL). */
static void start(redrive *rd, jr_event *ev, const dl_meta *m, lease *ls)
{
	item *it = jr_calloc(1, sizeof *it);
	it->rd = rd;
	it->ev = ev;
	it->ls = ls;
	it->attempt = 1;
	rd->selected++;
	if (route_only(rd, m, &it->only) < 0) {
		log_kv(JR_LOG_ERROR, "REDRIVE-NO-ROUTE", "the record's route is not in the config",
		       "route", m->route, "event_id", ev->id, "origin", ev->origin, NULL);
		item_end(it, 0, 0);
		return;
	}
	if (rd->o->dry_run) {
		/* the same lines as replay --dry-run; nothing is acked */
		int n = replay_dry_run_event(rd->cfg, m->route, ev, rd->o->out, &rd->line, rd->dry);
		if (n == 0)
			log_kv(JR_LOG_WARNING, "REDRIVE-UNROUTED", "no route matches the event",
			       "route", m->route, "event_id", ev->id, "origin", ev->origin, NULL);
		item_free(it);
		return;
	}
	dispatcher_submit(rd->d, ev, 1, it->only, on_outcome, it);
}

/* ---- the subscription ---- */

/* event_of_message: the event of a dead letter from the topic; NULL with err. */
static jr_event *event_of_message(redrive *rd, const jr_pubsub_msg *m, char *err, size_t errlen)
{
	jr_event *ev = event_new();
	jr_arena *a = &ev->arena;
	jr_message *jm = arena_alloc(a, sizeof *jm);
	memset(jm, 0, sizeof *jm);
	const char *id = msg_attr(m, REDRIVE_PREFIX "event-id");
	const char *source = msg_attr(m, REDRIVE_PREFIX "event-source");
	/* a plain message's CloudEvent id is its message id: the original's, not the dead letter's */
	jm->id = arena_strdup(a, id ? id : m->message_id);
	jm->publish_time = m->publish_time ? arena_strdup(a, m->publish_time) : NULL;
	jm->ordering_key = m->ordering_key ? arena_strdup(a, m->ordering_key) : NULL;
	jm->subscription = rd->cfg->subscription;
	char *data = arena_alloc_raw(a, m->data_len + 1);
	memcpy(data, m->data, m->data_len);
	data[m->data_len] = '\0';
	jm->data = data;
	jm->data_len = m->data_len;
	jm->attrs = arena_alloc(a, (m->n_attrs ? m->n_attrs : 1) * sizeof *jm->attrs);
	for (size_t i = 0; i < m->n_attrs; i++) {
		if (strncmp(m->attrs[i].key, REDRIVE_PREFIX, sizeof REDRIVE_PREFIX - 1) == 0)
			continue; /* ours, not the original message's */
		jm->attrs[jm->n_attrs].key = arena_strdup(a, m->attrs[i].key);
		jm->attrs[jm->n_attrs++].value = arena_strdup(a, m->attrs[i].value);
	}
	ev->message = jm;
	ev->origin = arena_strdup(a, msg_attr(m, REDRIVE_PREFIX "origin")
					     ? msg_attr(m, REDRIVE_PREFIX "origin") : "redrive");
	if (decode_message(ev, &rd->cfg->limits, rd->cfg->topic, err, errlen) < 0) {
		event_free(ev);
		return NULL;
	}
	if (source && strcmp(source, ev->source) != 0)
		ev->source = arena_strdup(a, source); /* a plain message's source named its topic */
	return ev;
}

static void on_message(void *arg, const jr_pubsub_msg *m)
{
	redrive *rd = arg;
	rd->read++;
	lease *ls = lease_take(rd, m->ack_id);
	if (rd->signals) {
		rd->left++; /* came in after a signal stopped the intake: released at the end */
		return;
	}
	dl_meta meta = meta_of_message(m);
	const char *why = NULL;
	if (!selected(rd, &meta, &why)) {
		rd->left++;
		rd->unconfirmed += why == why_unconfirmed;
		log_kv(JR_LOG_DEBUG, "REDRIVE-LEFT", "dead letter left in the subscription",
		       "message_id", m->message_id, "why", why, NULL);
		return; /* released at the end */
	}
	const char *code = meta.code ? meta.code : "";
	const char *origin = msg_attr(m, REDRIVE_PREFIX "origin");
	if (strcmp(code, "INVALID_EVENT") == 0 && (!origin || strcmp(origin, "pull") != 0)) {
		/* undecodable input that was no Pub/Sub message: its headers or file are not here */
		rd->selected++;
		rd->failed++;
		log_kv(JR_LOG_ERROR, "REDRIVE-FAILED-AGAIN",
		       "undecodable input that came from HTTP or a file cannot be redriven from the "
		       "topic (use the file sink's record); it stays in the subscription",
		       "message_id", m->message_id, "origin", origin, NULL);
		return;
	}
	char err[512];
	jr_event *ev = event_of_message(rd, m, err, sizeof err);
	if (!ev) {
		rd->selected++;
		rd->failed++;
		log_kv(JR_LOG_ERROR, "REDRIVE-FAILED-AGAIN",
		       "the dead letter does not decode; it stays in the subscription", "message_id",
		       m->message_id, "error", err, NULL);
		return;
	}
	start(rd, ev, &meta, ls);
	if (rd->o->dry_run)
		return; /* the lease stays until the release */
}

static void pull_fired(void *arg);

static int open_deliveries(const redrive *rd)
{
	return rd->d ? dispatcher_open(rd->d) + (int)rd->waiting : 0;
}

static int limit_reached(const redrive *rd)
{
	return rd->o->limit && rd->selected >= rd->o->limit;
}

static void on_pulled(void *arg, int code, const char *detail, size_t n)
{
	redrive *rd = arg;
	rd->pulling = 0;
	int64_t now = loop_now_ms();
	if (code == GRPC_STATUS_OK)
		rd->reached_pubsub = 1;
	if (code == GRPC_STATUS_OK && n > 0) {
		rd->last_msg_ms = now;
		return;
	}
	if (code != GRPC_STATUS_OK && code != GRPC_STATUS_DEADLINE_EXCEEDED) {
		int fatal = code == GRPC_STATUS_NOT_FOUND || code == GRPC_STATUS_PERMISSION_DENIED ||
			    code == GRPC_STATUS_INVALID_ARGUMENT ||
			    code == GRPC_STATUS_UNAUTHENTICATED ||
			    code == GRPC_STATUS_FAILED_PRECONDITION ||
			    code == GRPC_STATUS_UNIMPLEMENTED;
		log_kv(fatal ? JR_LOG_ERROR : JR_LOG_WARNING, "REDRIVE-PULL-FAILED",
		       fatal ? "cannot pull the dead-letter subscription"
			     : "Pull failed; trying again",
		       "subscription", rd->o->subscription, "code", grpc_code_name(code), "error",
		       detail, NULL);
		if (code == GRPC_STATUS_RESOURCE_EXHAUSTED && rd->batch > 1)
			rd->batch /= 2; /* e.g. a response over the size limit: fewer messages a Pull */
		if (fatal || now - rd->last_msg_ms >= rd->o->wait_ms) {
			rd->intake_done = 1;
			rd->exit3 |= !rd->reached_pubsub;
			rd->pull_failed |= rd->reached_pubsub;
			return;
		}
		rd->pull_timer = loop_timer_add(rd->loop, REDRIVE_RETRY_PULL_MS, pull_fired, rd);
		return;
	}
	if (now - rd->last_msg_ms >= rd->o->wait_ms)
		rd->intake_done = 1; /* nothing for --wait */
}

/* pull_more: the next Pull, when none is in flight and there is room. */
static void pull_more(redrive *rd)
{
	if (rd->intake_done || rd->pulling || rd->pull_timer)
		return;
	if (limit_reached(rd)) {
		rd->intake_done = 1;
		return;
	}
	if (rd->n_leases >= REDRIVE_MAX_LEASES) {
		rd->last_msg_ms = loop_now_ms(); /* not pulling: --wait counts from the next Pull */
		if (open_deliveries(rd) == 0) {
			log_kv(JR_LOG_WARNING, "REDRIVE-HELD-FULL",
			       "stopped: as many dead letters are held as one run keeps; run again "
			       "with narrower filters for the rest", "subscription",
			       rd->o->subscription, NULL);
			rd->intake_done = 1;
		}
		return;
	}
	int room = rd->cfg->concurrency - open_deliveries(rd);
	if (room <= 0) {
		rd->last_msg_ms = loop_now_ms(); /* busy, not waiting: --wait counts from the next Pull */
		return;
	}
	long n = rd->batch < room ? rd->batch : room;
	if (rd->o->limit && n > rd->o->limit - rd->selected)
		n = rd->o->limit - rd->selected;
	if (n > REDRIVE_MAX_LEASES - rd->n_leases)
		n = REDRIVE_MAX_LEASES - rd->n_leases;
	int64_t left = rd->o->wait_ms - (loop_now_ms() - rd->last_msg_ms);
	int64_t timeout = left < 1000 ? 1000 : left > REDRIVE_PULL_TIMEOUT_MS ? REDRIVE_PULL_TIMEOUT_MS : left;
	if (pubsub_pull(rd->ps, (int)n, timeout, on_pulled, rd) < 0) {
		log_kv(JR_LOG_ERROR, "REDRIVE-PULL-FAILED", "the Pull call could not start",
		       "subscription", rd->o->subscription, NULL);
		rd->intake_done = 1;
		return;
	}
	rd->pulling = 1;
}

static void pull_fired(void *arg)
{
	redrive *rd = arg;
	rd->pull_timer = 0;
	pull_more(rd);
}

/* release_all: every lease still held goes back to the subscription at once; then the last ids go out. */
static void finish_subscription(redrive *rd)
{
	long released = rd->n_leases;
	while (rd->leases)
		lease_end(rd, rd->leases, 0);
	if (rd->extend_timer) {
		loop_timer_cancel(rd->loop, rd->extend_timer);
		rd->extend_timer = 0;
	}
	pubsub_close(rd->ps);
	int64_t end = loop_now_ms() + REDRIVE_CLOSE_MS;
	while (pubsub_state(rd->ps) != JR_PUBSUB_CLOSED && loop_now_ms() < end)
		loop_run_once(rd->loop, 200);
	char n[24];
	snprintf(n, sizeof n, "%ld", released);
	log_kv(JR_LOG_INFO, "REDRIVE-RELEASED", "dead letters not acked were released",
	       "subscription", rd->o->subscription, "released", n, NULL);
	if (pubsub_queued(rd->ps) > 0)
		log_kv(JR_LOG_ERROR, "REDRIVE-ACKS-UNSENT",
		       "some acks or releases could not be sent in time", "subscription",
		       rd->o->subscription, NULL);
}

/* ---- the file ---- */

static void handle_item(redrive *rd, jr_input_item *it)
{
	rd->read++;
	if (!it->ev) {
		/* the record, or its raw input, does not decode: read what it says about itself */
		jr_arena a;
		char why[128];
		arena_init(&a);
		const jr_json *rec = it->raw ? jsonparse(&a, it->raw, it->raw_len, rd->cfg->limits.json_depth, why,
							     sizeof why) : NULL;
		dl_meta m = rec && rec->type == JR_JSON_OBJECT ? meta_of_record(rec) : (dl_meta){0};
		const char *left;
		if (m.cls && !selected(rd, &m, &left)) {
			rd->left++;
		} else {
			rd->selected += m.cls != NULL;
			rd->invalid++;
			log_kv(JR_LOG_ERROR, "EVENT-INVALID", "record rejected", "error", it->error, NULL);
			if (!rd->o->dry_run && it->raw && it->raw_len < 64 * 1024) {
				fwrite(it->raw, 1, it->raw_len, rd->o->out);
				fputc('\n', rd->o->out);
			} else if (!rd->o->dry_run) {
				log_kv(JR_LOG_ERROR, "REDRIVE-NOT-COPIED",
				       "the record is too long to copy; it stays in the input file only",
				       "origin", input_position(rd->in), NULL);
			}
		}
		arena_free(&a);
		free(it->error);
		free(it->raw);
		return;
	}
	if (!it->ev->record) {
		rd->left++;
		log_kv(JR_LOG_WARNING, "REDRIVE-LEFT", "not a dead-letter record; skipped", "origin",
		       it->ev->origin, NULL);
		event_free(it->ev);
		return;
	}
	dl_meta m = meta_of_record(it->ev->record);
	const char *why;
	if (!selected(rd, &m, &why)) {
		rd->left++;
		rd->unconfirmed += why == why_unconfirmed;
		event_free(it->ev);
		return;
	}
	start(rd, it->ev, &m, NULL);
}

static void pump_file(redrive *rd)
{
	jr_input_item it;
	while (!rd->intake_done && open_deliveries(rd) < rd->cfg->concurrency) {
		if (limit_reached(rd) || !input_next(rd->in, &it)) {
			rd->intake_done = 1;
			break;
		}
		handle_item(rd, &it);
	}
}

/* ---- the run ---- */

/* refuse: the dispatcher's sink: redrive never dead-letters again. */
static int refuse(jr_sink *s, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		  size_t errlen)
{
	(void)s, (void)r, (void)cb, (void)arg;
	snprintf(err, errlen, "redrive does not dead-letter again");
	return -1;
}

static void refuse_close(jr_sink *s)
{
	(void)s;
}

static int open_peers(redrive *rd)
{
	char err[256];
	const jr_redrive_opts *o = rd->o;
	rd->dry = jr_calloc(rd->cfg->n_routes ? rd->cfg->n_routes : 1, sizeof *rd->dry);
	if (o->dry_run && !o->subscription)
		return 0;
	rd->loop = loop_new();
	if (o->subscription) {
		jr_pubsub_opts po = {.subscription = o->subscription, .unary_only = 1,
				     .on_message = on_message, .on_confirm = on_confirm, .arg = rd};
		rd->ps = pubsub_new(rd->loop, &po, err, sizeof err);
		if (!rd->ps) {
			log_kv(JR_LOG_ERROR, "PUBSUB-INIT", "cannot create the Pub/Sub client",
			       "subscription", o->subscription, "error", err, NULL);
			return 2;
		}
		int64_t t = rd->cfg->call_timeout_ms < 10000 ? rd->cfg->call_timeout_ms : 10000;
		if (pubsub_wait_ready(rd->ps, t) < 0) {
			log_kv(JR_LOG_ERROR, "PUBSUB-UNREACHABLE", "Pub/Sub cannot be reached",
			       "pubsub", pubsub_target(rd->ps), NULL);
			return 3;
		}
	}
	if (o->dry_run)
		return 0;
	rd->api = runjob_new(rd->loop, o->run_endpoint, err, sizeof err);
	if (!rd->api) {
		log_kv(JR_LOG_ERROR, "RUNAPI-INIT", "cannot create the Run API client", "error", err,
		       NULL);
		return 3;
	}
	if (runjob_startup_check(rd->api, rd->cfg->call_timeout_ms) < 0 ||
	    runwatch_startup_check(rd->api, rd->cfg, o->route) < 0)
		return 3;
	rd->sink = (jr_sink){.name = "redrive", .write = refuse, .close = refuse_close};
	jr_dispatch_opts dopt = {.only_route = o->route, .replay = 1};
	rd->d = dispatcher_new(rd->cfg, loop_timers(rd->loop), runwatch_runner(rd->api), &rd->sink,
			       o->subscription ? NULL : o->out, &dopt);
	return 0;
}

static int summary(redrive *rd)
{
	FILE *f = rd->o->summary;
	long renderfail = 0;
	for (size_t i = 0; i < rd->cfg->n_routes; i++)
		renderfail += rd->dry[i].failed;
	if (rd->o->dry_run)
		fprintf(f, "redrive --dry-run: %ld read, %ld selected, %ld left alone (%ld "
			   "EXECUTION_UNCONFIRMED), %ld invalid, %ld not rendered; nothing acked\n",
			rd->read, rd->selected, rd->left, rd->unconfirmed, rd->invalid + rd->failed,
			renderfail);
	else
		fprintf(f, "redrive: %ld read, %ld selected, %ld re-dispatched, %ld failed again, "
			   "%ld invalid, %ld left alone (%ld EXECUTION_UNCONFIRMED)\n",
			rd->read, rd->selected, rd->redriven, rd->failed, rd->invalid, rd->left,
			rd->unconfirmed);
	if (rd->ps && !rd->o->dry_run)
		fprintf(f, "acks: %ld sent, %ld confirmed\n", pubsub_stats(rd->ps)->acks,
			rd->acks_confirmed);
	fflush(f);
	int bad = rd->failed > 0 || rd->invalid > 0 || renderfail > 0 || rd->pull_failed ||
		  rd->signals > 0;
	if (rd->ps && !rd->o->dry_run && rd->acks_confirmed < rd->redriven) {
		log_kv(JR_LOG_ERROR, "REDRIVE-ACK-UNCONFIRMED",
		       "some re-dispatched dead letters were not acked: a later redrive would "
		       "start their jobs again", "subscription", rd->o->subscription, NULL);
		bad = 1;
	}
	return bad ? 1 : 0;
}

/*
 * on_signal: the first SIGTERM or SIGINT stops the intake; what is in flight
 * finishes (acked when re-dispatched), the rest is released, exit 1. A
 * second one exits at once: a record whose RunJob was in flight is then not
 * acked, and a later redrive may start its job again (said in the log).
 */
static void on_signal(void *arg, int signo)
{
	redrive *rd = arg;
	const char *name = signo == SIGTERM ? "SIGTERM" : "SIGINT";
	if (rd->signals++ > 0) {
		char n[24];
		snprintf(n, sizeof n, "%d", open_deliveries(rd));
		log_kv(JR_LOG_ERROR, "REDRIVE-ABORTED",
		       "second signal: exiting now; dead letters in flight are not acked and a later "
		       "redrive may start their jobs again", "signal", name, "in_flight", n, NULL);
		_exit(1);
	}
	log_kv(JR_LOG_WARNING, "REDRIVE-STOPPING",
	       "stopping: no more dead letters taken; those in flight finish (a second signal exits at once)",
	       "signal", name, NULL);
	rd->intake_done = 1;
	if (rd->pull_timer) {
		loop_timer_cancel(rd->loop, rd->pull_timer);
		rd->pull_timer = 0;
	}
}

int redrive_run(const jr_config *cfg, const jr_redrive_opts *o)
{
	redrive rd = {.cfg = cfg, .o = o, .batch = o->batch};
	buf_init(&rd.line, 0);
	int rc = open_peers(&rd);
	if (rc == 0 && rd.loop && signals_start(rd.loop, on_signal, &rd) < 0) {
		log_kv(JR_LOG_ERROR, "REDRIVE-SIGNALS", "cannot start the signal thread", NULL);
		rc = 2;
	}
	if (rc == 0) {
		rd.last_msg_ms = loop_now_ms();
		if (o->subscription) {
			rd.extend_timer = loop_timer_add(rd.loop, REDRIVE_EXTEND_MS, extend_fired, &rd);
			for (;;) {
				pull_more(&rd);
				if (rd.intake_done && !rd.pulling && open_deliveries(&rd) == 0)
					break;
				loop_run_once(rd.loop, -1);
			}
			finish_subscription(&rd);
			rc = rd.exit3 ? 3 : summary(&rd);
		} else {
			char *paths[1] = {(char *)o->file};
			rd.in = input_new(paths, 1, JR_IN_NDJSON, &cfg->limits, cfg->topic);
			for (;;) {
				pump_file(&rd);
				if (rd.intake_done && open_deliveries(&rd) == 0)
					break;
				loop_run_once(rd.loop, -1);
			}
			fflush(o->out);
			rc = summary(&rd);
			input_free(rd.in);
		}
	}
	dispatcher_free(rd.d);
	if (rd.api)
		runjob_free(rd.api);
	pubsub_free(rd.ps);
	if (rd.loop) {
		signals_stop();
		loop_free(rd.loop);
	}
	buf_free(&rd.line);
	free(rd.dry);
	return rc;
}

/* ---- the command line (the flags themselves are in commands.c's table) ---- */

/* parse_time: RFC 3339, or a duration meaning that long before now; Unix ms, or -1. */
static int64_t parse_time(const char *s)
{
	int64_t ms;
	if (repeat_time_ms(s, &ms) == 0)
		return ms;
	int64_t d = parse_duration_ms(s);
	return d < 0 ? -1 : wall_ms() - d;
}

/* parse_classes: a comma list of class names into *mask; -1 after naming the bad one. */
static int parse_classes(const char *arg, unsigned *mask)
{
	char *copy = jr_strdup(arg), *save = NULL;
	int rc = 0, n = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), n++) {
		int k = 0;
		while (k < JR_ERR__COUNT && strcmp(errclass_name((jr_errclass)k), t) != 0)
			k++;
		if (k == JR_ERR__COUNT) {
			fprintf(stderr, "jobrelay redrive: unknown --class '%s' (see jobrelay redrive --help)\n", t);
			rc = -1;
			break;
		}
		*mask |= 1u << k;
	}
	free(copy);
	if (rc == 0 && n == 0) {
		fprintf(stderr, "jobrelay redrive: --class names no class (see jobrelay redrive --help)\n");
		rc = -1;
	}
	return rc;
}

static int parse_long(const char *opt, const char *arg, long min, long max, long *out)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (!*arg || *end || v < min || v > max) {
		fprintf(stderr, "jobrelay redrive: %s must be a number %ld-%ld, not '%s'\n", opt, min,
			max, arg);
		return -1;
	}
	*out = v;
	return 0;
}

void redrive_opts_init(jr_redrive_opts *o, int dry_run)
{
	*o = (jr_redrive_opts){.dry_run = dry_run, .wait_ms = 5000, .batch = 100, .out = stdout,
			       .summary = stderr};
}

int redrive_set_opt(jr_redrive_opts *o, int id, const char *v)
{
	long n;
	switch (id) {
	case RD_SUBSCRIPTION: o->subscription = v; break;
	case RD_FILE: o->file = v; break;
	case RD_ROUTE: o->route = v; break;
	case RD_CLASS: return parse_classes(v, &o->classes);
	case RD_SINCE:
	case RD_UNTIL: {
		int64_t t = parse_time(v);
		if (t < 0) {
			fprintf(stderr, "jobrelay redrive: --%s must be an RFC 3339 time or a duration (2h), not '%s'\n",
				id == RD_SINCE ? "since" : "until", v);
			return -1;
		}
		*(id == RD_SINCE ? &o->since_ms : &o->until_ms) = t ? t : 1;
		break;
	}
	case RD_LIMIT:
		if (parse_long("--limit", v, 1, 100000000, &n) < 0)
			return -1;
		o->limit = n;
		break;
	case RD_WAIT:
		if ((o->wait_ms = parse_duration_ms(v)) <= 0) {
			fprintf(stderr, "jobrelay redrive: --wait must be a duration (500ms, 5s), not '%s'\n", v);
			return -1;
		}
		break;
	case RD_BATCH:
		if (parse_long("--batch", v, 1, 1000, &n) < 0)
			return -1;
		o->batch = (int)n;
		break;
	case RD_OUT: o->out_path = v; break;
	case RD_INCLUDE_UNCONFIRMED: o->include_unconfirmed = 1; break;
	}
	return 0;
}

int redrive_check_opts(const jr_redrive_opts *o)
{
	if (!o->subscription == !o->file) {
		fprintf(stderr, "jobrelay redrive: give one source: --subscription projects/P/subscriptions/S or --file PATH\n");
		return -1;
	}
	if (o->subscription && (strncmp(o->subscription, "projects/", 9) != 0 ||
				!strstr(o->subscription + 9, "/subscriptions/"))) {
		fprintf(stderr, "jobrelay redrive: --subscription must be projects/P/subscriptions/S, not '%s'\n",
			o->subscription);
		return -1;
	}
	if (o->out_path && !o->file) {
		fprintf(stderr, "jobrelay redrive: --out goes with --file (from the subscription, records that fail again stay there)\n");
		return -1;
	}
	if (o->since_ms && o->until_ms && o->since_ms > o->until_ms) {
		fprintf(stderr, "jobrelay redrive: --since is after --until\n");
		return -1;
	}
	return 0;
}

/* same_file: out is the file being read (it would read its own output again). */
static int same_file(const char *path, FILE *out)
{
	struct stat a, b;
	return stat(path, &a) == 0 && fstat(fileno(out), &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

int redrive_main(const jr_config *c, jr_redrive_opts *o)
{
	FILE *out = NULL;
	if (o->out_path && !o->dry_run && !(out = fopen(o->out_path, "a"))) {
		fprintf(stderr, "jobrelay redrive: cannot open --out %s: %s\n", o->out_path, strerror(errno));
		return 2;
	}
	if (out)
		o->out = out;
	if (o->file && same_file(o->file, o->out)) {
		fprintf(stderr, "jobrelay redrive: the output is %s, the file being read: it would read its "
				"own records again (use --out ANOTHER_FILE)\n", o->file);
		if (out)
			fclose(out);
		o->out = stdout;
		return 2;
	}
	/* a loop runs unless this is a dry run of a file: SIGTERM and SIGINT go to it (on_signal) */
	if (o->subscription || !o->dry_run)
		signals_block();
	grpc_init();
	int rc = redrive_run(c, o);
	gcreds_shutdown();
	grpc_shutdown();
	if (out && fclose(out) != 0 && rc == 0) {
		fprintf(stderr, "jobrelay redrive: cannot write --out %s: %s\n", o->out_path, strerror(errno));
		rc = 1;
	}
	o->out = stdout;
	return rc;
}
