/*
 * cli.c — the command-line engine of cli.h: the parser (global flags
 * anywhere, --flag VALUE and --flag=VALUE, -- ends the flags), the help of
 * the program, a group and a command, the man page and the bash and zsh
 * completion scripts, all read off the one table in commands.c.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mem.h"

/* ---- the table ---- */

static int visible(const jr_cli_cmd *c)
{
	return !(c->flags & JR_CLI_HIDDEN);
}

static int same(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

const jr_cli_cmd *cli_find(const jr_cli_prog *prog, const char *group, const char *name)
{
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if ((group ? same(c->group, group) : !c->group) &&
		    (same(c->name, name) || same(c->alias, name)))
			return c;
	}
	return NULL;
}

static void cmd_path(const jr_cli_cmd *c, char *out, size_t n)
{
	snprintf(out, n, "%s%s%s", c->group ? c->group : "", c->group ? " " : "", c->name);
}

static const jr_cli_opt *find_opt(const jr_cli_opt *opts, const char *name, size_t len, char short_name)
{
	for (const jr_cli_opt *o = opts; o && o->name; o++)
		if (short_name ? o->short_name == short_name
			       : strlen(o->name) == len && !strncmp(o->name, name, len))
			return o;
	return NULL;
}

/* ---- parsing ---- */

typedef struct parser {
	jr_cli_call *call;
	char err[512];
	size_t cap_vals, cap_args;
} parser;

static int perr(parser *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(p->err, sizeof p->err, "%s%s%s: ", p->call->prog->name,
			 p->call->name[0] ? " " : "", p->call->name);
	if (n > 0 && (size_t)n < sizeof p->err)
		vsnprintf(p->err + n, sizeof p->err - (size_t)n, fmt, ap);
	va_end(ap);
	return 2;
}

static void add_val(parser *p, const jr_cli_opt *o, const char *v)
{
	jr_cli_call *c = p->call;
	if (c->n_vals == p->cap_vals) {
		p->cap_vals = p->cap_vals ? 2 * p->cap_vals : 8;
		c->vals = jr_realloc(c->vals, p->cap_vals * sizeof *c->vals);
	}
	c->vals[c->n_vals].opt = o;
	c->vals[c->n_vals++].value = v;
}

static void add_arg(parser *p, char *a)
{
	jr_cli_call *c = p->call;
	if (c->n_args == p->cap_args) {
		p->cap_args = p->cap_args ? 2 * p->cap_args : 8;
		c->args = jr_realloc(c->args, p->cap_args * sizeof *c->args);
	}
	c->args[c->n_args++] = a;
}

/* global: a global flag and its value (already checked present when it takes one). */
static int global(parser *p, const jr_cli_opt *o, const char *flag, const char *v)
{
	jr_cli_globals *g = &p->call->g;
	switch (o->id) {
	case JR_CLI_G_CONFIG:
		if (!*v)
			return perr(p, "%s needs a file name", flag);
		g->config = v;
		break;
	case JR_CLI_G_LOG_FORMAT:
		if ((g->log_format = log_parse_format(v)) < 0)
			return perr(p, "%s must be json or text, not '%s'", flag, v);
		break;
	case JR_CLI_G_LOG_LEVEL:
		if ((g->log_level = log_parse_level(v)) < 0)
			return perr(p, "%s must be debug, info, warning or error, not '%s'", flag, v);
		break;
	case JR_CLI_G_DRY_RUN: g->dry_run = 1; break;
	case JR_CLI_G_HELP: p->call->help = 1; break;
	case JR_CLI_G_VERSION: p->call->version = 1; break;
	}
	return 0;
}

/* flag: argv[*i], a flag; takes its value from argv[*i + 1] when it needs one and has no '='. */
static int flag(parser *p, int argc, char **argv, int *i)
{
	jr_cli_call *c = p->call;
	const char *a = argv[*i];
	const char *name, *eq = NULL;
	size_t len;
	char sh = 0;
	if (a[1] == '-') {
		name = a + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
	} else {
		name = a + 1;
		sh = a[1];
		len = 1;
		if (a[2])
			eq = a + 1; /* -pVALUE: the value follows the letter */
	}
	char shown[80];
	if (sh)
		snprintf(shown, sizeof shown, "-%c", sh);
	else
		snprintf(shown, sizeof shown, "--%.*s", (int)(len < 60 ? len : 60), name);
	const jr_cli_opt *o = NULL;
	int is_global = 0;
	if (c->cmd && !(c->cmd->flags & JR_CLI_GROUP))
		o = find_opt(c->cmd->opts, name, len, sh);
	if (!o && (o = find_opt(c->prog->globals, name, len, sh)))
		is_global = 1;
	if (!o) {
		if (!c->cmd)
			return perr(p, "unknown flag '%s' (a command's own flags follow the command)", shown);
		return perr(p, "unknown flag '%s'", shown);
	}
	const char *v = NULL;
	if (o->value) {
		if (eq)
			v = eq + 1;
		else if (*i + 1 < argc)
			v = argv[++*i];
		else
			return perr(p, "%s needs a value (%s)", shown, o->value);
	} else if (eq) {
		return perr(p, "%s takes no value", shown);
	}
	if (is_global)
		return global(p, o, shown, v);
	add_val(p, o, v);
	return 0;
}

/* word: a command, a group's command, or an argument of the command. */
static int word(parser *p, char *w)
{
	jr_cli_call *c = p->call;
	const char *group = NULL;
	if (c->cmd && !(c->cmd->flags & JR_CLI_GROUP)) {
		add_arg(p, w);
		return 0;
	}
	if (c->cmd)
		group = c->cmd->name;
	const jr_cli_cmd *found = cli_find(c->prog, group, w);
	if (!found)
		return perr(p, "unknown command '%s'", w);
	c->cmd = found;
	cmd_path(found, c->name, sizeof c->name);
	return 0;
}

static int count_args(parser *p)
{
	const jr_cli_call *c = p->call;
	const jr_cli_cmd *cmd = c->cmd;
	if ((int)c->n_args < cmd->min_args)
		return perr(p, "missing %s", cmd->args ? cmd->args : "arguments");
	if (cmd->max_args >= 0 && (int)c->n_args > cmd->max_args)
		return perr(p, "unexpected argument '%s'", c->args[cmd->max_args]);
	if (c->g.dry_run && !(cmd->flags & JR_CLI_DRY_RUN))
		return perr(p, "--dry-run is not supported by %s (replay, redrive and serve take it)", c->name);
	return 0;
}

int cli_parse(const jr_cli_prog *prog, int argc, char **argv, jr_cli_call *call)
{
	memset(call, 0, sizeof *call);
	call->prog = prog;
	call->g.log_format = JR_LOG_AUTO;
	call->g.log_level = JR_LOG_INFO;
	parser p = {.call = call};
	int asks_help = 0;
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		asks_help |= !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
	int rc = 0, flags_done = 0;
	for (int i = 1; i < argc && rc == 0; i++) {
		char *a = argv[i];
		if (!flags_done && !strcmp(a, "--")) {
			flags_done = 1;
			call->n_args_before_dashes = call->n_args;
		}
		else if (!flags_done && a[0] == '-' && a[1])
			rc = flag(&p, argc, argv, &i);
		else
			rc = word(&p, a);
	}
	if (!flags_done)
		call->n_args_before_dashes = call->n_args;
	if (rc == 0 && call->cmd && !call->help && !call->version && !(call->cmd->flags & JR_CLI_GROUP))
		rc = count_args(&p);
	if (rc && asks_help) {
		call->help = 1; /* help wins over what is wrong with the rest of the line */
		return 0;
	}
	if (rc)
		fprintf(stderr, "%s\n", p.err);
	return rc;
}

void cli_call_free(jr_cli_call *call)
{
	free(call->vals);
	free(call->args);
	call->vals = NULL;
	call->args = NULL;
}

/* run: a parsed call that asks for neither help nor a usage error. */
static int run(const jr_cli_prog *prog, jr_cli_call *c)
{
	if (!c->version && (!c->cmd || (c->cmd->flags & JR_CLI_GROUP))) {
		fprintf(stderr, "%s%s%s: no command given\n", prog->name, c->cmd ? " " : "",
			c->cmd ? c->cmd->name : "");
		cli_help(prog, c->cmd, stderr);
		return 2;
	}
	if (prog->before_run)
		prog->before_run(c);
	if (c->version) {
		const jr_cli_cmd *v = cli_find(prog, NULL, "version");
		if (v)
			return v->run(c);
		printf("%s %s\n", prog->name, prog->version);
		return 0;
	}
	return c->cmd->run(c);
}

int cli_main(const jr_cli_prog *prog, int argc, char **argv)
{
	jr_cli_call c;
	int rc = cli_parse(prog, argc, argv, &c);
	if (rc)
		fprintf(stderr, "Run '%s%s%s --help' for usage.\n", prog->name, c.name[0] ? " " : "", c.name);
	else if (c.help)
		cli_help(prog, c.cmd, stdout);
	else
		rc = run(prog, &c);
	cli_call_free(&c);
	return rc;
}

/* ---- help ---- */

/* opt_left: "-p, --port N" or "--format json|yaml" into out. */
static const char *opt_left(const jr_cli_opt *o, char *out, size_t n)
{
	char val[96] = "";
	if (o->value && o->choices) {
		snprintf(val, sizeof val, " %s", o->choices);
		for (char *s = val + 1; *s; s++)
			if (*s == ' ')
				*s = '|';
	} else if (o->value) {
		snprintf(val, sizeof val, " %s", o->value);
	}
	if (o->short_name)
		snprintf(out, n, "-%c, --%s%s", o->short_name, o->name, val);
	else
		snprintf(out, n, "    --%s%s", o->name, val);
	return out;
}

/* shown: o is listed (globals: --dry-run only for the commands that take it). */
static int shown(const jr_cli_opt *o, int globals, int dry_run)
{
	return o->help && !(globals && o->id == JR_CLI_G_DRY_RUN && !dry_run);
}

static void opts_help(const jr_cli_opt *opts, int globals, int dry_run, FILE *f)
{
	char left[160];
	for (const jr_cli_opt *o = opts; o && o->name; o++) {
		if (!shown(o, globals, dry_run))
			continue;
		opt_left(o, left, sizeof left);
		if (strlen(left) > 28)
			fprintf(f, "  %s\n  %-28s  %s\n", left, "", o->help);
		else
			fprintf(f, "  %-28s  %s\n", left, o->help);
	}
}

/* text_help: details as written: paragraphs, example lines indented. */
static void text_help(const char *t, FILE *f)
{
	if (t)
		fprintf(f, "\n%s\n", t);
}

static void prog_help(const jr_cli_prog *prog, FILE *f)
{
	char path[64];
	fprintf(f, "usage: %s [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS]\n\n%s\n\nCommands:\n", prog->name,
		prog->summary);
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if (!visible(c) || (c->flags & JR_CLI_GROUP))
			continue;
		cmd_path(c, path, sizeof path);
		fprintf(f, "  %-22s %s\n", path, c->summary);
	}
	fprintf(f, "\nGlobal flags (before or after the command):\n");
	opts_help(prog->globals, 1, 1, f);
	for (size_t i = 0; i < prog->n_sections; i++)
		fprintf(f, "\n%s:\n%s\n", prog->sections[i].title, prog->sections[i].text);
	fprintf(f, "\nRun '%s COMMAND --help' for a command's flags, or '%s help COMMAND'.\n",
		prog->name, prog->name);
}

static void group_help(const jr_cli_prog *prog, const jr_cli_cmd *g, FILE *f)
{
	fprintf(f, "usage: %s %s COMMAND [FLAGS] [ARGS]\n\n%s\n", prog->name, g->name, g->summary);
	text_help(g->details, f);
	fprintf(f, "\nCommands:\n");
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if (visible(c) && same(c->group, g->name)) {
			char al[64] = "";
			if (c->alias)
				snprintf(al, sizeof al, " (also: %s)", c->alias);
			fprintf(f, "  %-10s %s%s\n", c->name, c->summary, al);
		}
	}
	fprintf(f, "\nRun '%s %s COMMAND --help' for a command's flags.\n", prog->name, g->name);
}

void cli_help(const jr_cli_prog *prog, const jr_cli_cmd *cmd, FILE *f)
{
	if (!cmd) {
		prog_help(prog, f);
		return;
	}
	if (cmd->flags & JR_CLI_GROUP) {
		group_help(prog, cmd, f);
		return;
	}
	char path[64];
	cmd_path(cmd, path, sizeof path);
	fprintf(f, "usage: %s %s%s%s%s\n", prog->name, path, cmd->opts && cmd->opts[0].name ? " [FLAGS]" : "",
		cmd->args ? " " : "", cmd->args ? cmd->args : "");
	if (cmd->alias)
		fprintf(f, "also:  %s %s%s%s\n", prog->name, cmd->group ? cmd->group : "",
			cmd->group ? " " : "", cmd->alias);
	fprintf(f, "\n%s\n", cmd->summary);
	text_help(cmd->details, f);
	if (cmd->opts && cmd->opts[0].name) {
		fprintf(f, "\nFlags:\n");
		opts_help(cmd->opts, 0, 0, f);
	}
	fprintf(f, "\nGlobal flags (before or after the command):\n");
	opts_help(prog->globals, 1, (cmd->flags & JR_CLI_DRY_RUN) != 0, f);
}

void cli_list(const jr_cli_prog *prog, FILE *f)
{
	char path[64];
	for (size_t i = 0; i < prog->n_cmds; i++)
		if (visible(&prog->cmds[i])) {
			cmd_path(&prog->cmds[i], path, sizeof path);
			fprintf(f, "%s\n", path);
		}
}

/* ---- the man page ---- */

/* roff: s with backslashes and dashes escaped; a line starting with . or ' guarded. */
static void roff(const char *s, size_t n, FILE *f)
{
	int bol = 1;
	for (size_t i = 0; i < n && s[i]; i++) {
		char ch = s[i];
		if (bol && (ch == '.' || ch == '\''))
			fputs("\\&", f);
		bol = ch == '\n';
		if (ch == '\\')
			fputs("\\e", f);
		else if (ch == '-')
			fputs("\\-", f);
		else
			fputc(ch, f);
	}
}

static void roffs(const char *s, FILE *f)
{
	roff(s, strlen(s), f);
}

/* man_text: paragraphs; a paragraph whose lines are indented is shown as written. */
static void man_text(const char *t, FILE *f)
{
	while (t && *t) {
		const char *end = strstr(t, "\n\n");
		size_t n = end ? (size_t)(end - t) : strlen(t);
		if (t[0] == ' ') {
			fputs(".PP\n.RS 4\n.nf\n", f);
			roff(t, n, f);
			fputs("\n.fi\n.RE\n", f);
		} else {
			fputs(".PP\n", f);
			roff(t, n, f);
			fputc('\n', f);
		}
		t = end ? end + 2 : t + n;
	}
}

static void man_opts(const jr_cli_opt *opts, int globals, FILE *f)
{
	for (const jr_cli_opt *o = opts; o && o->name; o++) {
		if (!shown(o, globals, 1))
			continue;
		fputs(".TP\n", f);
		if (o->short_name)
			fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
		fputs("\\fB\\-\\-", f);
		roffs(o->name, f);
		fputs("\\fR", f);
		if (o->value) {
			fputs(" \\fI", f);
			char v[96];
			snprintf(v, sizeof v, "%s", o->choices ? o->choices : o->value);
			for (char *s = v; o->choices && *s; s++)
				if (*s == ' ')
					*s = '|';
			roffs(v, f);
			fputs("\\fR", f);
		}
		fputc('\n', f);
		roffs(o->help, f);
		fputc('\n', f);
	}
}

void cli_man(const jr_cli_prog *prog, FILE *f)
{
	char path[64];
	fprintf(f, ".\\\" generated by '%s help --man' from its command table; do not edit\n", prog->name);
	fprintf(f, ".TH JOBRELAY 1 \"\" \"%s %s\" \"User Commands\"\n", prog->name, prog->version);
	fputs(".SH NAME\n", f);
	roffs(prog->name, f);
	fputs(" \\- ", f);
	roffs(prog->summary, f);
	fprintf(f, "\n.SH SYNOPSIS\n.B %s\n[\\fIGLOBAL FLAGS\\fR] \\fICOMMAND\\fR [\\fIFLAGS\\fR] [\\fIARGS\\fR]\n",
		prog->name);
	fputs(".SH GLOBAL FLAGS\nThese flags may come before or after the command and its subcommand.\n", f);
	man_opts(prog->globals, 1, f);
	fputs(".SH COMMANDS\n", f);
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if (!visible(c))
			continue;
		cmd_path(c, path, sizeof path);
		fputs(".SS \"", f);
		roffs(prog->name, f);
		fputc(' ', f);
		roffs(path, f);
		if (!(c->flags & JR_CLI_GROUP) && c->opts && c->opts[0].name)
			fputs(" [FLAGS]", f);
		if (c->args) {
			fputc(' ', f);
			roffs(c->args, f);
		}
		fputs("\"\n", f);
		roffs(c->summary, f);
		fputc('\n', f);
		if (c->alias) {
			fputs(".PP\nAlso: \\fB", f);
			roffs(c->group ? c->group : "", f);
			fputc(' ', f);
			roffs(c->alias, f);
			fputs("\\fR.\n", f);
		}
		man_text(c->details, f);
		if (c->opts && c->opts[0].name) {
			fputs(".PP\nFlags:\n.RS 4\n", f);
			man_opts(c->opts, 0, f);
			fputs(".RE\n", f);
		}
	}
	for (size_t i = 0; i < prog->n_sections; i++) {
		fputs(".SH ", f);
		for (const char *s = prog->sections[i].title; *s; s++)
			fputc(*s >= 'a' && *s <= 'z' ? *s - 32 : *s, f);
		fputs("\n.nf\n", f);
		roffs(prog->sections[i].text, f);
		fputs("\n.fi\n", f);
	}
}

/* ---- completion ---- */

/* value_flags: every flag that takes a value, of the globals and all commands, as a|b|c. */
static void value_flags(const jr_cli_prog *prog, FILE *f)
{
	int first = 1;
	for (size_t i = 0; i <= prog->n_cmds; i++) {
		const jr_cli_opt *opts = i < prog->n_cmds ? prog->cmds[i].opts : prog->globals;
		for (const jr_cli_opt *o = opts; o && o->name; o++) {
			if (!o->value)
				continue;
			fprintf(f, "%s--%s", first ? "" : "|", o->name);
			if (o->short_name)
				fprintf(f, "|-%c", o->short_name);
			first = 0;
		}
	}
}

static void flag_words(const jr_cli_opt *opts, FILE *f)
{
	for (const jr_cli_opt *o = opts; o && o->name; o++)
		if (o->help)
			fprintf(f, " --%s", o->name);
}

/* case_label: "jobs run"|"jobs execute" for a command. */
static void case_label(const jr_cli_cmd *c, FILE *f)
{
	if (c->group) {
		fprintf(f, "\"%s %s\"", c->group, c->name);
		if (c->alias)
			fprintf(f, "|\"%s %s\"", c->group, c->alias);
	} else {
		fprintf(f, "\"%s\"", c->name);
		if (c->alias)
			fprintf(f, "|\"%s\"", c->alias);
	}
}

/* group_names: the groups as a|b, for the word scan. */
static void group_names(const jr_cli_prog *prog, FILE *f)
{
	int first = 1;
	for (size_t i = 0; i < prog->n_cmds; i++)
		if (prog->cmds[i].flags & JR_CLI_GROUP) {
			fprintf(f, "%s%s", first ? "" : "|", prog->cmds[i].name);
			first = 0;
		}
	if (first)
		fputs("''", f);
}

/* value_cases: case arms completing the value of prev: choices, files, or nothing. */
static void value_cases(const jr_cli_opt *opts, const char *indent, int zsh, FILE *f)
{
	for (const jr_cli_opt *o = opts; o && o->name; o++) {
		if (!o->value)
			continue;
		fprintf(f, "%s--%s", indent, o->name);
		if (o->short_name)
			fprintf(f, "|-%c", o->short_name);
		if (o->choices)
			fprintf(f, zsh ? ") compadd -- %s; return ;;\n"
				       : ") COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return 0 ;;\n",
				o->choices);
		else if (!strcmp(o->value, "FILE") || !strcmp(o->value, "PATH"))
			fprintf(f, zsh ? ") _files; return ;;\n"
				       : ") COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n");
		else
			fprintf(f, zsh ? ") return ;;\n" : ") return 0 ;;\n");
	}
}

/* sub_words: a group's command names (bash: words; zsh: name:summary lines). */
static void sub_words(const jr_cli_prog *prog, const char *group, int zsh, FILE *f)
{
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if (!visible(c) || !(group ? same(c->group, group) : !c->group))
			continue;
		for (int k = 0; k < 2; k++) {
			const char *name = k ? c->alias : c->name;
			if (!name)
				continue;
			if (!zsh) {
				fprintf(f, " %s", name);
				continue;
			}
			fprintf(f, " '%s:", name);
			for (const char *s = c->summary; *s; s++)
				fputs(*s == '\'' ? "'\\''" : (char[2]){*s, 0}, f);
			fputc('\'', f);
		}
	}
}

static void scan_words(const jr_cli_prog *prog, const char *words, const char *cword, FILE *f)
{
	fprintf(f, "\tlocal cmd= w i skip=0\n"
		   "\tfor ((i = 1; i < %s; i++)); do\n"
		   "\t\tw=${%s[i]}\n"
		   /* bash splits --flag=value at the '=': a value flag's '=' takes the word after it too */
		   "\t\tif ((skip)); then skip=0; [[ $w == = ]] && skip=1; continue; fi\n"
		   "\t\tcase $w in\n"
		   "\t\t--) break ;;\n\t\t",
		cword, words);
	value_flags(prog, f);
	fputs(") skip=1; continue ;;\n"
	      "\t\t-*) continue ;;\n"
	      "\t\tesac\n"
	      "\t\tcase $cmd in\n"
	      "\t\t'') cmd=$w ;;\n\t\t",
	      f);
	group_names(prog, f);
	fputs(") cmd=\"$cmd $w\" ;;\n"
	      "\t\tesac\n"
	      "\tdone\n",
	      f);
}

static void completion_bash(const jr_cli_prog *prog, FILE *f)
{
	fprintf(f, "# bash completion for %s; generated by '%s completion bash' from its command table\n"
		   "_%s() {\n"
		   "\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=\n"
		   "\t((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD-1]}\n"
		   /* --flag=<TAB>: the words are --flag, = and the value so far */
		   "\tif [[ $cur == = ]]; then prev=$prev cur=; elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then prev=${COMP_WORDS[COMP_CWORD-2]}; fi\n"
		   "\tCOMPREPLY=()\n",
		prog->name, prog->name, prog->name);
	scan_words(prog, "COMP_WORDS", "COMP_CWORD", f);
	fputs("\tcase $prev in\n", f);
	value_cases(prog->globals, "\t", 0, f);
	fputs("\tesac\n\tlocal flags=\"", f);
	flag_words(prog->globals, f);
	fputs("\" words=\n\tcase $cmd in\n\t'') words=\"", f);
	sub_words(prog, NULL, 0, f);
	fputs("\" ;;\n", f);
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if (!visible(c))
			continue;
		fputc('\t', f);
		case_label(c, f);
		fputs(")\n", f);
		if (c->flags & JR_CLI_GROUP) {
			fputs("\t\twords=\"", f);
			sub_words(prog, c->name, 0, f);
			fputs("\" ;;\n", f);
			continue;
		}
		fputs("\t\tcase $prev in\n", f);
		value_cases(c->opts, "\t\t", 0, f);
		fputs("\t\tesac\n\t\tflags=\"$flags", f);
		flag_words(c->opts, f);
		/* a command without arguments completes no file names */
		fputs(c->max_args == 0 ? "\"\n\t\twords=\" \" ;;\n" : "\" ;;\n", f);
	}
	fprintf(f, "\tesac\n"
		   "\tif [[ $cur == -* ]]; then\n"
		   "\t\tCOMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
		   "\telif [ -n \"$words\" ]; then\n"
		   "\t\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
		   "\telse\n"
		   "\t\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n"
		   "\tfi\n"
		   "\treturn 0\n"
		   "}\n"
		   "complete -F _%s %s\n",
		prog->name, prog->name);
}

static void zsh_flags(const jr_cli_opt *opts, FILE *f)
{
	for (const jr_cli_opt *o = opts; o && o->name; o++) {
		if (!o->help)
			continue;
		fprintf(f, " '--%s:", o->name);
		for (const char *s = o->help; *s; s++)
			fputs(*s == '\'' ? "'\\''" : (char[2]){*s, 0}, f);
		fputc('\'', f);
	}
}

static void completion_zsh(const jr_cli_prog *prog, FILE *f)
{
	fprintf(f, "#compdef %s\n# zsh completion for %s; generated by '%s completion zsh' from its command table\n"
		   "_%s() {\n"
		   "\tlocal cur=${words[CURRENT]} prev=${words[CURRENT-1]}\n"
		   "\tlocal -a flags subs\n\tlocal nofiles=0\n",
		prog->name, prog->name, prog->name, prog->name);
	/* zsh's words[] is 1-based with the program at 1: scan from 2 */
	fputs("\tlocal cmd= w i skip=0\n"
	      "\tfor ((i = 2; i < CURRENT; i++)); do\n"
	      "\t\tw=${words[i]}\n"
	      "\t\tif ((skip)); then skip=0; continue; fi\n"
	      "\t\tcase $w in\n"
	      "\t\t--) break ;;\n\t\t",
	      f);
	value_flags(prog, f);
	fputs(") skip=1; continue ;;\n"
	      "\t\t-*) continue ;;\n"
	      "\t\tesac\n"
	      "\t\tcase $cmd in\n"
	      "\t\t'') cmd=$w ;;\n\t\t",
	      f);
	group_names(prog, f);
	fputs(") cmd=\"$cmd $w\" ;;\n"
	      "\t\tesac\n"
	      "\tdone\n"
	      "\tcase $prev in\n",
	      f);
	value_cases(prog->globals, "\t", 1, f);
	fputs("\tesac\n\tflags=(", f);
	zsh_flags(prog->globals, f);
	fputs(")\n\tcase $cmd in\n\t'') subs=(", f);
	sub_words(prog, NULL, 1, f);
	fputs(") ;;\n", f);
	for (size_t i = 0; i < prog->n_cmds; i++) {
		const jr_cli_cmd *c = &prog->cmds[i];
		if (!visible(c))
			continue;
		fputc('\t', f);
		case_label(c, f);
		fputs(")\n", f);
		if (c->flags & JR_CLI_GROUP) {
			fputs("\t\tsubs=(", f);
			sub_words(prog, c->name, 1, f);
			fputs(") ;;\n", f);
			continue;
		}
		fputs("\t\tcase $prev in\n", f);
		value_cases(c->opts, "\t\t", 1, f);
		fputs("\t\tesac\n\t\tflags+=(", f);
		zsh_flags(c->opts, f);
		fputs(c->max_args == 0 ? ")\n\t\tnofiles=1 ;;\n" : ") ;;\n", f);
	}
	fprintf(f, "\tesac\n"
		   "\tif [[ $cur == -* ]]; then\n"
		   "\t\t_describe -t flags 'flag' flags\n"
		   "\telif (( ${#subs} )); then\n"
		   "\t\t_describe -t commands 'command' subs\n"
		   "\telif (( ! nofiles )); then\n"
		   "\t\t_files\n"
		   "\tfi\n"
		   "}\n"
		   "_%s \"$@\"\n",
		prog->name);
}

int cli_completion(const jr_cli_prog *prog, const char *shell, FILE *f)
{
	if (same(shell, "bash"))
		completion_bash(prog, f);
	else if (same(shell, "zsh"))
		completion_zsh(prog, f);
	else
		return -1;
	return 0;
}
