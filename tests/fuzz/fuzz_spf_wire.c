/*
 * fuzz_spf_wire - libFuzzer target: the SPF wire decoders (spf/wire.c)
 * take whatever a worker or the supervisor sends.  They must never crash
 * or overrun, and what they accept must be NUL-terminated, free of
 * control bytes and encode again to the same record.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spf/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* clean - s has no control byte (and strlen stops inside its field) */
static void
clean(const char *s, size_t size)
{
	size_t i, n = strnlen(s, size);

	if (n == size)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spf_wire_req req, again;
	struct spf_wire_ans ans;
	struct spf_wire_hello h;
	struct spf_wire_ctl c;
	struct spf_answer a;
	struct spf_query q;
	enum spf_kind kind;
	uint32_t flags, seq = size >= 12 ? (uint32_t)data[8] |
	    (uint32_t)data[9] << 8 | (uint32_t)data[10] << 16 |
	    (uint32_t)data[11] << 24 : 0;
	char err[128];

	if (spf_wire_req_decode(data, size, &req, &kind, &q, err,
	    sizeof(err)) == 0) {
		clean(q.ip, sizeof(req.ip));
		clean(q.helo, sizeof(req.helo));
		clean(q.sender, sizeof(req.sender));
		if (spf_wire_req_encode(&again, req.seq, kind, &q, err,
		    sizeof(err)) < 0)
			abort();
	}
	if (spf_wire_ans_decode(data, size, seq, &a, &flags, err,
	    sizeof(err)) == 0) {
		clean(a.domain, sizeof(a.domain));
		clean(a.text, sizeof(a.text));
		if (spf_wire_ans_encode(&ans, seq, flags, &a, err,
		    sizeof(err)) < 0)
			abort();
	}
	if (spf_wire_hello_decode(data, size, &h, err, sizeof(err)) == 0)
		clean(h.text, sizeof(h.text));
	(void)spf_wire_ctl_decode(data, size, &c, err, sizeof(err));
	return 0;
}
