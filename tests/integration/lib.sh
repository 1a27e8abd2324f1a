# tests/integration/lib.sh - shared helpers for the integration tests and the demo
#
# Sourced by bash scripts (tests/integration/*.sh, scripts/demo); not a test
# itself.  It owns everything those scripts start: a temporary directory, the
# background processes (smtp-sink, the milter) and a private Postfix instance
# (its own config, queue and data directories, loopback listeners only; the
# system's /etc/postfix, queue and service are never touched).  it_cleanup,
# run from the EXIT trap that it_init installs, stops them all by process id,
# on success and on failure alike.
#
# Results: it_pass/it_fail print "PASS: what" or "FAIL: what", one line per
# check; scripts/test counts those lines.  it_finish prints a summary comment
# and returns non-zero if anything failed.
#
# Environment: OUTPOST_BUILD (build directory, default TOP/build),
# OUTPOST_CACHE (download cache for the trixie Mail::DKIM, default
# /var/tmp/outpost-cache), IT_KEEP=1 keeps the temporary directory.

IT_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IT_BUILD=${OUTPOST_BUILD:-$IT_TOP/build}
IT_CACHE=${OUTPOST_CACHE:-/var/tmp/outpost-cache}
IT_PY=/usr/bin/python3
IT_PASSED=0
IT_FAILED=0
IT_PIDS=()
IT_PF_DIR=
IT_PF_CHROOT=0
IT_T=
IT_NAME=

# it_log - a progress line on stderr (results go to stdout)
it_log() {
	echo "# $*" >&2
}

# it_init - make the temporary directory IT_T and install the cleanup trap
it_init() {
	IT_NAME=$1
	IT_T=$(mktemp -d "/tmp/outpost-$IT_NAME.XXXXXX")
	# Postfix daemons and smtp-sink run as the postfix user.
	chmod 755 "$IT_T"
	trap it_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# it_pass - record and print a passed check
it_pass() {
	IT_PASSED=$((IT_PASSED + 1))
	echo "PASS: $*"
}

# it_fail - record and print a failed check
it_fail() {
	IT_FAILED=$((IT_FAILED + 1))
	echo "FAIL: $*"
}

# it_check - run a command; PASS or FAIL named by the first argument
it_check() {
	local what=$1
	shift
	if "$@"; then
		it_pass "$what"
	else
		it_fail "$what"
	fi
}

# it_finish - print the summary comment; non-zero if any check failed
it_finish() {
	echo "# $IT_NAME: $IT_PASSED checks passed, $IT_FAILED failed"
	[ "$IT_FAILED" -eq 0 ]
}

# it_setup_failed WHAT [LOG...] - a set-up step failed: FAIL, the private
# Postfix's log if one is set up, the tail of each LOG that exists, the
# summary; exits 1
it_setup_failed() {
	local what=$1 f
	shift
	it_fail "setup: $what"
	[ -n "${IT_PF_DIR:-}" ] && pf_log
	for f in "$@"; do
		[ -n "$f" ] && [ -f "$f" ] && { echo "---- $f"; tail -n 40 "$f"; }
	done
	it_finish
	exit 1
}

# it_spawn - start a background process, remember its pid in IT_PIDS
# usage: it_spawn LOGFILE CMD ARGS...; sets IT_LASTPID
it_spawn() {
	local logf=$1
	shift
	"$@" </dev/null >"$logf" 2>&1 &
	IT_LASTPID=$!
	IT_PIDS+=("$IT_LASTPID")
}

# it_stop_pid - TERM one process we started, KILL it after 5 s
it_stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# it_cleanup - stop everything this script started and remove IT_T
it_cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	[ -n "$IT_PF_DIR" ] && pf_stop
	for pid in "${IT_PIDS[@]}"; do
		it_stop_pid "$pid"
	done
	IT_PIDS=()
	if [ -n "$IT_T" ] && [ -d "$IT_T" ]; then
		if [ "${IT_KEEP:-0}" = 1 ]; then
			it_log "kept $IT_T"
		else
			rm -rf "$IT_T"
		fi
	fi
	exit $rc
}

# it_wait - poll a command every 0.1 s until it succeeds or SECONDS pass
# usage: it_wait SECONDS CMD ARGS...
it_wait() {
	local n=$(($1 * 10))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# it_free_port - print a TCP port that is free on 127.0.0.1 right now and
# that no other it_free_port call handed out in the last hour: test scripts
# run side by side and pick their ports before they bind them, so each port
# is claimed by mkdir under IT_CACHE/ports (atomic), and old claims expire
it_free_port() {
	local dir=$IT_CACHE/ports p n=50
	mkdir -p "$dir" || return 1
	find "$dir" -mindepth 1 -maxdepth 1 -mmin +60 -exec rmdir {} + \
	    2>/dev/null
	while [ "$n" -gt 0 ]; do
		p=$("$IT_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])') || return 1
		if mkdir "$dir/$p" 2>/dev/null; then
			echo "$p"
			return 0
		fi
		n=$((n - 1))
	done
	return 1
}

# it_port_open - true if something listens on 127.0.0.1:PORT
it_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# it_need PROG... - the script's fatal_setup unless each PROG is a command
# (a name on PATH or an executable path; the build's programs say where
# they were looked for)
it_need() {
	local p
	for p in "$@"; do
		command -v "$p" >/dev/null && continue
		case $p in
		"$IT_BUILD"/*) fatal_setup "no $p (set OUTPOST_BUILD)" ;;
		*) fatal_setup "missing $p" ;;
		esac
	done
}

# it_need_root WHY - the script's fatal_setup unless running as root
it_need_root() {
	[ "$(id -u)" -eq 0 ] || fatal_setup "must run as root ($1)"
}

# it_quota_used CONF KEY LIMIT - the "used" of LIMIT for KEY, as the built
# outpostctl quota show --json tells it: 0 when it shows no counter, ERR
# when outpostctl fails
it_quota_used() {
	"$IT_BUILD/tools/outpostctl" quota show "$2" -c "$1" --json \
	    2>/dev/null | "$IT_PY" -c '
import json, sys
try:
    rows = json.load(sys.stdin)
except ValueError:
    print("ERR")
    sys.exit()
print(next((r["used"] for r in rows if r["limit"] == sys.argv[1]), 0))' "$3"
}

# it_have_outpostctl_keygen - true if the built outpostctl can make keys
it_have_outpostctl_keygen() {
	local d
	[ -x "$IT_BUILD/tools/outpostctl" ] || return 1
	d=$(mktemp -d) || return 1
	"$IT_BUILD/tools/outpostctl" keygen -d probe.example -s probe \
	    -a ed25519 -o "$d" >/dev/null 2>&1 &&
	    [ -s "$d/probe.private" ] && [ -s "$d/probe.txt" ]
	local rc=$?
	rm -rf "$d"
	return $rc
}

# it_zone_txt - print a zone-file TXT line, strings split below 255 bytes
# usage: it_zone_txt NAME RECORDTEXT
it_zone_txt() {
	local name=$1 rec=$2
	printf '%s IN TXT (' "$name"
	while [ -n "$rec" ]; do
		printf ' "%s"' "${rec:0:200}"
		rec=${rec:200}
	done
	printf ' )\n'
}

# it_keygen - make a DKIM key DIR/SELECTOR.private and its DIR/SELECTOR.txt
# usage: it_keygen DIR DOMAIN SELECTOR rsa|ed25519 [outpostctl]
# With "outpostctl" uses tools/outpostctl keygen when it works, otherwise
# (and by default: the tests want a key maker independent of the code under
# test) openssl.  Appends the record to DIR/zone.
it_keygen() {
	local dir=$1 domain=$2 sel=$3 alg=$4 how=${5:-openssl} p
	mkdir -p "$dir"
	if [ "$how" = outpostctl ] && it_have_outpostctl_keygen; then
		"$IT_BUILD/tools/outpostctl" keygen -d "$domain" -s "$sel" \
		    -a "$alg" -o "$dir" >/dev/null || return 1
	else
		case $alg in
		rsa)
			openssl genpkey -algorithm RSA \
			    -pkeyopt rsa_keygen_bits:2048 \
			    -out "$dir/$sel.private" 2>/dev/null || return 1
			p=$(openssl pkey -in "$dir/$sel.private" -pubout \
			    -outform DER | base64 -w0)
			;;
		ed25519)
			openssl genpkey -algorithm ed25519 \
			    -out "$dir/$sel.private" 2>/dev/null || return 1
			# RFC 8463: the raw 32-byte key, not the SPKI.
			p=$(openssl pkey -in "$dir/$sel.private" -pubout \
			    -outform DER | tail -c 32 | base64 -w0)
			;;
		*)
			it_log "it_keygen: unknown algorithm $alg"
			return 1
			;;
		esac
		it_zone_txt "$sel._domainkey.$domain." \
		    "v=DKIM1; k=$alg; p=$p" >"$dir/$sel.txt"
	fi
	chmod 600 "$dir/$sel.private"
	cat "$dir/$sel.txt" >>"$dir/zone"
}

# it_vm_kib PID FIELD - a figure of /proc/PID/status: VmRSS or VmHWM (KiB),
# Threads
it_vm_kib() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# it_attach_msg FILE TAG BYTES - a message from alice@example.com whose
# body is BYTES of base64 of random bytes (an attachment), LF line ends,
# Subject TAG, Message-ID <TAG@example.com>.  python3-dkim canonicalizes
# base64 far faster than text with spaces (seconds per MiB).
it_attach_msg() {
	{
		printf 'From: Alice Example <alice@example.com>\n'
		printf 'To: Bob Example <bob@example.net>\n'
		printf 'Subject: %s\n' "$2"
		printf 'Date: %s\n' "$(date -R)"
		printf 'Message-ID: <%s@example.com>\n' "$2"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: application/octet-stream\n'
		printf 'Content-Transfer-Encoding: base64\n\n'
		head -c $(($3 * 3 / 4 + 64)) /dev/urandom | base64 -w 76 |
		    head -c "$3"
		echo
	} >"$1"
}

# it_mail_dkim_lib - print the PERL5LIB of a Mail::DKIM that knows ed25519
it_mail_dkim_lib() {
	if [ -z "${IT_PERL5LIB:-}" ]; then
		IT_PERL5LIB=$("$IT_TOP/tests/verify/fetch-mail-dkim" \
		    "$IT_CACHE/mail-dkim") || return 1
	fi
	echo "$IT_PERL5LIB"
}

# it_verify_py - python3-dkim verifier: "sig N: d= s= a= ok|FAIL" lines
# usage: it_verify_py MESSAGE ZONEFILE (tests/verify/dkimverify.py)
it_verify_py() {
	"$IT_PY" "$IT_TOP/tests/verify/dkimverify.py" "$1" "$2"
}

# it_verify_pl - Perl Mail::DKIM verifier (the trixie one, for ed25519)
it_verify_pl() {
	local lib
	lib=$(it_mail_dkim_lib) || {
		echo "cannot fetch a Mail::DKIM that verifies ed25519"
		return 1
	}
	PERL5LIB=$lib /usr/bin/perl "$IT_TOP/tests/verify/dkimverify.pl" "$1" "$2"
}

# it_verify_algs - check a verifier's output: every sig ok, algorithms as listed
# usage: it_verify_algs OUTPUTFILE ALG...   (e.g. rsa-sha256 ed25519-sha256)
it_verify_algs() {
	local out=$1 alg
	shift
	[ "$(grep -c '^sig [0-9]*: ' "$out")" -eq $# ] || return 1
	grep -q '^sig [0-9]*: .* FAIL' "$out" && return 1
	for alg in "$@"; do
		grep -q "^sig [0-9]*: .* a=$alg ok" "$out" || return 1
	done
	return 0
}

# it_verify_both - check MESSAGE against ZONE with both verifiers
# usage: it_verify_both WHAT MESSAGE ZONE ALG...; one PASS/FAIL per verifier
it_verify_both() {
	local what=$1 msg=$2 zone=$3 out
	shift 3
	out=$IT_T/verify.$$.out
	it_verify_py "$msg" "$zone" >"$out" 2>&1
	sed 's/^/    python3-dkim: /' "$out"
	it_check "$what: python3-dkim verifies $*" it_verify_algs "$out" "$@"
	it_verify_pl "$msg" "$zone" >"$out" 2>&1
	sed 's/^/    Mail::DKIM:   /' "$out"
	it_check "$what: Mail::DKIM verifies $*" it_verify_algs "$out" "$@"
	rm -f "$out"
}

# ---- private Postfix instance ---------------------------------------------

# pf_setup - write a private Postfix instance under DIR
# usage: pf_setup DIR SMTP_PORT RELAY_PORT MILTER
#   SMTP_PORT  loopback port of its smtpd (listens on 127.0.0.1 only)
#   RELAY_PORT every message is relayed to 127.0.0.1:RELAY_PORT (smtp-sink)
#   MILTER     smtpd_milters value, e.g. unix:/tmp/x/milter.sock
pf_setup() {
	local dir=$1 port=$2 relay=$3 milter=$4
	IT_PF_DIR=$dir
	mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
	chown postfix:postfix "$dir/data"
	cat >"$dir/etc/main.cf" <<EOF
# Private Postfix instance of the Outpost tests (tests/integration/lib.sh)
compatibility_level = 3.6
config_directory = $dir/etc
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = outpost-test-postfix
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mta.outpost.test
mydomain = outpost.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$relay
smtp_bind_address = 127.0.0.1
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_milters = $milter
non_smtpd_milters = $milter
milter_default_action = tempfail
milter_protocol = 6
smtp_tls_security_level = none
smtpd_tls_security_level = none
smtputf8_enable = no
biff = no
default_process_limit = 10
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
	cat >"$dir/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$port inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# pf_enable_sasl - SMTP AUTH (PLAIN, LOGIN) on the private smtpd
# usage: pf_enable_sasl USER PASSWORD   (after pf_setup, before pf_start)
# Cyrus SASL with a private sasldb (sasl2-bin's saslpasswd2); the user logs
# in as USER@outpost.test or USER.  Returns 1 if saslpasswd2 is missing.
# After pf_chroot the database goes into the chroot (queue/etc/sasldb2),
# where a chrooted smtpd opens it: sasldb_path is /etc/sasldb2.
pf_enable_sasl() {
	local dir=$IT_PF_DIR db=$IT_PF_DIR/sasldb2 path=$IT_PF_DIR/sasldb2
	command -v saslpasswd2 >/dev/null || return 1
	if [ "${IT_PF_CHROOT:-0}" = 1 ]; then
		db=$dir/queue/etc/sasldb2
		path=/etc/sasldb2
	fi
	mkdir -p "$dir/etc/sasl"
	printf '%s' "$2" | saslpasswd2 -p -c -f "$db" \
	    -u outpost.test "$1" || return 1
	chown postfix "$db"
	chmod 600 "$db"
	cat >"$dir/etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: $path
EOF
	postconf -c "$dir/etc" -e \
	    "smtpd_sasl_auth_enable = yes" \
	    "smtpd_sasl_type = cyrus" \
	    "smtpd_sasl_path = smtpd" \
	    "cyrus_sasl_config_path = $dir/etc/sasl" \
	    "smtpd_sasl_local_domain = outpost.test" \
	    "smtpd_sasl_security_options = noanonymous" \
	    "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
}

# pf_chroot - run smtpd and cleanup chrooted in the queue directory
# usage: pf_chroot   (after pf_setup, before pf_enable_sasl and pf_start)
# Sets their chroot column to y, as Debian's master.cf does, and copies the
# etc/ files that Debian's configure-instance.sh copies into the chroot.
pf_chroot() {
	local q=$IT_PF_DIR/queue f
	IT_PF_CHROOT=1
	sed -i -E 's/^([^ #]+ +inet +n +- +)n( .* smtpd)$/\1y\2/;
	    s/^(cleanup +unix +n +- +)n /\1y /' "$IT_PF_DIR/etc/master.cf"
	mkdir -p "$q/etc"
	for f in localtime services resolv.conf hosts host.conf nsswitch.conf; do
		[ -f "/etc/$f" ] && cp -L "/etc/$f" "$q/etc/$f"
	done
	chmod -R a+rX "$q/etc"
}

# pf_enable_tls - STARTTLS on the private smtpd, with a self-signed cert
# usage: pf_enable_tls   (after pf_setup; it_send uses it with IT_SEND_TLS=1)
pf_enable_tls() {
	local dir=$IT_PF_DIR
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
	    -nodes -days 2 -subj /CN=mta.outpost.test \
	    -keyout "$dir/etc/tls.key" -out "$dir/etc/tls.crt" \
	    >/dev/null 2>&1 || return 1
	chmod 600 "$dir/etc/tls.key"
	echo 'tlsmgr    unix  -       -       n       1000?   1       tlsmgr' \
	    >>"$dir/etc/master.cf"
	postconf -c "$dir/etc" -e \
	    "smtpd_tls_cert_file = $dir/etc/tls.crt" \
	    "smtpd_tls_key_file = $dir/etc/tls.key"
}

# pf_postfix - run the postfix command on the private instance
pf_postfix() {
	postfix -c "$IT_PF_DIR/etc" "$@"
}

# pf_start - check and start the private instance; wait for its listener
# usage: pf_start SMTP_PORT
pf_start() {
	pf_postfix check >"$IT_PF_DIR/check.log" 2>&1 || {
		cat "$IT_PF_DIR/check.log" >&2
		return 1
	}
	pf_postfix start >>"$IT_PF_DIR/check.log" 2>&1 || {
		cat "$IT_PF_DIR/check.log" >&2
		return 1
	}
	it_wait 20 it_port_open "$1" || {
		it_log "postfix did not listen on 127.0.0.1:$1"
		pf_log >&2
		return 1
	}
}

# pf_master_pid - print the master pid of the private instance, if running
pf_master_pid() {
	local f=$IT_PF_DIR/queue/pid/master.pid pid
	[ -f "$f" ] || return 1
	pid=$(tr -d ' \n' <"$f")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# pf_stop - stop the private instance (postfix stop, then its master by pid)
pf_stop() {
	local pid
	[ -n "$IT_PF_DIR" ] && [ -d "$IT_PF_DIR/etc" ] || return 0
	pid=$(pf_master_pid) || return 0
	pf_postfix stop >/dev/null 2>&1 || true
	it_wait 10 eval '! kill -0 '"$pid"' 2>/dev/null' || it_stop_pid "$pid"
}

# pf_log - print the private instance's log
pf_log() {
	echo "---- postfix log ($IT_PF_DIR/maillog) ----"
	cat "$IT_PF_DIR/maillog" 2>/dev/null
	echo "---- end of postfix log ----"
}

# sink_start - smtp-sink on 127.0.0.1:PORT writing each message under DIR
# usage: sink_start DIR PORT
sink_start() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	chown postfix "$dir"
	it_spawn "$dir.log" smtp-sink -u postfix -d "$dir/%H%M%S." \
	    "127.0.0.1:$port" 64
	IT_SINK_DIR=$dir
	it_wait 10 it_port_open "$port" || {
		it_log "smtp-sink did not listen on 127.0.0.1:$port"
		cat "$dir.log" >&2
		return 1
	}
}

# sink_wait - wait until a message containing TAG arrives; print its file
# usage: sink_wait TAG [SECONDS]
sink_wait() {
	local tag=$1 n=$((${2:-30} * 10)) f
	while [ "$n" -gt 0 ]; do
		f=$(grep -lF -- "$tag" "$IT_SINK_DIR"/* 2>/dev/null | head -n 1)
		if [ -n "$f" ]; then
			# smtp-sink writes the file while receiving: let it end.
			sleep 0.2
			echo "$f"
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# sink_message - copy a received message without smtp-sink's X- records
# usage: sink_message SINKFILE OUT
sink_message() {
	awk 'top && /^X-(Client-Addr|Client-Proto|Helo-Args|Mail-Args|Rcpt-Args): / { next }
	    { top = 0; print }' top=1 "$1" >"$2"
}

# it_rcpt_list PREFIX N - "PREFIX1@example.net,...,PREFIXN@example.net"
# (a swaks --to list of N recipients)
it_rcpt_list() {
	local i out=
	for i in $(seq 1 "$2"); do
		out=$out${out:+,}$1$i@example.net
	done
	echo "$out"
}

# it_new_msg - start a CRLF message DIR/NAME.eml with a unique Message-ID
# usage: it_new_msg DIR NAME FROM SUBJECT; prints the path (append the rest
# with it_crlf).  The Message-ID local part is the tag sink_wait looks for.
it_new_msg() {
	local f=$1/$2.eml
	mkdir -p "$1"
	{
		printf 'From: %s\r\n' "$3"
		printf 'To: Bob <bob@example.net>\r\n'
		printf 'Subject: %s\r\n' "$4"
		printf 'Date: %s\r\n' "$(date -R)"
		printf 'Message-ID: <outpost-%s-%s@example.com>\r\n' "$$" "$2"
	} >"$f"
	echo "$f"
}

# it_crlf - append stdin to FILE with CRLF line ends
it_crlf() {
	sed 's/$/\r/' >>"$1"
}

# it_msg_tag - the Message-ID local part of a message file
it_msg_tag() {
	sed -n 's/^Message-ID: <\(.*\)@.*/\1/p' "$1" | head -n 1
}

# it_msg_from - the address in the From: field (first line of it)
it_msg_from() {
	sed -n '/^From:/{s/\r$//;s/.*<\(.*\)>.*/\1/;s/^From: *//;p;q}' "$1"
}

# it_sig_count - number of DKIM-Signature header fields in a message
it_sig_count() {
	awk '/^\r?$/ { exit } tolower($0) ~ /^dkim-signature:/ { n++ }
	    END { print n + 0 }' "$1"
}

# it_sig_headers - print the DKIM-Signature fields of a message, unfolded
# lines kept as they are
it_sig_headers() {
	awk '/^\r?$/ { exit }
	    /^[ \t]/ { if (on) print; next }
	    { on = (tolower($0) ~ /^dkim-signature:/); if (on) print }' "$1" |
	    tr -d '\r'
}

# it_send - submit a message file with swaks
# usage: it_send LOG FROM TO FILE PORT [SOURCE_ADDRESS [USER PASSWORD]]
# With USER, authenticates (AUTH PLAIN) first; with IT_SEND_TLS=1, after
# STARTTLS.
it_send() {
	local logf=$1 from=$2 to=$3 file=$4 port=$5 src=${6:-127.0.0.1}
	local auth=()
	[ "${IT_SEND_TLS:-0}" = 1 ] && auth=(--tls)
	[ $# -ge 8 ] && auth+=(--auth PLAIN --auth-user "$7" --auth-password "$8")
	swaks --server 127.0.0.1 --port "$port" --local-interface "$src" \
	    --helo client.outpost.test --from "$from" --to "$to" \
	    "${auth[@]}" --data "@$file" --timeout 30 >"$logf" 2>&1
}

# ---- milters ---------------------------------------------------------------

# milter_wait_socket - wait for a milter socket (unix:PATH or inet:PORT@HOST)
milter_wait_socket() {
	local spec=$1 pid=$2 path port
	case $spec in
	unix:* | local:*)
		path=${spec#*:}
		# The configs set socket_group = "postfix" (mode 0660), as an
		# operator does, so that smtpd and cleanup can connect.
		it_wait 20 test -S "$path" || return 1
		;;
	inet:*)
		port=${spec#inet:}
		port=${port%@*}
		it_wait 20 it_port_open "$port" || return 1
		;;
	esac
	kill -0 "$pid" 2>/dev/null
}

# outpost_conf - write an outpost-milter config for DIR's test keys
# usage: outpost_conf FILE SOCKET KEYDIR DOMAIN RSA_SELECTOR ED_SELECTOR
outpost_conf() {
	cat >"$1" <<EOF
milter = { socket = "$2"; socket_group = "postfix"; on_error = "tempfail"; engine = "${OUTPOST_ENGINE:-native}"; };
trusted = { networks = [ "127.0.0.1/32" ]; authenticated = true; };
dkim = {
  keys = (
    { name = "r"; domain = "$4"; selector = "$5"; algorithm = "rsa-sha256";
      file = "$3/$5.private"; },
    { name = "e"; domain = "$4"; selector = "$6"; algorithm = "ed25519-sha256";
      file = "$3/$6.private"; }
  );
  signing = ( { match = "*@$4"; keys = [ "r", "e" ]; } );
};
EOF
}

# outpost_start - start outpost-milter in the foreground on CONF
# usage: outpost_start CONF SOCKET LOG
outpost_start() {
	local bin=$IT_BUILD/milter/outpost-milter
	[ -x "$bin" ] || {
		it_log "no $bin (set OUTPOST_BUILD)"
		return 1
	}
	it_spawn "$3" "$bin" -f -c "$1"
	IT_MILTER_PIDS=("$IT_LASTPID")
	milter_wait_socket "$2" "$IT_LASTPID" || {
		it_log "outpost-milter did not start"
		cat "$3" >&2
		return 1
	}
}

# opendkim_start - Debian's opendkim as a stand-in milter with the same keys
# usage: opendkim_start DIR SOCKET_RSA SOCKET_ED KEYDIR DOMAIN RSA_SEL ED_SEL
# OpenDKIM 2.11 has one SignatureAlgorithm per process, so this starts two
# instances (list both sockets in smtpd_milters); pids in IT_MILTER_PIDS.
# RequireSafeKeys is off: the keys live under /tmp, which is world-writable.
opendkim_start() {
	local dir=$1 keys=$4 dom=$5 alg sel sock
	mkdir -p "$dir"
	IT_MILTER_PIDS=()
	for alg in rsa ed25519; do
		if [ "$alg" = rsa ]; then
			sel=$6 sock=$2
		else
			sel=$7 sock=$3
		fi
		cat >"$dir/opendkim-$alg.conf" <<EOF
Syslog no
Mode s
Socket ${sock/unix:/local:}
UMask 000
Canonicalization relaxed/relaxed
Domain $dom
Selector $sel
KeyFile $keys/$sel.private
SignatureAlgorithm $alg-sha256
RequireSafeKeys false
InternalHosts 127.0.0.1/32
PidFile $dir/opendkim-$alg.pid
EOF
		it_spawn "$dir/opendkim-$alg.log" opendkim -f \
		    -x "$dir/opendkim-$alg.conf"
		IT_MILTER_PIDS+=("$IT_LASTPID")
		milter_wait_socket "$sock" "$IT_LASTPID" || {
			it_log "opendkim ($alg) did not start"
			cat "$dir/opendkim-$alg.log" >&2
			return 1
		}
	done
}
