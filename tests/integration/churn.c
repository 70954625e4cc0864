/*
 * churn: process and namespace churn for the exporter's churn test.
 *
 *   churn FORKS NAMESPACES MAX_SECONDS
 *
 * Two workers fork-and-reap short processes until FORKS have run; one worker creates
 * namespaces (unshare in a short-lived child, cycling through every type, up to 32 alive at
 * once) until NAMESPACES have been created. Stops at MAX_SECONDS whatever the counts.
 * Every child dies with this process (PR_SET_PDEATHSIG). Prints one line at the end:
 *   forks=N namespaces=M seconds=S
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

struct counters {
    atomic_long forks;
    atomic_long namespaces;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die_with_parent(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* One unshare per child; how many namespaces each flag set creates. */
static const struct {
    int flags;
    int count;
} SETS[] = {
    {CLONE_NEWUTS | CLONE_NEWIPC, 2},
    {CLONE_NEWNET, 1},
    {CLONE_NEWUSER, 1},
    {CLONE_NEWNS | CLONE_NEWCGROUP, 2},
    {CLONE_NEWPID, 1},
    {CLONE_NEWTIME, 1},
    {CLONE_NEWUTS, 1},
};
#define NSETS (sizeof SETS / sizeof SETS[0])

static int namespace_child(int set) {
    if (unshare(SETS[set].flags) != 0)
        return 1;
    if (SETS[set].flags & (CLONE_NEWPID | CLONE_NEWTIME)) {
        /* pid and time namespaces take effect for children: make one, pid 1 inside */
        pid_t inner = fork();
        if (inner == 0) {
            usleep(20000);
            _exit(0);
        }
        if (inner < 0)
            return 1;
        waitpid(inner, NULL, 0);
    } else {
        usleep(20000); /* alive long enough for some scans to see it */
    }
    return 0;
}

static void fork_worker(struct counters *c, long quota, double deadline) {
    while (atomic_load(&c->forks) < quota && now() < deadline) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0) {
            usleep(1000);
            continue;
        }
        waitpid(pid, NULL, 0);
        atomic_fetch_add(&c->forks, 1);
    }
}

static void namespace_worker(struct counters *c, long quota, double deadline) {
    int alive = 0;
    unsigned next = 0;
    int sets_of[65536] = {0};
    while ((atomic_load(&c->namespaces) < quota && now() < deadline) || alive > 0) {
        if (alive < 32 && atomic_load(&c->namespaces) < quota && now() < deadline) {
            int set = next++ % NSETS;
            pid_t pid = fork();
            if (pid == 0) {
                die_with_parent();
                _exit(namespace_child(set));
            }
            if (pid > 0) {
                sets_of[pid % 65536] = set;
                alive++;
                continue;
            }
        }
        int status;
        pid_t done = waitpid(-1, &status, 0);
        if (done < 0) {
            if (errno == ECHILD)
                alive = 0;
            continue;
        }
        alive--;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            atomic_fetch_add(&c->namespaces, SETS[sets_of[done % 65536]].count);
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s FORKS NAMESPACES MAX_SECONDS\n", argv[0]);
        return 2;
    }
    long fork_quota = atol(argv[1]);
    long ns_quota = atol(argv[2]);
    double started = now();
    double deadline = started + atof(argv[3]);
    struct counters *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        return 1;
    pid_t workers[3];
    for (int i = 0; i < 3; i++) {
        workers[i] = fork();
        if (workers[i] == 0) {
            die_with_parent();
            if (i < 2)
                fork_worker(c, fork_quota, deadline);
            else
                namespace_worker(c, ns_quota, deadline);
            _exit(0);
        }
    }
    for (int i = 0; i < 3; i++)
        waitpid(workers[i], NULL, 0);
    printf("forks=%ld namespaces=%ld seconds=%.2f\n", atomic_load(&c->forks), atomic_load(&c->namespaces),
           now() - started);
    return 0;
}
