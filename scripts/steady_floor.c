/* The floor of scripts/steady.py: the least any collector could spend per cycle here. Each
 * cycle it sleeps in ppoll until the next deadline, then makes the system calls the steady
 * state needs and nothing else: reads /proc/stat, /proc/meminfo, /proc/loadavg,
 * /proc/diskstats, /proc/net/dev and /proc/self/stat (kept open, read from offset 0 until
 * EOF, as the collector does), one statfs per mount given, a zero-timeout poll for POLLPRI
 * on /proc/self/mountinfo, and writes 2 KiB to stdout. No parsing, no JSON.
 *
 *   steady_floor INTERVAL_MS MOUNT...   (scripts/steady.py --floor builds and runs it)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    static const char *files[] = {"/proc/stat", "/proc/meminfo", "/proc/loadavg",
                                  "/proc/diskstats", "/proc/net/dev", "/proc/self/stat"};
    enum { NFILES = sizeof files / sizeof *files };
    static char buf[65536];
    int fds[NFILES];
    long interval_ms = argc > 1 ? atol(argv[1]) : 1000;
    for (int i = 0; i < NFILES; i++)
        fds[i] = open(files[i], O_RDONLY | O_CLOEXEC);
    struct pollfd mounts = {.fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC),
                            .events = POLLPRI};
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        next.tv_nsec += (interval_ms % 1000) * 1000000L;
        next.tv_sec += interval_ms / 1000 + next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        struct timespec now, left;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left.tv_sec = next.tv_sec - now.tv_sec;
        left.tv_nsec = next.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_nsec += 1000000000L;
            left.tv_sec -= 1;
        }
        if (left.tv_sec >= 0)
            ppoll(NULL, 0, &left, NULL);
        for (int i = 0; i < NFILES; i++) {
            ssize_t n, off = 0;
            while ((n = pread(fds[i], buf + off, sizeof buf - off, off)) > 0)
                off += n;
        }
        struct timespec zero = {0, 0};
        ppoll(&mounts, 1, &zero, NULL);
        struct statfs st;
        for (int i = 2; i < argc; i++)
            statfs(argv[i], &st);
        if (write(1, buf, 2048) < 0)
            return 1;
    }
}
