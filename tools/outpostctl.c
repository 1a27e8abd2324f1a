/*
 * outpostctl - administration: check the configuration, make DKIM keys,
 * check keys against their DNS records, show and change quota counters.
 * See outpostctl(8).
 *
 * main() only dispatches: the table below names each command, the
 * function that runs it (tools/cmd_*.c, see outpostctl.h for the
 * contract and the exit codes) and its synopsis, from which usage is
 * printed.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "tools/outpostctl.h"

const char *const progname = "outpostctl";

/* A command: its name, what runs it, its synopsis (one line per form,
 * without the program and command names). */
static const struct command {
	const char *name;
	int (*fn)(int, char **);
	const char *usage;
} commands[] = {
	{ "keygen", cmd_keygen, "-d domain -s selector [-a rsa|ed25519] "
	    "[-b bits] [-o dir] [-f]" },
	{ "keytest", cmd_keytest, "[-c config]\n"
	    "-k keyfile -d domain -s selector [-r recordfile]" },
	{ "check-config", cmd_check_config, "[-c config]" },
	{ "check-domain", cmd_check_domain, "domain [-c config] [-t seconds] "
	    "[--json]" },
	{ "quota", cmd_quota, "show key [-c config] [--json]\n"
	    "list [--top n] [--limit name] [-c config] [--json]\n"
	    "reset key [--limit name] [-c config] [--json]\n"
	    "set key --limit name value [-c config] [--json]" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* usage_exit - print the synopsis of every command, exit with code */
void
usage_exit(int code)
{
	FILE *fp = code == 0 ? stdout : stderr;
	const char *lead = "usage:", *p, *nl;
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		for (p = commands[i].usage; p != NULL; p = nl ? nl + 1 : NULL) {
			nl = strchr(p, '\n');
			fprintf(fp, "%-6s %s %s %.*s\n", lead, progname,
			    commands[i].name,
			    (int)(nl ? (size_t)(nl - p) : strlen(p)), p);
			lead = "";
		}
	exit(code);
}

/* usage - a bad command line: EX_USAGE */
void
usage(void)
{
	usage_exit(EX_USAGE);
}

/* main - dispatch on the command */
int
main(int argc, char **argv)
{
	const char *cmd;
	size_t i;

	if (argc < 2)
		usage();
	cmd = argv[1];
	/* getopt sees the command's arguments, the name as argv[0] */
	argc--;
	argv++;
	optind = 1;
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc, argv);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
		usage_exit(0);
	fprintf(stderr, "%s: unknown command \"%s\"\n", progname, cmd);
	usage();
}
