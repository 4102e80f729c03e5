/*
 * commands.h — jobrelay's command table (commands.c), read by the engine of
 * cli.h. Static data, never freed.
 */
#ifndef JR_COMMANDS_H
#define JR_COMMANDS_H

#include "cli.h"

extern const jr_cli_prog jobrelay_cli;

#endif
