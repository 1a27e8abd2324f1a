"""fakemilter - a scripted milter for testing the MTA side (tests/miltc).

Usage: fakemilter.py SOCKETPATH SCENARIO LOGFILE

Listens on a unix socket, serves ONE connection, answers as SCENARIO says,
and writes what it received to LOGFILE as JSON: the offered OPTNEG values,
each event in order, the macros per command, the headers, the body chunk
sizes and the body.  Exits when the MTA quits or closes, or after 20 s.

Scenarios:
  mods         no-reply flags for most steps, NOHELO, macro lists for MAIL
               and EOM; at EOM inserts, adds, changes and deletes headers,
               replaces the body, quarantines, accepts
  leadspc      asks for SMFIP_HDR_LEADSPC; inserts a header with its space
  rcpt         replies to everything; refuses the first recipient
  skip         answers SMFIR_SKIP to the first body chunk
  reject       SMFIR_REPLYCODE "550 5.7.1 go away" at MAIL
  tempfail     SMFIR_TEMPFAIL at EOM
  discard      SMFIR_DISCARD at EOM
  oversize     a reply announcing 2 MiB at MAIL
  garbage      an unknown reply code at MAIL
  badcode      a malformed SMFIR_REPLYCODE at MAIL
  unnegotiated SMFIR_INSHEADER at EOM without having asked for ADDHDRS
  close        closes the connection at EOM
  modearly     SMFIR_ADDHEADER in reply to MAIL (only EOM may modify)
"""

import json
import os
import socket
import struct
import sys

# Protocol flags (libmilter/mfdef.h).
NOCONNECT, NOHELO, NOMAIL, NORCPT = 0x1, 0x2, 0x4, 0x8
NOBODY, NOHDRS, NOEOH, NR_HDR = 0x10, 0x20, 0x40, 0x80
NOUNKNOWN, NODATA, SKIP, RCPT_REJ = 0x100, 0x200, 0x400, 0x800
NR_CONN, NR_HELO, NR_MAIL, NR_RCPT = 0x1000, 0x2000, 0x4000, 0x8000
NR_DATA, NR_UNKN, NR_EOH, NR_BODY = 0x10000, 0x20000, 0x40000, 0x80000
HDR_LEADSPC = 0x100000
ADDHDRS, CHGBODY, CHGHDRS, QUARANTINE = 0x1, 0x2, 0x10, 0x20
SETSYMLIST = 0x100

NOREPLY = {b'C': NR_CONN, b'H': NR_HELO, b'M': NR_MAIL, b'R': NR_RCPT,
           b'T': NR_DATA, b'L': NR_HDR, b'N': NR_EOH, b'B': NR_BODY}


def main():
    path, scenario, logpath = sys.argv[1:4]
    log = {'scenario': scenario, 'events': [], 'macros': {}, 'headers': [],
           'chunks': [], 'body': ''}
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(20)
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        return 1
    conn.settimeout(20)
    try:
        serve(conn, scenario, log)
    except (EOFError, socket.timeout, ConnectionError) as e:
        log['end'] = repr(e)
    finally:
        with open(logpath, 'w') as f:
            json.dump(log, f, indent=1)
        conn.close()
        srv.close()
    return 0


def recv_exact(conn, n):
    buf = b''
    while len(buf) < n:
        got = conn.recv(n - len(buf))
        if not got:
            raise EOFError('MTA closed')
        buf += got
    return buf


def read_pkt(conn):
    (n,) = struct.unpack('>I', recv_exact(conn, 4))
    data = recv_exact(conn, n)
    return data[:1], data[1:]


def send(conn, cmd, data=b''):
    conn.sendall(struct.pack('>I', len(data) + 1) + cmd + data)


def strings(data):
    parts = data.split(b'\0')
    return [p.decode('latin-1') for p in parts[:-1]]


def serve(conn, sc, log):
    cmd, data = read_pkt(conn)
    assert cmd == b'O', cmd
    version, actions, proto = struct.unpack('>III', data[:12])
    log['offered'] = {'version': version, 'actions': actions,
                      'protocol': proto}
    acts = ADDHDRS | CHGHDRS | CHGBODY | QUARANTINE | SETSYMLIST
    mask = 0
    extra = b''
    if sc == 'mods':
        mask = (NOHELO | NOUNKNOWN | NR_CONN | NR_MAIL | NR_RCPT | NR_DATA |
                NR_HDR | NR_EOH | NR_BODY)
        extra = (struct.pack('>I', 2) + b'{auth_authen} {mail_addr}\0' +
                 struct.pack('>I', 5) + b'{i}\0')
    elif sc == 'leadspc':
        mask = HDR_LEADSPC | NR_HDR
    elif sc == 'unnegotiated':
        acts = 0
    send(conn, b'O', struct.pack('>III', 6, acts, mask) + extra)
    nrcpt = 0
    while True:
        cmd, data = read_pkt(conn)
        c = cmd.decode('latin-1')
        if cmd == b'D':
            stage = data[:1].decode('latin-1')
            s = strings(data[1:])
            log['macros'][stage] = dict(zip(s[0::2], s[1::2]))
            continue
        log['events'].append(c)
        if cmd == b'Q':
            return
        if cmd == b'A':
            continue
        if cmd == b'L':
            name, value = strings(data)
            log['headers'].append([name, value])
        elif cmd == b'B':
            log['chunks'].append(len(data))
            log['body'] += data.decode('latin-1')
        elif cmd == b'R':
            nrcpt += 1
        if cmd == b'M':
            if sc == 'reject':
                send(conn, b'y', b'550 5.7.1 go away\0')
                continue
            if sc == 'oversize':
                conn.sendall(struct.pack('>I', 2 * 1024 * 1024) + b'c')
                continue
            if sc == 'garbage':
                send(conn, b'Z')
                continue
            if sc == 'badcode':
                send(conn, b'y', b'hello world\0')
                continue
            if sc == 'modearly':
                send(conn, b'h', b'X-Early\0value\0')
                send(conn, b'c')
                continue
        if cmd == b'R' and sc == 'rcpt' and nrcpt == 1:
            send(conn, b'y', b'550 5.1.1 no such user\0')
            continue
        if cmd == b'B' and sc == 'skip':
            send(conn, b's')
            continue
        if cmd == b'E':
            eom(conn, sc)
            continue
        if cmd in NOREPLY and mask & NOREPLY[cmd]:
            continue
        send(conn, b'c')


def eom(conn, sc):
    if sc == 'mods':
        send(conn, b'i', struct.pack('>I', 0) + b'X-Top\0top\0')
        send(conn, b'i', struct.pack('>I', 2) + b'X-Mid\0mid\0')
        send(conn, b'h', b'X-End\0end\0')
        send(conn, b'm', struct.pack('>I', 1) + b'Subject\0changed\0')
        send(conn, b'm', struct.pack('>I', 1) + b'X-Drop\0\0')
        send(conn, b'p')
        send(conn, b'b', b'replaced body\r\n')
        send(conn, b'b', b'line 2\n')
        send(conn, b'q', b'held\0')
        send(conn, b'a')
    elif sc == 'leadspc':
        send(conn, b'i', struct.pack('>I', 0) + b'X-Top\0 top\0')
        send(conn, b'c')
    elif sc == 'tempfail':
        send(conn, b't')
    elif sc == 'discard':
        send(conn, b'd')
    elif sc == 'unnegotiated':
        send(conn, b'i', struct.pack('>I', 0) + b'X-Top\0top\0')
        send(conn, b'a')
    elif sc == 'close':
        raise EOFError('closing at EOM as told')
    else:
        send(conn, b'a')


if __name__ == '__main__':
    sys.exit(main())
