#!/usr/bin/env python3
"""framing_client.py PORT CHECK [ARGS] -- the raw-socket and http.client side
of test_serve_framing.sh. Every read has a deadline (DEADLINE_S); exits 1
with a FAIL line on the first unmet expectation.

  framing PORT          each request of CASES is answered 400 (with its
                        reason), once, and the server closes the connection;
                        each of CONTROLS is answered 204
  big PORT BYTES TIMES  POSTs BYTES with http.client, TIMES times, each on a
                        new connection; every one reads 413
  flood PORT MAX        declares a 1 GiB body and sends it as fast as it can: the
                        server must end the connection before MAX bytes were sent
                        (its lingering close is bounded)
"""
import http.client
import re
import socket
import sys
import time

DEADLINE_S = 10


def head(ce_id, *lines, version="HTTP/1.1", host=True):
    """A POST head for a binary-mode CloudEvent with id ce_id, plus lines."""
    h = ["POST / " + version]
    if host:
        h.append("Host: x")
    h += ["ce-specversion: 1.0", "ce-id: " + ce_id, "ce-source: s", "ce-type: test.ok"]
    h += list(lines)
    return ("\r\n".join(h) + "\r\n\r\n").encode()


SMUGGLED = head("f-smuggled", "Content-Length: 0")

# name -> (request bytes, reason in the 400's body)
CASES = {
    "Content-Length and Transfer-Encoding: chunked, then a smuggled request": (
        head("f-clte", "Content-Length: 5", "Transfer-Encoding: chunked")
        + b"0\r\n\r\n" + SMUGGLED,
        "both Content-Length and Transfer-Encoding"),
    "Transfer-Encoding: chunked then Content-Length, then a smuggled request": (
        head("f-tecl", "Transfer-Encoding: chunked", "Content-Length: " + str(5 + len(SMUGGLED)))
        + b"0\r\n\r\n" + SMUGGLED,
        "both Content-Length and Transfer-Encoding"),
    "two different Content-Lengths": (
        head("f-twocl", "Content-Length: 0", "Content-Length: 5") + b"hello",
        "conflicting Content-Length"),
    "Transfer-Encoding: gzip": (
        head("f-gzip", "Transfer-Encoding: gzip") + b"hello",
        "unsupported Transfer-Encoding"),
    "Transfer-Encoding: chunked, gzip": (
        head("f-chunkedgzip", "Transfer-Encoding: chunked, gzip") + b"0\r\n\r\n",
        "unsupported Transfer-Encoding"),
    "Transfer-Encoding: chunked and Transfer-Encoding: gzip": (
        head("f-twote", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip") + b"0\r\n\r\n",
        "unsupported Transfer-Encoding"),
    "Transfer-Encoding in HTTP/1.0": (
        head("f-http10te", "Transfer-Encoding: chunked", version="HTTP/1.0", host=False)
        + b"0\r\n\r\n",
        "HTTP/1.0"),
    "whitespace before the colon": (
        head("f-space", "Transfer-Encoding : chunked", "Content-Length: 0"),
        "invalid header name"),
    "HTTP/1.1 without Host": (
        head("f-nohost", "Content-Length: 0", host=False),
        "without Host"),
    "two Host headers": (
        head("f-twohost", "Host: y", "Content-Length: 0"),
        "more than one Host"),
    "GET without Host": (
        b"GET /healthz HTTP/1.1\r\n\r\n",
        "without Host"),
}

# name -> request bytes answered 204 (Connection: close so the server ends the exchange)
CONTROLS = {
    "chunked": head("ok-chunked", "Transfer-Encoding: chunked", "Connection: close")
    + b"0\r\n\r\n",
    "the same Content-Length twice": head("ok-samecl", "Content-Length: 2", "Content-Length: 02",
                                          "Connection: close") + b"{}",
    "HTTP/1.0 without Host": head("ok-http10", "Content-Length: 0", version="HTTP/1.0",
                                  host=False),
}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def exchange(port, data):
    """Sends data, reads until the server closes; (bytes read, closed by the server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    got = b""
    closed = False
    try:
        s.sendall(data)
        until = time.monotonic() + DEADLINE_S
        while time.monotonic() < until:
            s.settimeout(max(0.01, until - time.monotonic()))
            d = s.recv(65536)
            if not d:
                closed = True
                break
            got += d
    except socket.timeout:
        pass
    except OSError as e:
        got += ("<%s>" % e).encode()
    finally:
        s.close()
    return got, closed


def check_framing(port):
    for name, (data, reason) in CASES.items():
        got, closed = exchange(port, data)
        text = got.decode("latin-1")
        statuses = re.findall(r"HTTP/1\.[01] (\d{3}) ", text)
        if statuses != ["400"]:
            fail("%s: expected one 400 answer, got %s: %r" % (name, statuses, text[:300]))
        if reason not in text:
            fail("%s: the 400 does not say %r: %r" % (name, reason, text[:300]))
        if "Connection: close" not in text:
            fail("%s: no Connection: close: %r" % (name, text[:300]))
        if not closed:
            fail("%s: the connection was left open" % name)
        print("ok: %s: 400, closed" % name)
    for name, data in CONTROLS.items():
        got, closed = exchange(port, data)
        text = got.decode("latin-1")
        statuses = re.findall(r"HTTP/1\.[01] (\d{3}) ", text)
        if statuses != ["204"] or not closed:
            fail("%s: expected one 204 and a close, got %s (closed: %s): %r"
                 % (name, statuses, closed, text[:300]))
        print("ok: %s: 204" % name)


def check_big(port, size, times):
    body = b"x" * size
    for i in range(times):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE_S)
        try:
            c.request("POST", "/", body=body, headers={
                "ce-specversion": "1.0", "ce-id": "big-py-%d" % i, "ce-source": "s",
                "ce-type": "test.ok"})
            r = c.getresponse()
            text = r.read().decode()
        except OSError as e:
            fail("http.client POST of %d bytes (%d): %r instead of the 413" % (size, i, e))
        finally:
            c.close()
        if r.status != 413 or "too large" not in text:
            fail("http.client POST of %d bytes (%d): %d %r" % (size, i, r.status, text))
    print("ok: http.client read the 413 %d of %d times" % (times, times))


def check_flood(port, most):
    s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    s.sendall(head("flood", "Content-Length: %d" % (1 << 30)))
    chunk = b"\0" * (1 << 20)
    sent = 0
    try:
        while sent < 2 * most:
            sent += s.send(chunk)
    except OSError:
        pass
    finally:
        s.close()
    if sent >= most:
        fail("the server still read after %d bytes of a refused body (bound %d)" % (sent, most))
    print("ok: a refused 1 GiB body was cut after %d MiB" % (sent >> 20))


def main():
    port, check = int(sys.argv[1]), sys.argv[2]
    if check == "framing":
        check_framing(port)
    elif check == "big":
        check_big(port, int(sys.argv[3]), int(sys.argv[4]))
    elif check == "flood":
        check_flood(port, int(sys.argv[3]))
    else:
        fail("unknown check " + check)


if __name__ == "__main__":
    main()
