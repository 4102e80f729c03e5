/*
 * cli.h — the command-line engine: one table of commands (commands.c) drives
 * the parser, `--help` of every command, the man page and the bash and zsh
 * completions, so they cannot drift apart.
 *
 * The table is static, read-only data; a parsed call (jr_cli_call) points
 * into the table and into argv, owns only its two arrays, and is freed with
 * cli_call_free.
 */
#ifndef JR_CLI_H
#define JR_CLI_H

#include <stddef.h>
#include <stdio.h>

/* One flag of a command: --name (and -s when short_name is set). */
typedef struct jr_cli_opt {
	const char *name;      /* without the dashes: "project" */
	char short_name;       /* 'p', or 0 */
	const char *value;     /* the value's placeholder ("P", "FILE"); NULL: a switch */
	int id;                /* the command's own id for it (> 0) */
	const char *help;      /* one line */
	const char *choices;   /* space-separated values, for help and completion; or NULL */
} jr_cli_opt;

/* Flags of a command entry. */
enum {
	JR_CLI_GROUP = 1,    /* a group (jobs, executions): its commands follow it in the table */
	JR_CLI_DRY_RUN = 2,  /* takes the global --dry-run */
	JR_CLI_HIDDEN = 4    /* left out of help, man page and completion lists */
};

struct jr_cli_call;

/*
 * One command. A top-level command has group NULL; a group's commands name
 * it. args is the synopsis of the positional arguments ("PATH...");
 * min_args/max_args bound their number (max -1: no bound).
 */
typedef struct jr_cli_cmd {
	const char *group;     /* "jobs", or NULL */
	const char *name;      /* "run" */
	const char *alias;     /* another name ("execute"), or NULL */
	const char *args;      /* "JOB [-- ARGS...]", or NULL */
	int min_args, max_args;
	int flags;             /* JR_CLI_* */
	const char *summary;   /* one line, for lists */
	const char *details;   /* paragraphs (blank-line separated) for help and the man page, or NULL */
	const jr_cli_opt *opts; /* ends with a zero entry; or NULL */
	int (*run)(const struct jr_cli_call *call);
} jr_cli_cmd;

/* A section of the program's help and man page after the commands (exit codes, environment). */
typedef struct jr_cli_section {
	const char *title;
	const char *text;
} jr_cli_section;

typedef struct jr_cli_prog {
	const char *name;      /* "jobrelay" */
	const char *summary;   /* one line */
	const char *version;
	const jr_cli_cmd *cmds;
	size_t n_cmds;
	const jr_cli_opt *globals; /* ids below; ends with a zero entry */
	const jr_cli_section *sections;
	size_t n_sections;
	void (*before_run)(const struct jr_cli_call *call); /* after parsing, before any command runs; or NULL */
} jr_cli_prog;

/* Ids of the global flags in jr_cli_prog.globals. */
enum {
	JR_CLI_G_CONFIG = 1,
	JR_CLI_G_LOG_FORMAT,
	JR_CLI_G_LOG_LEVEL,
	JR_CLI_G_DRY_RUN,
	JR_CLI_G_HELP,
	JR_CLI_G_VERSION
};

typedef struct jr_cli_globals {
	const char *config;    /* --config, or NULL */
	int dry_run;
	int log_format;        /* jr_log_format */
	int log_level;         /* jr_log_level */
} jr_cli_globals;

/* A flag given to the command, in the order given. */
typedef struct jr_cli_val {
	const jr_cli_opt *opt;
	const char *value;     /* into argv (or after '=' in it); NULL for a switch */
} jr_cli_val;

typedef struct jr_cli_call {
	const jr_cli_prog *prog;
	const jr_cli_cmd *cmd;
	char name[64];         /* "jobs run", for messages */
	jr_cli_globals g;
	jr_cli_val *vals;      /* owned */
	size_t n_vals;
	char **args;           /* owned array; the strings are argv's */
	size_t n_args;
	size_t n_args_before_dashes; /* args given before "--" (n_args when there is none) */
	int help, version;
} jr_cli_call;

/*
 * cli_main: parses argv against prog and runs the command. -h/--help
 * anywhere (before --) prints that command's help on stdout and exits 0
 * without running it; --version prints the version. Errors name the flag
 * or word and return 2. Returns the exit code.
 */
int cli_main(const jr_cli_prog *prog, int argc, char **argv);

/*
 * cli_parse: fills call (zeroed first). Returns 0, or 2 after printing the
 * error on stderr. call->cmd may be a group (with help set) or NULL (no
 * command: the program's help). Free with cli_call_free either way.
 */
int cli_parse(const jr_cli_prog *prog, int argc, char **argv, jr_cli_call *call);
void cli_call_free(jr_cli_call *call);

/* cli_find: the command named by words ("jobs", "run"; alias too), or NULL. */
const jr_cli_cmd *cli_find(const jr_cli_prog *prog, const char *group, const char *name);

/* cli_help: cmd's help (NULL: the program's) on f. */
void cli_help(const jr_cli_prog *prog, const jr_cli_cmd *cmd, FILE *f);
/* cli_list: every visible command path, one a line ("replay", "jobs run"). */
void cli_list(const jr_cli_prog *prog, FILE *f);
/* cli_man: the man page (roff, section 1). */
void cli_man(const jr_cli_prog *prog, FILE *f);
/* cli_completion: the bash ("bash") or zsh ("zsh") completion script; -1 for another shell. */
int cli_completion(const jr_cli_prog *prog, const char *shell, FILE *f);

#endif
