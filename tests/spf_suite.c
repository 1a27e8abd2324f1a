/*
 * spf_suite - run the RFC 7208 test suite (openspf.org, YAML) through
 * spf/ on libspf2's zone DNS layer.
 *
 * usage: spf_suite [-v] rfc7208-tests.yml
 *
 * Each scenario's zonedata becomes a zone (spf_checker_zone_add), the way
 * the suite's own drivers read it: an SPF record is also a TXT record
 * unless the name lists TXT records (or "TXT: NONE", which only stops
 * that); "TIMEOUT" makes every type the name does not list time out; a
 * CNAME gets its target's records.  Each test runs spf_check() (host ->
 * ip, mailfrom -> sender, helo) in a child process (libspf2 may abort) and
 * passes when the result is one of those listed.  Prints one line per
 * test and then "RFC 7208 suite: N of M pass"; exits 0 when it could
 * run the suite (whatever the count), 2 when it could not.
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <yaml.h>

#include "spf/spf.h"
#include "util/log.h"

#define CHILD_SECONDS 10

static int verbose;

/* node - a node of the document, or NULL */
static yaml_node_t *
node(yaml_document_t *doc, int id)
{
	return yaml_document_get_node(doc, id);
}

/* scalar - a scalar node's text, or NULL */
static const char *
scalar(yaml_node_t *n)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

/* map_get - the value of key in a mapping node, or NULL */
static yaml_node_t *
map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;
	const char *k;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start;
	    p < map->data.mapping.pairs.top; p++) {
		k = scalar(node(doc, p->key));
		if (k != NULL && strcmp(k, key) == 0)
			return node(doc, p->value);
	}
	return NULL;
}

/* joined - a scalar, or a sequence of scalars glued together (TXT
 * strings) or separated by a space (MX priority and host); caller frees */
static char *
joined(yaml_document_t *doc, yaml_node_t *v, const char *sep)
{
	yaml_node_item_t *i;
	const char *s;
	char *out;
	size_t len = 1;

	if ((s = scalar(v)) != NULL)
		return strdup(s);
	if (v == NULL || v->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (i = v->data.sequence.items.start;
	    i < v->data.sequence.items.top; i++)
		if ((s = scalar(node(doc, *i))) != NULL)
			len += strlen(s) + strlen(sep);
	if ((out = calloc(1, len)) == NULL)
		return NULL;
	for (i = v->data.sequence.items.start;
	    i < v->data.sequence.items.top; i++) {
		if ((s = scalar(node(doc, *i))) == NULL)
			continue;
		if (out[0] != '\0' || i > v->data.sequence.items.start)
			strncat(out, sep, len - strlen(out) - 1);
		strncat(out, s, len - strlen(out) - 1);
	}
	return out;
}

/* One domain's entries in a scenario's zonedata. */
struct entry_flags {
	int txt;		/* lists TXT (or TXT: NONE) */
	int timeout;
	int types[5];		/* A AAAA MX PTR TXT listed */
};

static const char *const zone_types[5] = { "A", "AAAA", "MX", "PTR", "TXT" };

/* type_index - index in zone_types, or -1 */
static int
type_index(const char *t)
{
	int i;

	for (i = 0; i < 5; i++)
		if (strcmp(t, zone_types[i]) == 0)
			return i;
	return -1;
}

/* scan - what a domain's entry list has */
static void
scan(yaml_document_t *doc, yaml_node_t *list, struct entry_flags *f)
{
	yaml_node_item_t *i;
	yaml_node_t *e;
	yaml_node_pair_t *p;
	const char *s, *t;
	int ti;

	memset(f, 0, sizeof(*f));
	if (list == NULL || list->type != YAML_SEQUENCE_NODE)
		return;
	for (i = list->data.sequence.items.start;
	    i < list->data.sequence.items.top; i++) {
		e = node(doc, *i);
		if ((s = scalar(e)) != NULL) {
			if (strcmp(s, "TIMEOUT") == 0)
				f->timeout = 1;
			continue;
		}
		if (e == NULL || e->type != YAML_MAPPING_NODE)
			continue;
		for (p = e->data.mapping.pairs.start;
		    p < e->data.mapping.pairs.top; p++) {
			if ((t = scalar(node(doc, p->key))) == NULL)
				continue;
			if (strcmp(t, "TXT") == 0)
				f->txt = 1;
			s = scalar(node(doc, p->value));
			if ((ti = type_index(t)) >= 0 &&
			    (s == NULL || strcmp(s, "NONE") != 0))
				f->types[ti] = 1;
		}
	}
}

/*
 * add_entries - the records of list under name (CNAME: the target's,
 * depth-limited); counts records added in *added.  0 or -1.
 */
static int
add_entries(struct spf_checker *c, yaml_document_t *doc, yaml_node_t *zone,
    const char *name, yaml_node_t *list, int depth, int *added)
{
	yaml_node_item_t *i;
	yaml_node_t *e;
	yaml_node_pair_t *p;
	struct entry_flags f;
	const char *t, *s;
	char *data, err[256];
	int rc = 0;

	scan(doc, list, &f);
	for (i = list->data.sequence.items.start;
	    i < list->data.sequence.items.top; i++) {
		e = node(doc, *i);
		if (e == NULL || e->type != YAML_MAPPING_NODE)
			continue;
		for (p = e->data.mapping.pairs.start;
		    p < e->data.mapping.pairs.top; p++) {
			if ((t = scalar(node(doc, p->key))) == NULL)
				continue;
			if (strcmp(t, "CNAME") == 0) {
				s = scalar(node(doc, p->value));
				if (s != NULL && depth < 5 && map_get(doc, zone,
				    s) != NULL && add_entries(c, doc, zone,
				    name, map_get(doc, zone, s), depth + 1,
				    added) == -1)
					rc = -1;
				continue;
			}
			if (strcmp(t, "SPF") == 0) {
				if (f.txt)
					continue;	/* TXT given: SPF ignored */
				t = "TXT";
			}
			if (type_index(t) < 0) {
				fprintf(stderr, "spf_suite: %s: type %s "
				    "skipped\n", name, t);
				continue;
			}
			data = joined(doc, node(doc, p->value),
			    strcmp(t, "MX") == 0 ? " " : "");
			if (data == NULL)
				continue;
			if (strcmp(t, "TXT") == 0 && strcmp(data, "NONE") == 0) {
				free(data);
				continue;
			}
			if (spf_checker_zone_add(c, name, t, data, 0, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "spf_suite: %s %s: %s\n", name,
				    t, err);
				rc = -1;
			} else
				(*added)++;
			free(data);
		}
	}
	return rc;
}

/* load_zone - a scenario's zonedata into the checker's zone; 0 or -1 */
static int
load_zone(struct spf_checker *c, yaml_document_t *doc, yaml_node_t *zone)
{
	yaml_node_pair_t *p;
	struct entry_flags f;
	const char *name;
	yaml_node_t *list;
	char err[256];
	int i, added, rc = 0;

	if (zone == NULL || zone->type != YAML_MAPPING_NODE)
		return 0;
	for (p = zone->data.mapping.pairs.start;
	    p < zone->data.mapping.pairs.top; p++) {
		name = scalar(node(doc, p->key));
		list = node(doc, p->value);
		if (name == NULL || list == NULL ||
		    list->type != YAML_SEQUENCE_NODE)
			continue;
		added = 0;
		if (add_entries(c, doc, zone, name, list, 0, &added) == -1)
			rc = -1;
		scan(doc, list, &f);
		if (f.timeout) {
			for (i = 0; i < 5; i++)
				if (!f.types[i] && spf_checker_zone_add(c,
				    name, zone_types[i], NULL, 1, err,
				    sizeof(err)) == -1)
					rc = -1;
		} else if (added == 0 && spf_checker_zone_add(c, name, "TXT",
		    NULL, 0, err, sizeof(err)) == -1)
			rc = -1;	/* the name exists, with no records */
	}
	return rc;
}

/* run_child - one test in this (child) process; writes the answer to fd */
static void
run_child(yaml_document_t *doc, yaml_node_t *zone, yaml_node_t *test, int fd)
{
	struct spf_options opt = { 10, 2, 0, 1, 0 };
	struct spf_checker *c;
	struct spf_query q;
	struct spf_answer a;
	char err[256];
	ssize_t n;

	alarm(CHILD_SECONDS);
	if ((c = spf_checker_new(&opt, err, sizeof(err))) == NULL) {
		fprintf(stderr, "spf_suite: %s\n", err);
		_exit(3);
	}
	if (load_zone(c, doc, zone) == -1)
		fprintf(stderr, "spf_suite: zone loaded with errors\n");
	q.ip = scalar(map_get(doc, test, "host"));
	q.helo = scalar(map_get(doc, test, "helo"));
	q.sender = scalar(map_get(doc, test, "mailfrom"));
	if (q.ip == NULL)
		q.ip = "";
	if (q.helo == NULL)
		q.helo = "";
	if (q.sender == NULL)
		q.sender = "";
	(void)spf_check(c, &q, &a);
	spf_checker_free(c);
	n = write(fd, &a, sizeof(a));
	/* exit(), not _exit(): under ASan, LeakSanitizer checks the child */
	exit(n == (ssize_t)sizeof(a) ? 0 : 4);
}

/* run_test - fork, run, read the answer; 0, or -1 (child died: *why) */
static int
run_test(yaml_document_t *doc, yaml_node_t *zone, yaml_node_t *test,
    struct spf_answer *a, char *why, size_t whylen)
{
	int fds[2], status;
	pid_t pid;
	ssize_t n;
	size_t got = 0;

	if (pipe(fds) == -1) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		run_child(doc, zone, test, fds[1]);
	}
	close(fds[1]);
	while (got < sizeof(*a)) {
		n = read(fds[0], (char *)a + got, sizeof(*a) - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (got == sizeof(*a) && (!WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)) {
		snprintf(why, whylen, "checker answered, then %s %d",
		    WIFSIGNALED(status) ? "died of signal" : "exited",
		    WIFSIGNALED(status) ? WTERMSIG(status) :
		    WEXITSTATUS(status));
		return -1;
	}
	if (got != sizeof(*a)) {
		if (WIFSIGNALED(status))
			snprintf(why, whylen, "checker died (signal %d)",
			    WTERMSIG(status));
		else
			snprintf(why, whylen, "checker exited %d",
			    WEXITSTATUS(status));
		return -1;
	}
	a->text[sizeof(a->text) - 1] = '\0';
	return 0;
}

/* expected - does result name one of the test's expected results?  Fills
 * want with them, separated by '|'. */
static int
expected(yaml_document_t *doc, yaml_node_t *test, const char *result,
    char *want, size_t wantlen)
{
	yaml_node_t *r = map_get(doc, test, "result");
	yaml_node_item_t *i;
	const char *s;
	int match = 0;

	want[0] = '\0';
	if ((s = scalar(r)) != NULL) {
		snprintf(want, wantlen, "%s", s);
		return strcasecmp(s, result) == 0;
	}
	if (r == NULL || r->type != YAML_SEQUENCE_NODE)
		return 0;
	for (i = r->data.sequence.items.start;
	    i < r->data.sequence.items.top; i++) {
		if ((s = scalar(node(doc, *i))) == NULL)
			continue;
		if (want[0] != '\0')
			strncat(want, "|", wantlen - strlen(want) - 1);
		strncat(want, s, wantlen - strlen(want) - 1);
		if (strcasecmp(s, result) == 0)
			match = 1;
	}
	return match;
}

/* run_document - every test of one scenario */
static void
run_document(yaml_document_t *doc, int *pass, int *total)
{
	yaml_node_t *root, *tests, *zone, *test;
	yaml_node_pair_t *p;
	const char *desc, *name, *got;
	struct spf_answer a;
	char why[256], want[128];
	int ok;

	root = yaml_document_get_root_node(doc);
	desc = scalar(map_get(doc, root, "description"));
	tests = map_get(doc, root, "tests");
	zone = map_get(doc, root, "zonedata");
	if (tests == NULL || tests->type != YAML_MAPPING_NODE)
		return;
	printf("# %s\n", desc != NULL ? desc : "(no description)");
	for (p = tests->data.mapping.pairs.start;
	    p < tests->data.mapping.pairs.top; p++) {
		name = scalar(node(doc, p->key));
		test = node(doc, p->value);
		if (name == NULL || test == NULL)
			continue;
		(*total)++;
		if (run_test(doc, zone, test, &a, why, sizeof(why)) == -1) {
			expected(doc, test, "", want, sizeof(want));
			printf("FAIL %s: %s, want %s\n", name, why, want);
			continue;
		}
		got = spf_result_name(a.result);
		ok = expected(doc, test, got, want, sizeof(want));
		if (ok)
			(*pass)++;
		printf("%s %s: got %s, want %s (%s)\n", ok ? "PASS" : "FAIL",
		    name, got, want, a.text);
	}
}

int
main(int argc, char *argv[])
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	FILE *fp;
	int ch, pass = 0, total = 0, done = 0;

	while ((ch = getopt(argc, argv, "v")) != -1) {
		switch (ch) {
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: spf_suite [-v] FILE.yml\n");
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1) {
		fprintf(stderr, "usage: spf_suite [-v] FILE.yml\n");
		return 2;
	}
	log_init("spf_suite", 1, 0);
	log_set_verbose(verbose);
	if ((fp = fopen(argv[0], "rb")) == NULL) {
		fprintf(stderr, "spf_suite: FAIL: cannot open %s: %s\n",
		    argv[0], strerror(errno));
		return 2;
	}
	if (!yaml_parser_initialize(&parser)) {
		fprintf(stderr, "spf_suite: cannot initialize libyaml\n");
		fclose(fp);
		return 2;
	}
	yaml_parser_set_input_file(&parser, fp);
	while (!done) {
		if (!yaml_parser_load(&parser, &doc)) {
			fprintf(stderr, "spf_suite: FAIL: %s: YAML error: %s "
			    "(line %lu)\n", argv[0], parser.problem != NULL ?
			    parser.problem : "?",
			    (unsigned long)parser.problem_mark.line + 1);
			yaml_parser_delete(&parser);
			fclose(fp);
			return 2;
		}
		if ((root = yaml_document_get_root_node(&doc)) == NULL)
			done = 1;
		else
			run_document(&doc, &pass, &total);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(fp);
	if (total == 0) {
		fprintf(stderr, "spf_suite: FAIL: no tests in %s\n", argv[0]);
		return 2;
	}
	printf("RFC 7208 suite: %d of %d pass\n", pass, total);
	return 0;
}
