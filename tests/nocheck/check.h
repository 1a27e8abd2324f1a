/*
 * tests/nocheck/check.h - stands in for <check.h> when configure found no
 * Check: a unit test then stops here, saying what to install.
 */
#error "make check needs the Check unit test library, which configure did not find: install it (Debian: apt-get install check) and run configure again"
#include "no-check-library-installed.h"	/* stops the compiler here */
