#!/usr/bin/python3
"""connhold - hold many connections open to a milter or a policy server.

Usage: connhold.py milter SOCKET N [SIGS]
       connhold.py policy SOCKET N

SOCKET is unix:PATH or inet:PORT@HOST.  Opens N connections, one after
the other, and leaves them open:

  milter  each connection gets what Postfix sends for a message up to the
          middle of its body: OPTNEG (Postfix's offer: version 6, every
          action and protocol flag; the milter's answer is honoured: steps
          it skips are not sent, steps it does not answer are not waited
          for), CONNECT from 127.0.0.1, HELO, MAIL, RCPT, DATA, the
          headers of a message from alice@example.com, EOH and 10 KiB of
          body, with a few of Postfix's macros (j, {daemon_name},
          {client_addr}, {i}, {mail_addr}, {rcpt_addr}).
  policy  each connection is only opened (idle, as Postfix's smtpd keeps
          its policy connections between requests).

Then it prints "held N" and waits for SIGUSR1 (the caller measures in
between).  On SIGUSR1 it finishes: milter, every message gets its EOM and
its reply must carry SIGS DKIM-Signature header insertions (default 1) and
accept or continue; policy, the first and the last connection each send
one request and must get an action.  It prints "done ok=K failed=F" and
exits 0 when nothing failed, 1 otherwise, 2 on usage.
"""

import signal
import socket
import struct
import sys

PROTOCOL = 0x1fffff
ACTIONS = 0x1ff
# step: (command, skip flag SMFIP_NO*, no-reply flag SMFIP_NR_*)
STEPS = {
    'connect': (b'C', 0x1, 0x1000),
    'helo': (b'H', 0x2, 0x2000),
    'mail': (b'M', 0x4, 0x4000),
    'rcpt': (b'R', 0x8, 0x8000),
    'data': (b'T', 0x200, 0x10000),
    'header': (b'L', 0x20, 0x80),
    'eoh': (b'N', 0x40, 0x40000),
    'body': (b'B', 0x10, 0x80000),
}
HEADERS = [
    (b'From', b'Alice Example <alice@example.com>'),
    (b'To', b'Bob Example <bob@example.net>'),
    (b'Subject', b'connhold'),
    (b'Date', b'Fri, 28 Nov 2025 10:00:00 +0000'),
    (b'Message-ID', b'<connhold@example.com>'),
]
BODY = (b'The quick brown fox jumps over the lazy dog, 0123456789 abcdef.\r\n'
        * 160)


def connect(spec):
    """A connected socket for unix:PATH or inet:PORT@HOST."""
    if spec.startswith('unix:'):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(spec[5:])
    elif spec.startswith('inet:'):
        port, _, host = spec[5:].partition('@')
        s = socket.create_connection((host or '127.0.0.1', int(port)))
    else:
        raise SystemExit('connhold: bad socket %s' % spec)
    s.settimeout(30)
    return s


def recv_exact(s, n):
    out = b''
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError('connection closed')
        out += chunk
    return out


def send_packet(s, cmd, data=b''):
    s.sendall(struct.pack('>I', len(data) + 1) + cmd + data)


def read_packet(s):
    n = struct.unpack('>I', recv_exact(s, 4))[0]
    if n < 1 or n > 1 << 24:
        raise ValueError('bad packet length %d' % n)
    p = recv_exact(s, n)
    return p[:1], p[1:]


class Milter:
    """One milter connection, held in the middle of a message body."""

    def __init__(self, spec):
        self.s = connect(spec)
        send_packet(self.s, b'O', struct.pack('>III', 6, ACTIONS, PROTOCOL))
        cmd, data = read_packet(self.s)
        if cmd != b'O' or len(data) < 12:
            raise ValueError('no OPTNEG reply')
        self.proto = struct.unpack('>III', data[:12])[2]
        self.skip_body = False
        self.qid = b'CH%08X' % id(self)
        self.macros(b'C', b'j', b'mta.example.net', b'{daemon_name}',
                    b'smtpd', b'{client_addr}', b'127.0.0.1')
        self.step('connect', b'localhost\0' + b'4' + struct.pack('>H', 4711)
                  + b'127.0.0.1\0')
        self.step('helo', b'client.example.net\0')
        self.macros(b'M', b'i', self.qid, b'{mail_addr}',
                    b'alice@example.com')
        self.step('mail', b'<alice@example.com>\0')
        self.macros(b'R', b'{rcpt_addr}', b'bob@example.net')
        self.step('rcpt', b'<bob@example.net>\0')
        self.step('data')
        for name, value in HEADERS:
            self.step('header', name + b'\0' + b' ' + value + b'\0'
                      if self.proto & 0x100000 else
                      name + b'\0' + value + b'\0')
        self.step('eoh')
        self.step('body', BODY)

    def macros(self, stage, *kv):
        """SMFIC_MACRO for STAGE: name, value, ... (no reply is due)."""
        send_packet(self.s, b'D', stage + b''.join(x + b'\0' for x in kv))

    def step(self, name, data=b''):
        """Send one step unless skipped; read its reply unless NR."""
        cmd, no, nr = STEPS[name]
        if self.proto & no or (name == 'body' and self.skip_body):
            return
        send_packet(self.s, cmd, data)
        if self.proto & nr:
            return
        while True:
            r, _ = read_packet(self.s)
            if r == b'p':
                continue
            if r == b's' and name == 'body':
                self.skip_body = True
                return
            if r != b'c':
                raise ValueError('%s: reply %r' % (name, r))
            return

    def finish(self, sigs):
        """EOM; true when SIGS signatures were inserted and it passed."""
        self.macros(b'E', b'i', self.qid)
        send_packet(self.s, b'E')
        found = 0
        while True:
            r, data = read_packet(self.s)
            if r in (b'h', b'i'):
                name = data[4:] if r == b'i' else data
                if name.split(b'\0', 1)[0].lower() == b'dkim-signature':
                    found += 1
            elif r in (b'a', b'c'):
                break
            elif r in (b'r', b't', b'd', b'y'):
                return False
        send_packet(self.s, b'Q')
        self.s.close()
        return found == sigs


def policy_request(s):
    """One policy request; true when an action comes back."""
    s.sendall(b'request=smtpd_access_policy\nprotocol_state=RCPT\n'
              b'protocol_name=ESMTP\nclient_address=127.0.0.1\n'
              b'sender=alice@example.com\nrecipient=bob@example.net\n'
              b'instance=connhold.1\n\n')
    got = b''
    while not got.endswith(b'\n\n'):
        chunk = s.recv(4096)
        if not chunk:
            return False
        got += chunk
    return got.startswith(b'action=')


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in ('milter', 'policy'):
        sys.stderr.write(__doc__.split('\n\n')[1] + '\n')
        return 2
    mode, spec, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sigs = int(sys.argv[4]) if len(sys.argv) == 5 else 1
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    conns = []
    for i in range(n):
        try:
            conns.append(Milter(spec) if mode == 'milter' else connect(spec))
        except (OSError, ValueError, EOFError) as e:
            print('failed at connection %d: %s' % (i + 1, e), flush=True)
            return 1
    print('held %d' % len(conns), flush=True)
    signal.sigwait({signal.SIGUSR1})
    ok = failed = 0
    if mode == 'milter':
        todo = conns
    else:
        todo = [conns[0], conns[-1]]
    for c in todo:
        try:
            good = c.finish(sigs) if mode == 'milter' else policy_request(c)
        except (OSError, ValueError, EOFError):
            good = False
        if good:
            ok += 1
        else:
            failed += 1
    print('done ok=%d failed=%d' % (ok, failed), flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
