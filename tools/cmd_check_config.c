/*
 * cmd_check_config - outpostctl check-config: load the configuration
 * and its DKIM table (keys parsed) as the daemons would, check what it
 * needs of this host (conf_check_host: its users exist, milter.user can
 * read the keys), and say how many keys and rules it has.  Exit: 0, EX_CONFIG with the error on
 * stderr, EX_USAGE.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "dkim/table.h"
#include "tools/outpostctl.h"

#define TABLE_LINE_MAX	4096

/* count_table_rules - the rule lines of an OpenDKIM SigningTable */
static long
count_table_rules(const char *spec)
{
	char line[TABLE_LINE_MAX], *p;
	const char *path = spec;
	long n = 0;
	FILE *fp;

	if (strncmp(path, "refile:", 7) == 0)
		path += 7;
	else if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		for (p = line; *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n'; p++)
			;
		if (*p != '\0')
			n++;
	}
	(void)fclose(fp);
	return n;
}

/* cmd_check_config - outpostctl check-config */
int
cmd_check_config(int argc, char **argv)
{
	const char *cfile = CONF_DEFAULT_PATH;
	struct dkim_table *t;
	struct conf *c;
	char err[1024];
	long nrules;
	int ch;

	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if ((c = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EX_CONFIG;
	}
	if ((t = dkim_table_new(&c->dkim, c->path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		conf_free(c);
		return EX_CONFIG;
	}
	if (conf_check_host(c, CONF_HOST_MILTER | CONF_HOST_POLICYD, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		dkim_table_free(t);
		conf_free(c);
		return EX_CONFIG;
	}
	nrules = (long)c->dkim.nrules;
	if (c->dkim.signing_table != NULL &&
	    (nrules = count_table_rules(c->dkim.signing_table)) < 0)
		nrules = 0;
	printf("%s: OK, %zu keys, %ld rules\n", cfile, dkim_table_nkeys(t),
	    nrules);
	dkim_table_free(t);
	conf_free(c);
	return 0;
}
