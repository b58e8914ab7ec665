/* journal.h — the append-only event log of a scan (private to src/master). */
#ifndef NNLO_JOURNAL_H
#define NNLO_JOURNAL_H

#include <stdio.h>
#include "nnlo/json.h"
#include "nnlo/util.h"

typedef struct {
    FILE *f;
    char path[4096];
} journal;

nl_status journal_open(journal *j, const char *path, nl_error *e);
/* Appends {"event": event, "time": now, <fields>} and fsyncs. fields is the
 * inside of a JSON object ("\"trial\": 3, ...") or NULL. */
nl_status journal_append(journal *j, const char *event, const char *fields, nl_error *e);
void journal_close(journal *j);

/* Calls fn for every complete line of the journal at path (no file: no
 * calls). line is the raw text, ev its parse. */
typedef void (*journal_visit)(void *ctx, const json *ev, const char *line);
nl_status journal_replay(const char *path, journal_visit fn, void *ctx, nl_error *e);

#endif
