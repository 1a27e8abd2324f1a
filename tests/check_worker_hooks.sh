#!/bin/sh
# check_worker_hooks - the test hooks of the SPF worker (spf/testhooks.h)
# are only in the test worker: strings(1) finds no hook command and no
# OUTPOST_SPF_ZONE in the installed outpost-spf-worker nor in the milter
# (whose environment names the zone), and finds them in
# tests/outpost-spf-worker-test, so this test can fail.
# Run from the build directory (make check).
fail=0
command -v strings >/dev/null 2>&1 ||
	{ echo "FAIL: strings(1) not found (apt-get install binutils)"; exit 1; }
# Strings only the hooks have (spf/testhooks.c).
marks='OUTPOST_SPF_ZONE
garbage
alloc: %s
zone %s:%zu: unknown TEST record'
for b in spf/outpost-spf-worker milter/outpost-milter \
    tests/outpost-spf-worker-test; do
	if [ ! -f "$b" ]; then
		echo "FAIL: $b is not built"
		fail=1
		continue
	fi
	strings -a "$b" >strings.tmp.$$ || fail=1
	echo "$marks" | while IFS= read -r m; do
		if grep -qxF -- "$m" strings.tmp.$$; then
			echo "$b: has \"$m\""
		else
			echo "$b: no \"$m\""
		fi
	done >hooks.tmp.$$
	case $b in
	tests/*)	bad=$(grep ': no "' hooks.tmp.$$) ;;
	*)		bad=$(grep ': has "' hooks.tmp.$$) ;;
	esac
	if [ -n "$bad" ]; then
		echo "FAIL: $bad"
		fail=1
	else
		echo "ok: $b"
	fi
	rm -f strings.tmp.$$ hooks.tmp.$$
done
exit $fail
