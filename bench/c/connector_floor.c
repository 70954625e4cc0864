/* The floor of the event listener: what any proc connector listener must at least do, in C.
 *
 *   connector_floor [--mode recv|links] PROC_ROOT
 *
 * Subscribes to the kernel's process events (NETLINK_CONNECTOR, CN_IDX_PROC) and, until
 * SIGTERM or SIGINT:
 *   recv:  only receives every event (blocking recv, one datagram per event);
 *   links: also, for every fork of a process (not a thread) and every exec, opens PROC/PID and
 *          readlinkat()s its eight ns/TYPE links (process events carry no namespace data, so
 *          this is the least a listener can do to see a namespace created between two scans).
 * On exit prints one line:
 *   floor MODE EVENTS READS USER_SECONDS SYSTEM_SECONDS
 * Needs root (or CAP_NET_ADMIN before Linux 6.6) and the initial pid and network namespaces.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const types[] = {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"};
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static int subscribe(void) {
    int sock = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR);
    if (sock < 0) return -1;
    int size = 4 * 1024 * 1024;
    setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    struct sockaddr_nl addr = {.nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC};
    if (bind(sock, (struct sockaddr *)&addr, sizeof addr) < 0) return -1;
    struct {
        struct nlmsghdr nl;
        struct cn_msg cn;
        enum proc_cn_mcast_op op;
    } __attribute__((packed)) msg;
    memset(&msg, 0, sizeof msg);
    msg.nl.nlmsg_len = sizeof msg;
    msg.nl.nlmsg_type = NLMSG_DONE;
    msg.nl.nlmsg_pid = getpid();
    msg.cn.id.idx = CN_IDX_PROC;
    msg.cn.id.val = CN_VAL_PROC;
    msg.cn.len = sizeof(enum proc_cn_mcast_op);
    msg.op = PROC_CN_MCAST_LISTEN;
    if (send(sock, &msg, sizeof msg, 0) < 0) return -1;
    return sock;
}

static void read_links(int proc, int pid) {
    char name[16], target[64];
    snprintf(name, sizeof name, "%d", pid);
    int dir = openat(proc, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        char link[16];
        snprintf(link, sizeof link, "ns/%s", types[i]);
        if (readlinkat(dir, link, target, sizeof target) < 0) break;
    }
    close(dir);
}

int main(int argc, char **argv) {
    int links = 0;
    int arg = 1;
    if (argc > 2 && strcmp(argv[1], "--mode") == 0) {
        links = strcmp(argv[2], "links") == 0;
        arg = 3;
    }
    if (arg >= argc) {
        fprintf(stderr, "usage: %s [--mode recv|links] PROC_ROOT\n", argv[0]);
        return 2;
    }
    int proc = open(argv[arg], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int sock = subscribe();
    if (proc < 0 || sock < 0) {
        perror("connector_floor");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};  /* no SA_RESTART: recv returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "ready\n");
    unsigned long events = 0, reads = 0;
    char buf[8192] __attribute__((aligned(8)));
    while (!stopping) {
        ssize_t size = recv(sock, buf, sizeof buf, 0);
        if (size < 0) {
            if (errno == EINTR || errno == ENOBUFS) continue;
            perror("recv");
            break;
        }
        for (struct nlmsghdr *nl = (struct nlmsghdr *)buf; NLMSG_OK(nl, size);
             nl = NLMSG_NEXT(nl, size)) {
            struct cn_msg *cn = NLMSG_DATA(nl);
            struct proc_event *ev = (struct proc_event *)cn->data;
            events++;
            if (!links) continue;
            if (ev->what == PROC_EVENT_FORK &&
                ev->event_data.fork.child_pid == ev->event_data.fork.child_tgid) {
                read_links(proc, ev->event_data.fork.child_tgid);
                reads++;
            } else if (ev->what == PROC_EVENT_EXEC) {
                read_links(proc, ev->event_data.exec.process_tgid);
                reads++;
            }
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("floor %s %lu %lu %.6f %.6f\n", links ? "links" : "recv", events, reads,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    return 0;
}
