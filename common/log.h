/*  log — one logger for every process.

    Lines go to stderr, one write(2) each so lines from several threads never interleave:
        2026-11-21T21:40:00.123456Z INFO  mce-matcher journal: recovered through seq 42
    Every line names the module; callers name the ids involved in the text. Debug lines are
    guarded by log_debug's level check so their formatting costs nothing when disabled.
*/
#ifndef MCE_LOG_H
#define MCE_LOG_H

#include <stdbool.h>

typedef enum {
    MCE_LOG_ERROR = 0,
    MCE_LOG_WARN = 1,
    MCE_LOG_INFO = 2,
    MCE_LOG_DEBUG = 3,
} mce_log_level_t;

//  Names the process in every line; call once in main before any thread starts.
void log_init (const char *process);
void log_set_level (int level);
//  "error", "warn", "info" or "debug" → level; -1 for anything else.
int log_level_parse (const char *text);
bool log_enabled (int level);
void log_emit (int level, const char *module, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

#define log_error(module, ...) log_emit (MCE_LOG_ERROR, module, __VA_ARGS__)
#define log_warn(module, ...)  log_emit (MCE_LOG_WARN, module, __VA_ARGS__)
#define log_info(module, ...)  log_emit (MCE_LOG_INFO, module, __VA_ARGS__)
#define log_debug(module, ...)                                                                     \
    do {                                                                                           \
        if (log_enabled (MCE_LOG_DEBUG))                                                           \
            log_emit (MCE_LOG_DEBUG, module, __VA_ARGS__);                                         \
    } while (0)

#endif
