/*
 * conf_common - what several sections of the configuration share: the
 * answer to a failure (on_error and friends) and the log section.
 *
 * The sections a library takes (conf_dkim.h, conf_quota.h, conf_spf.h)
 * include this; the whole struct conf is in conf.h, for the programs.
 * Everything here is filled and owned by conf_load() (conf.h).
 */
#ifndef OUTPOST_CONF_COMMON_H
#define OUTPOST_CONF_COMMON_H

enum conf_on_error {
	CONF_ON_ERROR_TEMPFAIL,
	CONF_ON_ERROR_ACCEPT,
	CONF_ON_ERROR_REJECT,
};

/* log.* */
struct conf_log {
	int verbose;
	char *facility;
};

/* conf_on_error_name - "tempfail", "accept" or "reject" */
const char *conf_on_error_name(enum conf_on_error);

#endif
