/*
 * clock - the two clocks the daemons read, in milliseconds.
 *
 * clock_wall_ms() is the wall clock (milliseconds since the epoch): what
 * quota admissions are stamped with, so that counters mean the same in
 * every process and survive restarts.  clock_mono_ms() never jumps: use it
 * for deadlines and timeouts inside one process.
 */
#ifndef OUTPOST_CLOCK_H
#define OUTPOST_CLOCK_H

#include <stdint.h>

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);

#endif
