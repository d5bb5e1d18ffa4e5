// See include/CNNPipeKernels.h (nnpipe_pool_run). Why a pool of our own rather than
// DispatchQueue.concurrentPerform: at batch 1 a step lasts 50-500 us, and concurrentPerform
// costs 13-18 us a call with its worker awake and about 30 us once the worker has gone to sleep
// (measured on the 2-core benchmark VM); SqueezeNet makes ~40 such calls per inference. Here the
// helpers spin for a while after each job, so the next step starts them in well under a
// microsecond, and sleep on a condition variable after that, so an idle process uses no CPU.
//
// One job at a time: a caller that finds the pool busy (another thread's job, or a task calling
// back in) gets 0 and runs its work another way.
//
// Tasks have owners: the job's tasks are cut into one contiguous range per worker, and each worker
// runs its own range first, then takes what is left of the others'. Batch-1 steps repeat the same
// cut every layer and every run, so a worker mostly finds its data in its own core's cache (the
// rows of positions it wrote last time); with one shared counter the tasks landed on either core
// at random and SqueezeNet's 1x1 convs ran slower on two threads than on one (0.076 against 0.070
// ms; 0.049 with owners). A worker the OS pauses still has its range finished by the others.
//
// Each range's word packs (job number, next task) into 64 bits and is claimed by compare-and-swap,
// so a helper that wakes late for a job that is already over can never take a task of the next
// one (or, should the 16-bit job number come round while it is descheduled, only as one of that
// job's own helpers), and no job field is read after its job can have ended.
#include "CNNPipeKernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

enum { MAXIMUM_HELPERS = 255, SPIN_NANOSECONDS = 200000 };

// Range word: job number (16 bits) | workers (8, less one) | next task of the range (40).
#define TASK_BITS 40
#define TASK_MASK ((1ull << TASK_BITS) - 1)
static uint64_t range_word(uint64_t job, uint64_t helpers, uint64_t next) {
    return (job & 0xffff) << 48 | (helpers & 0xff) << TASK_BITS | (next & TASK_MASK);
}

static struct {
    pthread_mutex_t submit;   // held by the caller for the whole job
    pthread_mutex_t sleep;    // guards sleepers and the condition variable
    pthread_cond_t wake;
    _Atomic uint64_t ticket;  // job number << 16 | helpers taking part (helper i takes part if i <= that)
    _Atomic uint64_t ranges[MAXIMUM_HELPERS + 1];  // worker w's range: see range_word
    _Atomic long count;       // tasks in the current job
    _Atomic long workers;     // helpers + 1
    _Atomic long finished;    // tasks done in the current job
    _Atomic int sleepers;
    nnpipe_pool_function function;
    void *context;
    int helpers;              // threads started so far
    uint64_t job;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static _Thread_local int inside_task;

static void relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static long long nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000000000ll + now.tv_nsec;
}

// Tasks of range `range` run from range * count / workers to (range + 1) * count / workers.
static long range_end(long range, long count, long workers) { return (long)((__int128)(range + 1) * count / workers); }

// Takes and runs tasks of job `job`, its own range first, until none are left.
static void work(uint64_t job, long worker) {
    // Late for a job that is over, these may be the next job's: the range words tell.
    long workers = atomic_load_explicit(&pool.workers, memory_order_relaxed), count = atomic_load_explicit(&pool.count, memory_order_relaxed);
    if (workers < 1 || workers > MAXIMUM_HELPERS + 1) return;
    for (long step = 0; step < workers; step++) {
        long range = (worker + step) % workers;
        long end = range_end(range, count, workers);
        uint64_t word = atomic_load_explicit(&pool.ranges[range], memory_order_acquire);
        for (;;) {
            // Another job's word: this one is over, and its fields may already be the next job's.
            if ((word >> 48) != (job & 0xffff) || worker > (long)(word >> TASK_BITS & 0xff)
                || (long)(word >> TASK_BITS & 0xff) + 1 != workers) return;
            long task = (long)(word & TASK_MASK);
            if (task >= end) break;
            if (!atomic_compare_exchange_weak_explicit(&pool.ranges[range], &word, word + 1, memory_order_acq_rel, memory_order_acquire))
                continue;
            // The job cannot end before this task is counted, so its fields are still this job's.
            inside_task = 1;
            pool.function(pool.context, worker, task);
            inside_task = 0;
            atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
            word = atomic_load_explicit(&pool.ranges[range], memory_order_acquire);
        }
    }
}

static void *helper_main(void *argument) {
    long index = (long)(intptr_t)argument;  // 1-based: the caller is worker 0
    uint64_t seen = atomic_load_explicit(&pool.ticket, memory_order_acquire) >> 16;
    for (;;) {
        uint64_t ticket;
        long long spin_start = 0;
        unsigned spins = 0;
        while ((ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire)) >> 16 == seen) {
            relax();
            if (++spins % 64 != 0) continue;
            long long now = nanoseconds();
            if (spin_start == 0) spin_start = now;
            if (now - spin_start < SPIN_NANOSECONDS) continue;
            pthread_mutex_lock(&pool.sleep);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.ticket) >> 16 == seen) pthread_cond_wait(&pool.wake, &pool.sleep);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep);
            spin_start = 0;
        }
        seen = ticket >> 16;
        if (index <= (long)(ticket & 0xffff)) work(seen, index);
    }
    return NULL;
}

int nnpipe_pool_run(long count, long workers, nnpipe_pool_function function, void *context) {
    if (count < 2 || workers < 2 || count > (long)TASK_MASK || inside_task) return 0;
    if (pthread_mutex_trylock(&pool.submit) != 0) return 0;
    long helpers = workers - 1;
    if (helpers > count - 1) helpers = count - 1;
    if (helpers > MAXIMUM_HELPERS) helpers = MAXIMUM_HELPERS;
    while (pool.helpers < helpers) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, helper_main, (void *)(intptr_t)(pool.helpers + 1));
        pthread_attr_destroy(&attributes);
        if (failed) break;
        pool.helpers++;
    }
    if (helpers > pool.helpers) helpers = pool.helpers;
    if (helpers == 0) {
        pthread_mutex_unlock(&pool.submit);
        return 0;
    }
    pool.job++;
    pool.function = function;
    pool.context = context;
    atomic_store_explicit(&pool.count, count, memory_order_relaxed);
    atomic_store_explicit(&pool.workers, helpers + 1, memory_order_relaxed);
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    for (long range = 0; range <= helpers; range++) {
        long first = range == 0 ? 0 : range_end(range - 1, count, helpers + 1);
        atomic_store_explicit(&pool.ranges[range], range_word(pool.job, (uint64_t)helpers, (uint64_t)first), memory_order_release);
    }
    // Sequentially consistent, like the sleepers' count: either a helper about to sleep sees
    // this ticket, or this thread sees it counted and wakes it.
    atomic_store(&pool.ticket, (pool.job & 0xffff) << 16 | (uint64_t)helpers);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep);
    }
    work(pool.job, 0);
    // Tasks a helper took may still be running; helpers that have not woken yet take none.
    unsigned spins = 0;
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < count) {
        relax();
        if (++spins % 4096 == 0) sched_yield();
    }
    pthread_mutex_unlock(&pool.submit);
    return 1;
}
