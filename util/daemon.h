/*
 * daemon - start-up helpers the daemons share: privileges, pid file,
 * syslog facility names.  Start-up only: failures are fatal (sysexits
 * codes), since a daemon that cannot become what it was told to must not
 * run.  setting names the config setting, for the message.
 */
#ifndef OUTPOST_DAEMON_H
#define OUTPOST_DAEMON_H

/* daemon_drop_privileges - become user and its groups for good (NULL:
 * stay); without root only the same user is accepted */
void daemon_drop_privileges(const char *user, const char *setting);

/* daemon_write_pid - write the process id to path (NULL: nothing) */
void daemon_write_pid(const char *path);

/* daemon_facility - the syslog facility named name, or -1 */
int daemon_facility(const char *name);

#endif
