#!/bin/sh
# check_includes - which folder may include which (doc/DESIGN.md, "Folders
# and who may include whom"): every #include "..." of the production
# sources against the rules below.  A library takes only its section(s)
# of the configuration (conf/conf_dkim.h, conf_quota.h, conf_spf.h), never
# the whole struct conf of conf/conf.h.
#
# A rule: a folder, then the headers it may include as shell patterns.
srcdir=${top_srcdir:-.}
fail=0
nfiles=0

rules='
util	util/*
conf/conf_common.h
conf/conf_dkim.h	conf/conf_common.h util/*
conf/conf_quota.h	conf/conf_common.h util/*
conf/conf_spf.h	conf/conf_common.h util/*
conf	conf/* util/*
quota	quota/* util/* conf/conf_quota.h conf/conf_common.h
dkim	dkim/* util/* conf/conf_dkim.h conf/conf_common.h
spf	spf/* util/* conf/conf_spf.h conf/conf_common.h
deliver	deliver/* util/*
policy	policy/* conf/* quota/* util/*
tools	tools/* conf/* deliver/* dkim/* quota/* spf/* util/*
milter	milter/* conf/* deliver/* dkim/* quota/* spf/* util/*
'

# allowed FILE - the patterns of the first rule that names FILE or its folder
allowed() {
	printf '%s\n' "$rules" | while IFS='	' read -r who pats; do
		[ -n "$who" ] || continue
		case $1 in
		"$who"|"$who"/*) printf '%s\n' "$pats"; echo .; break ;;
		esac
	done
}

for dir in util conf quota dkim spf deliver policy tools milter; do
	for f in "$srcdir/$dir"/*.c "$srcdir/$dir"/*.h; do
		[ -f "$f" ] || continue
		rel=${f#"$srcdir"/}
		pats=$(allowed "$rel")
		[ -n "$pats" ] || { echo "FAIL: no rule for $rel"; fail=1; }
		pats=${pats%.}
		nfiles=$((nfiles + 1))
		for inc in $(sed -n 's/^[ 	]*#[ 	]*include[ 	]*"\([^"]*\)".*/\1/p' "$f"); do
			[ "$inc" = config.h ] && continue
			[ -f "$srcdir/$inc" ] || continue	# generated
			ok=0
			set -f		# the patterns are not file names here
			for p in $pats; do
				# shellcheck disable=SC2254
				case $inc in $p) ok=1; break ;; esac
			done
			set +f
			[ $ok = 1 ] || {
				echo "FAIL: $rel includes $inc"
				fail=1
			}
		done
	done
done
[ "$nfiles" -ge 100 ] || { echo "FAIL: found only $nfiles files"; fail=1; }
[ $fail = 0 ] && echo "PASS: includes of $nfiles files"
exit $fail
