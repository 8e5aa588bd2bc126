#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* libfaketime 0.9.10 fakes CLOCK_MONOTONIC but does not intercept sem_clockwait or
   pthread_cond_clockwait: a deadline computed from the faked clock is then handed to the
   kernel, which waits until the real clock reaches it (days). Shift such deadlines back. */
static struct timespec to_real(clockid_t clock, const struct timespec *at) {
    struct timespec fake, real, out;
    clock_gettime(clock, &fake);                      /* through libfaketime */
    syscall(SYS_clock_gettime, clock, &real);         /* the kernel's */
    long long ns = (long long)(at->tv_sec - fake.tv_sec + real.tv_sec) * 1000000000LL
                   + (at->tv_nsec - fake.tv_nsec + real.tv_nsec);
    out.tv_sec = ns / 1000000000LL;
    out.tv_nsec = ns % 1000000000LL;
    if (out.tv_nsec < 0) { out.tv_nsec += 1000000000LL; out.tv_sec -= 1; }
    return out;
}

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *at) {
    static int (*next)(sem_t *, clockid_t, const struct timespec *);
    if (!next) next = dlsym(RTLD_NEXT, "sem_clockwait");
    struct timespec real = to_real(clock, at);
    return next(sem, clock, &real);
}

int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clock,
                           const struct timespec *at) {
    static int (*next)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
    if (!next) next = dlsym(RTLD_NEXT, "pthread_cond_clockwait");
    struct timespec real = to_real(clock, at);
    return next(cond, mutex, clock, &real);
}
