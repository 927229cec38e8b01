/*  log — see log.h. The level and the process name are the only process-wide state in
    common/: they are set once in main and read everywhere, so they live here rather than
    being threaded through every call. The level is atomic so a signal-free reload is safe.
*/
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static _Atomic int s_level = MCE_LOG_INFO;
static char s_process[64] = "mce";

void log_init (const char *process)
{
    snprintf (s_process, sizeof s_process, "%s", process ? process : "mce");
}

void log_set_level (int level)
{
    if (level >= MCE_LOG_ERROR && level <= MCE_LOG_DEBUG)
        atomic_store (&s_level, level);
}

int log_level_parse (const char *text)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; text && i < 4; i++)
        if (strcmp (text, names[i]) == 0)
            return i;
    return -1;
}

bool log_enabled (int level)
{
    return level <= atomic_load_explicit (&s_level, memory_order_relaxed);
}

//  Appends text to line (from len, up to size) with every control character written as \xNN:
//  log text quotes what outsiders sent (a URL path, a topic, a user id), and a newline or an
//  escape sequence there must not forge a line or drive a terminal. Stops before an escape
//  that would not fit whole. Returns the new length.
static size_t s_escape (char *line, size_t len, size_t size, const char *text, size_t text_len)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < text_len; i++) {
        unsigned char c = (unsigned char) text[i];
        bool control = c < 0x20 || c == 0x7f;
        if (len + (control ? 4 : 1) > size)
            break;
        if (!control) {
            line[len++] = (char) c;
            continue;
        }
        line[len++] = '\\';
        line[len++] = 'x';
        line[len++] = hex[c >> 4];
        line[len++] = hex[c & 15];
    }
    return len;
}

void log_emit (int level, const char *module, const char *fmt, ...)
{
    static const char *tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};
    if (!log_enabled (level))
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r (&ts.tv_sec, &tm);
    int n = snprintf (line, sizeof line,
                      "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s %s: ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      ts.tv_nsec / 1000, tags[level], s_process, module);
    char text[LOG_LINE_MAX];
    va_list ap;
    va_start (ap, fmt);
    int m = vsnprintf (text, sizeof text, fmt, ap);
    va_end (ap);
    size_t text_len = m < 0 ? 0 : (size_t) m < sizeof text ? (size_t) m : sizeof text - 1;
    size_t len = s_escape (line, (size_t) n, sizeof line - 1, text, text_len);
    line[len++] = '\n';
    ssize_t rc = write (STDERR_FILENO, line, len);
    (void) rc; //  nowhere to report a failure to write the log
}
