#!/usr/bin/env bash
# tests/integration/quota_lapsed.sh - a sender slower than store.reserve_ttl
# is still charged, and never goes over the limit.
#
# store.reserve_ttl = "2s", a limit of 5 recipients per hour per sender, an
# LMDB store.  A private Postfix counts with the milter (milter.quotas =
# all), then with outpost-policyd (RCPT and END-OF-MESSAGE), and a client
# (slow_smtp below) waits 3 s after the message data before it ends DATA,
# so that its RCPT reservations lapse before their commit:
#   - 3 recipients, alone: the message is accepted and outpostctl quota
#     show reads 3 (it read nothing before the fix);
#   - 3 recipients; while the client waits, after the lapse, another
#     message of the same sender takes 3 of the 5: the slow message no
#     longer fits and is refused at end of data with the limit's reply
#     (450 4.7.1), and the counter stays at 3: none of it is charged, not
#     even the 2 recipients that would still fit (before the fix it was
#     accepted, uncharged).
# Needs root (Postfix), postfix, smtp-sink, swaks.
set -u
. "$(dirname "$0")/lib.sh"
it_init quota-lapsed
T=$IT_T

MILTER=$IT_BUILD/milter/outpost-milter
POLICYD=$IT_BUILD/policy/outpost-policyd
it_need postfix smtp-sink swaks "$IT_PY" "$MILTER" "$POLICYD" \
    "$IT_BUILD/tools/outpostctl"
it_need_root "private Postfix"

fatal_setup() {
	it_setup_failed "$*"
}

# write_conf FILE MILTER_LINE - the limit, the store, and MILTER_LINE
write_conf() {
	cat >"$1" <<EOF
$2
trusted = { networks = [ "127.0.0.1/32" ]; authenticated = true; };
store = { backend = "lmdb"; path = "$T/quota.lmdb"; reserve_ttl = "2s"; };
limits = (
  { name = "rcpt5"; key = "sender"; count = "recipients"; kind = "window";
    limit = 5; period = "1h"; action = "defer"; }
);
EOF
}

# slow_smtp PORT FROM N WAIT TAG - N recipients; WAIT seconds between the
# message data and its final "."; prints "rcpt CODE" per recipient, then
# "eom CODE TEXT"
slow_smtp() {
	"$IT_PY" - "$@" <<'EOPY'
import smtplib, sys, time
port, sender, n, wait, tag = sys.argv[1:6]
s = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
s.ehlo("client.outpost.test")
s.mail(sender)
for i in range(int(n)):
    code, _ = s.rcpt("%s%d@example.net" % (tag, i))
    print("rcpt", code, flush=True)
code, text = s.docmd("DATA")
if code != 354:
    print("data", code, text.decode())
    sys.exit()
s.send(("From: %s\r\nTo: x@example.net\r\nSubject: %s\r\n\r\nslow\r\n"
    % (sender, tag)).encode())
time.sleep(float(wait))
s.send(b".\r\n")
code, text = s.getreply()
print("eom", code, text.decode().replace("\n", " "), flush=True)
s.quit()
EOPY
}

# lapsed_suite NAME CONF - the two cases against the running Postfix
lapsed_suite() {
	local name=$1 conf=$2 out=$T/$1 slow
	mkdir -p "$out"
	slow_smtp "$SMTP_PORT" "alice@$name.example" 3 3 a >"$out/alone.out" 2>&1
	it_check "$name: slow sender alone: 3 recipients accepted" \
	    test "$(grep -c '^rcpt 250' "$out/alone.out")" -eq 3
	it_check "$name: slow sender alone: accepted at end of data" \
	    grep -q '^eom 250' "$out/alone.out"
	it_check "$name: slow sender alone: quota show 3 (charged)" \
	    test "$(it_quota_used "$conf" "alice@$name.example" rcpt5)" = 3

	slow_smtp "$SMTP_PORT" "bob@$name.example" 3 4 b >"$out/slow.out" 2>&1 &
	slow=$!
	it_wait 10 eval 'test "$(grep -c "^rcpt 250" '"$out/slow.out"')" -eq 3' ||
	    true
	sleep 2.5		# its reservations lapse
	swaks --server 127.0.0.1 --port "$SMTP_PORT" \
	    --helo client.outpost.test --from "bob@$name.example" \
	    --to "$(it_rcpt_list c 3)" --timeout 30 >"$out/fast.log" 2>&1
	wait "$slow"
	it_check "$name: the other message takes 3 of the 5" \
	    grep -q '250 2.0.0 Ok: queued' "$out/fast.log"
	it_check "$name: slow message: refused at end of data (450 4.7.1)" \
	    grep -Eq '^eom 450 4.7.1 .*Quota exceeded for bob@'"$name"'.example: 3/5' \
	    "$out/slow.out"
	it_check "$name: slow message refused: quota show 3 (none of it)" \
	    test "$(it_quota_used "$conf" "bob@$name.example" rcpt5)" = 3
	if [ "$IT_FAILED" -ne 0 ]; then
		sed "s/^/    $name: /" "$out"/*.out >&2
	fi
}

SMTP_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
while [ "$SINK_PORT" = "$SMTP_PORT" ]; do
	SINK_PORT=$(it_free_port)
done
POL_PORT=$(it_free_port)
sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"

# ---- the milter ----------------------------------------------------------------

D=$T/m
mkdir -p "$D"
chmod 755 "$D"
write_conf "$D/outpost.conf" \
    "milter = { socket = \"unix:$D/milter.sock\"; socket_group = \"postfix\"; quotas = \"all\"; };"
outpost_start "$D/outpost.conf" "unix:$D/milter.sock" "$D/milter.log" ||
    fatal_setup "start outpost-milter"
MPID=$IT_LASTPID
pf_setup "$T/pf" "$SMTP_PORT" "$SINK_PORT" "unix:$D/milter.sock"
pf_start "$SMTP_PORT" || fatal_setup "start private postfix"
lapsed_suite milter "$D/outpost.conf"
it_check "milter: refusal logged at EOM with the limit" \
    grep -q 'quota=defer stage=EOM limit=rcpt5 key=bob@milter.example' \
    "$D/milter.log"
it_stop_pid "$MPID"

# ---- outpost-policyd -------------------------------------------------------------

P=$T/p
mkdir -p "$P"
write_conf "$P/outpost.conf" \
    "policyd = { listen = [ \"inet:127.0.0.1:$POL_PORT\" ]; };"
it_spawn "$P/policyd.log" "$POLICYD" -f -c "$P/outpost.conf"
PPID_=$IT_LASTPID
it_wait 10 it_port_open "$POL_PORT" || fatal_setup "start outpost-policyd"
postconf -c "$IT_PF_DIR/etc" -e "smtpd_milters =" "non_smtpd_milters =" \
    "smtpd_recipient_restrictions = check_policy_service { inet:127.0.0.1:$POL_PORT, default_action=DEFER_IF_PERMIT }" \
    "smtpd_end_of_data_restrictions = check_policy_service { inet:127.0.0.1:$POL_PORT, default_action=DEFER_IF_PERMIT }" ||
    fatal_setup "postconf"
pf_postfix reload >/dev/null 2>&1 || fatal_setup "postfix reload"
sleep 1
lapsed_suite policyd "$P/outpost.conf"
it_check "policyd: refusal logged at END-OF-MESSAGE with the limit" \
    grep -q 'policy=defer stage=END-OF-MESSAGE limit=rcpt5 key=bob@policyd.example' \
    "$P/policyd.log"
it_check "policyd still running" kill -0 "$PPID_"

if grep -qE 'ERROR: AddressSanitizer|runtime error:' "$D/milter.log" \
    "$P/policyd.log"; then
	it_fail "no ASan/UBSan errors"
else
	it_pass "no ASan/UBSan errors"
fi
if [ "$IT_FAILED" -ne 0 ]; then
	pf_log
	echo "---- milter log ----"
	cat "$D/milter.log"
	echo "---- policyd log ----"
	cat "$P/policyd.log"
fi
it_finish
