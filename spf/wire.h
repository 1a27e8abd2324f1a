/*
 * wire - the records the milter, the SPF supervisor and the SPF workers
 * exchange (see spf/pool.h).  Every record is one fixed-size struct sent
 * as one SOCK_SEQPACKET message, so a short, long or merged message is
 * seen as such.  Host byte order: all three run on one host.
 *
 * The encoders refuse what does not fit (a field too long is an error,
 * never silently truncated into another question).  The decoders take
 * raw bytes from the peer and accept a record only when its length,
 * magic, type, enums and sequence number are right and every string is
 * NUL-terminated inside its field and printable (an answer's domain and
 * text end up in headers and logs: no CR, LF or other control bytes).
 * Nothing here allocates; err gets the reason for a refusal.
 *
 *	milter -> worker	struct spf_wire_req	one question
 *	worker -> milter	struct spf_wire_ans	its answer (same seq)
 *	worker -> supervisor	struct spf_wire_hello	ready (or why not)
 *	supervisor -> milter	struct spf_wire_hello	at start, and with each
 *						worker socket (SCM_RIGHTS)
 *	milter -> supervisor	struct spf_wire_ctl	spawn (and kill pid)
 */
#ifndef OUTPOST_SPF_WIRE_H
#define OUTPOST_SPF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "spf/pool.h"
#include "spf/spf.h"

#define SPF_WIRE_MAGIC		0x4f535046u	/* "OSPF" */
#define SPF_WIRE_IP_MAX		64		/* textual address + NUL */
#define SPF_WIRE_SENDER_MAX	512		/* local@domain + NUL */

enum spf_wire_type {
	SPF_WIRE_REQ = 0x5201,
	SPF_WIRE_ANS = 0x4101,
	SPF_WIRE_HELLO = 0x4801,
	SPF_WIRE_CTL = 0x4301,
};

/* struct spf_wire_ans.flags */
#define SPF_WIRE_RETIRE	0x1	/* worker exits after this answer */
/* struct spf_wire_hello.flags */
#define SPF_WIRE_NOT_ROOT 0x1	/* supervisor not root: workers keep its uid */

struct spf_wire_req {
	uint32_t magic;
	uint32_t type;
	uint32_t seq;
	uint32_t kind;			/* enum spf_kind */
	char ip[SPF_WIRE_IP_MAX];
	char helo[SPF_NAME_MAX];
	char sender[SPF_WIRE_SENDER_MAX];
};

struct spf_wire_ans {
	uint32_t magic;
	uint32_t type;
	uint32_t seq;
	uint32_t result;		/* enum spf_result */
	uint32_t identity;		/* enum spf_identity */
	uint32_t flags;
	char domain[SPF_NAME_MAX];
	char text[SPF_TEXT_MAX];
};

struct spf_wire_hello {
	uint32_t magic;
	uint32_t type;
	uint32_t status;		/* 0 ready, else failed (text) */
	uint32_t flags;
	int32_t pid;			/* the worker (or supervisor) */
	uint32_t uid;			/* its real = effective uid */
	uint32_t gid;
	uint32_t pad;
	char text[SPF_TEXT_MAX];
};

struct spf_wire_ctl {
	uint32_t magic;
	uint32_t type;
	int32_t kill_pid;		/* a worker to kill first, or 0 */
	uint32_t pad;
};

/* spf_wire_req_encode - a request; -1 when a field is NULL or too long */
int spf_wire_req_encode(struct spf_wire_req *, uint32_t seq, enum spf_kind,
    const struct spf_query *, char *err, size_t errlen);
/* spf_wire_req_decode - check len bytes at buf; q points into *out */
int spf_wire_req_decode(const void *buf, size_t len, struct spf_wire_req *out,
    enum spf_kind *kind, struct spf_query *q, char *err, size_t errlen);

/* spf_wire_ans_encode - an answer; -1 when a string is too long or not
 * printable, or an enum is out of range */
int spf_wire_ans_encode(struct spf_wire_ans *, uint32_t seq, uint32_t flags,
    const struct spf_answer *, char *err, size_t errlen);
/* spf_wire_ans_decode - check len bytes at buf against seq; fill a */
int spf_wire_ans_decode(const void *buf, size_t len, uint32_t seq,
    struct spf_answer *a, uint32_t *flags, char *err, size_t errlen);

/* spf_wire_hello_encode - status 0 and text "" when ready; text is
 * truncated and made printable (it is our own message) */
void spf_wire_hello_encode(struct spf_wire_hello *, uint32_t status,
    uint32_t flags, long pid, unsigned long uid, unsigned long gid,
    const char *text);
int spf_wire_hello_decode(const void *buf, size_t len,
    struct spf_wire_hello *out, char *err, size_t errlen);

void spf_wire_ctl_encode(struct spf_wire_ctl *, long kill_pid);
int spf_wire_ctl_decode(const void *buf, size_t len, struct spf_wire_ctl *out,
    char *err, size_t errlen);

#endif
