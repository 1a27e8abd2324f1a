/*
 * outpost-spf-worker - the only Outpost program that loads libspf2 (see
 * spf/pool.h for why and how the milter uses it).
 *
 *	outpost-spf-worker --supervisor FD [options]
 *		started by the milter (spf_pool_new) while root, with its
 *		end of a socketpair as FD: forks the workers on request.
 *	outpost-spf-worker --query IP HELO SENDER [--helo] [options]
 *		one check in this process, printed (for people debugging)
 *
 *	options: --user U --memory BYTES --timeout-ms MS
 *		 --max-dns-lookups N --max-void-lookups N --allow-loopback
 *		 --facility NAME --stderr --verbose
 *
 * The supervisor is single-threaded and keeps root: a worker's uid may
 * differ from the milter's, so only the supervisor can kill it.  It
 * closes every descriptor it inherited but its socket, resolves spf.user
 * once, then serves spawn requests (struct spf_wire_ctl): it kills the
 * named worker if it is one of its own children (never any other pid),
 * forks a new one, waits for its hello and passes the worker's socket and
 * hello to the milter with SCM_RIGHTS.  When the milter's socket closes
 * it kills its workers and exits.
 *
 * A worker (comm "spf-worker" in ps), right after the fork: keeps only
 * its socket (and stderr), sets no_new_privs, becomes spf.user (groups,
 * gid, uid; when the supervisor is not root it stays as it is, and the
 * milter logs that once), dies with the supervisor (PDEATHSIG), takes
 * its limits (RLIMIT_AS = --memory except under ASan, whose shadow
 * memory needs terabytes of address space; no core files; 16
 * descriptors; no new processes; CPU: per check the timeout plus 2 s,
 * 300 s for its life), builds its checker and says hello.  Then per request: alarm() as a
 * second deadline, spf_check or spf_check_helo, answer.  It retires
 * (flag in the answer, then exits) after 10000 checks or half its CPU
 * life, and the milter replaces it without losing a check.
 *
 * The tests run tests/outpost-spf-worker-test instead: this file built
 * with the test hooks of spf/testhooks.h (a zone file of DNS data and
 * pseudo-records that make a worker crash, sleep or misbehave).  This
 * program has none of them.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "spf/spf.h"
#include "spf/testhooks.h"
#include "spf/wire.h"
#include "util/daemon.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define WORKER_FD		3	/* a worker's socket */
#define SUP_MAX_WORKERS		256	/* children at once */
#define HELLO_TIMEOUT_MS	5000	/* a new worker must be ready by then */
#define CPU_LIFE		300	/* s of CPU a worker may use */
#define MAX_CHECKS		10000	/* then it retires */

struct opts {
	int sup_fd;
	const char *user;
	uint64_t memory;
	unsigned int timeout_ms;
	struct spf_options spf;
	const char *facility;
	int to_stderr;
	int verbose;
	int query;
	int helo;
};

struct sup {
	const struct opts *o;
	int ctl;
	int root;		/* can switch users */
	uid_t uid;
	gid_t gid;
	pid_t pids[SUP_MAX_WORKERS];
	size_t npids;
	struct spf_hooks *hooks;	/* test worker only */
};

/* usage - print the synopsis, exit */
static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: outpost-spf-worker --supervisor FD [options]\n"
	    "       outpost-spf-worker --query IP HELO SENDER [--helo] "
	    "[options]\n"
	    "options: --user U --memory BYTES --timeout-ms MS "
	    "--max-dns-lookups N\n"
	    "         --max-void-lookups N --allow-loopback --facility NAME\n"
	    "         --stderr --verbose\n");
	exit(EX_USAGE);
}

/* opt_uint - a numeric option in [min, max], or exit */
static uint64_t
opt_uint(const char *name, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;
	char err[128];

	if (parse_u64(s, min, max, &v, err, sizeof(err)) < 0)
		fatalx(EX_USAGE, "%s: %s", name, err);
	return v;
}

enum { O_SUP = 256, O_USER, O_MEM, O_TMO, O_DNS, O_VOID, O_LOOP, O_FAC,
	O_STDERR, O_VERB, O_QUERY, O_HELO };

/* opt_set - one option ch (its argument: optarg) into o */
static void
opt_set(struct opts *o, int ch)
{
	switch (ch) {
	case O_SUP:
		o->sup_fd = (int)opt_uint("--supervisor", optarg, 0, INT_MAX);
		break;
	case O_USER:
		o->user = optarg;
		break;
	case O_MEM:
		o->memory = opt_uint("--memory", optarg, 1ULL << 20,
		    1ULL << 40);
		break;
	case O_TMO:
		o->timeout_ms = (unsigned int)opt_uint("--timeout-ms", optarg,
		    1, 3600000);
		break;
	case O_DNS:
		o->spf.max_dns_lookups = (unsigned int)opt_uint(
		    "--max-dns-lookups", optarg, 1, 1000);
		break;
	case O_VOID:
		o->spf.max_void_lookups = (unsigned int)opt_uint(
		    "--max-void-lookups", optarg, 0, 1000);
		break;
	case O_LOOP:
		o->spf.allow_loopback = 1;
		break;
	case O_FAC:
		o->facility = optarg;
		break;
	case O_STDERR:
		o->to_stderr = 1;
		break;
	case O_VERB:
		o->verbose = 1;
		break;
	case O_QUERY:
		o->query = 1;
		break;
	case O_HELO:
		o->helo = 1;
		break;
	default:
		usage();
	}
}

/* parse_opts - argv into o; optind left at the first operand */
static void
parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "supervisor", required_argument, NULL, O_SUP },
		{ "user", required_argument, NULL, O_USER },
		{ "memory", required_argument, NULL, O_MEM },
		{ "timeout-ms", required_argument, NULL, O_TMO },
		{ "max-dns-lookups", required_argument, NULL, O_DNS },
		{ "max-void-lookups", required_argument, NULL, O_VOID },
		{ "allow-loopback", no_argument, NULL, O_LOOP },
		{ "facility", required_argument, NULL, O_FAC },
		{ "stderr", no_argument, NULL, O_STDERR },
		{ "verbose", no_argument, NULL, O_VERB },
		{ "query", no_argument, NULL, O_QUERY },
		{ "helo", no_argument, NULL, O_HELO },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->sup_fd = -1;
	o->memory = 256ULL << 20;
	o->timeout_ms = 20000;
	o->spf.max_dns_lookups = 10;
	o->spf.max_void_lookups = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1)
		opt_set(o, ch);
	if ((o->sup_fd < 0) == !o->query)
		usage();
	if (o->query ? argc - optind != 3 : optind != argc)
		usage();
	/* the checker's own deadline comes first, so a slow check ends in
	 * an answer (temperror) rather than in the pool's kill */
	o->spf.timeout_ms = o->timeout_ms > 2000 ? o->timeout_ms - 1000 :
	    o->timeout_ms / 2 + 1;
}

/* checker_build - a checker per o (and the test zone); NULL and err */
static struct spf_checker *
checker_build(const struct opts *o, const struct sup *s, char *err,
    size_t errlen)
{
	struct spf_options so = o->spf;
	struct spf_checker *c;

	so.use_zone = s->hooks != NULL;
	if ((c = spf_checker_new(&so, err, errlen)) == NULL)
		return NULL;
	if (spf_hooks_zone_add(s->hooks, c, err, errlen) < 0)
		return spf_checker_free(c);
	return c;
}

/* check_domain - the domain a query of kind is about */
static const char *
check_domain(enum spf_kind kind, const struct spf_query *q)
{
	const char *at;

	if (kind == SPF_KIND_HELO || q->sender[0] == '\0')
		return q->helo;
	return (at = strrchr(q->sender, '@')) != NULL ? at + 1 : q->sender;
}

/* cpu_used - seconds of CPU this process used */
static rlim_t
cpu_used(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (rlim_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1);
}

/* send_answer - encode and send a; exits when the socket is gone */
static void
send_answer(uint32_t seq, uint32_t flags, struct spf_answer *a)
{
	struct spf_wire_ans w;
	char err[128];
	size_t i;

	a->domain[sizeof(a->domain) - 1] = '\0';
	a->text[sizeof(a->text) - 1] = '\0';
	for (i = 0; a->domain[i] != '\0'; i++)
		if ((unsigned char)a->domain[i] < 0x20 || a->domain[i] == 0x7f)
			a->domain[i] = '?';
	for (i = 0; a->text[i] != '\0'; i++)
		if ((unsigned char)a->text[i] < 0x20 || a->text[i] == 0x7f)
			a->text[i] = '?';
	if (spf_wire_ans_encode(&w, seq, flags, a, err, sizeof(err)) < 0) {
		log_warnx("answer not sent: %s", err);
		memset(a, 0, sizeof(*a));
		a->result = SPF_RES_TEMPERROR;
		snprintf(a->text, sizeof(a->text), "SPF worker internal "
		    "error");
		(void)spf_wire_ans_encode(&w, seq, flags, a, err, sizeof(err));
	}
	if (send(WORKER_FD, &w, sizeof(w), MSG_NOSIGNAL) != (ssize_t)sizeof(w))
		_exit(0);
}

/* worker_loop - answer requests on WORKER_FD until EOF; never returns */
static void __attribute__((noreturn))
worker_loop(const struct opts *o, const struct sup *s, struct spf_checker *c)
{
	unsigned char buf[sizeof(struct spf_wire_req) + 1];
	struct spf_wire_req req;
	struct spf_answer a;
	struct spf_query q;
	struct rlimit rl;
	enum spf_kind kind;
	enum spf_hook_act act;
	unsigned int secs = o->timeout_ms / 1000 + 1;
	unsigned long checks = 0;
	uint32_t flags;
	char err[128];
	ssize_t n;

	for (;;) {
		n = recv(WORKER_FD, buf, sizeof(buf), MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		if (spf_wire_req_decode(buf, (size_t)n, &req, &kind, &q, err,
		    sizeof(err)) < 0) {
			/* the milter is broken: let it see EOF */
			log_warnx("bad request: %s", err);
			_exit(EX_PROTOCOL);
		}
		rl.rlim_max = CPU_LIFE;
		rl.rlim_cur = cpu_used() + secs + 1;
		if (rl.rlim_cur > rl.rlim_max)
			rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_CPU, &rl);
		alarm(secs);
		act = spf_hooks_run(s->hooks, WORKER_FD, req.seq, kind,
		    check_domain(kind, &q), &a);
		if (act == SPF_HOOK_ANSWER)
			send_answer(req.seq, 0, &a);
		if (act == SPF_HOOK_ANSWER || act == SPF_HOOK_DONE) {
			alarm(0);
			continue;
		}
		memset(&a, 0, sizeof(a));
		if (kind == SPF_KIND_HELO)
			(void)spf_check_helo(c, &q, &a);
		else
			(void)spf_check(c, &q, &a);
		alarm(0);
		flags = 0;
		if (++checks >= MAX_CHECKS || cpu_used() > CPU_LIFE / 2 ||
		    act == SPF_HOOK_RETIRE)
			flags |= SPF_WIRE_RETIRE;
		send_answer(req.seq, flags, &a);
		if (flags & SPF_WIRE_RETIRE)
			_exit(0);
	}
}

/* worker_limit - one setrlimit, soft = hard = v; 0 or -1 */
static int
worker_limit(int res, rlim_t v, const char *name, char *err, size_t errlen)
{
	struct rlimit rl;

	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(res, &rl) < 0) {
		snprintf(err, errlen, "setrlimit %s: %s", name,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* worker_setup - privileges and limits of a new worker; 0 or -1 */
static int
worker_setup(const struct sup *s, pid_t parent, char *err, size_t errlen)
{
	const struct opts *o = s->o;
	int fd;

	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		(void)dup2(fd, 0);
		(void)dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (s->root) {
		if (setgroups(1, &s->gid) < 0 ||
		    setresgid(s->gid, s->gid, s->gid) < 0 ||
		    setresuid(s->uid, s->uid, s->uid) < 0) {
			snprintf(err, errlen, "cannot become %s: %s", o->user,
			    strerror(errno));
			return -1;
		}
		if (setuid(0) == 0 || geteuid() != s->uid ||
		    getegid() != s->gid) {
			snprintf(err, errlen, "privileges not dropped");
			return -1;
		}
	}
	/* not dumpable: other processes of spf.user (the other workers)
	 * cannot ptrace this one; after the uid change, which resets it */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "dumpable: %s", strerror(errno));
		return -1;
	}
	/* after the uid change, which clears it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
	    getppid() != parent) {
		snprintf(err, errlen, "supervisor gone");
		return -1;
	}
	if (worker_limit(RLIMIT_CORE, 0, "core", err, errlen) < 0 ||
	    worker_limit(RLIMIT_NOFILE, 16, "nofile", err, errlen) < 0 ||
	    worker_limit(RLIMIT_NPROC, 0, "nproc", err, errlen) < 0 ||
	    worker_limit(RLIMIT_CPU, CPU_LIFE, "cpu", err, errlen) < 0)
		return -1;
	if (!UNDER_ASAN && worker_limit(RLIMIT_AS, (rlim_t)o->memory, "as",
	    err, errlen) < 0)
		return -1;
	return 0;
}

/* worker_main - the child of a spawn, on socket sock; never returns */
static void __attribute__((noreturn))
worker_main(const struct sup *s, int sock, pid_t parent)
{
	struct spf_wire_hello h;
	struct spf_checker *c = NULL;
	sigset_t none;
	char err[SPF_TEXT_MAX];

	/* ps -o comm and pgrep tell workers from their supervisor */
	(void)prctl(PR_SET_NAME, "spf-worker", 0, 0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGXCPU, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (sock != WORKER_FD) {
		if (dup2(sock, WORKER_FD) < 0)
			_exit(EX_OSERR);
		close(sock);
	}
	(void)fcntl(WORKER_FD, F_SETFD, 0);
	closelog();	/* its socket goes too; syslog() reopens it */
	(void)close_range(WORKER_FD + 1, ~0U, 0);
	err[0] = '\0';
	if (worker_setup(s, parent, err, sizeof(err)) < 0 ||
	    (c = checker_build(s->o, s, err, sizeof(err))) == NULL) {
		spf_wire_hello_encode(&h, 1, 0, (long)getpid(),
		    (unsigned long)getuid(), (unsigned long)getgid(), err);
		(void)send(WORKER_FD, &h, sizeof(h), MSG_NOSIGNAL);
		_exit(EX_OSERR);
	}
	spf_wire_hello_encode(&h, 0, 0, (long)getpid(),
	    (unsigned long)getuid(), (unsigned long)getgid(), NULL);
	if (send(WORKER_FD, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		_exit(0);
	worker_loop(s->o, s, c);
}

/* sup_forget - drop pid from the table */
static void
sup_forget(struct sup *s, pid_t pid)
{
	size_t i;

	for (i = 0; i < s->npids; i++)
		if (s->pids[i] == pid) {
			s->pids[i] = s->pids[--s->npids];
			return;
		}
}

/* sup_reap - collect every child that has ended */
static void
sup_reap(struct sup *s)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (WIFSIGNALED(st))
			log_debug("worker %ld ended by signal %d", (long)pid,
			    WTERMSIG(st));
		sup_forget(s, pid);
	}
}

/* sup_kill - kill pid if it is one of our workers, and reap it */
static void
sup_kill(struct sup *s, pid_t pid)
{
	size_t i;

	for (i = 0; i < s->npids; i++)
		if (s->pids[i] == pid) {
			(void)kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				continue;
			sup_forget(s, pid);
			return;
		}
}

/* sup_spawn - fork a worker, wait for its hello; its socket, or -1 */
static int
sup_spawn(struct sup *s, struct spf_wire_hello *h)
{
	unsigned char buf[sizeof(*h) + 1];
	struct pollfd pfd;
	char err[SPF_TEXT_MAX];
	int sv[2], r;
	pid_t pid, self = getpid();
	ssize_t n;

	if (s->npids == SUP_MAX_WORKERS) {
		spf_wire_hello_encode(h, 1, 0, 0, 0, 0, "too many workers");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, sizeof(err), "socketpair: %s", strerror(errno));
		spf_wire_hello_encode(h, 1, 0, 0, 0, 0, err);
		return -1;
	}
	if ((pid = fork()) < 0) {
		snprintf(err, sizeof(err), "fork: %s", strerror(errno));
		spf_wire_hello_encode(h, 1, 0, 0, 0, 0, err);
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		close(s->ctl);
		worker_main(s, sv[1], self);
	}
	close(sv[1]);
	s->pids[s->npids++] = pid;
	pfd.fd = sv[0];
	pfd.events = POLLIN;
	while ((r = poll(&pfd, 1, HELLO_TIMEOUT_MS)) < 0 && errno == EINTR)
		continue;
	n = r == 1 ? recv(sv[0], buf, sizeof(buf), MSG_TRUNC) : -1;
	if (r != 1)
		snprintf(err, sizeof(err), "new worker not ready in %d ms",
		    HELLO_TIMEOUT_MS);
	else if (n == 0)
		snprintf(err, sizeof(err), "new worker died at start");
	else if (spf_wire_hello_decode(buf, n < 0 ? 0 : (size_t)n, h, err,
	    sizeof(err)) == 0 && h->status == 0 && h->pid != pid)
		snprintf(err, sizeof(err), "new worker sent a wrong pid");
	else if (h->status == 0)
		return sv[0];
	else
		snprintf(err, sizeof(err), "%s", h->text);
	sup_kill(s, pid);
	close(sv[0]);
	spf_wire_hello_encode(h, 1, 0, 0, 0, 0, err);
	return -1;
}

/* sup_reply - send hello h, with fd attached when fd >= 0; 0 or -1 */
static int
sup_reply(int ctl, const struct spf_wire_hello *h, int fd)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg;
	struct cmsghdr *cm;
	struct iovec iov;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)h;
	iov.iov_len = sizeof(*h);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	return sendmsg(ctl, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(*h) ? 0 : -1;
}

/* sup_serve - answer control records until the milter goes away */
static void
sup_serve(struct sup *s)
{
	unsigned char buf[sizeof(struct spf_wire_ctl) + 1];
	struct spf_wire_hello h;
	struct spf_wire_ctl c;
	struct pollfd pfd;
	char err[SPF_TEXT_MAX];
	ssize_t n;
	int fd, r;

	for (;;) {
		pfd.fd = s->ctl;
		pfd.events = POLLIN;
		r = poll(&pfd, 1, 1000);
		sup_reap(s);
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		n = recv(s->ctl, buf, sizeof(buf), MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (spf_wire_ctl_decode(buf, (size_t)n, &c, err,
		    sizeof(err)) < 0) {
			spf_wire_hello_encode(&h, 1, 0, 0, 0, 0, err);
			if (sup_reply(s->ctl, &h, -1) < 0)
				return;
			continue;
		}
		if (c.kill_pid > 0)
			sup_kill(s, (pid_t)c.kill_pid);
		fd = sup_spawn(s, &h);
		r = sup_reply(s->ctl, &h, fd);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return;
	}
}

/* sup_user - resolve --user into s; 0, or -1 with err; *not_root when
 * we cannot become it */
static int
sup_user(struct sup *s, int *not_root, char *err, size_t errlen)
{
	struct passwd *pw;

	s->uid = getuid();
	s->gid = getgid();
	if (s->o->user == NULL)
		return 0;
	if (geteuid() != 0) {
		/* the milter logs that unless we already are that user */
		pw = getpwnam(s->o->user);
		*not_root = pw == NULL || pw->pw_uid != geteuid();
		return 0;
	}
	if ((pw = getpwnam(s->o->user)) == NULL) {
		snprintf(err, errlen, "spf.user: no user \"%s\"", s->o->user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "spf.user \"%s\" is root: workers must "
		    "not be", s->o->user);
		return -1;
	}
	s->root = 1;
	s->uid = pw->pw_uid;
	s->gid = pw->pw_gid;
	return 0;
}

/* sup_fds - keep only stderr and the milter's socket (moved to fd 3):
 * the milter may leak descriptors (its listening socket) into us */
static void
sup_fds(struct opts *o)
{
	int fd;

	if (o->sup_fd != 3) {
		if (dup2(o->sup_fd, 3) < 0)
			fatal(EX_OSERR, "dup2");
		close(o->sup_fd);
		o->sup_fd = 3;
	}
	(void)fcntl(3, F_SETFD, FD_CLOEXEC);
	(void)close_range(4, ~0U, 0);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		(void)dup2(fd, 0);
		(void)dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
}

/* supervise - the --supervisor mode; exit code */
static int
supervise(const struct opts *o)
{
	struct spf_wire_hello h;
	struct sup s;
	sigset_t none;
	char err[SPF_TEXT_MAX];
	size_t i;
	int not_root = 0;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.ctl = o->sup_fd;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	err[0] = '\0';
	if (sup_user(&s, &not_root, err, sizeof(err)) < 0 ||
	    spf_hooks_load(&s.hooks, err, sizeof(err)) < 0) {
		spf_wire_hello_encode(&h, 1, 0, (long)getpid(), 0, 0, err);
		(void)sup_reply(s.ctl, &h, -1);
		return EX_CONFIG;
	}
	spf_wire_hello_encode(&h, 0, not_root ? SPF_WIRE_NOT_ROOT : 0,
	    (long)getpid(),
	    (unsigned long)s.uid, (unsigned long)s.gid, NULL);
	if (sup_reply(s.ctl, &h, -1) < 0) {
		spf_hooks_free(s.hooks);
		return 0;
	}
	sup_serve(&s);
	for (i = 0; i < s.npids; i++)
		(void)kill(s.pids[i], SIGKILL);
	while (s.npids > 0) {
		if (waitpid(-1, NULL, 0) < 0 && errno != EINTR)
			break;
		sup_reap(&s);
	}
	spf_hooks_free(s.hooks);
	return 0;
}

/* query - the --query mode: one check here, printed; exit code */
static int
query(const struct opts *o, char **argv)
{
	struct spf_checker *c;
	struct spf_answer a;
	struct spf_query q;
	struct sup s;
	char err[256];

	memset(&s, 0, sizeof(s));
	s.o = o;
	if (spf_hooks_load(&s.hooks, err, sizeof(err)) < 0)
		fatalx(EX_CONFIG, "%s", err);
	if ((c = checker_build(o, &s, err, sizeof(err))) == NULL)
		fatalx(EX_SOFTWARE, "%s", err);
	q.ip = argv[0];
	q.helo = argv[1];
	q.sender = argv[2];
	memset(&a, 0, sizeof(a));
	if (o->helo)
		(void)spf_check_helo(c, &q, &a);
	else
		(void)spf_check(c, &q, &a);
	printf("%s %s %s\n", spf_result_name(a.result), a.domain, a.text);
	spf_checker_free(c);
	spf_hooks_free(s.hooks);
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o;
	int facility = LOG_MAIL;

	log_init("outpost-spf-worker", 1, LOG_MAIL);
	parse_opts(argc, argv, &o);
	log_set_verbose(o.verbose);
	if (o.query)
		return query(&o, argv + optind);
	if (o.facility != NULL && (facility = daemon_facility(o.facility)) < 0)
		fatalx(EX_USAGE, "--facility: \"%s\" is unknown", o.facility);
	sup_fds(&o);
	if (!o.to_stderr)
		log_init("outpost-spf-worker", 0, facility);
	return supervise(&o);
}
