/*
 * no-close-range.c - runs a program with close_range(2) failing ENOSYS, as
 * on Linux before 5.9, so that the tests reach the fallbacks of the native
 * engine's child and of the exec helper. A seccomp filter is inherited by
 * every thread and child of the program.
 *
 * Usage: no-close-range PROGRAM [ARG...]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_close_range
#define __NR_close_range 436
#endif

int main(int argc, char **argv)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_close_range, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

    if (argc < 2) {
        fputs("usage: no-close-range PROGRAM [ARG...]\n", stderr);
        return 125;
    }
    /* Required to install a filter without CAP_SYS_ADMIN; harmless as root. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("no-close-range: seccomp");
        return 125;
    }
    execv(argv[1], argv + 1);
    perror("no-close-range: execv");
    return 127;
}
