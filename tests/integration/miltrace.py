#!/usr/bin/env python3
"""miltrace.py - record the milter conversation between an MTA and a milter.

usage: miltrace.py LISTEN_PATH TARGET_PATH LOG

Listens on the unix socket LISTEN_PATH (group postfix, mode 0660: the
documented permissions of outpost-milter's own socket, so that smtpd and
cleanup can connect) and, for each connection, connects to the milter at
TARGET_PATH and passes the bytes on unchanged both ways.  Every packet is
written to LOG as one JSON line, in the order it passed:

    {"conn": N, "from": "mta" | "milter", "cmd": "C", "data": "<hex>"}

The MTA hands the milter socket from smtpd to cleanup; both speak on the
same connection, so the log is what the milter saw.  Bounded: at most
MAX_CONNS connections, then it stops accepting; SIGTERM ends it.  Exits 2
on a usage or setup error.
"""
import grp
import json
import os
import signal
import socket
import struct
import sys
import threading

MAX_CONNS = 1000
MAX_PACKET = 64 * 1024 * 1024


class Log:
    """The shared log file; one line per packet, in order."""

    def __init__(self, path):
        self.f = open(path, 'a', encoding='ascii')
        self.lock = threading.Lock()

    def packet(self, conn, side, cmd, data):
        line = json.dumps({'conn': conn, 'from': side,
                           'cmd': chr(cmd), 'data': data.hex()})
        with self.lock:
            self.f.write(line + '\n')
            self.f.flush()


def pump(src, dst, conn, side, log):
    """Pass bytes from src to dst, logging each whole packet."""
    pending = b''
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            pending += chunk
            while len(pending) >= 4:
                (n,) = struct.unpack('>I', pending[:4])
                if n < 1 or n > MAX_PACKET:
                    log.packet(conn, side, ord('?'), pending[:16])
                    pending = b''
                    break
                if len(pending) < 4 + n:
                    break
                log.packet(conn, side, pending[4], pending[5:4 + n])
                pending = pending[4 + n:]
            # Logged before passed on: an answer is never logged before
            # what it answers.
            dst.sendall(chunk)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, target, conn, log):
    """One MTA connection: connect to the milter, pump both ways."""
    milter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        milter.connect(target)
    except OSError:
        client.close()
        return
    up = threading.Thread(target=pump,
                          args=(client, milter, conn, 'mta', log),
                          daemon=True)
    up.start()
    pump(milter, client, conn, 'milter', log)
    up.join(30)
    client.close()
    milter.close()


def main():
    if len(sys.argv) != 4:
        sys.stderr.write(__doc__)
        sys.exit(2)
    listen_path, target, logpath = sys.argv[1:]
    log = Log(logpath)
    try:
        os.unlink(listen_path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(listen_path)
        os.chown(listen_path, -1, grp.getgrnam('postfix').gr_gid)
        os.chmod(listen_path, 0o660)
        srv.listen(64)
    except (OSError, KeyError) as e:
        sys.stderr.write('miltrace: %s: %s\n' % (listen_path, e))
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    for conn in range(1, MAX_CONNS + 1):
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client, target, conn, log),
                         daemon=True).start()


if __name__ == '__main__':
    main()
