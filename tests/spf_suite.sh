#!/bin/sh
# spf_suite.sh - the RFC 7208 suite through spf/ (tests/spf_suite.c):
# prints one line per test, then "RFC 7208 suite: N of M pass", and fails
# when fewer than FLOOR pass or when the suite file is missing.
#
# The suite is tests/data/rfc7208/rfc7208-tests.yml in the source tree;
# set SPF_SUITE=/path/rfc7208-tests.yml to use another copy.

# Measured: see the commit that set it.  Raise it when the count rises.
FLOOR=201

top=${top_srcdir:-$(dirname "$0")/..}
suite=${SPF_SUITE:-$top/tests/data/rfc7208/rfc7208-tests.yml}
if [ ! -f "$suite" ]; then
	echo "FAIL: RFC 7208 suite $suite not found (set SPF_SUITE)" >&2
	exit 1
fi
bin=./tests/spf_suite
if [ ! -x "$bin" ]; then
	echo "FAIL: $bin not built (without libyaml configure skips it:" \
	    "apt-get install libyaml-dev, then run configure again)" >&2
	exit 1
fi
out=$("$bin" "$suite")
rc=$?
printf '%s\n' "$out"
if [ $rc -ne 0 ]; then
	echo "FAIL: spf_suite exited $rc" >&2
	exit 1
fi
line=$(printf '%s\n' "$out" | grep '^RFC 7208 suite: ' | tail -n 1)
pass=$(printf '%s\n' "$line" | sed -n 's/^RFC 7208 suite: \([0-9]*\) of.*/\1/p')
if [ -z "$pass" ]; then
	echo "FAIL: no count line from spf_suite" >&2
	exit 1
fi
if [ "$pass" -lt "$FLOOR" ]; then
	echo "FAIL: $line, below the floor of $FLOOR" >&2
	exit 1
fi
echo "$line (floor $FLOOR)"
