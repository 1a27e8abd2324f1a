/*
 * check_listen - util/listen: sockets that listen with the backlog
 * asked for, stale sockets replaced, other files left alone, modes and
 * groups applied, errors in the caller's buffer.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/listen.h"

static char dir[64];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_listen.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void
teardown(void)
{
	static const char *const names[] = { "sock", "file" };
	char path[128];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	(void)rmdir(dir);
}

/* listening - SO_ACCEPTCONN of fd */
static int
listening(int fd)
{
	int on = 0;
	socklen_t len = sizeof(on);

	ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len),
	    0);
	return on;
}

START_TEST(inet_listens_with_the_backlog_asked_for)
{
	struct sockaddr_in sin;
	struct tcp_info ti;
	socklen_t len = sizeof(sin);
	char err[256] = "";
	int fd;

	fd = listen_inet("127.0.0.1", "0", AF_INET, 1000, err, sizeof(err));
	ck_assert_msg(fd >= 0, "got -1 (%s), want a descriptor", err);
	ck_assert(listening(fd));
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	ck_assert_int_eq(sin.sin_family, AF_INET);
	ck_assert_uint_eq(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
	/* Linux: a listening socket's tcpi_sacked is its backlog */
	len = sizeof(ti);
	ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
	ck_assert_msg(ti.tcpi_sacked == 1000, "backlog: got %u, want 1000",
	    ti.tcpi_sacked);
	close(fd);
}
END_TEST

START_TEST(inet_errors_go_to_the_buffer)
{
	char err[256] = "";

	/* an IPv6 address for an IPv4 socket: no DNS asked */
	ck_assert_int_eq(listen_inet("::1", "25", AF_INET, 5, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "::1") != NULL, "got \"%s\"", err);
	err[0] = '\0';
	ck_assert_int_eq(listen_inet("127.0.0.1", "notaport", AF_INET, 5, err,
	    sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no message");
}
END_TEST

START_TEST(unix_replaces_a_stale_socket_only)
{
	char path[128], err[256] = "";
	struct stat st;
	int fd, fd2;

	snprintf(path, sizeof(path), "%s/sock", dir);
	fd = listen_unix(path, 5, err, sizeof(err));
	ck_assert_msg(fd >= 0, "got -1 (%s)", err);
	ck_assert(listening(fd));
	close(fd);		/* the socket file stays: stale */
	fd2 = listen_unix(path, 5, err, sizeof(err));
	ck_assert_msg(fd2 >= 0, "stale socket: got -1 (%s)", err);
	close(fd2);

	snprintf(path, sizeof(path), "%s/file", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(listen_unix(path, 5, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a socket") != NULL, "got \"%s\"", err);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(unix_refuses_a_path_too_long)
{
	char path[200], err[256] = "";

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(listen_unix(path, 5, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "too long") != NULL, "got \"%s\"", err);
}
END_TEST

START_TEST(unix_access_sets_mode_and_names_the_setting)
{
	char path[128], err[256] = "";
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/sock", dir);
	fd = listen_unix(path, 5, err, sizeof(err));
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(listen_unix_access(path, NULL, NULL, 0640, "milter",
	    err, sizeof(err)), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == 0640, "mode: got %o, want 640",
	    (unsigned int)(st.st_mode & 07777));
	ck_assert_int_eq(listen_unix_access(path, NULL, "no-such-group-op",
	    0660, "milter", err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	    "milter.socket_group: no group \"no-such-group-op\"");
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(listen_unix_access(path, "no-such-user-op", NULL,
	    0660, "policyd", err, sizeof(err)), -1);
	ck_assert_str_eq(err,
	    "policyd.socket_owner: no user \"no-such-user-op\"");
	close(fd);
}
END_TEST

static const struct {
	const char *spec, *path;
} specs[] = {
	{ "unix:/run/x.sock", "/run/x.sock" },
	{ "local:/run/y", "/run/y" },
	{ "inet:10025@127.0.0.1", NULL },
	{ "inet:127.0.0.1:10027", NULL },
	{ "/run/z", NULL },
};

START_TEST(unix_path_of_a_specification)
{
	const char *got = listen_unix_path(specs[_i].spec);

	if (specs[_i].path == NULL)
		ck_assert_msg(got == NULL, "%s: got \"%s\", want NULL",
		    specs[_i].spec, got);
	else
		ck_assert_msg(got != NULL && strcmp(got, specs[_i].path) == 0,
		    "%s: got \"%s\", want \"%s\"", specs[_i].spec,
		    got ? got : "(null)", specs[_i].path);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("listen");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("inet_listens_with_the_backlog_asked_for");
	tcase_add_test(tc, inet_listens_with_the_backlog_asked_for);
	suite_add_tcase(s, tc);
	tc = tcase_create("inet_errors_go_to_the_buffer");
	tcase_add_test(tc, inet_errors_go_to_the_buffer);
	suite_add_tcase(s, tc);
	tc = tcase_create("unix_replaces_a_stale_socket_only");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unix_replaces_a_stale_socket_only);
	suite_add_tcase(s, tc);
	tc = tcase_create("unix_refuses_a_path_too_long");
	tcase_add_test(tc, unix_refuses_a_path_too_long);
	suite_add_tcase(s, tc);
	tc = tcase_create("unix_access_sets_mode_and_names_the_setting");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unix_access_sets_mode_and_names_the_setting);
	suite_add_tcase(s, tc);
	tc = tcase_create("unix_path_of_a_specification");
	tcase_add_loop_test(tc, unix_path_of_a_specification, 0,
	    sizeof(specs) / sizeof(specs[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
