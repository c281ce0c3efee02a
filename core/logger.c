/* logger.c - stderr or syslog, with a level threshold. */
#include "logger.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static int log_to_syslog;
static enum log_level log_min = LOG_LEVEL_INFO;

void logger_init(const char *ident, int use_syslog, enum log_level min_level)
{
    log_to_syslog = use_syslog;
    log_min = min_level;
    if (use_syslog)
        openlog(ident, LOG_PID, LOG_DAEMON);
}

void logger_log(enum log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    va_list ap;

    if (level > log_min)
        return;
    va_start(ap, fmt);
    if (log_to_syslog) {
        vsyslog(prio[level], fmt, ap);
    } else {
        char msg[1024];
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        fprintf(stderr, "%02d:%02d:%02d.%03ld topicfs %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, names[level], msg);
    }
    va_end(ap);
}
