#!/usr/bin/env bash
# tests/integration/postfix_chroot.sh - the README's Postfix recipe, chrooted
#
# A private Postfix (tests/integration/lib.sh) whose master.cf runs smtpd
# and cleanup chrooted in its queue directory (chroot column y, as Debian
# ships it), configured with the exact main.cf and master.cf lines that
# README.md gives (between its "outpost-readme:" marker comments; only the
# submission service's port is the private instance's).  Both daemons
# listen in QUEUE/outpost, root:postfix mode 2750 (setgid) as the Debian
# package makes it, with socket_mode "0660" and no socket_group: the
# sockets take the group postfix from the directory.  Shows:
#   - outpost-milter(8) and outpost-policyd(8) give the same lines;
#   - the running smtpd and cleanup really are chrooted (/proc/PID/root is
#     the queue directory), so an absolute socket path could not work;
#   - a SASL user's message on the submission service is signed (rsa-sha256
#     and ed25519-sha256, verified by python3-dkim), trust=authenticated;
#   - a 30-recipient message of another SASL user, limit 20 per login
#     and hour: 20 accepted, 10 x 450 4.7.1 from outpost-policyd;
#   - sendmail(1) mail (pickup -> chrooted cleanup -> non_smtpd_milters)
#     is signed.
# Needs root, postfix, swaks, smtp-sink, saslpasswd2 (sasl2-bin), openssl.
#
# Environment: OUTPOST_BUILD (default TOP/build).

set -u
. "$(dirname "$0")/lib.sh"

it_init postfix_chroot
T=$IT_T
MILTER=$IT_BUILD/milter/outpost-milter
POLICYD=$IT_BUILD/policy/outpost-policyd
README=$IT_TOP/README.md
PASS='secret-of-each-user'

fatal_setup() {
	it_setup_failed "$*" "$T/milter.log" "$T/policyd.log"
}

it_need postfix smtp-sink swaks saslpasswd2 openssl "$IT_PY" "$MILTER" \
    "$POLICYD"
it_need_root "private Postfix"

# readme_block NAME - the code block after <!-- outpost-readme: NAME -->
readme_block() {
	awk -v m="<!-- outpost-readme: $1 -->" '
	    $0 == m { on = 1; next }
	    on && /^```/ { if (in_) exit; in_ = 1; next }
	    in_ { print }' "$README"
}

SMTP_PORT=$(it_free_port)
SUB_PORT=$(it_free_port)
SINK_PORT=$(it_free_port)
PF=$T/pf
Q=$PF/queue
it_log "smtpd 127.0.0.1:$SMTP_PORT, submission 127.0.0.1:$SUB_PORT, smtp-sink 127.0.0.1:$SINK_PORT"

readme_block main.cf >"$T/readme-main.cf"
readme_block master.cf >"$T/readme-master.cf"
sed 's/^/    main.cf:   /' "$T/readme-main.cf"
sed 's/^/    master.cf: /' "$T/readme-master.cf"
grep -q '^smtpd_milters = ' "$T/readme-main.cf" ||
    fatal_setup "README.md has no main.cf block with smtpd_milters"
grep -q '^submission ' "$T/readme-master.cf" ||
    fatal_setup "README.md has no master.cf block with a submission service"

# in_man BLOCK PAGE - every line of BLOCK is a line of the man page PAGE
in_man() {
	local l
	sed 's/\\-/-/g' "$IT_TOP/doc/$2" >"$T/man.txt"
	while IFS= read -r l; do
		grep -qxF -- "$l" "$T/man.txt" || {
			it_log "not in doc/$2: $l"
			return 1
		}
	done <"$1"
}
it_check "outpost-milter(8) gives the README's main.cf lines" \
    in_man "$T/readme-main.cf" outpost-milter.8
for page in outpost-milter.8 outpost-policyd.8; do
	it_check "${page%.8}(8) gives the README's submission service" \
	    in_man "$T/readme-master.cf" "$page"
done

# ---- keys, sockets, daemons ----------------------------------------------------

it_keygen "$T/keys" example.com s2026r rsa || fatal_setup "rsa key"
it_keygen "$T/keys" example.com s2026e ed25519 || fatal_setup "ed25519 key"
ZONE=$T/keys/zone

# The socket directory as the Debian package makes it.
mkdir -p "$Q/outpost"
chown root:postfix "$Q/outpost"
chmod 2750 "$Q/outpost"

cat >"$T/outpost.conf" <<EOF
milter = {
	socket = "unix:$Q/outpost/milter.sock";
	socket_mode = "0660";
	quotas = "non_smtpd";
	engine = "${OUTPOST_ENGINE:-native}";
};
trusted = {
	networks = [ "127.0.0.0/8", "::1/128" ];
	authenticated = true;
	daemon_names = [ "ORIGINATING" ];
};
dkim = {
	keys = (
		{ name = "r"; domain = "example.com"; selector = "s2026r";
		  algorithm = "rsa-sha256"; file = "$T/keys/s2026r.private"; },
		{ name = "e"; domain = "example.com"; selector = "s2026e";
		  algorithm = "ed25519-sha256"; file = "$T/keys/s2026e.private"; }
	);
	signing = ( { match = "*@example.com"; keys = [ "r", "e" ]; } );
};
store = { backend = "lmdb"; path = "$T/quota.lmdb"; };
limits = (
	{ name = "login-hourly"; key = "sasl_username"; count = "recipients";
	  kind = "window"; limit = 20; period = "1h"; action = "defer"; }
);
policyd = {
	listen = [ "unix:$Q/outpost/policy.sock" ];
	socket_mode = "0660";
};
EOF
outpost_start "$T/outpost.conf" "unix:$Q/outpost/milter.sock" \
    "$T/milter.log" || fatal_setup "start outpost-milter"
it_spawn "$T/policyd.log" "$POLICYD" -f -c "$T/outpost.conf"
milter_wait_socket "unix:$Q/outpost/policy.sock" "$IT_LASTPID" ||
    fatal_setup "start outpost-policyd"
for s in milter policy; do
	st=$(stat -c '%U:%G %a' "$Q/outpost/$s.sock")
	it_check "$s.sock is root:postfix 660 in the setgid directory ($st)" \
	    [ "$st" = "root:postfix 660" ]
done

# ---- the private Postfix, chrooted, with the README's lines --------------------

sink_start "$T/sink" "$SINK_PORT" || fatal_setup "start smtp-sink"
pf_setup "$PF" "$SMTP_PORT" "$SINK_PORT" ""
pf_chroot
# alice sends one message, carol the 30 recipients: each login has its own
# quota.
pf_enable_sasl alice "$PASS" && pf_enable_sasl carol "$PASS" ||
    fatal_setup "SASL"
pf_enable_tls || fatal_setup "TLS certificate"
# The README's main.cf lines (a line that starts with white space
# continues the one before), set with postconf -e.
mapfile -t MAINCF < <(awk '/^[ \t]/ { l = l " " $0; next }
    { if (l != "") print l; l = $0 } END { if (l != "") print l }' \
    "$T/readme-main.cf")
postconf -c "$PF/etc" -e "${MAINCF[@]}" || fatal_setup "postconf -e README lines"
{
	echo "# README.md (the private instance's port)"
	sed "s/^submission /127.0.0.1:$SUB_PORT /" "$T/readme-master.cf"
} >>"$PF/etc/master.cf"
pf_start "$SMTP_PORT" || fatal_setup "start postfix"
it_wait 10 it_port_open "$SUB_PORT" || fatal_setup "no submission listener"

# ---- a SASL user's message on the submission service ----------------------------

export IT_SEND_TLS=1
m1=$(it_new_msg "$T/msgs" sasl "Alice <alice@example.com>" "submitted with SMTP AUTH")
printf '\nSent over the submission service, chrooted smtpd.\n' | it_crlf "$m1"
it_send "$T/swaks-sasl.log" alice@example.com bob@example.net "$m1" \
    "$SUB_PORT" 127.0.0.1 alice@outpost.test "$PASS"
# swaks marks lines read over TLS "<~" (errors "<~*").  A message that
# was not accepted is not waited for.
queued=0
grep -Eq '^ *<[-~]  *250 2.0.0 Ok: queued' "$T/swaks-sasl.log" && queued=1
it_check "sasl: accepted on the submission service" [ "$queued" = 1 ]
if [ "$queued" = 1 ] && f=$(sink_wait "$(it_msg_tag "$m1")" 20); then
	sink_message "$f" "$T/got-sasl.eml"
	it_verify_py "$T/got-sasl.eml" "$ZONE" >"$T/verify-sasl.out" 2>&1
	sed 's/^/    python3-dkim: /' "$T/verify-sasl.out"
	it_check "sasl: python3-dkim verifies rsa-sha256 and ed25519-sha256" \
	    it_verify_algs "$T/verify-sasl.out" rsa-sha256 ed25519-sha256
else
	it_fail "sasl: the message reaches smtp-sink"
fi
it_check "sasl: the milter signed it as trust=authenticated" \
    grep -q 'dkim=signed .*trust=authenticated' "$T/milter.log"

# ---- smtpd and cleanup are chrooted --------------------------------------------

# chrooted NAME - every NAME child of the master runs in the queue directory
chrooted() {
	local master pids pid root n=0
	master=$(pf_master_pid) || return 1
	pids=$(pgrep -P "$master" -x "$1") || return 1
	for pid in $pids; do
		root=$(readlink "/proc/$pid/root")
		it_log "$1 pid $pid: root $root"
		[ "$root" = "$(readlink -f "$Q")" ] || return 1
		n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}
it_check "smtpd runs chrooted in the queue directory" chrooted smtpd
it_check "cleanup runs chrooted in the queue directory" chrooted cleanup

# ---- 30 recipients, 20 per login and hour --------------------------------------

m2=$(it_new_msg "$T/msgs" thirty "Carol <carol@example.com>" "thirty recipients")
printf '\nThirty recipients, twenty allowed.\n' | it_crlf "$m2"
it_send "$T/swaks-30.log" carol@example.com "$(it_rcpt_list rcpt 30)" "$m2" \
    "$SUB_PORT" 127.0.0.1 carol@outpost.test "$PASS"
ok=$(grep -Ec '^ *<[-~]  *250 2.1.5' "$T/swaks-30.log")
deferred=$(grep -Ec '^ *<(\*\*|~\*) *450 4.7.1' "$T/swaks-30.log")
it_log "RCPT: $ok accepted, $deferred deferred"
grep -m 1 '450 4.7.1' "$T/swaks-30.log" | sed 's/^/    /'
it_check "30 recipients: 20 accepted" [ "$ok" -eq 20 ]
it_check "30 recipients: 10 x 450 4.7.1 from outpost-policyd" [ "$deferred" -eq 10 ]
it_check "30 recipients: the reply names carol's login quota" grep -q \
    '450 4.7.1 .*Quota exceeded for carol@outpost.test: 20/20 recipients' \
    "$T/swaks-30.log"
if grep -Eq '^ *<[-~]  *250 2.0.0 Ok: queued' "$T/swaks-30.log"; then
	it_pass "30 recipients: the message is queued for the 20"
	f=$(sink_wait "$(it_msg_tag "$m2")" 20) || f=
	it_check "30 recipients: it reaches smtp-sink" [ -n "$f" ]
else
	it_fail "30 recipients: the message is queued for the 20"
fi
unset IT_SEND_TLS

# ---- sendmail(1): pickup, chrooted cleanup, non_smtpd_milters ------------------

m3=$(it_new_msg "$T/msgs" local "alice@example.com" "submitted with sendmail(1)")
printf '\nSubmitted on the host with sendmail(1).\n' | it_crlf "$m3"
if tr -d '\r' <"$m3" | sendmail -C "$PF/etc" -f alice@example.com \
    bob@example.net && f=$(sink_wait "$(it_msg_tag "$m3")" 10); then
	sink_message "$f" "$T/got-local.eml"
	it_verify_py "$T/got-local.eml" "$ZONE" >"$T/verify-local.out" 2>&1
	sed 's/^/    python3-dkim: /' "$T/verify-local.out"
	it_check "sendmail(1): python3-dkim verifies rsa-sha256 and ed25519-sha256" \
	    it_verify_algs "$T/verify-local.out" rsa-sha256 ed25519-sha256
else
	it_fail "sendmail(1): the message reaches smtp-sink"
fi
it_check "cleanup still runs chrooted" chrooted cleanup

if [ "$IT_FAILED" -gt 0 ]; then
	pf_log
	for f in milter policyd; do
		echo "---- $f log ----"
		cat "$T/$f.log"
	done
fi
it_check "no ASan/UBSan report in the daemons' logs" bash -c \
    "! grep -Eq 'ERROR: AddressSanitizer|runtime error:' '$T/milter.log' '$T/policyd.log'"
it_finish
