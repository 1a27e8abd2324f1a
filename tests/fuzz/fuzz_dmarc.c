/*
 * fuzz_dmarc - libFuzzer target: DMARC records (TXT text from anyone's
 * DNS) through dmarc_parse (libopendmarc and our rules), and the
 * organizational domain and alignment of any name, must never crash,
 * leak or overrun; a record accepted has a policy, 'r'/'s' modes and a
 * terminated rua.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dmarc.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* LLVMFuzzerTestOneInput - one input as a record and as a name */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dmarc_record r;
	char *s, err[256], org[256];

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (dmarc_parse(s, &r, err, sizeof(err)) == 0) {
		if (r.p > DMARC_P_REJECT || r.sp > DMARC_P_REJECT ||
		    (r.adkim != 'r' && r.adkim != 's') ||
		    (r.aspf != 'r' && r.aspf != 's') ||
		    memchr(r.rua, '\0', sizeof(r.rua)) == NULL)
			__builtin_trap();
	}
	(void)dmarc_org_domain(s, org, sizeof(org));
	(void)dmarc_aligned(s, "example.com", 'r');
	(void)dmarc_aligned("mail.example.com", s, 's');
	free(s);
	return 0;
}
