/*
 * cmd_keygen - outpostctl keygen: make a DKIM key pair (dkim/keygen.h)
 * in a directory, SELECTOR.private (mode 0600) and SELECTOR.txt (the
 * DNS record).  Refuses to overwrite unless -f.  Exit: 0, EX_USAGE,
 * EX_CANTCREAT when the files cannot be written.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "dkim/keygen.h"
#include "tools/outpostctl.h"
#include "util/parse.h"

/* cmd_keygen - outpostctl keygen */
int
cmd_keygen(int argc, char **argv)
{
	struct keygen_opts o;
	char err[512], path[4096];
	uint64_t bits = 0;
	int ch, bits_given = 0;

	memset(&o, 0, sizeof(o));
	o.dir = ".";
	o.alg = CONF_ALG_RSA_SHA256;
	while ((ch = getopt(argc, argv, "a:b:d:fo:s:")) != -1) {
		switch (ch) {
		case 'a':
			if (strcasecmp(optarg, "rsa") == 0 ||
			    strcasecmp(optarg, "rsa-sha256") == 0)
				o.alg = CONF_ALG_RSA_SHA256;
			else if (strcasecmp(optarg, "ed25519") == 0 ||
			    strcasecmp(optarg, "ed25519-sha256") == 0)
				o.alg = CONF_ALG_ED25519_SHA256;
			else
				usage();
			break;
		case 'b':
			if (parse_u64(optarg, KEYGEN_RSA_MIN_BITS,
			    KEYGEN_RSA_MAX_BITS, &bits, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "%s: -b %s: %s\n", progname,
				    optarg, err);
				exit(EX_USAGE);
			}
			bits_given = 1;
			break;
		case 'd':
			o.domain = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'o':
			o.dir = optarg;
			break;
		case 's':
			o.selector = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.domain == NULL || o.selector == NULL)
		usage();
	if (bits_given && o.alg != CONF_ALG_RSA_SHA256) {
		fprintf(stderr, "%s: -b applies to rsa keys only\n", progname);
		exit(EX_USAGE);
	}
	if (!keygen_name_ok(o.domain) || !keygen_name_ok(o.selector)) {
		fprintf(stderr, "%s: bad domain or selector\n", progname);
		exit(EX_USAGE);
	}
	o.bits = (unsigned int)bits;
	if (keygen_write(&o, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CANTCREAT;
	}
	(void)snprintf(path, sizeof(path), "%s/%s", o.dir, o.selector);
	printf("%s.private: private key (mode 0600)\n%s.txt: DNS record "
	    "for %s._domainkey.%s\n", path, path, o.selector, o.domain);
	/* The daemons read keys as milter.user (the package's: outpost). */
	if (getuid() == 0)
		printf("owned by root: if outpost-milter runs as a user "
		    "(milter.user, e.g. outpost),\ngive it the key: "
		    "chown outpost %s.private\n", path);
	return 0;
}
