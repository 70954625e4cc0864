/* A synthetic process population for the benchmarks.
 *
 *   population GROUPS PER_GROUP
 *
 * Forks GROUPS group leaders; each leader unshares its own uts, ipc and net namespace and
 * forks PER_GROUP - 1 members that inherit them, so GROUPS * PER_GROUP processes live in
 * GROUPS namespaces of each of those three types. Every process then sleeps in pause().
 * Prints "ready" on stdout once all exist, then waits for SIGTERM/SIGINT/SIGHUP or EOF on stdin,
 * kills everything and reaps it before exiting (it is the subreaper of its whole tree).
 * SIGUSR1 to the process group wakes every member once (a no-op handler, then pause() again):
 * the benchmarks use it to make the whole population "active" between two scans.
 * Every process dies with its parent (PR_SET_PDEATHSIG), so nothing outlives the bench even
 * when it is killed with SIGKILL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(1);
}

static void wake(int sig) { (void)sig; }

static void sleep_forever(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = wake;
    sigaction(SIGUSR1, &action, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (;;) pause();
}

static void group(pid_t launcher, int members, int ready_fd) {
    die_with_parent(launcher);
    if (unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0) {
        perror("population: unshare");
        _exit(1);
    }
    pid_t self = getpid();
    for (int i = 1; i < members; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("population: fork");
            _exit(1);
        }
        if (pid == 0) {
            die_with_parent(self);
            close(ready_fd);
            sleep_forever();
        }
    }
    if (write(ready_fd, "x", 1) != 1) _exit(1);
    close(ready_fd);
    sleep_forever();
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: population GROUPS PER_GROUP\n");
        return 2;
    }
    int groups = atoi(argv[1]), per_group = atoi(argv[2]);
    if (groups < 1 || per_group < 1) {
        fprintf(stderr, "population: GROUPS and PER_GROUP must be positive\n");
        return 2;
    }
    pid_t self = getpid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror("population: prctl");
        return 1;
    }
    signal(SIGUSR1, SIG_IGN); /* meant for the members only */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);

    int pipefd[2];
    if (pipe(pipefd) != 0) return 1;
    pid_t *leaders = calloc((size_t)groups, sizeof(pid_t));
    int started = 0, failed = 0;
    pid_t watcher = -1;
    for (; started < groups; started++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("population: fork");
            failed = 1;
            break;
        }
        if (pid == 0) {
            close(pipefd[0]);
            group(self, per_group, pipefd[1]);
        }
        leaders[started] = pid;
    }
    close(pipefd[1]);
    if (!failed) {
        char buf[256];
        int ready = 0;
        while (ready < groups) {
            ssize_t n = read(pipefd[0], buf, sizeof buf);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                failed = 1; /* a group died before it was ready */
                break;
            }
            ready += (int)n;
        }
    }
    if (!failed) {
        printf("ready\n");
        fflush(stdout);
        /* stdin at EOF (the bench went away) also ends the population */
        watcher = fork();
        if (watcher == 0) {
            char c;
            die_with_parent(self);
            while (read(0, &c, 1) > 0) {
            }
            kill(self, SIGTERM);
            _exit(0);
        }
        int sig;
        sigwait(&stop, &sig);
    }
    if (watcher > 0) kill(watcher, SIGKILL);
    for (int i = 0; i < started; i++) kill(leaders[i], SIGKILL);
    /* members die with their leader and are reparented to us (subreaper): reap all */
    for (;;) {
        if (wait(NULL) < 0) {
            if (errno == EINTR) continue;
            break; /* ECHILD: nothing left */
        }
    }
    return failed;
}
