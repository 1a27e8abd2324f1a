/*
 * dkim/table - which keys sign mail from which From address.
 *
 * Built once per configuration (start, reload) from the dkim.keys and
 * dkim.signing settings, or from OpenDKIM KeyTable/SigningTable files
 * taken as they are.  Every key file is loaded and checked here
 * (dkim_key_load), so a table that was built signs without touching a
 * file.  dkim_table_new() takes the dkim section (struct conf_dkim,
 * borrowed only during the call) and the config file's path (for
 * messages); it returns a new table owned by the caller, or NULL with
 * err naming the file (and line) at fault.  The table is
 * immutable and shared by all threads.
 *
 * Matching, first rule that matches wins:
 *  - dkim.signing "match": a glob ('*' any run of characters,
 *    case-insensitive).  With an '@' it is matched against the whole
 *    address, without one against the domain: "*@example.com",
 *    "example.com", "*.example.com" (subdomains only), "*".
 *  - SigningTable "refile:PATH": each line "PATTERN KEYNAME", PATTERN a
 *    glob over the whole address, as OpenDKIM does.
 *  - SigningTable "file:PATH" (or a bare path): exact keys tried in
 *    OpenDKIM's order: "user@domain", "domain", then for each parent
 *    "user@.parent" and ".parent", then "*".
 *  - KeyTable: "KEYNAME DOMAIN:SELECTOR:KEYFILE"; DOMAIN "%" means the
 *    From domain.  Several SigningTable lines may name keys for one
 *    address: with dkim.multiple_signatures all matching lines apply.
 */
#ifndef OUTPOST_DKIM_TABLE_H
#define OUTPOST_DKIM_TABLE_H

#include <stddef.h>

#include "conf/conf_dkim.h"
#include "dkim/sign.h"

#define DKIM_MAX_SIGS 8
#define FROM_CAND_MAX 520	/* local@domain and a NUL */

struct dkim_table;

struct dkim_table *dkim_table_new(const struct conf_dkim *,
    const char *path, char *err, size_t errlen);
struct dkim_table *dkim_table_free(struct dkim_table *);

/* Test hook: build without reading key files (keys are NULL). */
struct dkim_table *dkim_table_new_nokeys(const struct conf_dkim *,
    const char *path, char *err, size_t errlen);

/*
 * dkim_table_lookup - the signatures to make for From local@domain.
 * Fills out[0..max) and returns how many (0: no rule matches).  The
 * requests borrow from the table and from domain (for "%" keys); both
 * must outlive them.  rule (may be NULL) receives a short description
 * of the rule that matched, for the log.
 */
size_t dkim_table_lookup(const struct dkim_table *, const char *local,
    const char *domain, struct dkim_sign_req *out, size_t max,
    const char **rule);

/* Number of keys the table holds (for the start-up log line). */
size_t dkim_table_nkeys(const struct dkim_table *);

#endif
