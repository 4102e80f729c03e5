/*
 * main.c — the jobrelay command line. The commands, their flags and their
 * help are one table (commands.c), run by the engine in cli.c.
 */
#include "commands.h"

int main(int argc, char **argv)
{
	return cli_main(&jobrelay_cli, argc, argv);
}
