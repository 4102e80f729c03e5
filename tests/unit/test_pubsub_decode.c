/*
 * test_pubsub_decode.c — pubsub_decode_response and
 * pubsub_decode_confirmations (the StreamingPullResponse read by hand:
 * messages, exactly-once confirmations, subscription properties) against
 * protobuf-c's generated unpack, the reader it replaced: random responses packed by protobuf-c must read the same, and
 * random mutations of them (bytes changed, cut, inserted) must be refused by
 * both or read the same by both. One exception is counted apart: a singular
 * message field that occurs twice (PubsubMessage in a ReceivedMessage, the
 * publish Timestamp), which protobuf's rule merges and which the hand reader
 * merges, while protobuf-c 1.4 keeps something else; no server sends it.
 * (Runs of 480,000 mutations with other seeds found one more difference:
 * protobuf-c 1.4 takes field number 0 as an unknown field when its tag is
 * written in two bytes, which protobuf does not allow; the hand reader
 * refuses it.)
 */
#include "cu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "google/pubsub/v1/pubsub.pb-c.h"
#include "grpcx.h"
#include "pubsub.h"
#include "utf8.h"

typedef Google__Pubsub__V1__StreamingPullResponse Resp;
typedef Google__Pubsub__V1__ReceivedMessage Recv;
typedef Google__Pubsub__V1__PubsubMessage Msg;

static unsigned rnd(unsigned n)
{
	return (unsigned)rand() % n;
}

static char *rstr(int maxlen)
{
	int n = (int)rnd((unsigned)maxlen + 1);
	char *s = malloc((size_t)n + 1);
	for (int i = 0; i < n; i++)
		s[i] = (char)(' ' + rnd(95));
	s[n] = '\0';
	return s;
}

/* the text the previous reader made of a Timestamp (gmtime_r, strftime, snprintf) */
static const char *ref_time(const Google__Protobuf__Timestamp *t, char *buf, size_t cap)
{
	time_t s = (time_t)t->seconds;
	struct tm tm;
	if (!gmtime_r(&s, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return NULL;
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	int32_t ns = t->nanos >= 0 && t->nanos <= 999999999 ? t->nanos : 0;
	if (ns == 0)
		snprintf(buf + n, cap - n, "Z");
	else if (ns % 1000000 == 0)
		snprintf(buf + n, cap - n, ".%03dZ", ns / 1000000);
	else if (ns % 1000 == 0)
		snprintf(buf + n, cap - n, ".%06dZ", ns / 1000);
	else
		snprintf(buf + n, cap - n, ".%09dZ", ns);
	return buf;
}

/*
 * text_same: the hand reader's string o is protobuf-c's p. protobuf-c's C
 * string stops at a NUL byte; the hand reader writes UTF8_NUL_TEXT for it and
 * goes on, so up to there they agree.
 */
static int text_same(const char *o, const char *p)
{
	const char *nul = strstr(o, UTF8_NUL_TEXT);
	if (!nul)
		return strcmp(o, p) == 0;
	size_t k = (size_t)(nul - o);
	return strlen(p) == k && memcmp(o, p, k) == 0;
}

/* same: the hand reader's messages are protobuf-c's r, field by field. */
static int same(const Resp *r, const jr_pubsub_msg *m, size_t n)
{
	if (n != r->n_received_messages)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const Recv *rm = r->received_messages[i];
		const Msg *pm = rm->message;
		const jr_pubsub_msg *o = &m[i];
		if (strcmp(o->ack_id, rm->ack_id ? rm->ack_id : ""))
			return 0;
		if ((o->delivery_attempt) != (rm->delivery_attempt > 0 ? rm->delivery_attempt : 0))
			return 0;
		if (!pm) {
			if (o->message_id)
				return 0;
			continue;
		}
		if (!o->message_id || !text_same(o->message_id, pm->message_id))
			return 0;
		if (o->data_len != pm->data.len || (o->data_len && memcmp(o->data, pm->data.data, o->data_len)))
			return 0;
		const char *ok = pm->ordering_key && pm->ordering_key[0] ? pm->ordering_key : NULL;
		if ((ok == NULL) != (o->ordering_key == NULL) || (ok && !text_same(o->ordering_key, ok)))
			return 0;
		char tb[48];
		const char *t = pm->publish_time ? ref_time(pm->publish_time, tb, sizeof tb) : NULL;
		if ((t == NULL) != (o->publish_time == NULL) || (t && strcmp(t, o->publish_time)))
			return 0;
		if (o->n_attrs != pm->n_attributes)
			return 0;
		for (size_t k = 0; k < o->n_attrs; k++)
			if (!text_same(o->attrs[k].key, pm->attributes[k]->key) ||
			    !text_same(o->attrs[k].value, pm->attributes[k]->value))
				return 0;
	}
	return 1;
}

static size_t random_response(uint8_t *out, size_t cap)
{
	Resp r = GOOGLE__PUBSUB__V1__STREAMING_PULL_RESPONSE__INIT;
	Recv rms[6], *rmp[6];
	Msg pms[6];
	Google__Protobuf__Timestamp ts[6];
	Google__Pubsub__V1__PubsubMessage__AttributesEntry ents[6][5], *entp[6][5];
	Google__Pubsub__V1__StreamingPullResponse__SubscriptionProperties sp =
		GOOGLE__PUBSUB__V1__STREAMING_PULL_RESPONSE__SUBSCRIPTION_PROPERTIES__INIT;
	Google__Pubsub__V1__StreamingPullResponse__AcknowledgeConfirmation ac =
		GOOGLE__PUBSUB__V1__STREAMING_PULL_RESPONSE__ACKNOWLEDGE_CONFIRMATION__INIT;
	Google__Pubsub__V1__StreamingPullResponse__ModifyAckDeadlineConfirmation mc =
		GOOGLE__PUBSUB__V1__STREAMING_PULL_RESPONSE__MODIFY_ACK_DEADLINE_CONFIRMATION__INIT;
	char *owned[260];
	char *lists[7][8];
	size_t n_owned = 0;
	r.n_received_messages = rnd(7);
	r.received_messages = rmp;
	if (rnd(3) == 0) {
		sp.exactly_once_delivery_enabled = 1;
		sp.message_ordering_enabled = rnd(2);
		r.subscription_properties = &sp;
	}
	size_t nl[7];
	for (int l = 0; l < 7; l++) {
		nl[l] = rnd(3) == 0 ? rnd(9) : 0;
		for (size_t k = 0; k < nl[l]; k++)
			lists[l][k] = owned[n_owned++] = rstr(rnd(8) ? 30 : 0);
	}
	if (rnd(2)) {
		ac.n_ack_ids = nl[0], ac.ack_ids = lists[0];
		ac.n_invalid_ack_ids = nl[1], ac.invalid_ack_ids = lists[1];
		ac.n_unordered_ack_ids = nl[2], ac.unordered_ack_ids = lists[2];
		ac.n_temporary_failed_ack_ids = nl[3], ac.temporary_failed_ack_ids = lists[3];
		r.acknowledge_confirmation = &ac;
	}
	if (rnd(2)) {
		mc.n_ack_ids = nl[4], mc.ack_ids = lists[4];
		mc.n_invalid_ack_ids = nl[5], mc.invalid_ack_ids = lists[5];
		mc.n_temporary_failed_ack_ids = nl[6], mc.temporary_failed_ack_ids = lists[6];
		r.modify_ack_deadline_confirmation = &mc;
	}
	for (size_t i = 0; i < r.n_received_messages; i++) {
		google__pubsub__v1__received_message__init(&rms[i]);
		rmp[i] = &rms[i];
		rms[i].ack_id = owned[n_owned++] = rstr(rnd(4) ? 40 : 0);
		rms[i].delivery_attempt = (int)rnd(3) - 1 + (rnd(5) == 0 ? 1000000 : 0);
		if (rnd(8) == 0)
			continue; /* no message */
		Msg *pm = &pms[i];
		google__pubsub__v1__pubsub_message__init(pm);
		rms[i].message = pm;
		pm->message_id = owned[n_owned++] = rstr(rnd(6) ? 20 : 0);
		char *d = owned[n_owned++] = rstr(300);
		pm->data.data = (uint8_t *)d;
		pm->data.len = strlen(d);
		pm->ordering_key = owned[n_owned++] = rstr(rnd(2) ? 10 : 0);
		pm->n_attributes = rnd(6);
		pm->attributes = entp[i];
		for (size_t k = 0; k < pm->n_attributes; k++) {
			google__pubsub__v1__pubsub_message__attributes_entry__init(&ents[i][k]);
			entp[i][k] = &ents[i][k];
			ents[i][k].key = owned[n_owned++] = rstr(12);
			ents[i][k].value = owned[n_owned++] = rstr(rnd(3) ? 30 : 0);
		}
		if (rnd(4)) {
			google__protobuf__timestamp__init(&ts[i]);
			ts[i].seconds = rnd(4) ? 1700000000 + (int64_t)rnd(100000) : (int64_t)rnd(2) * 300000000000LL - (int64_t)rnd(100);
			unsigned kind = rnd(5);
			ts[i].nanos = kind == 0 ? 0 : kind == 1 ? (int32_t)rnd(1000) * 1000000 : kind == 2 ? (int32_t)rnd(1000000) * 1000 : kind == 3 ? (int32_t)rnd(1000000000) : -1;
			pm->publish_time = &ts[i];
		}
	}
	size_t n = google__pubsub__v1__streaming_pull_response__get_packed_size(&r);
	CU_ASSERT_FATAL(n <= cap);
	google__pubsub__v1__streaming_pull_response__pack(&r, out);
	for (size_t i = 0; i < n_owned; i++)
		free(owned[i]);
	return n;
}

/* twice: field num occurs more than once in the message b[0..n). */
static int twice(const uint8_t *b, size_t n, uint64_t num)
{
	const uint8_t *p = b, *end = b + n;
	grpcx_pb_field f;
	int seen = 0;
	while (grpcx_pb_next(&p, end, &f) > 0)
		seen += f.num == num;
	return seen > 1;
}

/* dup_singular: a ReceivedMessage with two messages, a PubsubMessage with two publish times, or a response with two confirmations of a kind or two properties. */
static int dup_singular(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	grpcx_pb_field f, g;
	if (twice(buf, len, 3) || twice(buf, len, 4) || twice(buf, len, 5))
		return 1; /* a confirmation or the properties twice */
	while (grpcx_pb_next(&p, end, &f) > 0) {
		if (f.num != 1 || f.wt != 2)
			continue;
		if (twice(f.data, f.len, 2))
			return 1;
		const uint8_t *q = f.data, *qe = f.data + f.len;
		while (grpcx_pb_next(&q, qe, &g) > 0)
			if (g.num == 2 && g.wt == 2 && twice(g.data, g.len, 4))
				return 1;
	}
	return 0;
}

/* same_list: the hand reader's list (empty ids dropped, as the reader drops them) is protobuf-c's. */
static int same_list(const char *const *o, size_t no, char **p, size_t np)
{
	size_t k = 0;
	for (size_t i = 0; i < np; i++) {
		if (!p[i][0])
			continue;
		if (k >= no || !text_same(o[k], p[i]))
			return 0;
		k++;
	}
	return k == no;
}

/* same_conf: the confirmations and properties read by hand are protobuf-c's. */
static int same_conf(const Resp *r, const jr_pubsub_conf *c)
{
	const Google__Pubsub__V1__StreamingPullResponse__SubscriptionProperties *sp =
		r->subscription_properties;
	if ((sp != NULL) != (c->has_properties != 0))
		return 0;
	if (sp && ((sp->exactly_once_delivery_enabled != 0) != (c->exactly_once != 0) ||
		   (sp->message_ordering_enabled != 0) != (c->ordering != 0)))
		return 0;
	const Google__Pubsub__V1__StreamingPullResponse__AcknowledgeConfirmation *a =
		r->acknowledge_confirmation;
	const Google__Pubsub__V1__StreamingPullResponse__ModifyAckDeadlineConfirmation *m =
		r->modify_ack_deadline_confirmation;
	char *none[1];
	return same_list(c->ids[0], c->n[0], a ? a->ack_ids : none, a ? a->n_ack_ids : 0) &&
	       same_list(c->ids[1], c->n[1], a ? a->invalid_ack_ids : none, a ? a->n_invalid_ack_ids : 0) &&
	       same_list(c->ids[2], c->n[2], a ? a->unordered_ack_ids : none, a ? a->n_unordered_ack_ids : 0) &&
	       same_list(c->ids[3], c->n[3], a ? a->temporary_failed_ack_ids : none,
			 a ? a->n_temporary_failed_ack_ids : 0) &&
	       same_list(c->ids[4], c->n[4], m ? m->ack_ids : none, m ? m->n_ack_ids : 0) &&
	       same_list(c->ids[5], c->n[5], m ? m->invalid_ack_ids : none, m ? m->n_invalid_ack_ids : 0) &&
	       same_list(c->ids[6], c->n[6], m ? m->temporary_failed_ack_ids : none,
			 m ? m->n_temporary_failed_ack_ids : 0);
}

/* check: both readers on buf; 1 when both refuse, 2 when both read the same, 0 when they differ. */
static int check(const uint8_t *buf, size_t len)
{
	Resp *r = google__pubsub__v1__streaming_pull_response__unpack(NULL, len, buf);
	jr_arena a;
	arena_init(&a);
	jr_pubsub_msg *m;
	size_t n;
	int rc = pubsub_decode_response(buf, len, &a, &m, &n);
	jr_pubsub_conf c;
	if (rc == 0 && pubsub_decode_confirmations(buf, len, &a, &c) < 0)
		rc = -1;
	int res = !r && rc < 0 ? 1 : r && rc == 0 && same(r, m, n) && same_conf(r, &c) ? 2 : 0;
	if (!res && r && rc == 0 && dup_singular(buf, len))
		res = 3;
	if (!res && getenv("DUMP_DIFFER")) {
		FILE *df = fopen(getenv("DUMP_DIFFER"), "ab");
		if (df) {
			fwrite(&len, sizeof len, 1, df);
			fwrite(buf, 1, len, df);
			fclose(df);
		}
	}
	if (!res)
		fprintf(stderr, "differ%s: protobuf-c %s, hand reader %s (%zu bytes)\n", r && rc == 0 && same(r, m, n) ? " (conf)" : "",
			r ? "read it" : "refused", rc ? "refused" : "read it", len);
	if (r)
		google__pubsub__v1__streaming_pull_response__free_unpacked(r, NULL);
	arena_free(&a);
	return res;
}

static void test_random(void)
{
	static uint8_t buf[65536];
	srand(7);
	int differ = 0, read = 0;
	for (int i = 0; i < 3000; i++) {
		size_t n = random_response(buf, sizeof buf);
		int r = check(buf, n);
		differ += r == 0;
		read += r == 2;
	}
	CU_ASSERT_EQUAL(differ, 0);
	CU_ASSERT_EQUAL(read, 3000);
}

static void test_mutations(void)
{
	static uint8_t buf[65536], mut[65537];
	srand(11);
	int differ = 0, refused = 0, read = 0, merged = 0;
	for (int i = 0; i < 600; i++) {
		size_t n = random_response(buf, sizeof buf);
		if (n == 0)
			continue;
		for (int j = 0; j < 40; j++) {
			size_t len = n;
			memcpy(mut, buf, n);
			switch (rnd(4)) {
			case 0: /* one byte changed */
				mut[rnd((unsigned)n)] = (uint8_t)rnd(256);
				break;
			case 1: /* cut */
				len = rnd((unsigned)n);
				break;
			case 2: { /* one byte inserted */
				size_t at = rnd((unsigned)n + 1);
				memmove(mut + at + 1, buf + at, n - at);
				mut[at] = (uint8_t)rnd(256);
				len = n + 1;
				break;
			}
			default: /* a small number changed in a varint-ish place */
				mut[rnd((unsigned)n)] ^= (uint8_t)(1u << rnd(8));
				break;
			}
			int r = check(mut, len);
			differ += r == 0;
			merged += r == 3;
			refused += r == 1;
			read += r == 2;
		}
	}
	CU_ASSERT_EQUAL(differ, 0);
	CU_ASSERT(refused > 1000); /* the mutations reach both outcomes */
	CU_ASSERT(read > 1000);
	CU_ASSERT(merged < 20);
}

static void test_empty(void)
{
	jr_arena a;
	arena_init(&a);
	jr_pubsub_msg *m = (jr_pubsub_msg *)&a;
	size_t n = 9;
	CU_ASSERT_EQUAL(pubsub_decode_response("", 0, &a, &m, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(m);
	arena_free(&a);
}

/* Bounds: ids over JR_PUBSUB_MAX_ACK_ID bytes are dropped and counted. */
static void test_conf_bounds(void)
{
	static char longid[JR_PUBSUB_MAX_ACK_ID + 2];
	memset(longid, 'x', sizeof longid - 1);
	char *ids[2] = {"ok-1", longid};
	Resp r = GOOGLE__PUBSUB__V1__STREAMING_PULL_RESPONSE__INIT;
	Google__Pubsub__V1__StreamingPullResponse__AcknowledgeConfirmation ac =
		GOOGLE__PUBSUB__V1__STREAMING_PULL_RESPONSE__ACKNOWLEDGE_CONFIRMATION__INIT;
	ac.n_temporary_failed_ack_ids = 2;
	ac.temporary_failed_ack_ids = ids;
	r.acknowledge_confirmation = &ac;
	static uint8_t buf[4096];
	size_t n = google__pubsub__v1__streaming_pull_response__pack(&r, buf);
	jr_arena a;
	arena_init(&a);
	jr_pubsub_conf c;
	CU_ASSERT_EQUAL(pubsub_decode_confirmations(buf, n, &a, &c), 0);
	CU_ASSERT_EQUAL(c.n[JR_CONF_ACK_TEMPORARY], 1);
	CU_ASSERT_STRING_EQUAL(c.ids[JR_CONF_ACK_TEMPORARY][0], "ok-1");
	CU_ASSERT_EQUAL(c.dropped, 1);
	CU_ASSERT_EQUAL(c.has_properties, 0);
	CU_ASSERT_EQUAL(pubsub_decode_confirmations(buf, n - 1, &a, &c), -1); /* cut */
	CU_ASSERT_EQUAL(c.n[JR_CONF_ACK_TEMPORARY], 0);
	arena_free(&a);
}

static const cu_test tests[] = {
	{ "random", test_random },
	{ "mutations", test_mutations },
	{ "empty", test_empty },
	{ "confirmations: bounds", test_conf_bounds },
	{ NULL, NULL },
};

int main(void)
{
	return cu_run("pubsub_decode", tests);
}
