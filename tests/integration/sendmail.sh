#!/usr/bin/env bash
# tests/integration/sendmail.sh - outpost-milter behind a real Sendmail.
#
# Debian 12's sendmail-bin conflicts with postfix in apt, so Sendmail is
# never installed: sendmail-bin, sendmail-base, sendmail-cf and libwrap0
# are fetched with `apt-get download` (cached under OUTPOST_CACHE/sendmail;
# the system's packages and sources are untouched) and unpacked with
# dpkg-deb -x into the test's temporary directory.  A private sendmail.cf
# is generated with m4 from sendmail-cf: it listens on a loopback port
# only, has INPUT_MAIL_FILTER pointing at the outpost-milter started here,
# and relays everything to smtp-sink on another loopback port.
#
# 1. mail from a trusted client (127.0.0.1) arrives at smtp-sink signed
#    (rsa-sha256 and ed25519-sha256) and python3-dkim verifies both;
# 2. milter quotas, 20 recipients/hour: one message to 30 recipients gets
#    20 accepted and 10 deferred with 450 4.7.1; outpostctl quota show: 20;
# 3. transactions aborted by QUIT after RCPT, by RSET (then a transaction
#    of 3 that is charged 3) and by a dropped connection are refunded;
# 4. inbound SPF (libspf2's zone layer) for an untrusted client, 127.0.0.2:
#    pass accepted with Received-SPF and Authentication-Results, fail
#    refused with 550 5.7.23; a trusted client is not checked;
# 5. a key rotation and a reload (SIGUSR1) between two messages of one SMTP
#    session (Sendmail keeps its milter connection): the second message is
#    signed with the new selector, which python3-dkim verifies.
# Any setup failure is a FAIL, never a skip.
set -u
. "$(dirname "$0")/lib.sh"
it_init sendmail
T=$IT_T

CTL=$IT_BUILD/tools/outpostctl
DOMAIN=example.com
RSA_SEL=smr
ED_SEL=sme
SM_PIDFILE=

fatal_setup() {
	it_setup_failed "$*" "${SM_LOG:-}"
}

# sm_stop - stop the Sendmail daemon and the children it forked
sm_stop() {
	local pid
	[ -n "$SM_PIDFILE" ] && [ -f "$SM_PIDFILE" ] || return 0
	pid=$(head -n 1 "$SM_PIDFILE")
	[ -n "$pid" ] && it_stop_pid "$pid"
	SM_PIDFILE=
}
# lib.sh's cleanup after ours: it_cleanup keeps the exit status.
trap 'rc=$?; sm_stop; (exit $rc); it_cleanup' EXIT

it_need "$IT_BUILD/milter/outpost-milter" "$CTL" \
    "$IT_BUILD/tests/outpost-spf-worker-test" m4 smtp-sink swaks apt-get dpkg-deb
it_need_root "Sendmail daemon"

# ---- Sendmail from its unpacked packages ------------------------------------

CACHE=$IT_CACHE/sendmail
PKGS="sendmail-bin sendmail-base sendmail-cf libwrap0"
mkdir -p "$CACHE" || fatal_setup "cannot make $CACHE"
for p in $PKGS; do
	ls "$CACHE/${p}_"*.deb >/dev/null 2>&1 && continue
	it_log "apt-get download $p"
	(cd "$CACHE" && apt-get download -q "$p" >"$CACHE/$p.log" 2>&1) ||
	    fatal_setup "apt-get download $p: $(tail -n 2 "$CACHE/$p.log")"
done
ROOT=$T/smroot
mkdir -p "$ROOT"
for p in $PKGS; do
	deb=$(ls "$CACHE/${p}_"*.deb | tail -n 1)
	dpkg-deb -x "$deb" "$ROOT" || fatal_setup "dpkg-deb -x $deb"
done
SENDMAIL=$ROOT/usr/libexec/sendmail/sendmail
CFDIR=$ROOT/usr/share/sendmail/cf
[ -x "$SENDMAIL" ] || fatal_setup "no sendmail binary in sendmail-bin"
[ -f "$CFDIR/m4/cf.m4" ] || fatal_setup "no cf.m4 in sendmail-cf"
# The packaged binary is setgid mail: the loader would ignore
# LD_LIBRARY_PATH (where the unpacked libwrap0 is).  Run it as plain root.
chmod 0755 "$SENDMAIL"
export LD_LIBRARY_PATH=$ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ldd "$SENDMAIL" | grep -q 'not found'; then
	fatal_setup "sendmail libraries: $(ldd "$SENDMAIL" | grep 'not found')"
fi

# ---- keys, milter, smtp-sink ------------------------------------------------

it_keygen "$T/keys" "$DOMAIN" "$RSA_SEL" rsa || fatal_setup "RSA key"
it_keygen "$T/keys" "$DOMAIN" "$ED_SEL" ed25519 || fatal_setup "ed25519 key"
ZONE=$T/keys/zone

D=$T/milter
mkdir -p "$D"
CONF=$D/outpost.conf
MILTER_PORT=$(it_free_port)
SOCK=inet:$MILTER_PORT@127.0.0.1
MLOG=$D/milter.log
outpost_conf "$CONF" "$SOCK" "$T/keys" "$DOMAIN" "$RSA_SEL" "$ED_SEL"
cat >>"$CONF" <<EOF
store = { backend = "lmdb"; path = "$D/quota.lmdb"; };
limits = (
  { name = "rcpt20"; key = "sender"; count = "recipients"; kind = "window";
    limit = 20; period = "1h"; }
);
EOF
# Inbound SPF for untrusted clients, on libspf2's zone layer (the
# test worker loads OUTPOST_SPF_ZONE instead of asking DNS).
printf '%s\n' 'sm-pass.example TXT v=spf1 ip4:127.0.0.2 -all' \
    'sm-fail.example TXT v=spf1 ip4:192.0.2.99 -all' >"$T/zone"
chmod 644 "$T/zone"
export OUTPOST_SPF_ZONE=$T/zone
cat >>"$CONF" <<EOF
spf = {
  workers = 2;
  worker = "$IT_BUILD/tests/outpost-spf-worker-test";
  timeout = 5;
  inbound = { enabled = true; receiver = "mta.outpost.test"; };
  outbound = { enabled = false; };
};
EOF
sed -i 's/^milter = { /milter = { quotas = "all"; /' "$CONF"
outpost_start "$CONF" "$SOCK" "$MLOG" || fatal_setup "start outpost-milter"
MPID=$IT_LASTPID

SM_PORT=$(it_free_port)
while [ "$SM_PORT" = "$MILTER_PORT" ]; do
	SM_PORT=$(it_free_port)
done
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SM_PORT" ] || [ "$SINK_PORT" = "$MILTER_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"

# ---- private sendmail.cf ----------------------------------------------------

S=$T/sm
mkdir -p "$S/queue" "$S/cqueue"
chmod 700 "$S/queue"
chmod 770 "$S/cqueue"
SM_LOG=$S/sendmail.log
SM_PIDFILE=$S/sendmail.pid
printf 'hosts\tfiles\naliases\tfiles\n' >"$S/service.switch"
printf '127.0.0.1\tlocalhost mta.outpost.test\n' >"$S/hosts"
: >"$S/aliases"
: >"$S/helpfile"
cat >"$S/sendmail.mc" <<EOF
divert(-1)
divert(0)dnl
include(\`$CFDIR/m4/cf.m4')dnl
VERSIONID(\`outpost sendmail.sh')dnl
OSTYPE(\`linux')dnl
define(\`confDOMAIN_NAME', \`mta.outpost.test')dnl
define(\`confSERVICE_SWITCH_FILE', \`$S/service.switch')dnl
define(\`confHOSTS_FILE', \`$S/hosts')dnl
define(\`ALIAS_FILE', \`$S/aliases')dnl
define(\`HELP_FILE', \`$S/helpfile')dnl
define(\`QUEUE_DIR', \`$S/queue')dnl
define(\`MSP_QUEUE_DIR', \`$S/cqueue')dnl
define(\`STATUS_FILE', \`$S/statistics')dnl
define(\`confPID_FILE', \`$SM_PIDFILE')dnl
define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe,TrustStickyBit,GroupReadableKeyFile,NonRootSafeAddr,AssumeSafeChown')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confRESOLVER_OPTIONS', \`-DNSRCH -DEFNAMES')dnl
define(\`confBIND_OPTS', \`-DNSRCH -DEFNAMES')dnl
define(\`confTO_IDENT', \`0s')dnl
define(\`confTO_CONNECT', \`10s')dnl
define(\`confTO_INITIAL', \`10s')dnl
define(\`confDELIVERY_MODE', \`background')dnl
define(\`confLOG_LEVEL', \`14')dnl
define(\`confMAX_RCPTS_PER_MESSAGE', \`100')dnl
define(\`confBAD_RCPT_THROTTLE', \`0')dnl
define(\`confMIN_FREE_BLOCKS', \`0')dnl
define(\`confMILTER_LOG_LEVEL', \`6')dnl
define(\`SMART_HOST', \`[127.0.0.1]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $SINK_PORT')dnl
FEATURE(\`nouucp', \`reject')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unqualified_senders')dnl
FEATURE(\`accept_unresolvable_domains')dnl
DAEMON_OPTIONS(\`Family=inet, Name=MTA, Port=$SM_PORT, Addr=127.0.0.1')dnl
INPUT_MAIL_FILTER(\`outpost', \`S=$SOCK, F=T, T=C:10s;S:30s;R:30s;E:60s')dnl
MAILER(\`smtp')dnl
EOF
m4 "$S/sendmail.mc" >"$S/sendmail.cf" 2>"$S/m4.log" ||
    fatal_setup "m4 sendmail.cf: $(head -n 5 "$S/m4.log")"
grep -q "^O DaemonPortOptions=.*Port=$SM_PORT" "$S/sendmail.cf" ||
    fatal_setup "generated sendmail.cf has no daemon on port $SM_PORT"
grep -q "^Xoutpost, S=$SOCK" "$S/sendmail.cf" ||
    fatal_setup "generated sendmail.cf has no INPUT_MAIL_FILTER"
chmod 644 "$S/sendmail.cf"

# -bd forks into the background and writes the pid file.  Sendmail sleeps
# 60 s at start when the host name is not qualified (this machine's is
# "vm"): run it in its own UTS namespace named mta.outpost.test.
command -v unshare >/dev/null || fatal_setup "missing unshare (util-linux)"
unshare --uts sh -c 'hostname mta.outpost.test && exec "$@"' sh \
    "$SENDMAIL" -C "$S/sendmail.cf" -bd -L outpost-sm \
    </dev/null >"$SM_LOG" 2>&1 ||
    fatal_setup "sendmail -bd failed: $(tail -n 5 "$SM_LOG")"
it_wait 20 test -s "$SM_PIDFILE" || fatal_setup "sendmail wrote no pid file"
it_wait 20 it_port_open "$SM_PORT" ||
    fatal_setup "sendmail does not listen on 127.0.0.1:$SM_PORT"
it_pass "setup: Sendmail on 127.0.0.1:$SM_PORT with outpost-milter"

# ---- 1. trusted client: signed, verifies ------------------------------------

m1=$(it_new_msg "$T/msgs" signed "alice@$DOMAIN" 'sendmail signed')
printf '\r\nSigned through Sendmail.\r\n' >>"$m1"
it_send "$T/swaks1.log" "alice@$DOMAIN" bob@example.net "$m1" "$SM_PORT"
it_check "sendmail: message from 127.0.0.1 accepted" \
    grep -q '^ *<- *250 2.0.0 .*Message accepted' "$T/swaks1.log"
if raw=$(sink_wait "$(it_msg_tag "$m1")" 30); then
	it_pass "sendmail: the message arrives at smtp-sink"
	sink_message "$raw" "$T/got1.eml"
	it_check "sendmail: the message carries 2 DKIM signatures" \
	    test "$(it_sig_count "$T/got1.eml")" -eq 2
	it_verify_py "$T/got1.eml" "$ZONE" >"$T/v1.out" 2>&1
	sed 's/^/    python3-dkim: /' "$T/v1.out"
	it_check "sendmail: python3-dkim verifies rsa-sha256 and ed25519-sha256" \
	    it_verify_algs "$T/v1.out" rsa-sha256 ed25519-sha256
else
	it_fail "sendmail: the message arrives at smtp-sink"
	cat "$T/swaks1.log"
fi

# ---- 2. milter quotas: 20 of 30 recipients ----------------------------------

# used SENDER - SENDER's rcpt20 counter (it_quota_used)
used() {
	it_quota_used "$CONF" "$1" rcpt20
}

m30=$(it_new_msg "$T/msgs" thirty 'carol@example.org' 'thirty recipients')
printf '\r\nOne message, thirty recipients, twenty allowed.\r\n' >>"$m30"
swaks --server 127.0.0.1 --port "$SM_PORT" --helo client.outpost.test \
    --from carol@example.org --to "$(it_rcpt_list p 30)" --data "@$m30" \
    --timeout 30 >"$T/swaks30.log" 2>&1
it_check "sendmail: 30 recipients: 10 deferred with 450 4.7.1" \
    test "$(grep -c '^<\*\* *450 4.7.1 .*Quota exceeded for carol@example.org: 20/20 recipients' "$T/swaks30.log")" -eq 10
it_check "sendmail: 30 recipients: 20 accepted" \
    test "$(grep -c '^ *<- *250 2.1.5' "$T/swaks30.log")" -eq 20
it_check "sendmail: the message is accepted for the 20" \
    grep -q '^ *<- *250 2.0.0 .*Message accepted' "$T/swaks30.log"
it_check "sendmail: quota show: 20 recipients charged" \
    test "$(used carol@example.org)" = 20
if sink_wait "$(it_msg_tag "$m30")" 30 >/dev/null; then
	it_pass "sendmail: the 20-recipient message arrives at smtp-sink"
else
	it_fail "sendmail: the 20-recipient message arrives at smtp-sink"
fi

# ---- 3. aborted transactions are refunded -----------------------------------
# Sendmail tells the milter to abort at QUIT, RSET and a dropped
# connection alike; each must give the reserved recipients back.
swaks --server 127.0.0.1 --port "$SM_PORT" --helo client.outpost.test \
    --from dave@example.org --to "$(it_rcpt_list q 5)" --quit-after RCPT \
    --timeout 30 >"$T/swaks-quit.log" 2>&1
it_check "sendmail: QUIT after 5 RCPT: accepted at RCPT" \
    test "$(grep -c '^ *<- *250 2.1.5' "$T/swaks-quit.log")" -eq 5
it_wait 5 eval 'test "$(used dave@example.org)" -eq 0' || true
it_check "sendmail: QUIT after RCPT: refunded (quota show 0)" \
    test "$(used dave@example.org)" -eq 0

# RSET after 4 RCPT, then a transaction of 3 that completes; then 2
# recipients and the connection dropped without QUIT.
m3=$(it_new_msg "$T/msgs" rset3 'erin@example.org' 'after rset')
printf '\r\nThree after a reset.\r\n' >>"$m3"
"$IT_PY" - "$SM_PORT" "$m3" >"$T/rset.out" 2>&1 <<'PY'
import smtplib, socket, sys
port, msg = int(sys.argv[1]), open(sys.argv[2], "rb").read()
s = smtplib.SMTP("127.0.0.1", port, "client.outpost.test", timeout=30)
s.ehlo("client.outpost.test")
s.mail("erin@example.org")
print("first", [s.rcpt("r%d@example.net" % i)[0] for i in range(4)])
print("rset", s.rset()[0])
s.mail("erin@example.org")
print("second", [s.rcpt("t%d@example.net" % i)[0] for i in range(3)])
print("data", s.data(msg)[0])
s.quit()
s = smtplib.SMTP("127.0.0.1", port, "client.outpost.test", timeout=30)
s.ehlo("client.outpost.test")
s.mail("frank@example.org")
print("dropped", [s.rcpt("d%d@example.net" % i)[0] for i in range(2)])
s.sock.shutdown(socket.SHUT_RDWR)
s.sock.close()
PY
sed 's/^/    /' "$T/rset.out"
it_check "sendmail: RSET after 4 RCPT, then 3 RCPT and DATA: all accepted" \
    grep -qx 'first \[250, 250, 250, 250\]' "$T/rset.out"
it_check "  the second transaction's message is accepted" \
    grep -qx 'data 250' "$T/rset.out"
it_wait 5 eval 'test "$(used erin@example.org)" -eq 3' || true
it_check "  quota show: 3 (the 4 before RSET refunded)" \
    test "$(used erin@example.org)" -eq 3
if sink_wait "$(it_msg_tag "$m3")" 30 >/dev/null; then
	it_pass "  the message after RSET arrives at smtp-sink"
else
	it_fail "  the message after RSET arrives at smtp-sink"
fi
it_check "sendmail: connection dropped after 2 RCPT: accepted at RCPT" \
    grep -qx 'dropped \[250, 250\]' "$T/rset.out"
it_wait 5 eval 'test "$(used frank@example.org)" -eq 0' || true
it_check "  refunded (quota show 0)" test "$(used frank@example.org)" -eq 0

# ---- 4. inbound SPF, untrusted client 127.0.0.2 ------------------------------
# spf_send NAME FROM [SOURCE] - a message from SOURCE (default 127.0.0.2)
# with MAIL FROM FROM; SPF_MSG is the file sent
spf_send() {
	SPF_MSG=$(it_new_msg "$T/msgs" "$1" "$2" "spf $1")
	printf '\r\nSPF through Sendmail.\r\n' >>"$SPF_MSG"
	swaks --server 127.0.0.1 --port "$SM_PORT" \
	    --local-interface "${3:-127.0.0.2}" --helo client.outpost.test \
	    --from "$2" --to bob@example.net --data "@$SPF_MSG" \
	    --timeout 30 >"$T/swaks-$1.log" 2>&1
}
spf_send spfpass alice@sm-pass.example
it_check "sendmail: SPF pass from 127.0.0.2: accepted" \
    grep -q '^ *<- *250 2.0.0 .*Message accepted' "$T/swaks-spfpass.log"
if raw=$(sink_wait "$(it_msg_tag "$SPF_MSG")" 30); then
	sink_message "$raw" "$T/got-spfpass.eml"
	# the header section, unfolded
	awk '/^\r?$/ { exit } { sub(/\r$/, "") }
	    /^[ \t]/ { sub(/^[ \t]+/, " "); h = h $0; next }
	    { if (h != "") print h; h = $0 } END { if (h != "") print h }' \
	    "$T/got-spfpass.eml" >"$T/got-spfpass.hdr"
	sed -n 's/^\(Received-SPF\|Authentication-Results\):/    &/p' \
	    "$T/got-spfpass.hdr"
	it_check "  Received-SPF: pass for 127.0.0.2 and the envelope sender" \
	    grep -Eq '^Received-SPF: pass .*client-ip=127\.0\.0\.2; envelope-from="?alice@sm-pass\.example"?;.*identity=mailfrom; receiver=mta\.outpost\.test;' \
	    "$T/got-spfpass.hdr"
	it_check "  Authentication-Results: spf=pass" \
	    grep -Eq '^Authentication-Results: mta\.outpost\.test; spf=pass .*smtp\.mailfrom=alice@sm-pass\.example' \
	    "$T/got-spfpass.hdr"
else
	it_fail "  the SPF pass message arrives at smtp-sink"
fi
spf_send spffail mallory@sm-fail.example
it_check "sendmail: SPF fail from 127.0.0.2: 550 5.7.23 naming the domain" \
    grep -Eq '^<\*\* *550[ -]5\.7\.23 .*sm-fail\.example' \
    "$T/swaks-spffail.log"
# A trusted client is not checked inbound: the same sender passes.
spf_send spftrusted mallory@sm-fail.example 127.0.0.1
it_check "sendmail: the same sender from trusted 127.0.0.1: accepted" \
    grep -q '^ *<- *250 2.0.0 .*Message accepted' "$T/swaks-spftrusted.log"

# ---- 5. a reload rotates the key on a connection Sendmail keeps -----------
# One SMTP session, two messages: Sendmail keeps its milter connection for
# the whole session.  Between them the RSA key is rotated (new selector)
# and the milter reloaded (SIGUSR1): the second message must carry the new
# selector, and python3-dkim verify it.
NEW_SEL=smr2
it_keygen "$T/keys" "$DOMAIN" "$NEW_SEL" rsa || fatal_setup "RSA key 2"
cat >"$T/rotate.sh" <<ROT
sed -i 's/"$RSA_SEL"/"$NEW_SEL"/; s|/$RSA_SEL.private|/$NEW_SEL.private|' "$CONF"
kill -USR1 $MPID
n=0
until grep -q 'configuration reloaded' "$MLOG"; do
	n=\$((n + 1)); [ \$n -le 100 ] || exit 1; sleep 0.1
done
ROT
mr1=$(it_new_msg "$T/msgs" rot1 "alice@$DOMAIN" 'before the rotation')
printf '\r\nBefore the rotation.\r\n' >>"$mr1"
mr2=$(it_new_msg "$T/msgs" rot2 "alice@$DOMAIN" 'after the rotation')
printf '\r\nAfter the rotation.\r\n' >>"$mr2"
"$IT_PY" - "$SM_PORT" "$mr1" "$mr2" "$T/rotate.sh" >"$T/rot.out" 2>&1 <<'PY'
import smtplib, subprocess, sys
port, m1, m2, rot = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = smtplib.SMTP("127.0.0.1", port, "client.outpost.test", timeout=30)
s.ehlo("client.outpost.test")
for n, m in ((1, m1), (2, m2)):
    if n == 2:
        print("reload", subprocess.run(["bash", rot]).returncode)
    s.mail("alice@example.com")
    s.rcpt("bob@example.net")
    print("data%d" % n, s.data(open(m, "rb").read())[0])
s.quit()
PY
sed 's/^/    /' "$T/rot.out"
it_check "sendmail: reload after a key rotation, in one SMTP session" \
    grep -qx 'reload 0' "$T/rot.out"
it_check "  both messages accepted" \
    test "$(grep -c '^data[12] 250$' "$T/rot.out")" -eq 2
if raw=$(sink_wait "$(it_msg_tag "$mr1")" 30); then
	sink_message "$raw" "$T/got-rot1.eml"
	it_check "  the first is signed with the old selector s=$RSA_SEL" \
	    grep -q "s=$RSA_SEL;" "$T/got-rot1.eml"
else
	it_fail "  the first message arrives at smtp-sink"
fi
if raw=$(sink_wait "$(it_msg_tag "$mr2")" 30); then
	sink_message "$raw" "$T/got-rot2.eml"
	it_verify_py "$T/got-rot2.eml" "$ZONE" >"$T/vrot.out" 2>&1
	sed 's/^/    python3-dkim: /' "$T/vrot.out"
	it_check "  the second (same milter connection): new selector s=$NEW_SEL verifies" \
	    grep -q "^sig [0-9]*: d=$DOMAIN s=$NEW_SEL a=rsa-sha256 ok" \
	    "$T/vrot.out"
	it_check "  and the retired s=$RSA_SEL is not used" \
	    test "$(grep -c "s=$RSA_SEL " "$T/vrot.out")" -eq 0
else
	it_fail "  the second message arrives at smtp-sink"
fi

it_check "sendmail: milter still running" kill -0 "$MPID"
if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$MLOG"; then
	it_fail "milter log has no ASan/UBSan errors"
else
	it_pass "milter log has no ASan/UBSan errors"
fi
if [ "$IT_FAILED" -ne 0 ]; then
	echo "---- swaks (30) ----"
	tail -n 30 "$T/swaks30.log"
	echo "---- milter log ----"
	tail -n 40 "$MLOG"
fi
it_finish
