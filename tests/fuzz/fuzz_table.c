/*
 * fuzz_table - libFuzzer target: OpenDKIM KeyTable/SigningTable parsing
 * and lookups, and the From header parser.  Input: KeyTable text, a NUL
 * byte, SigningTable text, a NUL byte, a From header value.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/from.h"
#include "dkim/table.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char kt_path[64], st_path[64];

/* put - write n bytes to path */
static void
put(const char *path, const uint8_t *p, size_t n)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL)
		abort();
	fwrite(p, 1, n, fp);
	fclose(fp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep1, *sep2, *end = data + size;
	char text[256], err[512];
	char local[FROM_LOCAL_MAX], domain[FROM_DOMAIN_MAX];
	struct dkim_sign_req req[DKIM_MAX_SIGS];
	struct dkim_table *t;
	struct conf *c;
	int multiple;

	if (size > 65536 || size < 2)
		return 0;
	if (kt_path[0] == '\0') {
		snprintf(kt_path, sizeof(kt_path), "/tmp/fuzz_kt.%ld",
		    (long)getpid());
		snprintf(st_path, sizeof(st_path), "/tmp/fuzz_st.%ld",
		    (long)getpid());
	}
	multiple = data[0] & 1;
	data++;
	if ((sep1 = memchr(data, 0, (size_t)(end - data))) == NULL)
		sep1 = end;
	put(kt_path, data, (size_t)(sep1 - data));
	sep2 = sep1 < end ? memchr(sep1 + 1, 0, (size_t)(end - sep1 - 1)) :
	    NULL;
	if (sep2 == NULL)
		sep2 = end;
	put(st_path, sep1 < end ? sep1 + 1 : end,
	    sep1 < end ? (size_t)(sep2 - sep1 - 1) : 0);
	snprintf(text, sizeof(text), "dkim = { key_table = \"%s\"; "
	    "signing_table = \"%s%s\"; multiple_signatures = %s; };", kt_path,
	    (data[0] & 2) ? "file:" : "refile:", st_path,
	    multiple ? "true" : "false");
	if ((c = conf_load_string("fuzz.conf", text, err, sizeof(err))) ==
	    NULL)
		abort();
	if ((t = dkim_table_new_nokeys(&c->dkim, c->path, err,
	    sizeof(err))) != NULL) {
		const uint8_t *from = sep2 < end ? sep2 + 1 : end;

		if (from_parse((const char *)from, (size_t)(end - from), local,
		    sizeof(local), domain, sizeof(domain)) == FROM_OK)
			dkim_table_lookup(t, local, domain, req,
			    DKIM_MAX_SIGS, NULL);
		dkim_table_lookup(t, "user", "sub.example.com", req,
		    DKIM_MAX_SIGS, NULL);
		dkim_table_free(t);
	}
	conf_free(c);
	return 0;
}
