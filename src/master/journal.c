/* journal.c — <out>/journal.jsonl: one JSON object per line, appended,
 * flushed and fsynced per event, never rewritten. It is the source of truth
 * for --resume: a trial with a trial_end event of status done or failed is
 * never run again; anything else (started but not ended, interrupted) is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "journal.h"
#include "nnlo/json.h"

nl_status journal_open(journal *j, const char *path, nl_error *e) {
    j->f = fopen(path, "a");
    if (!j->f) return nl_err(e, NL_ERR_IO, "cannot append to %s", path);
    snprintf(j->path, sizeof j->path, "%s", path);
    return NL_OK;
}

nl_status journal_append(journal *j, const char *event, const char *fields, nl_error *e) {
    char when[32];
    time_iso8601(when, sizeof when);
    if (fprintf(j->f, "{\"event\": \"%s\", \"time\": \"%s\"%s%s}\n", event, when, fields && *fields ? ", " : "",
                fields ? fields : "") < 0 ||
        fflush(j->f) != 0 || fsync(fileno(j->f)) != 0)
        return nl_err(e, NL_ERR_IO, "cannot write to %s", j->path);
    return NL_OK;
}

void journal_close(journal *j) {
    if (j->f) fclose(j->f);
    j->f = NULL;
}

nl_status journal_replay(const char *path, journal_visit fn, void *ctx, nl_error *e) {
    FILE *f = fopen(path, "r");
    if (!f) return NL_OK; /* nothing recorded yet */
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    nl_status st = NL_OK;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] != '\n') {
            /* the last line was cut by a kill mid-write: ignore it */
            log_warn("%s:%ld: incomplete last line ignored", path, lineno);
            break;
        }
        nl_error je;
        json *ev = json_parse(line, &je);
        if (!ev) {
            st = nl_err(e, NL_ERR_IO, "%s:%ld: not a journal line (%s)", path, lineno, je.msg);
            break;
        }
        fn(ctx, ev, line);
        json_free(ev);
    }
    free(line);
    fclose(f);
    return st;
}
