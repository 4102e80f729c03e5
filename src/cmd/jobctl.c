/*
 * jobctl.c — `jobrelay jobs list|run` and `jobrelay executions
 * list|get|cancel|wait` (docs/jobs.md).
 *
 * One loop and one Run API client for the command; each call is started and
 * the loop run until its callback has printed what it got (results are only
 * valid inside the callback). Lists follow next_page_token to the end
 * (bounded: CTL_MAX_PAGES pages per location). Several projects and regions
 * are the cross product of --project and --region, each defaulting to the
 * config's project/region and those of its routes.
 *
 * Output (--format): a table; ndjson, one JSON object a line, streamed page
 * by page (the default when stdout is not a terminal, as the table is on
 * one); json, one array of the same objects; yaml, a list of them. The
 * flags and their ids come from the command table (commands.c, jobctl.h).
 */
#include "jobctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "config_load.h"
#include "json.h"
#include "gcreds.h"
#include "log.h"
#include "runwatch.h"

#define CTL_MAX_PAGES 1000
#define CTL_PAGE_SIZE 100
#define CTL_MAX_LIST 64   /* projects, regions, labels, env, args given */
#define CTL_CALL_MS 30000

enum { FMT_TABLE, FMT_NDJSON, FMT_JSON, FMT_YAML };

typedef struct ctl {
	const jr_config *cfg;
	const char *cmd;         /* "jobs list", ... for messages */
	const char *job;         /* executions list --job */
	char *strs[CTL_MAX_LIST * 2]; /* copies of flag values, owned */
	size_t n_strs;
	const char *projects[CTL_MAX_LIST];
	size_t n_projects;
	const char *regions[CTL_MAX_LIST];
	size_t n_regions;
	jr_kv labels[CTL_MAX_LIST];
	size_t n_labels;
	jr_kv env[CTL_MAX_LIST];
	size_t n_env;
	char *args[CTL_MAX_LIST];
	size_t n_args;
	int fmt, wait, async, tasks, limit;
	long records;            /* printed as json or yaml so far */
	int64_t timeout_ms;      /* run: execution timeout; wait: how long */
	jr_loop *loop;
	jr_runjob *api;
	jr_buf out;
	/* the call in progress */
	int done, code, failed;
	long count;
	char token[4096];
	int header_done;
} ctl;

/* ---- output pieces ---- */

void jobctl_time(int64_t ms, char out[32])
{
	if (ms > 0)
		log_time_text(ms, out);
	else
		out[0] = 0;
}

static int jstr(jr_buf *b, const char *s)
{
	return s ? jstr_write(b, s, strlen(s)) : buf_addlit(b, "null");
}

/* jkey: ,"key": (first: no comma) */
static int jkey(jr_buf *b, int first, const char *k)
{
	return (first ? 0 : buf_addc(b, ',')) | jstr(b, k) | buf_addc(b, ':');
}

static int jtime(jr_buf *b, const char *k, int64_t ms)
{
	char t[32];
	jobctl_time(ms, t);
	return jkey(b, 0, k) | jstr(b, ms > 0 ? t : NULL);
}

static int jkvs(jr_buf *b, const jr_kv *kv, size_t n)
{
	int rc = buf_addc(b, '{');
	for (size_t i = 0; i < n; i++)
		rc |= jkey(b, i == 0, kv[i].key) | jstr(b, kv[i].value);
	return rc | buf_addc(b, '}');
}

/* name_part: the value after "/<coll>/" in a resource name, into out (cap). */
static const char *name_part(const char *name, const char *coll, char *out, size_t cap)
{
	out[0] = 0;
	const char *p = name ? strstr(name, coll) : NULL;
	if (!p)
		return out;
	p += strlen(coll);
	size_t n = strcspn(p, "/");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return out;
}

int jobctl_job_json(jr_buf *b, const jr_job *j)
{
	char proj[256], loc[256], id[256];
	int rc = buf_addc(b, '{') | jkey(b, 1, "name") | jstr(b, j->name);
	rc |= jkey(b, 0, "project") | jstr(b, name_part(j->name, "projects/", proj, sizeof proj));
	rc |= jkey(b, 0, "region") | jstr(b, name_part(j->name, "/locations/", loc, sizeof loc));
	rc |= jkey(b, 0, "job") | jstr(b, name_part(j->name, "/jobs/", id, sizeof id));
	rc |= jkey(b, 0, "labels") | jkvs(b, j->labels, j->n_labels);
	rc |= jkey(b, 0, "executionCount") | buf_addi(b, j->execution_count);
	rc |= jkey(b, 0, "lastExecution");
	if (j->last_execution) {
		rc |= buf_addc(b, '{') | jkey(b, 1, "name") | jstr(b, j->last_execution);
		rc |= jkey(b, 0, "state") | jstr(b, j->last_state);
		rc |= jtime(b, "createTime", j->last_create_ms) | buf_addc(b, '}');
	} else {
		rc |= buf_addlit(b, "null");
	}
	return rc | buf_addc(b, '}');
}

int jobctl_exec_json(jr_buf *b, const jr_execution *e)
{
	int rc = buf_addc(b, '{') | jkey(b, 1, "name") | jstr(b, e->name);
	rc |= jkey(b, 0, "job") | jstr(b, e->job);
	rc |= jkey(b, 0, "state") | jstr(b, runexec_state_name(e->state));
	rc |= jkey(b, 0, "taskCount") | buf_addi(b, e->task_count);
	rc |= jkey(b, 0, "running") | buf_addi(b, e->running);
	rc |= jkey(b, 0, "succeeded") | buf_addi(b, e->succeeded);
	rc |= jkey(b, 0, "failed") | buf_addi(b, e->failed);
	rc |= jkey(b, 0, "cancelled") | buf_addi(b, e->cancelled);
	rc |= jkey(b, 0, "retried") | buf_addi(b, e->retried);
	rc |= jtime(b, "createTime", e->create_ms) | jtime(b, "startTime", e->start_ms);
	rc |= jtime(b, "completionTime", e->completion_ms);
	rc |= jkey(b, 0, "logUri") | jstr(b, e->log_uri);
	rc |= jkey(b, 0, "reason") | jstr(b, e->reason);
	rc |= jkey(b, 0, "executionReason") | jstr(b, e->exec_reason);
	rc |= jkey(b, 0, "env") | jkvs(b, e->env, e->n_env);
	return rc | buf_addc(b, '}');
}

char *jobctl_exec_name(const char *arg, const char *project, const char *region)
{
	if (!strncmp(arg, "projects/", 9))
		return strstr(arg, "/executions/") ? jr_strdup(arg) : NULL;
	const char *dash = strrchr(arg, '-');
	if (strchr(arg, '/') || !dash || dash == arg || !dash[1] || !project || !region)
		return NULL;
	return jr_asprintf("projects/%s/locations/%s/jobs/%.*s/executions/%s", project, region,
			   (int)(dash - arg), arg, arg);
}

static void flush_out(ctl *c)
{
	fwrite(c->out.data ? c->out.data : "", 1, c->out.len, stdout);
	fflush(stdout);
	buf_reset(&c->out);
}

/* ---- json and yaml ---- */

/* yaml_key: a key plain when it is a simple word, else double-quoted. */
static void yaml_key(jr_buf *b, const char *k)
{
	size_t n = strlen(k);
	if (n && strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n &&
	    strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", k[0]))
		buf_add(b, k, n);
	else
		jstr(b, k);
}

static void yaml_node(jr_buf *b, yajl_val v, int ind, int inline_first);

/* yaml_value: after "key:" or "- ": a scalar on the line, or a block below it. */
static void yaml_value(jr_buf *b, yajl_val v, int ind)
{
	if (YAJL_IS_OBJECT(v) && v->u.object.len) {
		buf_addc(b, '\n');
		yaml_node(b, v, ind, 0);
	} else if (YAJL_IS_ARRAY(v) && v->u.array.len) {
		buf_addc(b, '\n');
		yaml_node(b, v, ind, 0);
	} else {
		buf_addc(b, ' ');
		yaml_node(b, v, ind, 1);
		buf_addc(b, '\n');
	}
}

/*
 * yaml_node: v in block style at indent ind. Strings are written as JSON
 * strings, which YAML reads as double-quoted scalars. inline_first: the
 * first line continues the current one ("- key: ...").
 */
static void yaml_node(jr_buf *b, yajl_val v, int ind, int inline_first)
{
	if (YAJL_IS_OBJECT(v) && v->u.object.len) {
		for (size_t i = 0; i < v->u.object.len; i++) {
			if (i || !inline_first)
				buf_printf(b, "%*s", ind, "");
			yaml_key(b, v->u.object.keys[i]);
			buf_addc(b, ':');
			yaml_value(b, v->u.object.values[i], ind + 2);
		}
	} else if (YAJL_IS_ARRAY(v) && v->u.array.len) {
		for (size_t i = 0; i < v->u.array.len; i++) {
			if (i || !inline_first)
				buf_printf(b, "%*s", ind, "");
			buf_addlit(b, "-");
			yajl_val e = v->u.array.values[i];
			if ((YAJL_IS_OBJECT(e) && e->u.object.len) || (YAJL_IS_ARRAY(e) && e->u.array.len)) {
				buf_addc(b, ' ');
				yaml_node(b, e, ind + 2, 1);
			} else {
				yaml_value(b, e, ind + 2);
			}
		}
	} else if (YAJL_IS_OBJECT(v)) {
		buf_addlit(b, "{}");
	} else if (YAJL_IS_ARRAY(v)) {
		buf_addlit(b, "[]");
	} else if (YAJL_IS_STRING(v)) {
		jstr(b, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		buf_adds(b, v->u.number.r);
	} else {
		buf_adds(b, YAJL_IS_TRUE(v) ? "true" : YAJL_IS_FALSE(v) ? "false" : "null");
	}
}

/* emit: one record (JSON in rec) in c's format onto c->out. */
static void emit(ctl *c, jr_buf *rec)
{
	if (c->fmt == FMT_NDJSON) {
		buf_add(&c->out, rec->data, rec->len);
		buf_addc(&c->out, '\n');
	} else if (c->fmt == FMT_JSON) {
		buf_adds(&c->out, c->records++ ? ",\n" : "[\n");
		buf_add(&c->out, rec->data, rec->len);
	} else {
		buf_addc(rec, 0);
		char err[128];
		yajl_val v = yajl_tree_parse(rec->data, err, sizeof err);
		c->records++;
		buf_addlit(&c->out, "- ");
		if (!v) { /* the records are jobrelay's own JSON: cannot happen */
			buf_addlit(&c->out, "null\n");
			return;
		}
		yaml_node(&c->out, v, 2, 1);
		if (!YAJL_IS_OBJECT(v) || !v->u.object.len)
			buf_addc(&c->out, '\n');
		yajl_tree_free(v);
	}
	buf_reset(rec);
}

/* finish_out: the end of a json array or yaml list (an empty one when nothing was printed). */
static void finish_out(ctl *c)
{
	if (c->fmt == FMT_JSON)
		buf_adds(&c->out, c->records ? "\n]\n" : "[]\n");
	else if (c->fmt == FMT_YAML && !c->records)
		buf_addlit(&c->out, "[]\n");
	flush_out(c);
}

static void print_job(ctl *c, const jr_job *j)
{
	if (c->fmt != FMT_TABLE) {
		jr_buf rec;
		buf_init(&rec, 0);
		jobctl_job_json(&rec, j);
		emit(c, &rec);
		buf_free(&rec);
	} else {
		char proj[256], loc[256], id[256], last[256], t[32];
		if (!c->header_done++)
			buf_printf(&c->out, "%-28s %-20s %-16s %-30s %-10s %-24s %s\n", "JOB", "PROJECT",
				   "REGION", "LAST EXECUTION", "STATE", "CREATED", "LABELS");
		jobctl_time(j->last_create_ms, t);
		buf_printf(&c->out, "%-28s %-20s %-16s %-30s %-10s %-24s ",
			   name_part(j->name, "/jobs/", id, sizeof id),
			   name_part(j->name, "projects/", proj, sizeof proj),
			   name_part(j->name, "/locations/", loc, sizeof loc),
			   j->last_execution ? name_part(j->last_execution, "/executions/", last, sizeof last) : "-",
			   j->last_state ? j->last_state : "-", *t ? t : "-");
		for (size_t i = 0; i < j->n_labels; i++)
			buf_printf(&c->out, "%s%s=%s", i ? "," : "", j->labels[i].key, j->labels[i].value);
		buf_addc(&c->out, '\n');
	}
	flush_out(c);
}

static void print_exec(ctl *c, const jr_execution *e, int row)
{
	char t1[32], t2[32], t3[32];
	jobctl_time(e->create_ms, t1);
	jobctl_time(e->start_ms, t2);
	jobctl_time(e->completion_ms, t3);
	if (c->fmt != FMT_TABLE) {
		jr_buf rec;
		buf_init(&rec, 0);
		jobctl_exec_json(&rec, e);
		emit(c, &rec);
		buf_free(&rec);
	} else if (row) {
		char id[256];
		if (!c->header_done++)
			buf_printf(&c->out, "%-34s %-10s %-9s %-24s %-24s\n", "EXECUTION", "STATE",
				   "TASKS", "CREATED", "COMPLETED");
		char tasks[32];
		snprintf(tasks, sizeof tasks, "%d/%d", e->succeeded, e->task_count);
		buf_printf(&c->out, "%-34s %-10s %-9s %-24s %-24s\n",
			   name_part(e->name, "/executions/", id, sizeof id),
			   runexec_state_name(e->state), tasks, *t1 ? t1 : "-", *t3 ? t3 : "-");
	} else {
		buf_printf(&c->out,
			   "name:       %s\njob:        %s\nstate:      %s\n"
			   "tasks:      %d (running %d, succeeded %d, failed %d, cancelled %d, retried %d)\n"
			   "created:    %s\nstarted:    %s\ncompleted:  %s\nlog_uri:    %s\n",
			   e->name, e->job ? e->job : "-", runexec_state_name(e->state), e->task_count,
			   e->running, e->succeeded, e->failed, e->cancelled, e->retried,
			   *t1 ? t1 : "-", *t2 ? t2 : "-", *t3 ? t3 : "-", e->log_uri ? e->log_uri : "-");
		if (e->reason)
			buf_printf(&c->out, "reason:     %s%s%s%s\n", e->reason, e->exec_reason ? " (" : "",
				   e->exec_reason ? e->exec_reason : "", e->exec_reason ? ")" : "");
		for (size_t i = 0; i < e->n_env; i++)
			buf_printf(&c->out, "env:        %s=%s\n", e->env[i].key,
				   e->env[i].value ? e->env[i].value : "(secret)");
	}
	flush_out(c);
}

static void call_error(ctl *c, const char *what, int code, const char *message)
{
	fprintf(stderr, "jobrelay %s: %s: %s: %s\n", c->cmd, what, grpc_code_name(code),
		message && *message ? message : "(no message)");
	c->failed = 1;
}

/* run_until: drives the loop until the current call's callback set done. */
static void run_until(ctl *c)
{
	while (!c->done)
		loop_run_once(c->loop, -1);
}

/* ---- projects and regions ---- */

static void add_unique(const char **list, size_t *n, const char *v)
{
	if (!v || !*v || *n >= CTL_MAX_LIST)
		return;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp(list[i], v))
			return;
	list[(*n)++] = v;
}

/* defaults: projects and regions not given come from the config (its own, then its routes'). */
static int defaults(ctl *c)
{
	const jr_config *cfg = c->cfg;
	if (!c->n_projects) {
		if (cfg) {
			add_unique(c->projects, &c->n_projects, cfg->project);
			for (size_t i = 0; i < cfg->n_routes; i++)
				add_unique(c->projects, &c->n_projects, cfg->routes[i].project);
		}
		add_unique(c->projects, &c->n_projects, getenv("GOOGLE_CLOUD_PROJECT"));
	}
	if (!c->n_regions && cfg) {
		add_unique(c->regions, &c->n_regions, cfg->region);
		for (size_t i = 0; i < cfg->n_routes; i++)
			add_unique(c->regions, &c->n_regions, cfg->routes[i].region);
	}
	if (!c->n_projects || !c->n_regions) {
		fprintf(stderr, "jobrelay %s: no %s: give --%s, or set it in the config\n", c->cmd,
			!c->n_projects ? "project" : "region", !c->n_projects ? "project" : "region");
		return -1;
	}
	return 0;
}

/* ---- options ---- */

static int split_kv(ctl *c, const char *flag, char *arg, jr_kv *list, size_t *n)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg || *n >= CTL_MAX_LIST) {
		fprintf(stderr, "jobrelay %s: %s wants KEY=VALUE (at most %d), not '%s'\n", c->cmd, flag,
			CTL_MAX_LIST, arg);
		return -1;
	}
	*eq = 0;
	list[*n].key = arg;
	list[*n].value = eq + 1;
	(*n)++;
	return 0;
}

static int positive(ctl *c, const char *flag, const char *arg, int *out)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (*end || !*arg || v < 1 || v > 1000000) {
		fprintf(stderr, "jobrelay %s: %s must be a positive number, not '%s'\n", c->cmd, flag, arg);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/*
 * split_list: a gcloud list value ("a,b,c"; "^:^a,b:c" makes ':' the
 * delimiter) into its items, each a new string kept in c->strs. Returns the
 * count, or -1 when there are more than max.
 */
static int split_list(ctl *c, const char *v, char **items, size_t max)
{
	char delim = ',';
	if (v[0] == '^' && v[1] && v[1] != '^' && v[2] == '^') {
		delim = v[1];
		v += 3;
	}
	size_t n = 0;
	for (const char *p = v;; p++) {
		const char *end = strchr(p, delim);
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (n == max || c->n_strs == CTL_MAX_LIST * 2)
			return -1;
		char *item = jr_calloc(1, len + 1);
		memcpy(item, p, len);
		c->strs[c->n_strs++] = item;
		items[n++] = item;
		if (!end)
			break;
		p = end;
	}
	return (int)n;
}

/* list_flag: --args or --update-env-vars, appended to the lists. */
static int list_flag(ctl *c, const char *flag, const char *v, int env)
{
	char *items[CTL_MAX_LIST];
	int n = split_list(c, v, items, CTL_MAX_LIST);
	if (n < 0) {
		fprintf(stderr, "jobrelay %s: %s: at most %d items\n", c->cmd, flag, CTL_MAX_LIST);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		if (env && split_kv(c, flag, items[i], c->env, &c->n_env) < 0)
			return -1;
		if (!env) {
			if (c->n_args >= CTL_MAX_LIST) {
				fprintf(stderr, "jobrelay %s: at most %d args\n", c->cmd, CTL_MAX_LIST);
				return -1;
			}
			c->args[c->n_args++] = items[i];
		}
	}
	return 0;
}

static int parse_format(ctl *c, const char *v)
{
	static const char *const names[] = {"table", "ndjson", "json", "yaml"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(v, names[i])) {
			c->fmt = i;
			return 0;
		}
	fprintf(stderr, "jobrelay %s: --format must be json, yaml, table or ndjson, not '%s'\n", c->cmd, v);
	return -1;
}

/* parse: the flags given to c->cmd (the table allowed only its own). 0, or -1 after a message. */
static int parse(ctl *c, const jr_cli_call *call)
{
	c->fmt = isatty(STDOUT_FILENO) ? FMT_TABLE : FMT_NDJSON;
	for (size_t i = 0; i < call->n_vals; i++) {
		const char *v = call->vals[i].value;
		const char *flag = call->vals[i].opt->name;
		char shown[64];
		snprintf(shown, sizeof shown, "--%s", flag);
		switch (call->vals[i].opt->id) {
		case JOBCTL_PROJECT:
		case JOBCTL_REGION: {
			int p = call->vals[i].opt->id == JOBCTL_PROJECT;
			if ((p ? c->n_projects : c->n_regions) >= CTL_MAX_LIST) {
				fprintf(stderr, "jobrelay %s: at most %d of %s\n", c->cmd, CTL_MAX_LIST, shown);
				return -1;
			}
			if (!*v) {
				fprintf(stderr, "jobrelay %s: %s is empty\n", c->cmd, shown);
				return -1;
			}
			if (p)
				add_unique(c->projects, &c->n_projects, v);
			else
				add_unique(c->regions, &c->n_regions, v);
			break;
		}
		case JOBCTL_LABEL:
			if (split_kv(c, shown, c->strs[c->n_strs++] = jr_strdup(v), c->labels, &c->n_labels) < 0)
				return -1;
			break;
		case JOBCTL_ENV:
			if (split_kv(c, shown, c->strs[c->n_strs++] = jr_strdup(v), c->env, &c->n_env) < 0)
				return -1;
			break;
		case JOBCTL_UPDATE_ENV:
			if (list_flag(c, shown, v, 1) < 0)
				return -1;
			break;
		case JOBCTL_ARGS:
			if (list_flag(c, shown, v, 0) < 0)
				return -1;
			break;
		case JOBCTL_FORMAT:
			if (parse_format(c, v) < 0)
				return -1;
			break;
		case JOBCTL_TASKS:
			if (positive(c, shown, v, &c->tasks) < 0)
				return -1;
			break;
		case JOBCTL_LIMIT:
			if (positive(c, shown, v, &c->limit) < 0)
				return -1;
			break;
		case JOBCTL_TIMEOUT:
			if ((c->timeout_ms = parse_duration_ms(v)) <= 0) {
				fprintf(stderr, "jobrelay %s: %s must be a duration (30s, 10m, 1h30m; a bare number is seconds), not '%s'\n",
					c->cmd, shown, v);
				return -1;
			}
			break;
		case JOBCTL_JOB:
			if (c->job) {
				fprintf(stderr, "jobrelay %s: one --job only\n", c->cmd);
				return -1;
			}
			c->job = v;
			break;
		case JOBCTL_WAIT: c->wait = 1; break;
		case JOBCTL_ASYNC: c->async = 1; break;
		}
		if (c->n_strs >= CTL_MAX_LIST * 2) {
			fprintf(stderr, "jobrelay %s: too many flags\n", c->cmd);
			return -1;
		}
	}
	if (c->wait && c->async) {
		fprintf(stderr, "jobrelay %s: --wait and --async exclude each other\n", c->cmd);
		return -1;
	}
	return 0;
}

/* ---- jobs list ---- */

static int labels_match(const ctl *c, const jr_job *j)
{
	for (size_t i = 0; i < c->n_labels; i++) {
		size_t k = 0;
		while (k < j->n_labels && (strcmp(j->labels[k].key, c->labels[i].key) ||
					   strcmp(j->labels[k].value, c->labels[i].value)))
			k++;
		if (k == j->n_labels)
			return 0;
	}
	return 1;
}

/* page_done: common end of a list page: keeps the next token. */
static void page_done(ctl *c, const jr_adminres *res, const char *what)
{
	c->done = 1;
	c->code = res->code;
	c->token[0] = 0;
	if (res->code) {
		call_error(c, what, res->code, res->message);
		return;
	}
	size_t n = strlen(res->next_page_token);
	if (n >= sizeof c->token) {
		call_error(c, what, JR_GRPC_OUT_OF_RANGE, "page token over 4 KiB");
		c->code = JR_GRPC_OUT_OF_RANGE;
		return;
	}
	memcpy(c->token, res->next_page_token, n + 1);
}

static void on_jobs(void *arg, const jr_adminres *res)
{
	ctl *c = arg;
	for (size_t i = 0; i < res->n_jobs && !(c->limit && c->count >= c->limit); i++)
		if (labels_match(c, &res->jobs[i])) {
			print_job(c, &res->jobs[i]);
			c->count++;
		}
	page_done(c, res, "ListJobs");
}

static void on_execs(void *arg, const jr_adminres *res);

/* list_pages: every page of ListJobs (execs 0) or ListExecutions under parent. */
static void list_pages(ctl *c, const char *parent, int execs)
{
	jr_runexec *a = runwatch_admin(c->api);
	c->token[0] = 0;
	for (int page = 0; page < CTL_MAX_PAGES; page++) {
		int size = CTL_PAGE_SIZE;
		if (c->limit) {
			if (c->count >= c->limit)
				return;
			if (c->limit - c->count < size)
				size = (int)(c->limit - c->count);
		}
		c->done = 0;
		int rc = execs ? runexec_list_executions(a, parent, size, c->token, CTL_CALL_MS,
							  on_execs, c)
			       : runexec_list_jobs(a, parent, size, c->token, CTL_CALL_MS, on_jobs, c);
		if (rc < 0) {
			call_error(c, parent, JR_GRPC_INVALID_ARGUMENT, "cannot start the call");
			return;
		}
		run_until(c);
		if (c->code || !c->token[0])
			return;
	}
	fprintf(stderr, "jobrelay %s: %s: stopped after %d pages\n", c->cmd, parent, CTL_MAX_PAGES);
}

static int cmd_jobs_list(ctl *c)
{
	for (size_t p = 0; p < c->n_projects; p++)
		for (size_t r = 0; r < c->n_regions; r++) {
			char *parent = jr_asprintf("projects/%s/locations/%s", c->projects[p], c->regions[r]);
			list_pages(c, parent, 0);
			free(parent);
		}
	return c->failed ? 1 : 0;
}

/* ---- executions list ---- */

static void on_execs(void *arg, const jr_adminres *res)
{
	ctl *c = arg;
	for (size_t i = 0; i < res->n_execs && !(c->limit && c->count >= c->limit); i++) {
		print_exec(c, &res->execs[i], 1);
		c->count++;
	}
	page_done(c, res, "ListExecutions");
}

/* job_names: JOB as given (a full name), or the job id in every project x region. */
static int for_each_job(ctl *c, const char *job, void (*fn)(ctl *c, const char *name))
{
	if (!strncmp(job, "projects/", 9)) {
		fn(c, job);
		return 0;
	}
	if (strchr(job, '/') || defaults(c) < 0)
		return -1;
	for (size_t p = 0; p < c->n_projects; p++)
		for (size_t r = 0; r < c->n_regions; r++) {
			char *name = jr_asprintf("projects/%s/locations/%s/jobs/%s", c->projects[p],
						 c->regions[r], job);
			fn(c, name);
			free(name);
		}
	return 0;
}

static void list_execs_of(ctl *c, const char *job)
{
	list_pages(c, job, 1);
}

/* ---- executions get / cancel / wait ---- */

static void on_exec(void *arg, const jr_adminres *res)
{
	ctl *c = arg;
	c->done = 1;
	c->code = res->code;
	if (res->code)
		call_error(c, strstr(c->cmd, "cancel") ? "CancelExecution" : "GetExecution", res->code,
			   res->message);
	else if (res->n_execs)
		print_exec(c, &res->execs[0], 0);
}

/* one_exec: the execution named by arg (full name or id), or NULL after a message. */
static char *one_exec(ctl *c, const char *arg)
{
	const char *p = c->n_projects ? c->projects[0] : NULL;
	const char *r = c->n_regions ? c->regions[0] : NULL;
	if (strncmp(arg, "projects/", 9) && (!p || !r) && defaults(c) == 0) {
		p = c->projects[0];
		r = c->regions[0];
	}
	char *name = jobctl_exec_name(arg, p, r);
	if (!name)
		fprintf(stderr, "jobrelay %s: '%s' is not projects/P/locations/L/jobs/J/executions/E, nor an execution id (JOB-ab12c) with a project and region\n",
			c->cmd, arg);
	return name;
}

static int cmd_exec_call(ctl *c, const char *name, int cancel)
{
	jr_runexec *a = runwatch_admin(c->api);
	c->done = 0;
	int rc = cancel ? runexec_cancel_execution(a, name, CTL_CALL_MS, on_exec, c)
			: runexec_get_execution(a, name, CTL_CALL_MS, on_exec, c);
	if (rc < 0) {
		call_error(c, name, JR_GRPC_INVALID_ARGUMENT, "cannot start the call");
		return 1;
	}
	run_until(c);
	return c->failed ? 1 : 0;
}

/* on_watched: the execution ended (or the wait did): print it; exit 0 only for success. */
static void on_watched(void *arg, int code, const char *message, const jr_execution *e)
{
	ctl *c = arg;
	c->done = 1;
	c->code = code;
	if (e)
		print_exec(c, e, 0);
	if (code == JR_GRPC_DEADLINE_EXCEEDED && e) {
		fprintf(stderr, "jobrelay %s: %s is still %s\n", c->cmd, e->name,
			runexec_state_name(e->state));
		c->failed = 1;
	} else if (code) {
		call_error(c, "GetExecution", code, message);
	} else if (e->state != JR_EXEC_SUCCEEDED) {
		fprintf(stderr, "jobrelay %s: execution %s %s: %s\n", c->cmd, e->name,
			runexec_state_name(e->state), e->reason ? e->reason : "(no reason given)");
		c->failed = 1;
	}
}

static int wait_for(ctl *c, const char *name)
{
	c->done = 0;
	if (runwatch_watch(c->api, name, c->timeout_ms, on_watched, c) < 0) {
		call_error(c, name, JR_GRPC_INVALID_ARGUMENT, "cannot watch it");
		return 1;
	}
	run_until(c);
	return c->failed ? 1 : 0;
}

/* ---- jobs run ---- */

typedef struct run_out {
	ctl *c;
	char *execution;
} run_out;

static void on_run(void *arg, const jr_runresult *res)
{
	run_out *ro = arg;
	ctl *c = ro->c;
	c->done = 1;
	c->code = res->code;
	if (res->code) {
		call_error(c, "RunJob", res->code, res->message);
		return;
	}
	ro->execution = res->execution ? jr_strdup(res->execution) : NULL;
	if (c->fmt != FMT_TABLE) {
		jr_buf rec;
		buf_init(&rec, 0);
		buf_addc(&rec, '{');
		jkey(&rec, 1, "execution");
		jstr(&rec, res->execution);
		jkey(&rec, 0, "logUri");
		jstr(&rec, res->log_uri);
		jkey(&rec, 0, "operation");
		jstr(&rec, res->operation);
		buf_addc(&rec, '}');
		emit(c, &rec);
		buf_free(&rec);
	} else {
		buf_printf(&c->out, "execution:  %s\nlog_uri:    %s\n",
			   res->execution ? res->execution : "-", res->log_uri ? res->log_uri : "-");
	}
	flush_out(c);
}

static int cmd_jobs_run(ctl *c, const char *job)
{
	jr_runreq req;
	memset(&req, 0, sizeof req);
	arena_init(&req.arena);
	if (!strncmp(job, "projects/", 9)) {
		req.name = arena_strdup(&req.arena, job);
	} else {
		if (strchr(job, '/') || defaults(c) < 0) {
			arena_free(&req.arena);
			return 2;
		}
		char *n = jr_asprintf("projects/%s/locations/%s/jobs/%s", c->projects[0], c->regions[0], job);
		req.name = arena_strdup(&req.arena, n);
		free(n);
	}
	req.env = c->env;
	req.n_env = c->n_env;
	req.args = c->args;
	req.n_args = c->n_args;
	req.has_args = c->n_args > 0;
	req.task_count = c->tasks;
	req.timeout_ms = c->timeout_ms;
	run_out ro = {c, NULL};
	c->done = 0;
	if (runjob_run(c->api, &req, CTL_CALL_MS, on_run, &ro) < 0) {
		fprintf(stderr, "jobrelay %s: cannot start RunJob for '%s'\n", c->cmd, req.name);
		arena_free(&req.arena);
		return 2;
	}
	run_until(c);
	arena_free(&req.arena);
	int rc = c->failed ? 1 : 0;
	if (rc == 0 && c->wait) {
		if (!ro.execution) {
			fprintf(stderr, "jobrelay %s: RunJob named no execution to wait for\n", c->cmd);
			rc = 1;
		} else {
			c->timeout_ms = 0;
			rc = wait_for(c, ro.execution);
		}
	}
	free(ro.execution);
	return rc;
}

/* open_api: the loop and client; 0, or 3 after saying the Run API cannot be reached. */
static int open_api(ctl *c)
{
	char err[256];
	c->loop = loop_new();
	c->api = runjob_new(c->loop, NULL, err, sizeof err);
	if (!c->api) {
		fprintf(stderr, "jobrelay %s: %s\n", c->cmd, err);
		return 3;
	}
	int64_t wait = c->cfg && c->cfg->call_timeout_ms < RUNJOB_STARTUP_WAIT_MS
			       ? c->cfg->call_timeout_ms
			       : RUNJOB_STARTUP_WAIT_MS;
	char why[800];
	jr_gcreds *g = gcreds_active();
	if (g && gcreds_check(g, RUNJOB_STARTUP_WAIT_MS, why, sizeof why) < 0) {
		fprintf(stderr, "jobrelay %s: %s\n", c->cmd, why);
		return 3;
	}
	if (runjob_wait_ready(c->api, wait) < 0) {
		fprintf(stderr, "jobrelay %s: cannot reach the Run API at %s (waited %lld ms)\n",
			c->cmd, runjob_target(c->api), (long long)wait);
		return 3;
	}
	return 0;
}

/* run: the command c->cmd with its arguments (the table checked their number). */
static int run(ctl *c, const char *group, const char *sub, const jr_cli_call *call)
{
	if (parse(c, call) < 0)
		return 2;
	int jobs = !strcmp(group, "jobs");
	const char *arg = call->n_args ? call->args[0] : NULL;
	if (call->n_args_before_dashes > 1) { /* the container's args come after -- */
		fprintf(stderr, "jobrelay %s: unexpected argument '%s' (the container's args go after --)\n",
			c->cmd, call->args[1]);
		return 2;
	}
	for (size_t i = 1; i < call->n_args; i++) { /* jobs run JOB -- ARGS... */
		if (c->n_args >= CTL_MAX_LIST) {
			fprintf(stderr, "jobrelay %s: at most %d args\n", c->cmd, CTL_MAX_LIST);
			return 2;
		}
		c->args[c->n_args++] = call->args[i];
	}
	if (!jobs && !strcmp(sub, "list")) {
		if (!!arg == !!c->job) {
			fprintf(stderr, "jobrelay %s: name the job once: JOB or --job JOB\n", c->cmd);
			return 2;
		}
		if (!arg)
			arg = c->job;
	}
	char *name = NULL;
	if (jobs && !strcmp(sub, "list") && defaults(c) < 0)
		return 2;
	if (!jobs && strcmp(sub, "list") && !(name = one_exec(c, arg)))
		return 2;
	int rc = open_api(c), opened = rc == 0;
	if (opened) {
		if (jobs)
			rc = !strcmp(sub, "list") ? cmd_jobs_list(c) : cmd_jobs_run(c, arg);
		else if (!strcmp(sub, "list"))
			rc = for_each_job(c, arg, list_execs_of) < 0 ? 2 : c->failed ? 1 : 0;
		else if (!strcmp(sub, "wait"))
			rc = wait_for(c, name);
		else
			rc = cmd_exec_call(c, name, !strcmp(sub, "cancel"));
	}
	free(name);
	if (opened)
		finish_out(c); /* the array or list is closed also after a failed call */
	return rc;
}

int jobctl_run(const jr_config *cfg, const jr_cli_call *call)
{
	ctl *c = jr_calloc(1, sizeof *c);
	c->cfg = cfg;
	c->cmd = call->name;
	buf_init(&c->out, 0);
	int rc = run(c, call->cmd->group, call->cmd->name, call);
	if (c->api)
		runjob_free(c->api);
	if (c->loop)
		loop_free(c->loop);
	buf_free(&c->out);
	for (size_t i = 0; i < c->n_strs; i++)
		free(c->strs[i]);
	free(c);
	return rc;
}
