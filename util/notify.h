/*
 * notify - tell the service manager (systemd, Type=notify) how a daemon
 * is doing, through sd_notify(3) of libsystemd.
 *
 * Call notify_ready() once the sockets listen and the keys and the
 * configuration are loaded: systemd reports the unit "started" only then.
 * notify_reloading() and notify_ready() bracket a reload;
 * notify_stopping() starts a stop.  Without NOTIFY_SOCKET in the
 * environment (started by hand or by another manager), or when built
 * without libsystemd, every call does nothing.  A message that cannot be
 * sent is logged, never fatal.  Safe from any thread.
 */
#ifndef OUTPOST_NOTIFY_H
#define OUTPOST_NOTIFY_H

/* notify_ready - READY=1, with status (NULL: none) as STATUS= */
void notify_ready(const char *status);

/* notify_reloading - RELOADING=1: a reload has begun */
void notify_reloading(void);

/* notify_stopping - STOPPING=1: the daemon is stopping */
void notify_stopping(void);

#endif
