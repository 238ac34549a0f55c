/*
 * replace-pidfile.c - linked into a test build of the exec helper with
 * -Wl,--wrap=fcntl. The helper's first F_SETLK, on the pidfile it has just
 * opened, is preceded by renaming a fresh file over the pidfile's path
 * (SPAWNPOOL_TEST_REPLACE names it): the race in which another process
 * replaces the file between open and lock. The helper must notice that it
 * locked a file nobody can see any more, and start over.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int __real_fcntl(int fd, int cmd, ...);

int __wrap_fcntl(int fd, int cmd, ...)
{
    static int replaced;
    va_list ap;
    va_start(ap, cmd);
    /* Every fcntl argument fits a long in the x86-64 and aarch64 ABIs. */
    long arg = va_arg(ap, long);
    va_end(ap);
    const char *path = getenv("SPAWNPOOL_TEST_REPLACE");
    if (cmd == F_SETLK && !replaced && path != NULL) {
        replaced = 1;
        char fresh[4096];
        snprintf(fresh, sizeof(fresh), "%s.fresh", path);
        int created = open(fresh, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (created < 0 || close(created) != 0 || rename(fresh, path) != 0) {
            perror("replace-pidfile");
            _exit(124);
        }
    }
    return __real_fcntl(fd, cmd, arg);
}
