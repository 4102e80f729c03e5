/*
 * cu.h — the little glue every CUnit test file shares.
 *
 * A test file defines its test functions and a table, then:
 *   static const cu_test tests[] = { {"name", fn}, ... , {NULL, NULL} };
 *   int main(void) { return cu_run("suite", tests); }
 * cu_run exits non-zero when any assertion failed, and prints CUnit's summary.
 */
#ifndef JR_TEST_CU_H
#define JR_TEST_CU_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct cu_test {
	const char *name;
	void (*fn)(void);
} cu_test;

static inline int cu_run(const char *suite_name, const cu_test *tests)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite(suite_name, NULL, NULL);
	for (const cu_test *t = tests; t->name; t++)
		CU_add_test(s, t->name, t->fn);
	CU_basic_set_mode(CU_BRM_NORMAL);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	unsigned ran = CU_get_number_of_tests_run();
	CU_cleanup_registry();
	if (ran == 0) {
		fprintf(stderr, "%s: no test ran\n", suite_name);
		return 1;
	}
	return failed ? 1 : 0;
}

/* cu_read_file: whole file into a new NUL-terminated buffer (caller frees); NULL when unreadable. */
static inline char *cu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(b);
		return NULL;
	}
	b[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return b;
}

#endif
