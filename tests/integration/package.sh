#!/usr/bin/env bash
# tests/integration/package.sh - the Debian package and its systemd units
# test: serial (installs the package system-wide)
#
# From a clean copy of the source tree (the files git knows, as a checkout
# has them), dpkg-buildpackage -us -uc -b builds outpost_VERSION_amd64.deb;
# lintian finds no error in it.  dpkg -i installs it on this machine; then:
#   - the users, /var/lib/outpost (outpost's) and the socket directory
#     /var/spool/postfix/outpost (root:postfix, setgid 2750) exist, and
#     /etc/outpost/outpost.conf is a conffile that outpostctl check-config
#     and outpost-milter -n accept; the milter's compiled-in SPF worker is
#     the installed one;
#   - systemd-analyze verify accepts both units and systemd-analyze
#     security rates each "OK" or better;
#   - each unit's ExecStart line, read from the installed unit, runs as
#     the unit runs it (its user, its environment, NOTIFY_SOCKET pointing
#     at a datagram socket read by python3): READY=1 arrives, and only
#     when the socket exists; the socket is root:postfix 0660; the daemon
#     has dropped to outpost; ExecReload brings RELOADING=1 then READY=1;
#     a reload of a broken file keeps the daemon and says so in its log;
#     run again under strace, the daemon calls listen(2) on its socket
#     before it sends READY=1.
# Last, a key file is put in /etc/outpost/keys and dpkg --purge removes
# the package, its state and socket directories but keeps the key.  The
# machine is left as it was: the test purges the package and removes the
# users it created on any exit.  Needs root; refuses to run if outpost is
# installed already.  The package's own make check is skipped here
# (DEB_BUILD_OPTIONS nocheck: ./scripts/test runs the same unit tests) unless
# OUTPOST_PKG_CHECK=1.
#
# Environment: OUTPOST_BUILD (only to tell the ASan pass, which skips:
# the package is the same), OUTPOST_PKG_CHECK.

set -u
. "$(dirname "$0")/lib.sh"

if grep -q -- '--enable-asan' "$IT_BUILD/config.log" 2>/dev/null; then
	echo "# package: built and tested once, in the non-ASan pass"
	exit 0
fi

it_init package
T=$IT_T
SOCKDIR=/var/spool/postfix/outpost
UNITDIR=/lib/systemd/system
NEW_USERS=

fatal_setup() {
	it_setup_failed "$*" "$T/build.log" "$T/dpkg.log"
}

# pkg_cleanup - purge the package and the users this test made, then the
# usual cleanup (lib.sh)
pkg_cleanup() {
	local rc=$? u
	trap - EXIT
	for pid in "${IT_PIDS[@]}"; do
		it_stop_pid "$pid"
	done
	IT_PIDS=()
	if dpkg-query -W -f '${Status}' outpost 2>/dev/null | grep -q installed; then
		dpkg --purge outpost >>"$T/dpkg.log" 2>&1 || true
	fi
	rm -f /etc/outpost/keys/package-test.private
	rmdir /etc/outpost/keys /etc/outpost 2>/dev/null || true
	for u in $NEW_USERS; do
		deluser --quiet --system "$u" >/dev/null 2>&1 || true
	done
	(exit $rc)
	it_cleanup
}

it_need dpkg-buildpackage dh lintian systemd-analyze setpriv strace deluser \
    git "$IT_PY"
it_need_root "dpkg -i"
if dpkg-query -W -f '${Status}' outpost 2>/dev/null | grep -q 'ok installed'
then
	fatal_setup "the package outpost is installed already; purge it first"
fi
for u in outpost outpost-spf; do
	getent passwd "$u" >/dev/null || NEW_USERS="$NEW_USERS $u"
done
trap pkg_cleanup EXIT

# ---- build ----------------------------------------------------------------
VERSION=$(sed -n '1s/^outpost (\([^)]*\)).*/\1/p' "$IT_TOP/debian/changelog")
SRC=$T/src/outpost-$VERSION
mkdir -p "$SRC"
if git -C "$IT_TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$IT_TOP" && git ls-files -co --exclude-standard -z |
	    tar --null -cf - -T -) | tar -xf - -C "$SRC" ||
	    fatal_setup "cannot copy the source tree"
else
	fatal_setup "not a git checkout: cannot tell the tree's own files"
fi
opts="parallel=2"
[ "${OUTPOST_PKG_CHECK:-0}" = 1 ] || opts="$opts nocheck"
it_log "dpkg-buildpackage (DEB_BUILD_OPTIONS=$opts)"
if (cd "$SRC" && DEB_BUILD_OPTIONS=$opts timeout 900 \
    dpkg-buildpackage -us -uc -b) >"$T/build.log" 2>&1; then
	it_pass "dpkg-buildpackage -us -uc -b builds the package"
else
	fatal_setup "dpkg-buildpackage failed"
fi
if [ "${OUTPOST_PKG_CHECK:-0}" = 1 ]; then
	it_check "make check passes inside the package build" \
	    grep -q '^# FAIL: *0$' "$T/build.log"
fi
DEB=$T/src/outpost_${VERSION}_amd64.deb
[ -f "$DEB" ] || fatal_setup "no $(basename "$DEB")"
it_pass "the build made $(basename "$DEB")"
lintian --tag-display-limit 0 "$DEB" >"$T/lintian.log" 2>&1
if grep -q '^E:' "$T/lintian.log"; then
	it_fail "lintian finds no error"
	grep '^E:' "$T/lintian.log"
else
	it_pass "lintian finds no error ($(grep -c '^W:' "$T/lintian.log") warnings)"
fi

# ---- install ----------------------------------------------------------------
if dpkg -i "$DEB" >"$T/dpkg.log" 2>&1; then
	it_pass "dpkg -i installs the package"
else
	fatal_setup "dpkg -i failed"
fi
it_check "the users outpost and outpost-spf exist" \
    sh -c 'getent passwd outpost outpost-spf >/dev/null'
it_check "/var/lib/outpost belongs to outpost" \
    test "$(stat -c %U /var/lib/outpost 2>/dev/null)" = outpost
it_check "$SOCKDIR is root:postfix 2750" \
    test "$(stat -c '%U:%G %a' "$SOCKDIR" 2>/dev/null)" = "root:postfix 2750"
it_check "/etc/outpost/outpost.conf is a conffile" \
    sh -c "dpkg-query -W -f '\${Conffiles}' outpost |
	grep -q '^ /etc/outpost/outpost.conf '"
it_check "outpostctl check-config accepts the default config" \
    sh -c 'outpostctl check-config >/dev/null'
it_check "outpost-milter -n accepts the default config" \
    sh -c 'outpost-milter -n >/dev/null'
it_check "outpost-policyd -n accepts the default config" \
    sh -c 'outpost-policyd -n >/dev/null'
it_check "the milter's default SPF worker is /usr/lib/outpost's" \
    sh -c 'test -x /usr/lib/outpost/outpost-spf-worker &&
	grep -qa /usr/lib/outpost/outpost-spf-worker /usr/sbin/outpost-milter'
for m in outpost-milter.8 outpost-policyd.8 outpostctl.8 outpost.conf.5 \
    outpost-spf-worker.8; do
	dpkg-query -L outpost | grep -q "/man${m##*.}/$m.gz\$" ||
	    it_fail "the package has the man page $m"
done
# Documentation= lines are checked with man(1) when there is one
verify_opts=
command -v man >/dev/null || verify_opts=--man=no

# ---- units --------------------------------------------------------------------
for u in outpost-milter outpost-policyd; do
	if systemd-analyze verify $verify_opts "$UNITDIR/$u.service" >"$T/verify.log" 2>&1 &&
	    ! [ -s "$T/verify.log" ]; then
		it_pass "systemd-analyze verify $u.service"
	else
		it_fail "systemd-analyze verify $u.service"
		cat "$T/verify.log"
	fi
	level=$(systemd-analyze security --offline=true --no-pager \
	    "$UNITDIR/$u.service" 2>/dev/null |
	    sed -n 's/.*Overall exposure level for [^:]*: //p')
	case $level in
	*SAFE* | *OK*) it_pass "systemd-analyze security $u.service: $level" ;;
	*) it_fail "systemd-analyze security $u.service: '$level', want OK" ;;
	esac
done

# unit_value UNIT KEY - the value of KEY= in the installed unit (last one)
unit_value() {
	sed -n "s/^$2=//p" "$UNITDIR/$1.service" | tail -n 1
}

# ready_seen FILE N - FILE has at least N READY=1 lines
ready_seen() {
	[ "$(grep -c '^READY=1' "$1" 2>/dev/null)" -ge "$2" ]
}

# listen_before_ready TRACE PATH - in strace output TRACE, listen(2) on the
# socket bound to PATH comes before the sendmsg(2) of READY=1
listen_before_ready() {
	awk -v p="$2" '
	index($0, "bind(") && index($0, "sun_path=\"" p "\"") {
		fd = substr($0, index($0, "bind(") + 5) + 0
	}
	fd != "" && index($0, "listen(" fd ",") { up = 1 }
	index($0, "sendmsg(") && index($0, "READY=1") { ready = 1; ok = up; exit }
	END { exit !(ready && ok) }' "$1"
}

# run_unit UNIT SOCKET - run UNIT's ExecStart as systemd would, under a
# NOTIFY_SOCKET we read; check READY, the socket, the user, the reload
run_unit() {
	local unit=$1 sock=$2 cmd user envs reload pid as caps
	local nsock=$T/$unit.notify msgs=$T/$unit.msgs
	cmd=$(unit_value "$unit" ExecStart | sed 's/^[-@:+!]*//')
	user=$(unit_value "$unit" User)
	envs=$(unit_value "$unit" Environment)
	reload=$(unit_value "$unit" ExecReload)
	[ -n "$cmd" ] || { it_fail "$unit: no ExecStart"; return; }
	# systemd's notify socket: a datagram socket each line of which we
	# note; for READY=1, whether the daemon's socket existed (and had its
	# final mode: ctime) when the kernel queued the message
	it_spawn "$T/$unit.listener.log" "$IT_PY" -c '
import os, socket, stat, struct, sys, time
SO_TIMESTAMPNS = 35
path, watched, out = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.bind(path)
s.settimeout(1.0)
end = time.monotonic() + 120
with open(out, "a", buffering=1) as f:
    while time.monotonic() < end:
        try:
            data, anc, _, _ = s.recvmsg(4096, 256)
        except socket.timeout:
            continue
        sent = time.time_ns()
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", raw[:16])
                sent = sec * 10**9 + nsec
        for line in data.decode().split("\n"):
            if line == "READY=1":
                try:
                    st = os.stat(watched)
                    ok = stat.S_ISSOCK(st.st_mode) and st.st_ctime_ns <= sent
                except OSError:
                    ok = False
                line += " socket=" + ("yes" if ok else "no")
            f.write(line + "\n")
' "$nsock" "$sock" "$msgs"
	it_wait 5 test -S "$nsock" || { it_fail "$unit: notify socket"; return; }
	# as /run/systemd/notify: every service may write to it, root
	# without CAP_DAC_OVERRIDE (the units' bounding set) as well
	chmod 0777 "$nsock"
	rm -f "$sock"
	# what setpriv can apply of the unit: user, capability bounding
	# set, no_new_privs
	as=(setpriv)
	[ -n "$user" ] && as+=("--reuid=$user" "--regid=$user" --init-groups)
	caps=$(unit_value "$unit" CapabilityBoundingSet | tr '[:upper:]' '[:lower:]' |
	    sed 's/cap_/+/g; s/ /,/g')
	[ -n "$caps" ] && as+=("--bounding-set=-all,$caps")
	[ "$(unit_value "$unit" NoNewPrivileges)" = yes ] && as+=(--no-new-privs)
	as+=(--)
	it_log "$unit: ${as[*]} $cmd"
	# shellcheck disable=SC2086
	it_spawn "$T/$unit.log" "${as[@]}" env -i \
	    PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 $envs \
	    NOTIFY_SOCKET="$nsock" $cmd
	pid=$IT_LASTPID
	if it_wait 15 ready_seen "$msgs" 1; then
		it_check "$unit: READY=1 only once its socket exists" \
		    sh -c "head -n 1 '$msgs' | grep -q '^READY=1 socket=yes'"
	else
		it_fail "$unit: READY=1 arrives"
		tail -n 20 "$T/$unit.log"
		it_stop_pid "$pid"
		return
	fi
	it_check "$unit: $sock is root:postfix 0660" \
	    test "$(stat -c '%U:%G %a' "$sock" 2>/dev/null)" = "root:postfix 660"
	it_check "$unit: the daemon runs as outpost" \
	    test "$(ps -o user= -p "$pid" 2>/dev/null | tr -d ' ')" = outpost
	# ExecReload with the main pid: RELOADING=1, then READY=1 again
	reload=${reload//\$MAINPID/$pid}
	$reload
	it_wait 10 ready_seen "$msgs" 2
	it_check "$unit: ExecReload gives RELOADING=1 then READY=1" \
	    sh -c "grep -A1 '^RELOADING=1' '$msgs' | grep -q '^READY=1'"
	# a broken file: the old configuration stays, and the log says so
	cp /etc/outpost/outpost.conf "$T/outpost.conf.good"
	echo 'milter = { socket = ; };' >>/etc/outpost/outpost.conf
	$reload
	it_wait 10 ready_seen "$msgs" 3
	it_check "$unit: a broken reload keeps the old configuration" \
	    sh -c "kill -0 $pid && grep -q 'reload failed, keeping the' \
		'$T/$unit.log'"
	cp "$T/outpost.conf.good" /etc/outpost/outpost.conf
	it_stop_pid "$pid"
	it_log "$unit: notified $(tr '\n' ' ' <"$msgs")"

	# the order from the daemon's own system calls, once more under
	# strace: listen(2) on its socket, then READY=1
	: >"$msgs"
	rm -f "$sock"
	# shellcheck disable=SC2086
	it_spawn "$T/$unit.strace.log" strace -f -qq -s 64 \
	    -e trace=bind,listen,sendmsg -o "$T/$unit.strace" "${as[@]}" \
	    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 $envs \
	    NOTIFY_SOCKET="$nsock" $cmd
	pid=$IT_LASTPID
	it_wait 20 ready_seen "$msgs" 1
	kill -TERM "$(pgrep -P "$pid")" 2>/dev/null
	it_stop_pid "$pid"
	it_check "$unit: listen(2) on its socket comes before READY=1 (strace)" \
	    listen_before_ready "$T/$unit.strace" "$sock"
}

run_unit outpost-milter "$SOCKDIR/milter.sock"
run_unit outpost-policyd "$SOCKDIR/policy.sock"

# ---- purge ----------------------------------------------------------------------
echo "not a real key" >/etc/outpost/keys/package-test.private
if dpkg --purge outpost >>"$T/dpkg.log" 2>&1; then
	it_pass "dpkg --purge removes the package"
else
	it_fail "dpkg --purge removes the package"
fi
it_check "purge keeps the operator's key" \
    test -f /etc/outpost/keys/package-test.private
it_check "purge removes /var/lib/outpost" test ! -e /var/lib/outpost
it_check "purge removes $SOCKDIR" test ! -e "$SOCKDIR"
it_check "purge removes /etc/outpost/outpost.conf" \
    test ! -e /etc/outpost/outpost.conf
it_check "purge removes the units" test ! -e "$UNITDIR/outpost-milter.service"

it_finish
