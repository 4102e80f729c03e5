/*
 * check_config.h — the output of `jobrelay check-config`: a loaded config's
 * resolved routes, their effective policies and the shared settings.
 */
#ifndef JR_CHECK_CONFIG_H
#define JR_CHECK_CONFIG_H

#include "config.h"
#include "mem.h"

/* check_config_text: the text form on stdout; path names the file. */
void check_config_text(const jr_config *c, const char *path);
/* check_config_json: one JSON object (and a newline) appended to out; the caller owns out. */
void check_config_json(const jr_config *c, const char *path, jr_buf *out);

#endif
