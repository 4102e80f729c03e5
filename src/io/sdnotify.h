/*
 * sdnotify.h — systemd's notification protocol, by hand (no libsystemd):
 * "READY=1", "WATCHDOG=1", "STOPPING=1", "STATUS=..." as one datagram each to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name
 * when it starts with '@'), and the watchdog interval from $WATCHDOG_USEC
 * and $WATCHDOG_PID (sd_notify(3), sd_watchdog_enabled(3)).
 *
 * The parsing and message building are pure functions (sdnotify_addr,
 * sdnotify_watchdog_usec, sdnotify_build), tested without a socket. A
 * jr_sdnotify is owned by its caller (sdnotify_open / sdnotify_close) and
 * used from one thread. Sends never block (a full socket drops the message);
 * the first failure is logged once (SDNOTIFY-SEND, a warning) and later ones
 * are only counted. Without $NOTIFY_SOCKET every send is a no-op.
 */
#ifndef JR_SDNOTIFY_H
#define JR_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* the longest datagram sdnotify_build makes, its NUL included; a STATUS is cut to fit */
#define JR_SDNOTIFY_MAX 256

typedef struct jr_sdnotify {
	int fd;                   /* -1 while disabled */
	struct sockaddr_un addr;  /* the socket's address (sdnotify_addr) */
	socklen_t addr_len;
	long failures;            /* sends that failed; the first was logged */
} jr_sdnotify;

/*
 * sdnotify_addr: the address of $NOTIFY_SOCKET's value: "/path" (a file),
 * or "@name" (abstract: the '@' becomes a NUL byte). 0, or -1 for anything
 * else (empty, relative, longer than sun_path allows).
 */
int sdnotify_addr(const char *value, struct sockaddr_un *sa, socklen_t *len);

/*
 * sdnotify_watchdog_usec: the watchdog interval to honour, in microseconds,
 * from the values of $WATCHDOG_USEC and $WATCHDOG_PID (each may be NULL):
 * 0 when there is no watchdog, usec is not a positive decimal number, or
 * pid is set and is not self.
 */
uint64_t sdnotify_watchdog_usec(const char *usec, const char *pid, pid_t self);

/*
 * sdnotify_build: "<state>" or "<state>\nSTATUS=<status>" into buf (cap
 * bytes, at most JR_SDNOTIFY_MAX used), NUL-terminated. state is one line
 * such as "READY=1"; status (may be NULL) has each control character made a
 * space and is cut to fit. Returns the length, or 0 when state is empty,
 * holds a newline, or does not fit.
 */
size_t sdnotify_build(char *buf, size_t cap, const char *state, const char *status);

/*
 * sdnotify_open: n from $NOTIFY_SOCKET (socket, NULL: getenv). A missing or
 * empty value leaves n disabled and returns 0; an invalid value or a socket
 * that cannot be made is logged (SDNOTIFY-SOCKET, a warning), leaves n
 * disabled and returns -1.
 */
int sdnotify_open(jr_sdnotify *n, const char *socket);
/* sdnotify_enabled: 1 when sends go somewhere. */
int sdnotify_enabled(const jr_sdnotify *n);
/* sdnotify_send: sdnotify_build(state, status) sent; 0, 1 when disabled, -1 when it failed. */
int sdnotify_send(jr_sdnotify *n, const char *state, const char *status);
/* sdnotify_close: closes the socket; n is disabled (a no-op when it is). */
void sdnotify_close(jr_sdnotify *n);

#endif
