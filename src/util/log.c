/* log.c — one line per message on stderr: "[tag] level: message".
 * The level and tag are process-wide (set once by main); nothing else here
 * is global. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "nnlo/util.h"

static log_level g_level = LOG_INFO;
static char g_tag[64] = "";

void log_set_level(log_level lv) { g_level = lv; }
log_level log_get_level(void) { return g_level; }
void log_set_tag(const char *tag) { snprintf(g_tag, sizeof g_tag, "%s", tag ? tag : ""); }

void log_msg(log_level lv, const char *fmt, ...) {
    if (lv > g_level) return;
    static const char *names[] = {"error", "warning", "info", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g_tag[0])
        fprintf(stderr, "[%s] %s: %s\n", g_tag, names[lv], line);
    else
        fprintf(stderr, "nnlo-c %s: %s\n", names[lv], line);
    fflush(stderr);
}
