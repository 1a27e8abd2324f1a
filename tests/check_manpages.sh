#!/bin/sh
# check_manpages - every setting of the config table (conf/conf_table.c,
# listed by tests/confnames) is documented by its full dotted name in
# outpost.conf(5) and shown in conf/outpost.conf, and every option of
# outpost-milter is in its man page.
srcdir=${top_srcdir:-.}
page=$srcdir/doc/outpost.conf.5
fail=0
names=$(./tests/confnames) || { echo "FAIL: tests/confnames"; exit 1; }
# A setting is documented when a .B/.BR/.BI line of the page names it
# whole: "milter.socket" is not found in "milter.socket_mode".
terms=$(grep -E '^\.(B|BR|BI|IR) ' "$page")
for n in $names; do
	re=$(printf '%s' "$n" | sed 's/\./\\./g')
	if ! printf '%s\n' "$terms" |
	    grep -Eq "(^|[^A-Za-z0-9_.])$re([^A-Za-z0-9_.]|\$)"; then
		echo "FAIL: setting $n is not in doc/outpost.conf.5"
		fail=1
	fi
done
# The sample shows each setting at its place (commented out or not).
missing=$(./tests/confnames -s "$srcdir/conf/outpost.conf")
[ $? -le 1 ] || { echo "FAIL: conf/outpost.conf cannot be read"; fail=1; }
for n in $missing; do
	echo "FAIL: setting $n is not in conf/outpost.conf"
	fail=1
done
count=$(echo "$names" | wc -l)
[ "$count" -ge 90 ] || { echo "FAIL: found only $count settings"; fail=1; }
for opt in c f n v V; do
	grep -q "^.B.* \\\\-$opt\\b\|^.BI \\\\-$opt\|^.B \\\\-$opt" "$srcdir/doc/outpost-milter.8" ||
		{ echo "FAIL: option -$opt not in outpost-milter.8"; fail=1; }
done
# The default configuration each program reads is the one its man page
# names (a build with another --sysconfdir has wrong man pages: say so).
for prog in milter/outpost-milter policy/outpost-policyd; do
	page=$srcdir/doc/$(basename "$prog").8
	want=$(sed -n 's/.*(default \\fI\([^\\]*\)\\fR).*/\1/p' "$page" | head -n 1)
	got=$(./$prog -h 2>&1 | sed -n 's/.*(default \(.*\))$/\1/p')
	if [ -z "$want" ] || [ "$got" != "$want" ]; then
		echo "FAIL: $prog reads ${got:-?} by default, $page says ${want:-nothing}"
		fail=1
	fi
done
[ $fail = 0 ] && echo "PASS: $count settings documented"
exit $fail
