/*
 * sdnotify.c — systemd's notification protocol by hand (sdnotify.h): one
 * non-blocking AF_UNIX datagram socket, one datagram a notification.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int sdnotify_addr(const char *value, struct sockaddr_un *sa, socklen_t *len)
{
	if (!value || (value[0] != '/' && value[0] != '@'))
		return -1;
	size_t n = strlen(value);
	/* a path needs its NUL inside sun_path; an abstract name does not */
	if (n < 2 || n > sizeof sa->sun_path - (value[0] == '/'))
		return -1;
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, value, n);
	if (value[0] == '@')
		sa->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (value[0] == '/'));
	return 0;
}

uint64_t sdnotify_watchdog_usec(const char *usec, const char *pid, pid_t self)
{
	if (!usec || *usec < '0' || *usec > '9')
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0)
		return 0;
	if (pid && *pid) {
		if (*pid < '0' || *pid > '9')
			return 0;
		errno = 0;
		unsigned long long p = strtoull(pid, &end, 10);
		if (errno || *end || p != (unsigned long long)self)
			return 0;
	}
	return v;
}

size_t sdnotify_build(char *buf, size_t cap, const char *state, const char *status)
{
	if (cap > JR_SDNOTIFY_MAX)
		cap = JR_SDNOTIFY_MAX;
	if (cap == 0)
		return 0;
	buf[0] = '\0';
	size_t n = state ? strlen(state) : 0;
	if (n == 0 || n >= cap || memchr(state, '\n', n))
		return 0;
	memcpy(buf, state, n);
	static const char key[] = "\nSTATUS=";
	if (status && *status && n + sizeof key - 1 < cap - 1) {
		memcpy(buf + n, key, sizeof key - 1);
		n += sizeof key - 1;
		for (const unsigned char *s = (const unsigned char *)status; *s && n < cap - 1; s++)
			buf[n++] = (char)(*s < 0x20 || *s == 0x7f ? ' ' : *s);
	}
	buf[n] = '\0';
	return n;
}

int sdnotify_open(jr_sdnotify *n, const char *socket_value)
{
	*n = (jr_sdnotify){.fd = -1};
	const char *v = socket_value ? socket_value : getenv("NOTIFY_SOCKET");
	if (!v || !*v)
		return 0;
	if (sdnotify_addr(v, &n->addr, &n->addr_len) < 0) {
		log_kv(JR_LOG_WARNING, "SDNOTIFY-SOCKET",
		       "$NOTIFY_SOCKET is not an absolute path or an @abstract name: systemd is not notified",
		       "NOTIFY_SOCKET", v, NULL);
		n->addr_len = 0;
		return -1;
	}
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (n->fd < 0) {
		log_kv(JR_LOG_WARNING, "SDNOTIFY-SOCKET", "cannot make a socket: systemd is not notified",
		       "error", strerror(errno), NULL);
		n->addr_len = 0;
		return -1;
	}
	return 0;
}

int sdnotify_enabled(const jr_sdnotify *n)
{
	return n->fd >= 0 && n->addr_len > 0;
}

int sdnotify_send(jr_sdnotify *n, const char *state, const char *status)
{
	if (!sdnotify_enabled(n))
		return 1;
	char msg[JR_SDNOTIFY_MAX];
	size_t len = sdnotify_build(msg, sizeof msg, state, status);
	if (len == 0)
		return -1;
	ssize_t w = sendto(n->fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&n->addr,
			   n->addr_len);
	if (w == (ssize_t)len)
		return 0;
	int err = w < 0 ? errno : EMSGSIZE;
	if (n->failures++ == 0) {
		char path[sizeof n->addr.sun_path + 1];
		size_t pl = n->addr_len - offsetof(struct sockaddr_un, sun_path);
		memcpy(path, n->addr.sun_path, pl);
		path[pl] = '\0';
		if (path[0] == '\0')
			path[0] = '@';
		log_kv(JR_LOG_WARNING, "SDNOTIFY-SEND",
		       "cannot notify systemd (later failures are not logged)", "message", state,
		       "NOTIFY_SOCKET", path, "error", strerror(err), NULL);
	}
	return -1;
}

void sdnotify_close(jr_sdnotify *n)
{
	if (n->fd >= 0)
		close(n->fd);
	*n = (jr_sdnotify){.fd = -1};
}
