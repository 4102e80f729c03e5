#!/usr/bin/env python3
"""sdnotify_listen.py — a stand-in for systemd's notification socket (test_sdnotify.sh).

  sdnotify_listen.py NAME

Binds an AF_UNIX datagram socket at NAME (a path, or @name for an abstract one), prints
BOUND, then one line per datagram received: "<CLOCK_MONOTONIC ms> <datagram>", with the
datagram's newlines written as '|'. Runs until killed.
"""
import socket
import sys
import time


def main():
    name = sys.argv[1]
    addr = "\0" + name[1:] if name.startswith("@") else name
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(addr)
    print("BOUND", flush=True)
    while True:
        data = s.recv(4096)
        ms = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000000
        text = data.decode("utf-8", "replace").replace("\n", "|")
        print(f"{ms} {text}", flush=True)


if __name__ == "__main__":
    try:
        main()
    except (KeyboardInterrupt, BrokenPipeError):
        pass
