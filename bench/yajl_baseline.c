/*
 * yajl_baseline — how fast yajl alone parses an NDJSON file, as the floor
 * that `jobrelay replay --dry-run` is compared with (docs/benchmarks.md).
 *
 *   yajl_baseline tree|stream FILE
 *
 * The file is read the way src/cmd/input.c reads NDJSON: 256 KiB chunks, lines
 * found with memchr, each line parsed as one document. "tree" builds and
 * frees a yajl_tree per line (yajl_tree_parse, which wants a NUL-terminated
 * string: the newline is overwritten in place). "stream" runs the callback
 * parser with no callbacks, one handle per line, so it only tokenizes and
 * validates. Prints one line:
 *
 *   yajl-tree events=N bytes=B wall_s=W cpu_s=C events_per_cpu_s=R mb_per_cpu_s=M
 *
 * Exit 0; 1 when a line does not parse or the file cannot be read; 2 for usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#define CHUNK (256 * 1024)
#define LINE_MAX_BYTES (10u << 20)

typedef int (*parse_fn)(char *line, size_t len);

static int parse_tree(char *line, size_t len)
{
	char err[128];
	line[len] = '\0';
	yajl_val v = yajl_tree_parse(line, err, sizeof err);
	if (!v)
		return -1;
	yajl_tree_free(v);
	return 0;
}

static int parse_stream(char *line, size_t len)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	yajl_status st = yajl_parse(h, (const unsigned char *)line, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	return st == yajl_status_ok ? 0 : -1;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* run: parses every non-empty line of f; the count, or -1 on a parse error. */
static long run(FILE *f, parse_fn parse, size_t *bytes)
{
	size_t cap = CHUNK, start = 0, end = 0;
	char *buf = malloc(cap + 1);
	long n = 0;
	int eof = 0;
	if (!buf)
		return -1;
	for (;;) {
		char *nl = memchr(buf + start, '\n', end - start);
		if (!nl && !eof) {
			memmove(buf, buf + start, end - start);
			end -= start;
			start = 0;
			if (end == cap) {
				if (cap >= LINE_MAX_BYTES)
					break;
				cap *= 2;
				char *nb = realloc(buf, cap + 1);
				if (!nb)
					break;
				buf = nb;
			}
			size_t got = fread(buf + end, 1, cap - end, f);
			eof = got == 0;
			end += got;
			continue;
		}
		size_t stop = nl ? (size_t)(nl - buf) : end;
		if (stop == start && !nl)
			break;
		size_t len = stop - start;
		if (len > 0) {
			if (parse(buf + start, len) < 0) {
				fprintf(stderr, "yajl_baseline: line %ld does not parse\n", n + 1);
				n = -1;
				break;
			}
			n++;
			*bytes += len + 1;
		}
		start = nl ? stop + 1 : end;
	}
	free(buf);
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "tree") != 0 && strcmp(argv[1], "stream") != 0)) {
		fprintf(stderr, "usage: yajl_baseline tree|stream FILE\n");
		return 2;
	}
	int tree = strcmp(argv[1], "tree") == 0;
	FILE *f = fopen(argv[2], "rb");
	if (!f) {
		perror(argv[2]);
		return 1;
	}
	size_t bytes = 0;
	double w0 = wall_seconds(), c0 = cpu_seconds();
	long n = run(f, tree ? parse_tree : parse_stream, &bytes);
	double cpu = cpu_seconds() - c0, wall = wall_seconds() - w0;
	fclose(f);
	if (n < 0)
		return 1;
	printf("yajl-%s events=%ld bytes=%zu wall_s=%.3f cpu_s=%.3f events_per_cpu_s=%.0f "
	       "mb_per_cpu_s=%.1f\n",
	       argv[1], n, bytes, wall, cpu, cpu > 0 ? (double)n / cpu : 0.0,
	       cpu > 0 ? (double)bytes / cpu / 1e6 : 0.0);
	return 0;
}
