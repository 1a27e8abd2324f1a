#!/usr/bin/python3
"""dkimverify - verify every DKIM-Signature of a message with python3-dkim.

Usage: dkimverify.py MESSAGE ZONEFILE

ZONEFILE holds the key records in zone-file form, as outpostctl keygen
writes them and as RFC 8463 A.2 prints them:

    sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=..." "..." )

(records may span lines inside parentheses; ';' starts a comment).  A
line "NAME<TAB>TEXT" (tab-separated, unquoted) is accepted as well.  No
DNS query is made: lookups are answered from ZONEFILE only.

Prints one line per signature, "sig N: d=.. s=.. a=.. ok|FAIL", and
exits 0 only when the message has at least one signature and all verify.
Must run under Debian's /usr/bin/python3 (python3-dkim).
"""

import re
import sys

import dkim


def tokens(text):
    """Split zone text into words, quoted strings and parentheses."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == ';':
            while i < n and text[i] != '\n':
                i += 1
        elif c in ' \t\r':
            i += 1
        elif c == '\n':
            out.append(('nl', None))
            i += 1
        elif c in '()':
            out.append((c, None))
            i += 1
        elif c == '"':
            i += 1
            s = []
            while i < n and text[i] != '"':
                if text[i] == '\\' and i + 1 < n:
                    i += 1
                s.append(text[i])
                i += 1
            i += 1
            out.append(('str', ''.join(s)))
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n();"':
                j += 1
            out.append(('word', text[i:j]))
            i = j
    return out


def records(text):
    """Yield (owner, [fields]) per logical zone line."""
    depth = 0
    line = []
    for kind, val in tokens(text):
        if kind == '(':
            depth += 1
        elif kind == ')':
            depth -= 1
        elif kind == 'nl':
            if depth == 0 and line:
                yield line
                line = []
        else:
            line.append((kind, val))
    if line:
        yield line


def load_zone(path):
    """Return {lowercased owner without final dot: TXT text}."""
    zone = {}
    with open(path, encoding='utf-8') as f:
        text = f.read()
    for raw in text.splitlines():
        # "NAME<TAB>v=DKIM1; ..." (the RFC's .tsv form)
        m = re.match(r'^([^\s;"]+)\t(v=DKIM1.*)$', raw)
        if m:
            zone[m.group(1).rstrip('.').lower()] = m.group(2)
    for rec in records(text):
        if not rec or rec[0][0] != 'word':
            continue
        owner = rec[0][1]
        words = [v.upper() for k, v in rec[1:] if k == 'word']
        if 'TXT' not in words:
            continue
        strings = [v for k, v in rec if k == 'str']
        if strings:
            zone[owner.rstrip('.').lower()] = ''.join(strings)
    return zone


def main():
    if len(sys.argv) != 3:
        sys.stderr.write('usage: dkimverify.py MESSAGE ZONEFILE\n')
        return 2
    with open(sys.argv[1], 'rb') as f:
        msg = f.read()
    zone = load_zone(sys.argv[2])

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode('ascii', 'replace')
        txt = zone.get(name.rstrip('.').lower())
        return txt.encode('ascii') if txt is not None else None

    d = dkim.DKIM(msg)
    # Count the DKIM-Signature fields the way dkim.DKIM sees them.
    sigs = [i for i, (name, _) in enumerate(d.headers)
            if name.lower() == b'dkim-signature']
    if not sigs:
        print('no DKIM-Signature found')
        return 1
    bad = 0
    for idx in range(len(sigs)):
        value = d.headers[sigs[idx]][1]
        tags = {}
        try:
            tags = dkim.util.parse_tag_value(
                re.sub(rb'\s+', b'', value))
        except Exception:
            pass
        try:
            ok = dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc)
        except Exception as e:
            sys.stderr.write('sig %d: %s\n' % (idx, e))
            ok = False
        if not ok:
            bad += 1
        print('sig %d: d=%s s=%s a=%s %s' % (
            idx,
            tags.get(b'd', b'?').decode('ascii', 'replace'),
            tags.get(b's', b'?').decode('ascii', 'replace'),
            tags.get(b'a', b'?').decode('ascii', 'replace'),
            'ok' if ok else 'FAIL'))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
