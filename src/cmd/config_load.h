/*
 * config_load.h — YAML (libyaml) into jr_config (dispatch/config.h).
 */
#ifndef JR_CONFIG_LOAD_H
#define JR_CONFIG_LOAD_H

#include "config.h"
#include "mem.h"

/*
 * config_load_file / config_load_string: fills c (config_defaults first).
 * Returns 0, or the number of errors, each appended to errs as one line
 * "FILE:LINE: message" naming the key (unknown key, bad duration, missing
 * route job, ...). c must be freed with config_free either way.
 */
int config_load_file(jr_config *c, const char *path, jr_buf *errs);
int config_load_string(jr_config *c, const char *name, const char *text, size_t len,
		       jr_buf *errs);

/* parse_duration_ms: "500ms", "10s", "5m", "1h" (also a bare number of seconds). -1 when invalid. */
int64_t parse_duration_ms(const char *s);
/* format_duration_ms: ms as the config writes it ("10m", "30s", "1500ms": the largest unit that divides it) into out. */
const char *format_duration_ms(int64_t ms, char *out, size_t n);
/* parse_size: "64KiB", "10MiB", "1GiB", "512" bytes. -1 when invalid. */
int64_t parse_size(const char *s);

#endif
