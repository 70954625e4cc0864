/* The reference walker the benchmarks compare the exporter's scan with.
 *
 *   walker [--mode naive|lean] PROC_ROOT REPEATS
 *
 * naive (the reference of issue 9): per process, stat(PROC/PID), read PROC/PID/stat and
 *   readlink the eight PROC/PID/ns/TYPE links, all by path, as a plain C program would.
 * lean: the exporter's system calls for a known process that has run since the last scan:
 *   clock_gettime of its process CPU clock, then readlinkat PID/ns/TYPE relative to a PROC
 *   fd for the seven types that can change (pid cannot). A process that has not run costs
 *   the exporter the clock_gettime alone.
 *
 * Repeats the whole walk REPEATS times and prints one line per walk:
 *   walk PROCESSES WALL_SECONDS CPU_SECONDS
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const all_types[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};
static const char *const mutable_types[] = {"cgroup", "ipc", "mnt", "net", "time", "user", "uts"};

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_pid(const char *name) {
    if (!*name) return 0;
    for (const char *c = name; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    return 1;
}

static long sink; /* keeps the compiler from dropping the reads */

static int naive(const char *proc, const char *pid) {
    char path[512], buf[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", proc, pid);
    if (stat(path, &st) != 0) return 0;
    snprintf(path, sizeof path, "%s/%s/stat", proc, pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0) return 0;
    sink += st.st_uid + n;
    for (size_t i = 0; i < sizeof all_types / sizeof *all_types; i++) {
        snprintf(path, sizeof path, "%s/%s/ns/%s", proc, pid, all_types[i]);
        ssize_t len = readlink(path, buf, sizeof buf);
        if (len < 0) return 0;
        sink += len;
    }
    return 1;
}

static int lean(int proc_fd, const char *pid) {
    char path[64], buf[256];
    struct timespec cpu;
    clockid_t clock = (~(clockid_t)atoi(pid) << 3) | 2; /* MAKE_PROCESS_CPUCLOCK(pid, SCHED) */
    if (clock_gettime(clock, &cpu) != 0) return 0;
    sink += cpu.tv_nsec;
    for (size_t i = 0; i < sizeof mutable_types / sizeof *mutable_types; i++) {
        snprintf(path, sizeof path, "%s/ns/%s", pid, mutable_types[i]);
        ssize_t len = readlinkat(proc_fd, path, buf, sizeof buf);
        if (len < 0) return 0;
        sink += len;
    }
    return 1;
}

int main(int argc, char **argv) {
    int lean_mode = 0, arg = 1;
    if (argc == 5 && strcmp(argv[1], "--mode") == 0) {
        lean_mode = strcmp(argv[2], "lean") == 0;
        if (!lean_mode && strcmp(argv[2], "naive") != 0) {
            fprintf(stderr, "walker: unknown mode %s\n", argv[2]);
            return 2;
        }
        arg = 3;
    } else if (argc != 3) {
        fprintf(stderr, "usage: walker [--mode naive|lean] PROC_ROOT REPEATS\n");
        return 2;
    }
    const char *proc = argv[arg];
    int repeats = atoi(argv[arg + 1]);
    for (int r = 0; r < repeats; r++) {
        double t0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
        int proc_fd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *dir = proc_fd >= 0 ? fdopendir(dup(proc_fd)) : NULL;
        if (!dir) {
            perror("walker: open procfs");
            return 1;
        }
        long count = 0;
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (!is_pid(entry->d_name)) continue;
            count += lean_mode ? lean(proc_fd, entry->d_name) : naive(proc, entry->d_name);
        }
        closedir(dir);
        close(proc_fd);
        printf("walk %ld %.6f %.6f\n", count, seconds(CLOCK_MONOTONIC) - t0,
               seconds(CLOCK_PROCESS_CPUTIME_ID) - c0);
    }
    return sink == -1;
}
