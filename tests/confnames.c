/*
 * confnames - the settings of conf/conf_table.c, for
 * tests/check_manpages.sh (built for tests, not installed).
 *
 *	confnames		print every dotted name, one a line
 *	confnames -s FILE	check that the sample config FILE shows
 *				every setting, commented out or not
 *
 * The sample shows some settings commented out ("# user = ...;"); a line
 * whose text after '#' starts like a setting ("name =", "{", "}", ")")
 * is read as config, the others are prose.  The result must parse, and
 * each name must be found at its place: "spf.inbound.fail" inside the
 * groups spf and inbound, "limits.name" in some entry of the list limits.
 */
#include "config.h"

#include <ctype.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

#define SAMPLE_MAX (1024 * 1024)

/* print_name - one name a line */
static void
print_name(const char *name, void *arg)
{
	(void)arg;
	printf("%s\n", name);
}

/* is_config - does this comment text (after '#') start like config? */
static int
is_config(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '{' || *p == '}' || *p == ')')
		return 1;
	if (!islower((unsigned char)*p))
		return 0;
	while (islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
	    *p == '_')
		p++;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '=';
}

/* uncomment - text with the '#' of commented config lines taken out */
static char *
uncomment(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(n + 1), *o = out;
	const char *line = text, *end, *p;

	if (out == NULL)
		return NULL;
	for (; *line != '\0'; line = end) {
		end = strchr(line, '\n');
		end = end != NULL ? end + 1 : line + strlen(line);
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (*p == '#' && is_config(p + 1))
			line = p + 1;
		memcpy(o, line, (size_t)(end - line));
		o += end - line;
	}
	*o = '\0';
	return out;
}

/* has - does s hold the dotted path (in some entry, for lists)? */
static int
has(const config_setting_t *s, const char *path)
{
	char part[128];
	const char *dot = strchr(path, '.');
	size_t len = dot != NULL ? (size_t)(dot - path) : strlen(path);
	config_setting_t *m;
	int i;

	if (s == NULL)
		return 0;
	if (config_setting_is_list(s) || config_setting_is_array(s)) {
		for (i = 0; i < config_setting_length(s); i++)
			if (has(config_setting_get_elem(s, i), path))
				return 1;
		return 0;
	}
	if (!config_setting_is_group(s) || len >= sizeof(part))
		return 0;
	memcpy(part, path, len);
	part[len] = '\0';
	if ((m = config_setting_get_member(s, part)) == NULL)
		return 0;
	return dot == NULL ? 1 : has(m, dot + 1);
}

struct sample {
	config_t cf;
	int missing;
};

/* check_name - report name when the sample lacks it */
static void
check_name(const char *name, void *arg)
{
	struct sample *sm = arg;

	if (!has(config_root_setting(&sm->cf), name)) {
		printf("%s\n", name);
		sm->missing++;
	}
}

/* check_sample - 0 when file shows every setting; prints those missing */
static int
check_sample(const char *file)
{
	struct sample sm;
	char *text, *plain;
	FILE *f;
	size_t n;

	if ((f = fopen(file, "r")) == NULL || (text = malloc(SAMPLE_MAX)) ==
	    NULL) {
		fprintf(stderr, "confnames: cannot read %s\n", file);
		return 2;
	}
	n = fread(text, 1, SAMPLE_MAX - 1, f);
	text[n] = '\0';
	fclose(f);
	plain = uncomment(text);
	free(text);
	config_init(&sm.cf);
	sm.missing = 0;
	if (plain == NULL || config_read_string(&sm.cf, plain) != CONFIG_TRUE) {
		fprintf(stderr, "confnames: %s, uncommented, does not parse: "
		    "line %d: %s\n", file, config_error_line(&sm.cf),
		    config_error_text(&sm.cf));
		config_destroy(&sm.cf);
		free(plain);
		return 2;
	}
	conf_setting_names(check_name, &sm);
	config_destroy(&sm.cf);
	free(plain);
	return sm.missing > 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "-s") == 0)
		return check_sample(argv[2]);
	if (argc != 1) {
		fprintf(stderr, "usage: confnames [-s sample.conf]\n");
		return 2;
	}
	conf_setting_names(print_name, NULL);
	return 0;
}
