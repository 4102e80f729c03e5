/*
 * sinks.c — making the configured dead-letter sinks, and the composite that
 * writes to several.
 */
#include "dl_sinks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dl_file.h"
#include "dl_topic.h"
#include "errclass.h"
#include "gcreds.h"
#include "log.h"
#include "metrics.h"

#define SINKS_MAX 4
#define SINKS_CHECK_MS 10000 /* the start-up check waits at most this long */

typedef struct multi {
	jr_sink base;
	jr_sink *m[SINKS_MAX];
	size_t n;
	char name[64];
	jr_metric *writes;
} multi;

/* A write in progress: one slot a member, so a member's answer knows whose it is. */
typedef struct mwrite mwrite;
typedef struct mslot {
	mwrite *w;
	size_t i;
} mslot;

struct mwrite {
	multi *mu;
	jr_sink_cb cb;
	void *arg;
	int pending, failed;
	char err[256];
	mslot slot[SINKS_MAX];
};

static void member_result(multi *mu, size_t i, int ok)
{
	char l[96];
	metrics_labels(l, sizeof l, "sink", mu->m[i]->name, "result", ok ? "ok" : "failed", NULL);
	metric_add(mu->writes, l, 1);
}

static void member_done(void *arg, int ok, const char *err)
{
	mslot *sl = arg;
	mwrite *w = sl->w;
	member_result(w->mu, sl->i, ok);
	if (!ok && !w->failed++)
		snprintf(w->err, sizeof w->err, "%s", err ? err : "dead-letter write failed");
	if (--w->pending > 0)
		return;
	w->cb(w->arg, !w->failed, w->failed ? w->err : NULL);
	free(w);
}

static int multi_write(jr_sink *s, const jr_dlrecord *r, jr_sink_cb cb, void *arg, char *err,
		       size_t errlen)
{
	multi *mu = (multi *)s;
	mwrite *w = jr_calloc(1, sizeof *w);
	w->mu = mu;
	w->cb = cb;
	w->arg = arg;
	for (size_t i = 0; i < mu->n && !w->failed; i++) {
		w->slot[i] = (mslot){w, i};
		char e[256] = "";
		int rc = mu->m[i]->write(mu->m[i], r, member_done, &w->slot[i], e, sizeof e);
		if (rc == 1) {
			w->pending++;
			continue;
		}
		member_result(mu, i, rc == 0);
		if (rc < 0) {
			w->failed++;
			snprintf(w->err, sizeof w->err, "%s", e);
		}
	}
	if (w->pending > 0)
		return 1; /* the last member to answer calls cb */
	int rc = w->failed ? -1 : 0;
	if (rc < 0)
		snprintf(err, errlen, "%s", w->err);
	free(w);
	return rc;
}

static void multi_close(jr_sink *s)
{
	multi *mu = (multi *)s;
	for (size_t i = 0; i < mu->n; i++)
		mu->m[i]->close(mu->m[i]);
	free(mu);
}

jr_sink *dl_sinks_all(jr_sink **members, size_t n)
{
	multi *mu = jr_calloc(1, sizeof *mu);
	mu->base.write = multi_write;
	mu->base.close = multi_close;
	mu->base.counted = 1;
	mu->base.name = mu->name;
	mu->n = n < SINKS_MAX ? n : SINKS_MAX;
	for (size_t i = 0; i < mu->n; i++) {
		mu->m[i] = members[i];
		size_t k = strlen(mu->name);
		snprintf(mu->name + k, sizeof mu->name - k, "%s%s", i ? "+" : "", members[i]->name);
	}
	mu->writes = metric_register("jobrelay_dead_letter_writes_total", JR_METRIC_COUNTER,
				     "Dead-letter writes by sink and result.", NULL, 0);
	return &mu->base;
}

/* open_topic: the topic sink after its start-up check; 0, 2 or 3 (logged). */
static int open_topic(const jr_config *c, jr_loop *l, jr_sink **out)
{
	char err[512];
	jr_sink *t = dl_topic_open(l, c->dead_letter_topic, c->call_timeout_ms, err, sizeof err);
	if (!t) {
		log_kv(JR_LOG_ERROR, "DLTOPIC-INIT", "cannot create the dead-letter Pub/Sub client",
		       "topic", c->dead_letter_topic, "error", err, NULL);
		return 2;
	}
	if (gcreds_startup_check(SINKS_CHECK_MS) < 0) { /* before GetTopic: say why, not UNAVAILABLE */
		t->close(t);
		return 3;
	}
	int64_t wait = c->call_timeout_ms > 0 && c->call_timeout_ms < SINKS_CHECK_MS
			       ? c->call_timeout_ms : SINKS_CHECK_MS;
	int code = dl_topic_check(t, wait, err, sizeof err);
	if (code == 0) {
		log_kv(JR_LOG_INFO, "DLTOPIC-READY", "dead-letter topic found", "topic",
		       c->dead_letter_topic, "target", dl_topic_target(t), NULL);
	} else if (code == JR_GRPC_PERMISSION_DENIED) {
		log_kv(JR_LOG_WARNING, "DLTOPIC-UNVERIFIED",
		       "cannot read the dead-letter topic (GetTopic needs pubsub.topics.get); going on, "
		       "publishing needs only pubsub.topics.publish",
		       "topic", c->dead_letter_topic, "target", dl_topic_target(t), "error", err, NULL);
	} else {
		log_kv(JR_LOG_ERROR, "DLTOPIC-UNREACHABLE",
		       code == JR_GRPC_NOT_FOUND ? "the dead-letter topic does not exist"
						 : "cannot reach the dead-letter topic",
		       "topic", c->dead_letter_topic, "target", dl_topic_target(t), "code",
		       grpc_code_name(code), "error", err, NULL);
		t->close(t);
		return 3;
	}
	*out = t;
	return 0;
}

int dl_sinks_open(const jr_config *c, jr_loop *l, jr_sink **out)
{
	jr_sink *m[2];
	size_t n = 0;
	*out = NULL;
	if (c->dead_letter_file) {
		char err[256];
		m[n] = dl_file_open(c->dead_letter_file, err, sizeof err);
		if (!m[n]) {
			log_kv(JR_LOG_ERROR, "DEADLETTER-OPEN", "cannot open the dead-letter file",
			       "error", err, NULL);
			return 2;
		}
		n++;
	}
	if (c->dead_letter_topic) {
		int rc = open_topic(c, l, &m[n]);
		if (rc) {
			for (size_t i = 0; i < n; i++)
				m[i]->close(m[i]);
			return rc;
		}
		n++;
	}
	*out = n == 0 ? NULL : n == 1 ? m[0] : dl_sinks_all(m, n);
	return 0;
}
