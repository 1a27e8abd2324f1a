/*
 * fuzz_milter - libFuzzer target: outpost-milter's own protocol engine
 * and the handlers behind it, fed arbitrary bytes as if from the MTA.
 * A signing configuration (an ed25519 key, every client trusted, every
 * From signed) is made once, so well-formed inputs reach the signer.
 * Nothing the MTA sends may crash, hang or leak.
 */
#include "config.h"

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dkim/keygen.h"
#include "milter/engine.h"
#include "milter/milter.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* remove_dir - DIR's files, then DIR (the keys and configuration were read
 * at load; nothing of a fuzzing run is left in /tmp) */
static void
remove_dir(const char *dir)
{
	char path[512];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		(void)unlink(path);
	}
	closedir(d);
	(void)rmdir(dir);
}

static void
setup(void)
{
	char dir[] = "/tmp/fuzz_milter.XXXXXX", path[256], err[512];
	struct keygen_opts ko;
	struct milter_gen *g;
	FILE *fp;

	if (mkdtemp(dir) == NULL)
		abort();
	memset(&ko, 0, sizeof(ko));
	ko.dir = dir;
	ko.domain = "example.com";
	ko.selector = "f";
	ko.alg = CONF_ALG_ED25519_SHA256;
	if (keygen_write(&ko, err, sizeof(err)) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/outpost.conf", dir);
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	fprintf(fp, "trusted = { networks = [ \"0.0.0.0/0\", \"::/0\" ]; };\n"
	    "dkim = { keys = ( { name = \"f\"; domain = \"%%\"; selector = "
	    "\"f\"; algorithm = \"ed25519-sha256\"; file = \"%s/f.private\"; "
	    "} ); signing = ( { match = \"*\"; keys = [ \"f\" ]; } ); };\n"
	    /* the bulk rules run on what the MTA sends; their one DNS
	     * lookup (a DMARC record) gives up at once */
	    "deliverability = { dns_timeout = \"1ms\"; };\n", dir);
	fclose(fp);
	if ((g = milter_gen_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	milter_install(g);
	remove_dir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct timeval tv = { 1, 0 };
	int sv[2];

	if (!ready) {
		log_init("fuzz_milter", 1, 0);
		log_discard(1);
		setup();
		ready = 1;
	}
	if (size > 65536)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (size > 0 && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	engine_serve_fd(sv[1], 1);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
