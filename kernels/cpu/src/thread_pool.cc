#include "thread_pool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpuRelax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpuRelax() { asm volatile("yield"); }
#else
static inline void cpuRelax() {}
#endif

namespace bs {

// About 20-50 microseconds of spinning: covers the gap between consecutive ops of a step without
// burning a core when the engine is idle (the machine is shared).
static constexpr int kSpinIterations = 20000;

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < threads_; t++) workers_.emplace_back([this, t] { workerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::drain(Job& job, int thread) {
  for (;;) {
    const int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.tasks) return;
    job.fn(job.ctx, i, thread);
    job.done.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::run(int64_t tasks, TaskFn fn, void* ctx) {
  std::lock_guard<std::mutex> caller(callerMutex_);
  const uint64_t seq = published_.load(std::memory_order_relaxed) + 1;
  Job& job = jobs_[seq & 1];
  // Retire the slot (two jobs old): late workers that still look at it see seq 0 and back off.
  job.seq.store(0);
  while (job.refs.load() != 0) std::this_thread::yield();
  job.fn = fn;
  job.ctx = ctx;
  job.tasks = tasks;
  job.next.store(0, std::memory_order_relaxed);
  job.done.store(0, std::memory_order_relaxed);
  job.seq.store(seq, std::memory_order_release);
  published_.store(seq);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lk(mu_); }
    wake_.notify_all();
  }
  drain(job, 0);
  for (int spin = 0; job.done.load(std::memory_order_acquire) < tasks; spin++) {
    if (spin < kSpinIterations) cpuRelax();
    else std::this_thread::yield();  // a worker holds a task but lost its core
  }
}

void ThreadPool::workerLoop(int thread) {
  uint64_t seen = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    uint64_t seq = published_.load();
    for (int spin = 0; seq == seen && spin < kSpinIterations; spin++) {
      cpuRelax();
      seq = published_.load();
    }
    if (seq == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      sleepers_.fetch_add(1);
      wake_.wait(lk, [&] { return stop_.load() || published_.load() != seen; });
      sleepers_.fetch_sub(1);
      continue;
    }
    Job& job = jobs_[seq & 1];
    job.refs.fetch_add(1);
    if (job.seq.load() == seq) drain(job, thread);
    job.refs.fetch_sub(1);
    seen = seq;
  }
}

static std::mutex gPoolMutex;
// Pools are never destroyed: an op on another JS thread may still be running on the one being
// replaced, and parked workers cost nothing. Replacing happens a handful of times per process (tests).
static std::atomic<ThreadPool*> gPool{nullptr};

void configurePool(int threads) {
  std::lock_guard<std::mutex> lk(gPoolMutex);
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  ThreadPool* current = gPool.load();
  if (current && current->threads() == threads) return;
  gPool.store(new ThreadPool(threads));
}

ThreadPool& pool() {
  ThreadPool* p = gPool.load(std::memory_order_acquire);
  if (!p) {
    configurePool(0);
    p = gPool.load();
  }
  return *p;
}

}  // namespace bs
