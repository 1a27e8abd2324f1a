/*
 * outpost-milter - DKIM signing milter for Postfix and Sendmail.
 *
 * main() only wires things: options, configuration, logging, the milter
 * socket, privileges, the signal thread, then the engine's loop.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "milter/engine.h"
#include "milter/milter.h"
#include "util/daemon.h"
#include "util/listen.h"
#include "util/log.h"
#include "util/metrics_http.h"
#include "util/notify.h"

static const char *conf_path = CONF_DEFAULT_PATH;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: outpost-milter [-fnvV] [-c config]\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -n       check the configuration and keys, then exit\n"
	    "  -v       verbose logging\n"
	    "  -V       print the version and exit\n", CONF_DEFAULT_PATH);
	exit(EX_USAGE);
}

/* The engine that serves; its stop() is called from signal_thread. */
static const struct milter_engine *engine;

/*
 * signal_thread - the only thread that takes signals, under both
 * engines (engine.h): SIGHUP and SIGUSR1 reload, SIGTERM and SIGINT stop.
 * sigwaitinfo(), not sigwait(): lm.c redefines sigwait() for libmilter.
 */
static void *
signal_thread(void *arg)
{
	const sigset_t *set = arg;
	int sig;

	for (;;) {
		if ((sig = sigwaitinfo(set, NULL)) < 0)
			continue;
		switch (sig) {
		case SIGUSR1:
		case SIGHUP:
			log_info("%s: reloading %s", strsignal(sig), conf_path);
			notify_reloading();
			milter_reload(conf_path);
			notify_ready(NULL);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("%s: stopping", strsignal(sig));
			notify_stopping();
			engine->stop();
			break;
		}
	}
	return NULL;
}

/* The signals signal_thread takes (MILTER_SIGNALS). */
static sigset_t signal_set;

/* signals_block - block MILTER_SIGNALS here and in every thread to come
 * (the quota store's, the engine's): none of them may take one */
static void
signals_block(void)
{
	static const int sigs[] = { MILTER_SIGNALS };
	size_t i;

	sigemptyset(&signal_set);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&signal_set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &signal_set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* signals_start - start signal_thread */
static void
signals_start(void)
{
	pthread_t tid;

	if (pthread_create(&tid, NULL, signal_thread, &signal_set) != 0)
		fatalx(EX_OSERR, "cannot start the signal thread");
	pthread_detach(tid);
}

/*
 * unix_socket_access - give the unix socket its configured mode and group,
 * so that the MTA's user (postfix, smmsp) can connect to it.
 */
static void
unix_socket_access(const struct conf *c)
{
	const char *path = listen_unix_path(c->milter.socket);
	char err[1024];

	if (path != NULL && listen_unix_access(path, NULL,
	    c->milter.socket_group, c->milter.socket_mode, "milter", err,
	    sizeof(err)) < 0)
		fatalx(errno == 0 ? EX_CONFIG : EX_OSERR, "%s", err);
}

/* check_only - -n: check the configuration and the keys, as the daemon
 * will load them; the exit status */
static int
check_only(struct conf *conf)
{
	struct milter_gen *gen;
	char err[1024];

	/* -n checks the keys too, as the daemon will load them, and what
	 * the configuration needs of this host */
	if ((gen = milter_gen_check(conf_path, err, sizeof(err))) == NULL ||
	    conf_check_host(conf, CONF_HOST_MILTER, err, sizeof(err)) < 0)
		fatalx(EX_CONFIG, "%s", err);
	printf("%s: OK\n", conf_path);
	milter_install(gen);
	milter_shutdown();
	conf_free(conf);
	return 0;
}

/* background - become a daemon, logging to syslog's facility */
static void
background(int facility)
{
	if (daemon(0, 0) < 0)
		fatal(EX_OSERR, "daemon");
	log_init("outpost-milter", 0, facility);
}

/*
 * parse_args - the command line into the flags; 1 when -V printed the
 * version and the program is done
 */
static int
parse_args(int argc, char **argv, int *foreground, int *check,
    int *verbose)
{
	int ch;

	while ((ch = getopt(argc, argv, "c:fhnvV")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'f':
			*foreground = 1;
			break;
		case 'n':
			*check = 1;
			break;
		case 'v':
			*verbose = 1;
			break;
		case 'V':
			printf("outpost-milter %s\n", PACKAGE_VERSION);
			return 1;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	return 0;
}

int
main(int argc, char **argv)
{
	int ch, foreground = 0, check = 0, verbose = 0, facility;
	struct metrics_http *mh = NULL;
	struct milter_gen *gen;
	struct conf *conf;
	char err[1024];

	if (parse_args(argc, argv, &foreground, &check, &verbose))
		return 0;
	log_init("outpost-milter", 1, LOG_MAIL);
	if ((conf = conf_load(conf_path, err, sizeof(err))) == NULL)
		fatalx(EX_CONFIG, "%s", err);
	if (check)
		return check_only(conf);
	if ((facility = daemon_facility(conf->log.facility)) < 0)
		fatalx(EX_CONFIG, "%s: log.facility \"%s\" is unknown",
		    conf_path, conf->log.facility);
	log_set_verbose(verbose || conf->log.verbose);

	/* The SPF workers: a fresh program, started while root and before
	 * any thread (spf/pool.h). */
	if (milter_spf_start(conf, err, sizeof(err)) < 0)
		fatalx(EX_UNAVAILABLE, "spf: %s", err);

	engine = conf->milter.engine == CONF_MILTER_LIBMILTER ?
	    &engine_libmilter : &engine_native;
	if (engine->listen(conf, err, sizeof(err)) < 0)
		fatalx(EX_UNAVAILABLE, "%s", err);
	unix_socket_access(conf);
	milter_metrics_register();
	if (conf->milter.metrics != NULL && (mh = metrics_http_listen(
	    conf->milter.metrics, err, sizeof(err))) == NULL)
		fatalx(EX_UNAVAILABLE, "%s", err);
	/* Before the first thread; after the SPF workers' exec, which would
	 * keep the mask. */
	signals_block();
	daemon_drop_privileges(conf->milter.user, "milter.user");
	/* Configuration and keys now, while errors reach the terminal ... */
	if ((gen = milter_gen_check(conf_path, err, sizeof(err))) == NULL)
		fatalx(EX_CONFIG, "%s", err);

	if (!foreground)
		background(facility);
	/* ... the quota store only in the process that uses it: an LMDB
	 * environment must not cross daemon()'s fork (its lock file's
	 * fcntl lock stays with the parent that exits, and the next process
	 * to open the file would reset the reader table under us). */
	if (milter_gen_open(gen, err, sizeof(err)) < 0)
		fatalx(EX_UNAVAILABLE, "%s", err);
	milter_install(gen);
	daemon_write_pid(conf->milter.pid_file);

	signals_start();
	if (mh != NULL && metrics_http_start(mh, err, sizeof(err)) < 0)
		fatalx(EX_UNAVAILABLE, "%s", err);
	log_info("started on %s with %zu keys (engine %s)",
	    conf->milter.socket, dkim_table_nkeys(gen->table), engine->name);
	notify_ready(NULL);	/* the socket listens, the keys are loaded */
	ch = engine->run(conf);
	if (ch < 0) {
		/* Their threads still use the SPF pool and the generations:
		 * leave the memory to the exit, and no atexit handler. */
		log_warnx("stopping with MTA connections still running");
		_exit(EX_SOFTWARE);
	}
	log_info("stopping");
	milter_shutdown();
	milter_spf_stop();
	conf_free(conf);
	return 0;
}
