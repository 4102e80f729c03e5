/*
 * repeat.c — which deliveries are suspected repeats (repeat.h).
 */
#include "repeat.h"

#include <string.h>

jr_repeat_conf repeat_conf_default(void)
{
	return (jr_repeat_conf){.mode = JR_REPEAT_ON_REDELIVERY,
				.min_age_ms = REPEAT_MIN_AGE_MS,
				.lookback_ms = REPEAT_LOOKBACK_MS};
}

jr_repeat_why repeat_suspect(const jr_repeat_conf *c, const jr_repeat_in *in, int64_t now_ms)
{
	if (c->mode == JR_REPEAT_ALWAYS)
		return JR_REPEAT_BY_MODE;
	if (c->mode == JR_REPEAT_NEVER || !in->has_message)
		return JR_REPEAT_NOT;
	if (in->delivery_attempt > 1)
		return JR_REPEAT_BY_ATTEMPT;
	if (in->delivery_attempt == 1) /* reported: the first (or all before it were held here) */
		return in->seen ? JR_REPEAT_BY_SEEN : JR_REPEAT_NOT;
	if (in->publish_ms >= 0 && now_ms - in->publish_ms >= c->min_age_ms)
		return JR_REPEAT_BY_AGE;
	if (in->seen)
		return JR_REPEAT_BY_SEEN;
	return JR_REPEAT_NOT;
}

const char *repeat_why_name(jr_repeat_why why)
{
	switch (why) {
	case JR_REPEAT_BY_MODE: return "always";
	case JR_REPEAT_BY_ATTEMPT: return "attempt";
	case JR_REPEAT_BY_AGE: return "age";
	case JR_REPEAT_BY_SEEN: return "seen";
	case JR_REPEAT_NOT: break;
	}
	return "no";
}

int64_t repeat_since_ms(const jr_repeat_conf *c, int64_t publish_ms, int64_t now_ms)
{
	int64_t since = publish_ms >= 0 ? publish_ms - REPEAT_SKEW_MS : now_ms - c->lookback_ms;
	return since < now_ms ? since : now_ms;
}

static const char *const mode_names[] = {"never", "on_redelivery", "always"};

int repeat_mode_parse(const char *s, jr_repeat_mode *m)
{
	for (int i = 0; i <= JR_REPEAT_ALWAYS; i++)
		if (s && !strcmp(s, mode_names[i])) {
			*m = (jr_repeat_mode)i;
			return 0;
		}
	return -1;
}

const char *repeat_mode_name(jr_repeat_mode m)
{
	return m >= JR_REPEAT_NEVER && m <= JR_REPEAT_ALWAYS ? mode_names[m] : "?";
}

/* digits: n decimal digits at *p into *v (p advances); -1 when not there. */
static int digits(const char **p, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return -1;
		x = x * 10 + (ch - '0');
	}
	*p += n;
	*v = x;
	return 0;
}

/* days_from_civil: days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* sep: *p is c (p advances); -1 when not. */
static int sep(const char **p, char c)
{
	if (**p != c)
		return -1;
	(*p)++;
	return 0;
}

/* zone: "Z" or "+hh:mm" / "-hh:mm" at p, the offset in minutes; -1 when not one. */
static int zone(const char *p, int *off_min)
{
	int sign = 1, hh, mm;
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		*off_min = 0;
		return 0;
	}
	if (*p == '-')
		sign = -1;
	else if (*p != '+')
		return -1;
	p++;
	if (digits(&p, 2, &hh) < 0 || sep(&p, ':') < 0 || digits(&p, 2, &mm) < 0 || *p)
		return -1;
	if (hh > 23 || mm > 59)
		return -1;
	*off_min = sign * (hh * 60 + mm);
	return 0;
}

int repeat_time_ms(const char *s, int64_t *ms)
{
	int y, mo, d, h, mi, se, ms_frac = 0, off;
	const char *p = s;
	if (!s || digits(&p, 4, &y) < 0 || sep(&p, '-') < 0 || digits(&p, 2, &mo) < 0 ||
	    sep(&p, '-') < 0 || digits(&p, 2, &d) < 0)
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (digits(&p, 2, &h) < 0 || sep(&p, ':') < 0 || digits(&p, 2, &mi) < 0 ||
	    sep(&p, ':') < 0 || digits(&p, 2, &se) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	if (*p == '.') {
		p++;
		int n = 0;
		for (; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 3)
				ms_frac = ms_frac * 10 + (*p - '0');
		if (n == 0)
			return -1;
		for (; n < 3; n++)
			ms_frac *= 10;
	}
	if (zone(p, &off) < 0)
		return -1;
	int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	*ms = (secs - (int64_t)off * 60) * 1000 + ms_frac;
	return 0;
}
