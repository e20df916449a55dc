/*
 * Twofold lab guest workload: the program that proves a VM lost nothing.
 *
 * Built at lab time with `gcc -static -O2` and exec'd by the initramfs /init as PID 1.
 * Usage: workload [DEVICE]   (DEVICE defaults to /dev/vda; "none" = heartbeat only)
 * The guest name comes from the kernel command line: twofold.name=NAME.
 *
 * Two processes share one MAP_SHARED page:
 *   - the heartbeat (PID 1) prints, every 100 ms on an absolute CLOCK_MONOTONIC schedule,
 *       TFHB name=NAME boot=B seq=S mono_ms=M acked=A
 *     to the serial console. It never touches the disk, so a stalled disk cannot stop it.
 *   - the writer (a child) appends records to the raw disk, ~20 per second.
 *
 * Disk format (all integers little-endian, every sector 512 bytes, written with O_DIRECT):
 *   sector 0 = header:  0 magic "TFHDR001" | 8 u32 version (1) | 12 u32 boot
 *                       16 char name[32]   | 48 u64 unix_ns of this start | 56.. zero
 *                       508 u32 crc32 (IEEE) of bytes 0..508
 *   sector N = record N (N >= 1):
 *                       0 magic "TFREC001" | 8 u64 N | 16 u32 boot | 20 u32 0
 *                       24 u64 guest CLOCK_MONOTONIC ns | 32 u64 guest CLOCK_REALTIME ns
 *                       40 char name[32]   | 72..508 fill: byte i = (N * 131 + i) & 0xff
 *                       508 u32 crc32 (IEEE) of bytes 0..508
 * Record N is "acknowledged" (shown as acked=N) only after its pwrite and the following
 * fdatasync both returned: from then on it must survive any crash, migration or failover.
 * A record is valid only if magic, N and crc match, so torn or garbage sectors are detected.
 *
 * On start the writer's position is found by scanning forward from sector 1 and stopping at the
 * first sector that is not a valid record: writing resumes right after the highest valid record,
 * so a guest restarted elsewhere never overwrites acknowledged records. The boot counter is
 * max(header boot, highest record boot) + 1.
 *
 * Capacity: no wrap-around. A disk of S bytes holds S/512 - 1 records: a 64 MiB disk holds 131071
 * records, about 109 minutes at 20 records/s. When full the writer stops (TFERR line) and the
 * heartbeat goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define SECTOR 512
#define NAME_LEN 32
#define HB_PERIOD_NS 100000000LL   /* 100 ms */
#define WR_PERIOD_NS 50000000LL    /* 50 ms = 20 records/s */
#define SCAN_CHUNK (1024 * 1024)

static const char REC_MAGIC[8] = {'T', 'F', 'R', 'E', 'C', '0', '0', '1'};
static const char HDR_MAGIC[8] = {'T', 'F', 'H', 'D', 'R', '0', '0', '1'};

struct shared {
    volatile uint64_t acked;       /* highest acknowledged record */
    volatile uint64_t write_errors;
};

static char g_name[NAME_LEN];
static uint32_t g_boot = 1;
static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int64_t now_ns(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void ts_from_ns(struct timespec *ts, int64_t ns) {
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

static void sleep_until(int64_t deadline_ns) {
    struct timespec ts;
    ts_from_ns(&ts, deadline_ns);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* One console line, one write(2): never interleaves with our other lines. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, (size_t)n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (int)w;
    }
}

static void read_name(void) {
    snprintf(g_name, sizeof g_name, "unnamed");
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd < 0) return;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = 0;
    const char *key = "twofold.name=";
    for (char *tok = strtok(buf, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
        if (strncmp(tok, key, strlen(key)) != 0) continue;
        const char *v = tok + strlen(key);
        size_t j = 0;
        for (; v[j] && j < NAME_LEN - 1; j++) {
            char c = v[j];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.';
            g_name[j] = ok ? c : '_';
        }
        g_name[j] = 0;
        if (j == 0) snprintf(g_name, sizeof g_name, "unnamed");
    }
}

static int record_valid(const unsigned char *s, uint64_t n, uint32_t *boot_out) {
    if (memcmp(s, REC_MAGIC, 8) != 0) return 0;
    if (get_u64(s + 8) != n) return 0;
    if (crc32_ieee(s, SECTOR - 4) != get_u32(s + SECTOR - 4)) return 0;
    if (boot_out) *boot_out = get_u32(s + 16);
    return 1;
}

static void build_record(unsigned char *s, uint64_t n) {
    memset(s, 0, SECTOR);
    memcpy(s, REC_MAGIC, 8);
    put_u64(s + 8, n);
    put_u32(s + 16, g_boot);
    put_u64(s + 24, (uint64_t)now_ns(CLOCK_MONOTONIC));
    put_u64(s + 32, (uint64_t)now_ns(CLOCK_REALTIME));
    memcpy(s + 40, g_name, strnlen(g_name, NAME_LEN));
    for (int i = 72; i < SECTOR - 4; i++) s[i] = (unsigned char)((n * 131 + (uint64_t)i) & 0xff);
    put_u32(s + SECTOR - 4, crc32_ieee(s, SECTOR - 4));
}

/* Write one sector and make it durable; retries until it succeeds (a stall only delays). */
static void write_durable(int fd, const unsigned char *s, uint64_t sector, struct shared *sh) {
    int reported = 0;
    for (;;) {
        ssize_t w = pwrite(fd, s, SECTOR, (off_t)(sector * SECTOR));
        if (w == SECTOR && fdatasync(fd) == 0) return;
        int e = errno;
        __atomic_add_fetch(&sh->write_errors, 1, __ATOMIC_RELAXED);
        if (!reported) {
            say("TFERR name=%s boot=%u sector=%llu write failed: %s (retrying)", g_name, g_boot,
                (unsigned long long)sector, w < 0 || w == SECTOR ? strerror(e) : "short write");
            reported = 1;
        }
        usleep(100000);
    }
}

struct scan_result {
    uint64_t highest;      /* highest valid record, 0 if none */
    uint32_t max_boot;     /* highest boot seen in records or header */
    uint64_t capacity;     /* number of record sectors */
};

static int scan_disk(int fd, struct scan_result *r) {
    unsigned char *buf;
    if (posix_memalign((void **)&buf, 4096, SCAN_CHUNK) != 0) return -1;
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
        struct stat st;
        if (fstat(fd, &st) != 0) return -1;
        bytes = (uint64_t)st.st_size;
    }
    r->capacity = bytes / SECTOR > 0 ? bytes / SECTOR - 1 : 0;
    r->highest = 0;
    r->max_boot = 0;
    uint64_t off = 0;
    int done = 0;
    while (!done && off < bytes) {
        size_t want = SCAN_CHUNK;
        if (bytes - off < want) want = (size_t)(bytes - off);
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        for (ssize_t i = 0; i + SECTOR <= got; i += SECTOR) {
            uint64_t sector = (off + (uint64_t)i) / SECTOR;
            const unsigned char *s = buf + i;
            if (sector == 0) {
                if (memcmp(s, HDR_MAGIC, 8) == 0 && crc32_ieee(s, SECTOR - 4) == get_u32(s + SECTOR - 4))
                    r->max_boot = get_u32(s + 12);
                continue;
            }
            uint32_t b;
            if (!record_valid(s, sector, &b)) {
                done = 1;
                break;
            }
            r->highest = sector;
            if (b > r->max_boot) r->max_boot = b;
        }
        off += (uint64_t)got;
    }
    free(buf);
    return 0;
}

static void writer_loop(int fd, uint64_t next, uint64_t capacity, struct shared *sh) {
    unsigned char *s;
    if (posix_memalign((void **)&s, 4096, SECTOR) != 0) _exit(2);
    int64_t deadline = now_ns(CLOCK_MONOTONIC);
    for (;;) {
        if (next > capacity) {
            say("TFERR name=%s boot=%u disk full after record %llu; writer stops", g_name, g_boot,
                (unsigned long long)capacity);
            for (;;) pause();
        }
        build_record(s, next);
        write_durable(fd, s, next, sh);
        __atomic_store_n(&sh->acked, next, __ATOMIC_RELEASE);
        next++;
        deadline += WR_PERIOD_NS;
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (deadline < now) deadline = now; /* fell behind (slow disk): no catch-up burst */
        sleep_until(deadline);
    }
}

int main(int argc, char **argv) {
    const char *dev = argc > 1 ? argv[1] : "/dev/vda";
    crc_init();
    read_name();
    signal(SIGCHLD, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);

    struct shared *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        say("TFERR name=%s mmap failed: %s", g_name, strerror(errno));
        return 1;
    }
    memset((void *)sh, 0, sizeof *sh);

    /* End whatever the firmware left on the console's current line. */
    if (write(STDOUT_FILENO, "\n", 1) < 0) {
    }

    int fd = -1;
    uint64_t next = 1, capacity = 0;
    if (strcmp(dev, "none") != 0) {
        fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
        if (fd < 0) say("TFERR name=%s cannot open %s: %s; heartbeat only", g_name, dev, strerror(errno));
    }
    if (fd >= 0) {
        struct scan_result r;
        int64_t t0 = now_ns(CLOCK_MONOTONIC);
        if (scan_disk(fd, &r) != 0) {
            say("TFERR name=%s scanning %s failed: %s; heartbeat only", g_name, dev, strerror(errno));
            close(fd);
            fd = -1;
        } else {
            int64_t scan_ms = (now_ns(CLOCK_MONOTONIC) - t0) / 1000000;
            g_boot = r.max_boot + 1;
            next = r.highest + 1;
            capacity = r.capacity;
            sh->acked = r.highest;
            unsigned char *h;
            if (posix_memalign((void **)&h, 4096, SECTOR) != 0) return 1;
            memset(h, 0, SECTOR);
            memcpy(h, HDR_MAGIC, 8);
            put_u32(h + 8, 1);
            put_u32(h + 12, g_boot);
            memcpy(h + 16, g_name, strnlen(g_name, NAME_LEN));
            put_u64(h + 48, (uint64_t)now_ns(CLOCK_REALTIME));
            put_u32(h + SECTOR - 4, crc32_ieee(h, SECTOR - 4));
            write_durable(fd, h, 0, sh);
            free(h);
            say("TFBOOT name=%s boot=%u disk=%s next_record=%llu capacity=%llu scan_ms=%lld", g_name,
                g_boot, dev, (unsigned long long)next, (unsigned long long)capacity, (long long)scan_ms);
        }
    }
    if (fd < 0) say("TFBOOT name=%s boot=%u disk=none", g_name, g_boot);

    pid_t writer = -1;
    if (fd >= 0) {
        writer = fork();
        if (writer == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* only matters when run outside a guest */
            writer_loop(fd, next, capacity, sh);
            _exit(0);
        }
        if (writer < 0) say("TFERR name=%s fork failed: %s; heartbeat only", g_name, strerror(errno));
        close(fd);
    }

    uint64_t seq = 0;
    int64_t deadline = now_ns(CLOCK_MONOTONIC);
    for (;;) {
        /* PID 1 reaps every orphan; report the writer if it ever dies. */
        int status;
        pid_t p;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
            if (p == writer) {
                say("TFERR name=%s boot=%u writer exited (status %d)", g_name, g_boot, status);
                writer = -1;
            }
        }
        seq++;
        int64_t mono = now_ns(CLOCK_MONOTONIC);
        say("TFHB name=%s boot=%u seq=%llu mono_ms=%lld acked=%llu", g_name, g_boot,
            (unsigned long long)seq, (long long)(mono / 1000000),
            (unsigned long long)__atomic_load_n(&sh->acked, __ATOMIC_ACQUIRE));
        deadline += HB_PERIOD_NS;
        int64_t now = now_ns(CLOCK_MONOTONIC);
        /* More than a period late (the VM was paused): restart the schedule, no burst. */
        if (now - deadline > HB_PERIOD_NS) deadline = now + HB_PERIOD_NS;
        sleep_until(deadline);
    }
}
