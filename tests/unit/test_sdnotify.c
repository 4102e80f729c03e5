/* systemd's notification protocol (src/io/sdnotify.c): $NOTIFY_SOCKET addresses (paths and
 * abstract names, their bounds), $WATCHDOG_USEC and $WATCHDOG_PID, the datagrams built, and
 * sends to a real datagram socket at a path and at an abstract name. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cu.h"
#include "sdnotify.h"

static void test_addr_path(void)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	CU_ASSERT_EQUAL(sdnotify_addr("/run/systemd/notify", &sa, &len), 0);
	CU_ASSERT_EQUAL(sa.sun_family, AF_UNIX);
	CU_ASSERT_STRING_EQUAL(sa.sun_path, "/run/systemd/notify");
	/* the path and its NUL */
	CU_ASSERT_EQUAL(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
}

static void test_addr_abstract(void)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	CU_ASSERT_EQUAL(sdnotify_addr("@jr/notify", &sa, &len), 0);
	CU_ASSERT_EQUAL(sa.sun_path[0], '\0');
	CU_ASSERT_EQUAL(memcmp(sa.sun_path + 1, "jr/notify", 9), 0);
	/* exactly the name's bytes: an abstract name's length is part of it, no NUL follows */
	CU_ASSERT_EQUAL(len, offsetof(struct sockaddr_un, sun_path) + 10);
}

static void test_addr_invalid(void)
{
	struct sockaddr_un sa;
	socklen_t len = 0;
	CU_ASSERT_EQUAL(sdnotify_addr(NULL, &sa, &len), -1);
	CU_ASSERT_EQUAL(sdnotify_addr("", &sa, &len), -1);
	CU_ASSERT_EQUAL(sdnotify_addr("run/notify", &sa, &len), -1);
	CU_ASSERT_EQUAL(sdnotify_addr("@", &sa, &len), -1);
	CU_ASSERT_EQUAL(sdnotify_addr("/", &sa, &len), -1);
	/* bounds: a path keeps room for its NUL, an abstract name may fill sun_path */
	char v[sizeof sa.sun_path + 2];
	memset(v, 'a', sizeof v);
	v[0] = '/';
	v[sizeof sa.sun_path - 1] = '\0';
	CU_ASSERT_EQUAL(sdnotify_addr(v, &sa, &len), 0);
	v[sizeof sa.sun_path - 1] = 'a';
	v[sizeof sa.sun_path] = '\0';
	CU_ASSERT_EQUAL(sdnotify_addr(v, &sa, &len), -1);
	v[0] = '@';
	CU_ASSERT_EQUAL(sdnotify_addr(v, &sa, &len), 0);
	CU_ASSERT_EQUAL(len, sizeof sa);
	v[sizeof sa.sun_path] = 'a';
	v[sizeof sa.sun_path + 1] = '\0';
	CU_ASSERT_EQUAL(sdnotify_addr(v, &sa, &len), -1);
}

static void test_watchdog_usec(void)
{
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec(NULL, NULL, 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("30000000", NULL, 42), 30000000);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("30000000", "", 42), 30000000);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("30000000", "42", 42), 30000000);
	/* the watchdog is another process's */
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("30000000", "41", 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("30000000", "42x", 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("30000000", "-42", 42), 0);
	/* not a positive decimal number */
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("0", NULL, 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("", NULL, 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("-5", NULL, 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec(" 5", NULL, 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("5s", NULL, 42), 0);
	CU_ASSERT_EQUAL(sdnotify_watchdog_usec("99999999999999999999999", NULL, 42), 0);
}

static void test_build(void)
{
	char b[JR_SDNOTIFY_MAX];
	CU_ASSERT_EQUAL(sdnotify_build(b, sizeof b, "READY=1", NULL), 7);
	CU_ASSERT_STRING_EQUAL(b, "READY=1");
	CU_ASSERT_EQUAL(sdnotify_build(b, sizeof b, "WATCHDOG=1", ""), 10);
	CU_ASSERT_STRING_EQUAL(b, "WATCHDOG=1");
	sdnotify_build(b, sizeof b, "STOPPING=1", "stopping (SIGTERM)");
	CU_ASSERT_STRING_EQUAL(b, "STOPPING=1\nSTATUS=stopping (SIGTERM)");
	/* a status cannot add lines (assignments) of its own */
	sdnotify_build(b, sizeof b, "READY=1", "a\nMAINPID=1\tb\x7f");
	CU_ASSERT_STRING_EQUAL(b, "READY=1\nSTATUS=a MAINPID=1 b ");
	/* nor can the state */
	CU_ASSERT_EQUAL(sdnotify_build(b, sizeof b, "READY=1\nMAINPID=1", NULL), 0);
	CU_ASSERT_EQUAL(sdnotify_build(b, sizeof b, "", "x"), 0);
	CU_ASSERT_EQUAL(sdnotify_build(b, sizeof b, NULL, "x"), 0);
	/* bounded: a long status is cut to the buffer, and to JR_SDNOTIFY_MAX */
	char big[1000];
	memset(big, 's', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char small[20];
	CU_ASSERT_EQUAL(sdnotify_build(small, sizeof small, "READY=1", big), 19);
	CU_ASSERT_STRING_EQUAL(small, "READY=1\nSTATUS=ssss");
	char wide[2 * JR_SDNOTIFY_MAX];
	CU_ASSERT_EQUAL(sdnotify_build(wide, sizeof wide, "READY=1", big), JR_SDNOTIFY_MAX - 1);
	CU_ASSERT_EQUAL(strlen(wide), JR_SDNOTIFY_MAX - 1);
	/* a state that does not fit is not cut */
	CU_ASSERT_EQUAL(sdnotify_build(small, 7, "READY=1", NULL), 0);
	CU_ASSERT_STRING_EQUAL(small, "");
	CU_ASSERT_EQUAL(sdnotify_build(small, 8, "READY=1", "x"), 7);
	CU_ASSERT_STRING_EQUAL(small, "READY=1");
}

/* listener: a datagram socket bound at name (a path, or "@..." abstract). */
static int listener(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;
	if (sdnotify_addr(name, &sa, &len) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {.tv_sec = 5};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void expect_datagram(int fd, const char *want)
{
	char b[512];
	ssize_t n = recv(fd, b, sizeof b - 1, 0);
	CU_ASSERT_TRUE_FATAL(n >= 0);
	b[n] = '\0';
	CU_ASSERT_STRING_EQUAL(b, want);
}

static void send_through(const char *name)
{
	int fd = listener(name);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	jr_sdnotify n;
	CU_ASSERT_EQUAL(sdnotify_open(&n, name), 0);
	CU_ASSERT_TRUE(sdnotify_enabled(&n));
	CU_ASSERT_EQUAL(sdnotify_send(&n, "READY=1", "ready"), 0);
	CU_ASSERT_EQUAL(sdnotify_send(&n, "WATCHDOG=1", NULL), 0);
	expect_datagram(fd, "READY=1\nSTATUS=ready");
	expect_datagram(fd, "WATCHDOG=1");
	CU_ASSERT_EQUAL(n.failures, 0);
	sdnotify_close(&n);
	CU_ASSERT_FALSE(sdnotify_enabled(&n));
	close(fd);
}

static void test_send_path(void)
{
	char dir[] = "/tmp/jr-sdnotify-XXXXXX";
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof path, "%s/notify", dir);
	send_through(path);
	unlink(path);
	rmdir(dir);
}

static void test_send_abstract(void)
{
	char name[64];
	snprintf(name, sizeof name, "@jr-sdnotify-test-%d", (int)getpid());
	send_through(name);
}

static void test_send_fails_counted(void)
{
	jr_sdnotify n;
	/* nobody listens there: ENOENT, logged once, counted each time */
	CU_ASSERT_EQUAL(sdnotify_open(&n, "/nonexistent/jr-notify"), 0);
	CU_ASSERT_EQUAL(sdnotify_send(&n, "READY=1", NULL), -1);
	CU_ASSERT_EQUAL(sdnotify_send(&n, "WATCHDOG=1", NULL), -1);
	CU_ASSERT_EQUAL(n.failures, 2);
	/* a message that cannot be built is not sent */
	CU_ASSERT_EQUAL(sdnotify_send(&n, "A=1\nB=2", NULL), -1);
	sdnotify_close(&n);
}

static void test_disabled(void)
{
	jr_sdnotify n;
	unsetenv("NOTIFY_SOCKET");
	CU_ASSERT_EQUAL(sdnotify_open(&n, NULL), 0);
	CU_ASSERT_FALSE(sdnotify_enabled(&n));
	CU_ASSERT_EQUAL(sdnotify_send(&n, "READY=1", NULL), 1);
	sdnotify_close(&n);
	CU_ASSERT_EQUAL(sdnotify_open(&n, "relative/path"), -1);
	CU_ASSERT_FALSE(sdnotify_enabled(&n));
	CU_ASSERT_EQUAL(sdnotify_send(&n, "READY=1", NULL), 1);
	sdnotify_close(&n);
	/* a zeroed one (a host never opened) is disabled too */
	jr_sdnotify z = {0};
	CU_ASSERT_FALSE(sdnotify_enabled(&z));
}

int main(void)
{
	static const cu_test tests[] = {
		{"addr_path", test_addr_path},
		{"addr_abstract", test_addr_abstract},
		{"addr_invalid", test_addr_invalid},
		{"watchdog_usec", test_watchdog_usec},
		{"build", test_build},
		{"send_path", test_send_path},
		{"send_abstract", test_send_abstract},
		{"send_fails_counted", test_send_fails_counted},
		{"disabled", test_disabled},
		{NULL, NULL},
	};
	return cu_run("sdnotify", tests);
}
