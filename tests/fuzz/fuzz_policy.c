/*
 * fuzz_policy - libFuzzer target: the policy request parser must never
 * crash, leak or overrun on any input, fed whole or in pieces.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy/proto.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* feed - all of data, in pieces of at most step bytes; count requests */
static void
feed(const uint8_t *data, size_t size, size_t step)
{
	struct proto_limits lim = { 256, 16, 1024 };
	struct proto *p = proto_new(&lim);
	char err[128];
	size_t used, n;
	int a;

	while (size > 0) {
		n = size < step ? size : step;
		switch (proto_feed(p, data, n, &used, err, sizeof(err))) {
		case PROTO_REQUEST:
			for (a = 0; a < PA_COUNT; a++) {
				const char *v = proto_get(p, (enum proto_attr)a);

				if (v != NULL)
					(void)strlen(v);
			}
			break;
		case PROTO_ERROR:
			proto_free(p);
			return;
		case PROTO_MORE:
			break;
		}
		if (used > n)
			__builtin_trap();
		data += used;
		size -= used;
	}
	(void)proto_eof(p, err, sizeof(err));
	proto_free(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_discard(1);
	if (size > 65536)
		return 0;
	feed(data, size, size ? size : 1);
	feed(data, size, 1);
	feed(data, size, 7);
	return 0;
}
