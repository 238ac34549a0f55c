/*
 * commandhelper.c - child program for spawnpool's test suite.
 *
 * Tests spawn this helper (through uniquely named symlinks) and then compare
 * exact logs.  It records how it was started - arguments, environment,
 * inherited file descriptors, process group/session, cwd and umask - in
 * "<dir of the binary>/<basename of argv[0]>.log", then echoes everything
 * read from stdin and any --readfd descriptors to stdout and stderr between
 * BEGIN/END markers.
 *
 * Options (recognised anywhere in argv; every argument is still logged):
 *   --readfd N  --exit N  --signal N  --close-stdin  --spam-stdout BYTES
 *   --spam-stderr BYTES  --sleep MS  --no-log  --stderr TEXT
 *   --lock-probe PATH   print "LOCK:<pid>" (F_GETLK: who holds a write lock
 *                       on PATH) or "LOCK:none" on stdout first
 *   --pdeathsig         print "PDEATHSIG:<n>" (PR_GET_PDEATHSIG) on stdout first
 *   --spam-first        write the --spam-* bytes before reading any input, so
 *                       that a parent which feeds before it reads deadlocks
 * Internal failures exit with status 125.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct buf { char *data; size_t len, cap; };
struct fdinfo { int fd; bool nonblock; char *what; };

static bool std_open[3];        /* was fd 0/1/2 open at startup? */

static void die(const char *fmt, ...)
{
    va_list ap;
    fputs("commandhelper: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(125);
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory");
    return p;
}

static void buf_reserve(struct buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 4096;
    if (b->cap - b->len >= extra)
        return;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            die("buffer too large");
        cap *= 2;
    }
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        die("formatting failed");
    buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static int cmp_int(const void *a, const void *b)
{
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Step 1: list inherited fds (sorted) with what they point to. */
static size_t collect_fds(struct fdinfo **out)
{
    DIR *dir = opendir("/proc/self/fd");
    struct dirent *de;
    int *fds = NULL;
    size_t n = 0;

    if (!dir)
        die("cannot open /proc/self/fd: %s", strerror(errno));
    while ((errno = 0, de = readdir(dir)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || fd == dirfd(dir))
            continue;
        fds = xrealloc(fds, (n + 1) * sizeof(*fds));
        fds[n++] = (int)fd;
    }
    if (errno)
        die("cannot read /proc/self/fd: %s", strerror(errno));
    closedir(dir);
    qsort(fds, n, sizeof(*fds), cmp_int);

    *out = xrealloc(NULL, n * sizeof(**out));
    for (size_t i = 0; i < n; i++) {
        char path[64], link[PATH_MAX];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[i]);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        int fl = fcntl(fds[i], F_GETFL);
        if (len < 0 || fl < 0)
            die("cannot inspect fd %d: %s", fds[i], strerror(errno));
        link[len] = '\0';
        const char *what = !strncmp(link, "pipe:[", 6) ? "pipe"
                         : !strncmp(link, "socket:[", 8) ? "socket"
                         : !strncmp(link, "anon_inode:", 11) ? "anon_inode" : link;
        (*out)[i] = (struct fdinfo){ fds[i], (fl & O_NONBLOCK) != 0, strdup(what) };
        if (!(*out)[i].what)
            die("out of memory");
    }
    free(fds);
    return n;
}

static void write_log(int argc, char **argv, const struct fdinfo *fdi, size_t nfd)
{
    struct buf log = { 0 };
    char exe[PATH_MAX];
    size_t nenv = 0;

    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len < 0)
        die("cannot read /proc/self/exe: %s", strerror(errno));
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    char *path = NULL;
    if (asprintf(&path, "%s/%s.log", exe, base) < 0)
        die("out of memory");

    for (int i = 1; i < argc; i++)
        buf_printf(&log, "ARG:%s\n", argv[i]);
    while (environ[nenv])
        nenv++;
    char **env = xrealloc(NULL, nenv * sizeof(*env));
    memcpy(env, environ, nenv * sizeof(*env));
    qsort(env, nenv, sizeof(*env), cmp_str);
    for (size_t i = 0; i < nenv; i++)
        buf_printf(&log, "ENV:%s\n", env[i]);
    free(env);
    for (size_t i = 0; i < nfd; i++)
        buf_printf(&log, "FD:%d %s%s\n", fdi[i].fd, fdi[i].what,
                   fdi[i].nonblock ? " nonblock" : "");
    buf_printf(&log, "DAEMON:%s\n", getpgrp() != getppid() ? "yes" : "no");
    buf_printf(&log, "PGRP:%s\n", getpgrp() == getpid() ? "own" : "inherited");
    buf_printf(&log, "SESSION:%s\n", getsid(0) == getpid() ? "own" : "inherited");
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        die("getcwd failed: %s", strerror(errno));
    buf_printf(&log, "CWD:%s\n", cwd);
    free(cwd);
    mode_t mask = umask(022);
    umask(mask);
    buf_printf(&log, "UMASK:%04o\n", (unsigned)mask);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("cannot open %s: %s", path, strerror(errno));
    for (size_t off = 0; off < log.len; ) {
        ssize_t n = write(fd, log.data + off, log.len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("cannot write %s: %s", path, n < 0 ? strerror(errno) : "short write");
        off += (size_t)n;
    }
    if (close(fd) < 0)
        die("cannot close %s: %s", path, strerror(errno));
    free(path);
    free(log.data);
}

/* Write everything to fd 1 or 2; silently give up on EPIPE/EBADF. */
static void out_write(int fd, const char *p, size_t len)
{
    while (len && std_open[fd]) {
        ssize_t n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            /* interrupted: retry */
        } else if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = { .fd = fd, .events = POLLOUT };
            poll(&pfd, 1, -1);
        } else if (n < 0 && (errno == EPIPE || errno == EBADF)) {
            std_open[fd] = false;
        } else {
            die("write to fd %d failed: %s", fd, n < 0 ? strerror(errno) : "short write");
        }
    }
}

#define out_str(fd, s) out_write((fd), (s), strlen(s))

static void spam(int fd, unsigned long long bytes)
{
    static char chunk[65536];
    memset(chunk, 'x', sizeof(chunk));
    while (bytes && std_open[fd]) {
        size_t n = bytes < sizeof(chunk) ? (size_t)bytes : sizeof(chunk);
        out_write(fd, chunk, n);
        bytes -= n;
    }
}

/* Read all fds until EOF concurrently, one growing buffer per fd. */
static void read_inputs(const int *fds, size_t n, struct buf *bufs)
{
    struct pollfd *pfds = xrealloc(NULL, n * sizeof(*pfds));
    size_t remaining = n;

    for (size_t i = 0; i < n; i++)
        pfds[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    while (remaining) {
        if (poll(pfds, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll failed: %s", strerror(errno));
        }
        for (size_t i = 0; i < n; i++) {
            if (pfds[i].fd < 0 || !pfds[i].revents)
                continue;
            if (pfds[i].revents & POLLNVAL)
                die("fd %d is not open", fds[i]);
            buf_reserve(&bufs[i], 65536);
            ssize_t r = read(fds[i], bufs[i].data + bufs[i].len, bufs[i].cap - bufs[i].len);
            if (r > 0) {
                bufs[i].len += (size_t)r;
            } else if (r == 0) {
                pfds[i].fd = -1;        /* EOF: poll ignores negative fds */
                remaining--;
            } else if (errno != EINTR && errno != EAGAIN) {
                die("read from fd %d failed: %s", fds[i], strerror(errno));
            }
        }
    }
    free(pfds);
}

static unsigned long long parse_num(const char *opt, const char *s,
                                    unsigned long long min, unsigned long long max)
{
    char *end;
    if (!s)
        die("%s requires an argument", opt);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || errno || *end || v < min || v > max)
        die("invalid value '%s' for %s", s, opt);
    return v;
}

int main(int argc, char **argv)
{
    struct fdinfo *fdi;
    size_t nfd = collect_fds(&fdi);
    int *inputs = xrealloc(NULL, (size_t)argc * sizeof(*inputs));
    const char **errtext = xrealloc(NULL, (size_t)argc * sizeof(*errtext));
    size_t nin = 1, nerr = 0;
    unsigned long long spam_out = 0, spam_err = 0, sleep_ms = 0;
    int exit_status = 0, sig = 0;
    bool close_stdin = false, no_log = false, pdeathsig = false, spam_first = false;
    const char *lock_probe = NULL;

    if (argc < 1)
        die("argv[0] is missing");
    for (int fd = 0; fd < 3; fd++)
        std_open[fd] = fcntl(fd, F_GETFD) != -1;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = argv[i + 1];
        if (strcmp(o, "--readfd") == 0)
            inputs[nin++] = (int)parse_num(o, v, 0, INT_MAX), i++;
        else if (strcmp(o, "--exit") == 0)
            exit_status = (int)parse_num(o, v, 0, 255), i++;
        else if (strcmp(o, "--signal") == 0)
            sig = (int)parse_num(o, v, 1, NSIG - 1), i++;
        else if (strcmp(o, "--spam-stdout") == 0)
            spam_out = parse_num(o, v, 0, ULLONG_MAX), i++;
        else if (strcmp(o, "--spam-stderr") == 0)
            spam_err = parse_num(o, v, 0, ULLONG_MAX), i++;
        else if (strcmp(o, "--sleep") == 0)
            sleep_ms = parse_num(o, v, 0, ULLONG_MAX), i++;
        else if (strcmp(o, "--stderr") == 0) {
            if (!v)
                die("--stderr requires an argument");
            errtext[nerr++] = v;
            i++;
        } else if (strcmp(o, "--close-stdin") == 0)
            close_stdin = true;
        else if (strcmp(o, "--no-log") == 0)
            no_log = true;
        else if (strcmp(o, "--spam-first") == 0)
            spam_first = true;
        else if (strcmp(o, "--pdeathsig") == 0)
            pdeathsig = true;
        else if (strcmp(o, "--lock-probe") == 0) {
            if (!v)
                die("--lock-probe requires an argument");
            lock_probe = v;
            i++;
        }
    }
    if (lock_probe) {
        int fd = open(lock_probe, O_RDWR | O_CLOEXEC);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0)
            die("cannot probe %s: %s", lock_probe, strerror(errno));
        char line[64];
        if (fl.l_type == F_UNLCK)
            snprintf(line, sizeof(line), "LOCK:none\n");
        else
            snprintf(line, sizeof(line), "LOCK:%d\n", (int)fl.l_pid);
        out_str(1, line);
        close(fd);
    }
    if (pdeathsig) {
        int sig = -1;
        if (prctl(PR_GET_PDEATHSIG, &sig) < 0)
            die("PR_GET_PDEATHSIG: %s", strerror(errno));
        char line[32];
        snprintf(line, sizeof(line), "PDEATHSIG:%d\n", sig);
        out_str(1, line);
    }
    if (close_stdin)
        close(0);

    if (!no_log)
        write_log(argc, argv, fdi, nfd);
    for (size_t i = 0; i < nerr; i++) {
        out_str(2, errtext[i]);
        out_str(2, "\n");
    }
    if (sleep_ms) {
        struct timespec ts = { .tv_sec = (time_t)(sleep_ms / 1000),
                               .tv_nsec = (long)(sleep_ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }

    /* stdin is read unless --close-stdin or it was not open at all */
    const int *rd = inputs;
    size_t nrd = nin;
    inputs[0] = 0;
    if (close_stdin || !std_open[0])
        rd++, nrd--;
    struct buf *bufs = calloc(nrd + 1, sizeof(*bufs));
    if (!bufs)
        die("out of memory");
    if (spam_first) {
        spam(1, spam_out);
        spam(2, spam_err);
    }
    read_inputs(rd, nrd, bufs);
    if (!spam_first) {
        spam(1, spam_out);
        spam(2, spam_err);
    }
    for (int fd = 1; fd <= 2; fd++) {
        out_str(fd, fd == 1 ? "BEGIN STDOUT\n" : "BEGIN STDERR\n");
        for (size_t i = 0; i < nrd; i++)
            out_write(fd, bufs[i].data, bufs[i].len);
        out_str(fd, fd == 1 ? "END STDOUT\n" : "END STDERR\n");
    }

    for (size_t i = 0; i < nrd; i++)
        free(bufs[i].data);
    for (size_t i = 0; i < nfd; i++)
        free(fdi[i].what);
    free(bufs);
    free(fdi);
    free(inputs);
    free(errtext);

    if (sig) {
        sigset_t set;
        signal(sig, SIG_DFL);   /* fails harmlessly for SIGKILL/SIGSTOP */
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
    }
    return exit_status;
}
