/*
 * fuzz_config.c — libFuzzer target: the input as a configuration file.
 *
 * Whatever the bytes, config_load_string must return (errors or not), and
 * config_free must release everything it built: ASan reports the rest.
 */
#include <stddef.h>
#include <stdint.h>

#include "config_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jr_config c;
	jr_buf errs;
	buf_init(&errs, 1 << 20);
	config_load_string(&c, "fuzz.yaml", (const char *)data, size, &errs);
	config_free(&c);
	buf_free(&errs);
	return 0;
}
