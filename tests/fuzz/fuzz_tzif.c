/*
 * fuzz_tzif - libFuzzer target: TZif files and POSIX TZ strings
 * (util/tzif), then lookups in what parsed.  Input: a TZif file; also
 * tried as a TZ string up to its first NUL.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/tzif.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* use - lookups across the years (the sanitizers watch) */
static void
use(struct tzif *z)
{
	int64_t t;

	for (t = -4000000000LL; t < 8000000000LL; t += 300000000LL) {
		(void)tzif_offset(z, t, NULL);
		(void)tzif_day_start(z, t / 86400);
	}
	tzif_free(z);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], s[300];
	struct tzif *z;
	size_t n = size < sizeof(s) - 1 ? size : sizeof(s) - 1;

	if ((z = tzif_parse(data, size, err, sizeof(err))) != NULL)
		use(z);
	memcpy(s, data, n);
	s[n] = '\0';
	if ((z = tzif_posix(s, err, sizeof(err))) != NULL)
		use(z);
	return 0;
}
