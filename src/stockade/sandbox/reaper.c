/*
 * stockade-reaper: pid 1 of every Linux sandbox (docs/design/sandbox.md, step 5).
 *
 * The Python reaper it replaces was a fork of the zygote: about 2 MB of private, copy-on-write
 * pages per sandbox to run a wait() loop. This one is a few pages. It is exec'd by pid 1 after
 * pid 1 has forked the runner (pid 2) and confined itself (uid 1000, no capabilities,
 * no_new_privs, a Landlock domain whose only right is reading and executing this file, and the
 * Node.js seccomp filter, which allows the exec). Its first act is to install the Python seccomp
 * filter (which denies execve and execveat) read from fd 3; then it only reaps, and exits with the
 * runner's status when the runner (ns pid 2) ends, 128 + signal when it was killed. The kernel then
 * kills everything else in the pid namespace.
 *
 * Build: scripts/build-reaper (static, no libc at run time). Input: fd 3 only (from pid 1 itself).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM_FD 3
#define RUNNER_PID 2
#define MAX_INSTRUCTIONS 4096

static struct sock_filter program[MAX_INSTRUCTIONS];

int main(void) {
    size_t have = 0;
    for (;;) {
        ssize_t n = read(PROGRAM_FD, (char *)program + have, sizeof(program) - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) _exit(70);
        if (n == 0) break;
        have += (size_t)n;
        if (have == sizeof(program)) _exit(70);
    }
    close(PROGRAM_FD);
    if (have == 0 || have % sizeof(struct sock_filter) != 0) _exit(70);
    struct sock_fprog prog = {.len = (unsigned short)(have / sizeof(struct sock_filter)), .filter = program};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) _exit(70);
    for (;;) {
        int status = 0;
        pid_t pid = wait(&status);
        if (pid < 0) {
            if (errno == EINTR) continue;
            _exit(0); /* ECHILD: nothing left */
        }
        if (pid == RUNNER_PID) {
            if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
            _exit(128 + WTERMSIG(status));
        }
    }
}
