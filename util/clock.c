/*
 * clock - the wall and monotonic clocks in milliseconds (see clock.h).
 */
#include "config.h"

#include <time.h>

#include "util/clock.h"

/* ms_of - clock id read in milliseconds */
static int64_t
ms_of(clockid_t id)
{
	struct timespec ts;

	(void)clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_wall_ms(void)
{
	return ms_of(CLOCK_REALTIME);
}

int64_t
clock_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}
