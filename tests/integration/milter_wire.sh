#!/usr/bin/env bash
# milter_wire.sh - what crosses the milter socket behind a real Postfix
#
# A private Postfix (tests/integration/lib.sh) talks to outpost-milter
# through tests/integration/miltrace.py, which passes every byte on and
# logs each packet.  For each engine (native, libmilter), one message from
# a trusted client (127.0.0.1) and one from an untrusted one (127.0.0.2):
#   - the milter negotiates no reply to CONNECT (SMFIP_NR_CONN: its trust
#     decision needs AUTH, at MAIL) and sends no packet for it;
#   - it names a macro list for every stage, HELO and DATA with only
#     {outpost_none}, and Postfix honours the lists: it sends no HELO or
#     DATA macros and at CONNECT only j and {daemon_name};
#   - with few untrusted senders, no reply to MAIL either: the milter
#     speaks only at end of message;
#   - the trusted message arrives signed, the untrusted one unsigned.
# Then four more untrusted messages and a trusted one: with untrusted
# senders that often, the milter asks for a reply to MAIL, accepts the
# untrusted message there (Postfix sends no header, body or end of
# message for it) and continues the trusted one, which is signed.
# Needs root (Postfix), postfix, smtp-sink, swaks.
set -u
. "$(dirname "$0")/lib.sh"
it_init milter-wire
T=$IT_T

it_need postfix smtp-sink swaks openssl "$IT_PY"
it_need_root "private Postfix"
[ -x "$IT_BUILD/milter/outpost-milter" ] ||
	it_setup_failed "built outpost-milter in $IT_BUILD"
it_keygen "$T/keys" example.com s1 rsa || it_setup_failed "RSA key"
it_keygen "$T/keys" example.com e1 ed25519 || it_setup_failed "ed25519 key"

mkdir -p "$T/milter"
chmod 755 "$T/milter"
TRACE=$T/milter/trace.sock
SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
sink_start "$T/sink" "$SINK_PORT" || it_setup_failed "start smtp-sink"
pf_setup "$T/postfix" "$SMTP_PORT" "$SINK_PORT" "unix:$TRACE"
pf_start "$SMTP_PORT" || it_setup_failed "start private postfix"

# wire_check - check the packets of LOG; prints "ok|what" or "fail|what"
wire_check() {
	"$IT_PY" - "$1" <<'EOF'
import json, struct, sys

NR_CONN, NR_MAIL = 0x1000, 0x4000
STAGES = ('connect', 'helo', 'mail', 'rcpt', 'data', 'eom', 'eoh')
conns = {}
for line in open(sys.argv[1]):
    p = json.loads(line)
    conns.setdefault(p['conn'], []).append(
        (p['from'], p['cmd'], bytes.fromhex(p['data'])))

def say(ok, what):
    print('%s|%s' % ('ok' if ok else 'fail', what))

def lists(data):
    """The macro lists after version, actions, protocol of an OPTNEG."""
    out, off = {}, 12
    while off + 4 <= len(data):
        (st,) = struct.unpack('>I', data[off:off + 4])
        end = data.index(b'\0', off + 4)
        out[STAGES[st]] = data[off + 4:end].decode()
        off = end + 1
    return out

smtp = [conns[k] for k in sorted(conns)
        if any(s == 'mta' and cmd == 'C' for s, cmd, _ in conns[k])]
say(len(smtp) == 7, 'seven SMTP sessions crossed the socket (got %d)'
    % len(smtp))
for c in smtp[:2]:
    client = next(d for s, cmd, d in c if s == 'mta' and cmd == 'C')
    who = 'untrusted' if b'127.0.0.2' in client else 'trusted'
    neg = next((d for s, cmd, d in c if s == 'milter' and cmd == 'O'), b'')
    prot = struct.unpack('>I', neg[8:12])[0] if len(neg) >= 12 else 0
    say(prot & NR_CONN, '%s: the milter negotiated SMFIP_NR_CONN '
        '(protocol 0x%x)' % (who, prot))
    ls = lists(neg)
    say(ls.get('helo') == '{outpost_none}' and
        ls.get('data') == '{outpost_none}' and
        ls.get('connect') == 'j {daemon_name}' and len(ls) == 7,
        '%s: a macro list for each of the 7 stages, HELO and DATA '
        'empty of real names (%s)' % (who, ls))
    macs = {}
    for s, cmd, d in c:
        if s == 'mta' and cmd == 'D':
            names = d[1:].split(b'\0')[0:-1:2]
            macs.setdefault(chr(d[0]), set()).update(
                n.decode() for n in names)
    say(not macs.get('H') and not macs.get('T'),
        '%s: Postfix sent no HELO or DATA macros (%s)' % (who, macs))
    say(macs.get('C', set()) <= {'j', '{daemon_name}'},
        '%s: Postfix sent only j and {daemon_name} at CONNECT (%s)'
        % (who, sorted(macs.get('C', set()))))
    # After OPTNEG the milter speaks only in answer to end of message.
    early, seen_eom = [], False
    for s, cmd, d in c:
        if s == 'mta' and cmd == 'E':
            seen_eom = True
        if s == 'milter' and cmd != 'O' and not seen_eom:
            early.append(cmd)
    say(not early, '%s: no reply before end of message, none to CONNECT '
        '(sent early: %s)' % (who, early))

# Then untrusted senders often: the milter asks for a reply to MAIL,
# accepts an untrusted message there (Postfix sends no header, body or
# end of message), continues a trusted one.
def mail_reply(c):
    """The milter's first packet after the MTA's MAIL, or None."""
    after = False
    for s, cmd, d in c:
        if s == 'mta' and cmd == 'M':
            after = True
        elif after and s == 'milter':
            return cmd
    return None

if len(smtp) == 7:
    for c, who, want in ((smtp[5], 'untrusted', 'a'),
                         (smtp[6], 'trusted', 'c')):
        neg = next((d for s, cmd, d in c if s == 'milter' and cmd == 'O'),
                   b'')
        prot = struct.unpack('>I', neg[8:12])[0] if len(neg) >= 12 else 0
        say(prot & NR_CONN and not prot & NR_MAIL, 'after 5 of 6 senders '
            'untrusted, %s: a reply to MAIL negotiated (protocol 0x%x)'
            % (who, prot))
        say(mail_reply(c) == want, '%s: answered %r at MAIL (got %r)'
            % (who, want, mail_reply(c)))
        sent = sorted({cmd for s, cmd, _ in c if s == 'mta'} & set('LBE'))
        if who == 'untrusted':
            say(not sent, 'untrusted: no header, body or end of message '
                'sent (sent: %s)' % sent)
        else:
            say(sent == ['B', 'E', 'L'], 'trusted: header, body and end '
                'of message sent (sent: %s)' % sent)
EOF
}

# one_engine - start the engine, send both messages, check the trace
one_engine() {
	local engine=$1 m raw got tag pid mpid
	local SOCK=unix:$T/milter/$engine.sock
	OUTPOST_ENGINE=$engine outpost_conf "$T/$engine.conf" "$SOCK" \
	    "$T/keys" example.com s1 e1
	outpost_start "$T/$engine.conf" "$SOCK" "$T/$engine.log" ||
		it_setup_failed "start outpost-milter ($engine)" "$T/$engine.log"
	mpid=$IT_LASTPID
	rm -f "$TRACE"
	it_spawn "$T/trace-$engine.err" "$IT_PY" \
	    "$IT_TOP/tests/integration/miltrace.py" "$TRACE" "${SOCK#unix:}" \
	    "$T/trace-$engine.json"
	pid=$IT_LASTPID
	it_wait 10 test -S "$TRACE" || it_setup_failed "start miltrace" \
	    "$T/trace-$engine.err"
	n=0
	for who in trusted untrusted untrusted untrusted untrusted untrusted \
	    trusted; do
		n=$((n + 1))
		m=$(it_new_msg "$T/msgs" "$engine-$n-$who" \
		    'Alice <alice@example.com>' "$engine $who")
		printf '\r\nhello\r\n' >>"$m"
		src=127.0.0.1
		[ "$who" = untrusted ] && src=127.0.0.2
		tag=$(it_msg_tag "$m")
		it_send "$T/swaks-$engine-$n.log" alice@example.com \
		    bob@example.net "$m" "$SMTP_PORT" "$src"
		if ! raw=$(sink_wait "$tag" 30); then
			it_fail "$engine $n $who: message arrived"
			continue
		fi
		got=$(it_sig_count "$raw")
		if [ "$who" = trusted ]; then
			it_check "$engine $n $who: signed twice (got $got)" \
			    [ "$got" -eq 2 ]
		else
			it_check "$engine $n $who: unsigned (got $got)" \
			    [ "$got" -eq 0 ]
		fi
	done
	it_stop_pid "$pid"
	it_stop_pid "$mpid"
	while IFS='|' read -r res what; do
		if [ "$res" = ok ]; then
			it_pass "$engine: $what"
		else
			it_fail "$engine: $what"
		fi
	done < <(wire_check "$T/trace-$engine.json")
}

one_engine native
one_engine libmilter
pf_stop
it_finish
