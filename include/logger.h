/* logger.h - the one logging function of topicfs.
 *
 * Library code never prints to stdout; everything goes through logger_log(),
 * which writes to stderr (foreground daemon, tests) or syslog (background
 * daemon). Messages below the configured level are dropped cheaply. */
#ifndef TOPICFS_LOGGER_H
#define TOPICFS_LOGGER_H

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void logger_init(const char *ident, int use_syslog, enum log_level min_level);
void logger_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
