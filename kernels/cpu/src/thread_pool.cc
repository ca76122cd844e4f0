#include "thread_pool.h"

#include <chrono>

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
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::drain(int thread) {
  if (everyThread_) {
    fn_(ctx_, 0, thread);
    return;
  }
  for (;;) {
    int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= tasks_) break;
    fn_(ctx_, i, thread);
  }
}

void ThreadPool::run(int64_t tasks, TaskFn fn, void* ctx) {
  std::lock_guard<std::mutex> job(jobMutex_);
  tasks_ = tasks;
  everyThread_ = false;
  fn_ = fn;
  ctx_ = ctx;
  next_.store(0, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(0);
  const int workers = threads_ - 1;
  for (int spin = 0; finished_.load(std::memory_order_acquire) < workers; spin++) {
    if (spin < kSpinIterations) {
      cpuRelax();
      continue;
    }
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [&] { return finished_.load(std::memory_order_acquire) >= workers; });
  }
}

void ThreadPool::runEvery(TaskFn fn, void* ctx) {
  std::lock_guard<std::mutex> job(jobMutex_);
  everyThread_ = true;
  fn_ = fn;
  ctx_ = ctx;
  finished_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  drain(0);
  std::unique_lock<std::mutex> lk(mu_);
  done_.wait(lk, [&] { return finished_.load(std::memory_order_acquire) >= threads_ - 1; });
}

void ThreadPool::workerLoop(int thread) {
  uint64_t seen = 0;
  for (;;) {
    int spin = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spin < kSpinIterations) {
      cpuRelax();
      spin++;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      wake_.wait(lk, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
    }
    seen = generation_.load(std::memory_order_acquire);
    drain(thread);
    if (finished_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_ - 1) {
      std::lock_guard<std::mutex> lk(mu_);  // pairs with the caller's predicate check
      done_.notify_one();
    }
  }
}

static std::mutex gPoolMutex;
static ThreadPool* gPool = nullptr;  // never destroyed: exiting with parked workers is fine
static int gRequested = 0;

void configurePool(int threads) {
  std::lock_guard<std::mutex> lk(gPoolMutex);
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  if (gPool && gPool->threads() == threads) return;
  // Replacing a pool is only safe when no op is running; the backend does it at construction.
  delete gPool;
  gPool = new ThreadPool(threads);
  gRequested = threads;
}

ThreadPool& pool() {
  if (!gPool) configurePool(gRequested);
  return *gPool;
}

}  // namespace bs
