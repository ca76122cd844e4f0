// A persistent thread pool sized to the cores. The caller publishes a job (function pointer + context,
// never a heap-allocated std::function) and works on it too; workers pull task indices from the job's
// counter. The caller waits only for tasks, never for a worker to show up: on a shared, oversubscribed
// machine a descheduled worker then costs nothing (the caller just does more of the tasks), where a
// barrier would stall every op for a whole scheduler time slice.
//
// Jobs alternate between two slots with sequence numbers and reference counts, so a worker that wakes
// late and looks at an old job can never read a descriptor that is being rewritten.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace bs {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  /** Runs fn(i, thread) for i in [0, tasks) on the pool and the calling thread; returns when all are done. */
  template <class F>
  void parallelFor(int64_t tasks, F&& fn) {
    if (tasks <= 0) return;
    if (tasks == 1 || threads_ == 1) {
      for (int64_t i = 0; i < tasks; i++) fn(i, 0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    run(tasks, [](void* ctx, int64_t i, int thread) { (*static_cast<Fn*>(ctx))(i, thread); }, &fn);
  }

 private:
  using TaskFn = void (*)(void* ctx, int64_t task, int thread);
  struct Job {
    std::atomic<uint64_t> seq{0};  // 0 while the slot is being (re)written
    std::atomic<int> refs{0};      // workers currently looking at this slot
    TaskFn fn = nullptr;
    void* ctx = nullptr;
    int64_t tasks = 0;
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };

  void run(int64_t tasks, TaskFn fn, void* ctx);
  static void drain(Job& job, int thread);
  void workerLoop(int thread);

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex callerMutex_;  // one job at a time (main thread and worker_threads may share the pool)
  Job jobs_[2];
  std::atomic<uint64_t> published_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

/** The process-wide pool, created on first use with one thread per core unless configured. */
ThreadPool& pool();
/** Switches to a pool of `threads` (<= 0: one per core); the previous pool is parked, not destroyed. */
void configurePool(int threads);

}  // namespace bs
