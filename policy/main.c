/*
 * outpost-policyd - Postfix policy delegation server enforcing the
 * recipient, message and byte quotas of outpost.conf.
 *
 * main() only wires things: options, configuration, logging, listeners,
 * privileges, the store, then the event loop (policy/server.c).
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/types.h>

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf/conf.h"
#include "policy/server.h"
#include "util/daemon.h"
#include "util/log.h"
#include "util/metrics_http.h"
#include "util/notify.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: outpost-policyd [-fnvV] [-c config]\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -n       check the configuration, then exit\n"
	    "  -v       verbose logging\n"
	    "  -V       print the version and exit\n", CONF_DEFAULT_PATH);
	exit(EX_USAGE);
}

/* raise_nofile - allow as many descriptors as the hard limit */
static void
raise_nofile(unsigned int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < (rlim_t)want + 64) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > (rlim_t)want + 64 ? (rlim_t)want + 64 :
		    rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit NOFILE");
	}
}

int
main(int argc, char **argv)
{
	const char *conf_path = CONF_DEFAULT_PATH;
	int ch, foreground = 0, check = 0, verbose = 0, facility, rc;
	struct metrics_http *mh = NULL;
	struct server *srv;
	const struct conf_store *st;
	struct conf *conf;
	char err[1024];
	size_t i;

	while ((ch = getopt(argc, argv, "c:fhnvV")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'V':
			printf("outpost-policyd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	log_init("outpost-policyd", 1, LOG_MAIL);
	if ((conf = conf_load(conf_path, err, sizeof(err))) == NULL)
		fatalx(EX_CONFIG, "%s", err);
	if ((facility = daemon_facility(conf->log.facility)) < 0)
		fatalx(EX_CONFIG, "%s: log.facility \"%s\" is unknown",
		    conf_path, conf->log.facility);
	if (check) {
		if (conf_check_host(conf, CONF_HOST_POLICYD, err,
		    sizeof(err)) < 0)
			fatalx(EX_CONFIG, "%s", err);
		printf("%s: OK\n", conf_path);
		conf_free(conf);
		return 0;
	}
	log_set_verbose(verbose || conf->log.verbose);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile(conf->policyd.max_connections);

	if ((srv = server_new(conf_path, conf, err, sizeof(err))) == NULL)
		fatalx(EX_UNAVAILABLE, "%s", err);
	server_metrics_register();
	if (conf->policyd.metrics != NULL && (mh = metrics_http_listen(
	    conf->policyd.metrics, err, sizeof(err))) == NULL)
		fatalx(EX_UNAVAILABLE, "%s", err);
	daemon_drop_privileges(conf->policyd.user, "policyd.user");
	if (!foreground) {
		if (daemon(0, 0) < 0)
			fatal(EX_OSERR, "daemon");
		log_init("outpost-policyd", 0, facility);
	}
	daemon_write_pid(conf->policyd.pid_file);
	for (i = 0; i < conf->policyd.nlisten; i++)
		log_info("listening on %s", conf->policyd.listen[i]);
	st = &conf->quota.store;
	log_info("started with %zu limits, store %s", conf->quota.nlimits,
	    st->backend == CONF_STORE_REDIS ? st->url :
	    st->backend == CONF_STORE_MEMORY ? "memory" : st->path);
	/* the store opens as the unprivileged user: its files are theirs */
	if (server_start(srv, err, sizeof(err)) < 0)
		fatalx(EX_UNAVAILABLE, "%s", err);
	if (mh != NULL && metrics_http_start(mh, err, sizeof(err)) < 0)
		fatalx(EX_UNAVAILABLE, "%s", err);
	notify_ready(NULL);	/* listening, the store open */
	rc = server_run(srv);
	server_free(srv);
	return rc == 0 ? 0 : EX_SOFTWARE;
}
