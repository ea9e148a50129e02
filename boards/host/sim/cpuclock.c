/* LD_PRELOAD shim for the emulated reader in accelerated time: the process's CLOCK_MONOTONIC
 * becomes its own CPU time plus the time it waited in timed waits, so a reader descheduled by
 * a loaded host sees no time pass (boards/host/sim/cpuclock.py builds and loads it).
 *
 * MicroPython's ticks_ms/ticks_us read CLOCK_MONOTONIC, and so does everything built on them:
 * the emulated board's virtual clock (boards/host/clock.py), asyncio's task queue, and the
 * deadline loops of select.poll and time.sleep_ms. Those loops call poll(), select() and
 * usleep() and re-read the clock until their timeout has passed, so the wait itself must move
 * the clock: a wait that times out adds exactly the time asked for (a sleep_ms(10) or a poll
 * timeout is 10 ms of virtual time however late the host wakes the process), one that ends
 * early (a real socket became readable) adds the real time it took. Other clocks are left
 * alone. Blocking reads (the lockstep link to the simulators) add nothing: the virtual clock
 * already takes link time out.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <stdint.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

/* Reading a CPU-time clock is a system call (0.2-0.4 us here, against 20 ns for the vDSO's
 * CLOCK_MONOTONIC), and the reader reads its clock some 800 times per NFC tap: sampled on every
 * read, that overhead added a fifth to the CPU time `flash.py bench nfc` measures. So CPU time
 * is sampled at most every RESAMPLE_NS of wall time and extrapolated with the wall clock in
 * between, which is exact while the process runs. It stops running in two ways: it blocks in a
 * call (the lockstep link's read and write, stdout, a timed wait), after which the next reading
 * samples again; or the host takes the CPU away, for a scheduler time slice (milliseconds), so
 * a reading RESAMPLE_NS or more after the sample samples again. Only an absence shorter than
 * RESAMPLE_NS in the middle of a stretch of computation could still be counted. */
#define RESAMPLE_NS 20000

typedef int (*gettime_fn)(clockid_t, struct timespec *);

static gettime_fn real_gettime;
static int64_t waited_ns; /* timed waits so far */
static __thread int64_t cpu0, wall0, last; /* this thread's last sample and reading */

/* The next reading samples the CPU time again. */
static void resample(void) {
    wall0 = 0;
}

static gettime_fn gettime(void) {
    gettime_fn f = __atomic_load_n(&real_gettime, __ATOMIC_RELAXED);
    if (!f) {
        f = (gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
        __atomic_store_n(&real_gettime, f, __ATOMIC_RELAXED);
    }
    return f;
}

static int64_t ns(clockid_t id) {
    struct timespec t;
    gettime()(id, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The clock MicroPython sees: CPU time of the process plus its timed waits, never going back. */
static int64_t virtual_ns(void) {
    int64_t v, w = ns(CLOCK_MONOTONIC);
    if (w - wall0 < RESAMPLE_NS) {
        v = cpu0 + (w - wall0);
    } else {
        v = cpu0 = ns(CLOCK_PROCESS_CPUTIME_ID);
        wall0 = (w + ns(CLOCK_MONOTONIC)) / 2; /* when the system call took the sample */
    }
    v += __atomic_load_n(&waited_ns, __ATOMIC_RELAXED);
    if (v < last) {
        v = last; /* an extrapolation ran ahead of the next sample */
    }
    last = v;
    return v;
}

static void split(int64_t v, int64_t *sec, long *nsec) {
    *sec = v / 1000000000;
    *nsec = v % 1000000000;
}

int clock_gettime(clockid_t id, struct timespec *tp) {
    if (id != CLOCK_MONOTONIC) {
        return gettime()(id, tp);
    }
    int64_t sec;
    long nsec;
    split(virtual_ns(), &sec, &nsec);
    tp->tv_sec = sec;
    tp->tv_nsec = nsec;
    return 0;
}

/* After a wait that began at wall time `real0`, asked for `asked` ns (-1: no limit) and
 * `timed_out`: add what it waited, then resample (the wait was no CPU time). The few us of CPU
 * the wait's system call used are counted twice: negligible. Zero timeouts (asyncio's check
 * for ready sockets on every pass) are not wrapped: they wait for nothing. */
static void wait_end(int64_t real0, int64_t asked, int timed_out) {
    int64_t took = ns(CLOCK_MONOTONIC) - real0;
    if (asked >= 0 && (timed_out || took > asked)) {
        took = asked;
    }
    __atomic_fetch_add(&waited_ns, took, __ATOMIC_RELAXED);
    resample();
}

#define REAL(name) \
    static __typeof__(name) *real; \
    if (!real) { \
        real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name); \
    }

int poll(struct pollfd *fds, nfds_t n, int timeout_ms) {
    REAL(poll);
    if (timeout_ms == 0) {
        return real(fds, n, 0);
    }
    int64_t real0 = ns(CLOCK_MONOTONIC);
    int r = real(fds, n, timeout_ms);
    wait_end(real0, timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000, r == 0);
    return r;
}

#define ASKED(tv) ((tv) ? (int64_t)(tv)->tv_sec * 1000000000 + (int64_t)(tv)->tv_usec * 1000 : -1)

int select(int n, fd_set *r, fd_set *wr, fd_set *e, struct timeval *tv) {
    REAL(select);
    int64_t asked = ASKED(tv);
    if (asked == 0) {
        return real(n, r, wr, e, tv);
    }
    int64_t real0 = ns(CLOCK_MONOTONIC);
    int k = real(n, r, wr, e, tv);
    wait_end(real0, asked, k == 0);
    return k;
}

int usleep(useconds_t us) {
    REAL(usleep);
    if (us == 0) {
        return real(0);
    }
    int64_t real0 = ns(CLOCK_MONOTONIC);
    int r = real(us);
    wait_end(real0, (int64_t)us * 1000, r == 0);
    return r;
}

/* The calls the reader blocks in without a timeout: the link to the simulators, stdout. */
ssize_t read(int fd, void *buf, size_t n) {
    REAL(read);
    ssize_t r = real(fd, buf, n);
    resample();
    return r;
}

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    ssize_t r = real(fd, buf, n);
    resample();
    return r;
}

#if defined(__i386__)
/* A 32-bit glibc's entry points for 64-bit time, which a binary built with _TIME_BITS=64 (the
 * unix32 MicroPython) calls instead of clock_gettime and select. */
struct timespec64 {
    int64_t tv_sec;
    int32_t tv_nsec;
    int32_t pad;
};

struct timeval64 {
    int64_t tv_sec;
    int64_t tv_usec;
};

int __clock_gettime64(clockid_t id, struct timespec64 *tp) {
    if (id != CLOCK_MONOTONIC) {
        static int (*real)(clockid_t, struct timespec64 *);
        if (!real) {
            real = (int (*)(clockid_t, struct timespec64 *))dlsym(RTLD_NEXT, "__clock_gettime64");
        }
        return real(id, tp);
    }
    int64_t sec;
    long nsec;
    split(virtual_ns(), &sec, &nsec);
    tp->tv_sec = sec;
    tp->tv_nsec = nsec;
    tp->pad = 0;
    return 0;
}

int __select64(int n, fd_set *r, fd_set *wr, fd_set *e, struct timeval64 *tv) {
    static int (*real)(int, fd_set *, fd_set *, fd_set *, struct timeval64 *);
    if (!real) {
        real = (int (*)(int, fd_set *, fd_set *, fd_set *, struct timeval64 *))dlsym(
            RTLD_NEXT, "__select64");
    }
    int64_t asked = ASKED(tv);
    if (asked == 0) {
        return real(n, r, wr, e, tv);
    }
    int64_t real0 = ns(CLOCK_MONOTONIC);
    int k = real(n, r, wr, e, tv);
    wait_end(real0, asked, k == 0);
    return k;
}
#endif
