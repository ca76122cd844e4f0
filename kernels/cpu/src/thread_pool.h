// A persistent thread pool sized to the cores. One job at a time: the caller and the workers pull task
// indices from a shared counter until none are left. Workers spin briefly between jobs (decode steps
// issue many small ops back to back) and then sleep on a condition variable, so an idle pool costs
// nothing. A job is a function pointer plus context, never a heap-allocated std::function.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace bs {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  /** Runs fn(i, thread) for i in [0, tasks) on all threads; returns when every task is done. */
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

  /** Runs fn(thread) once on every thread (used by the peak-FLOP/s and bandwidth probes). */
  template <class F>
  void onEveryThread(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    runEvery([](void* ctx, int64_t, int thread) { (*static_cast<Fn*>(ctx))(thread); }, &fn);
  }

 private:
  using TaskFn = void (*)(void* ctx, int64_t task, int thread);
  void run(int64_t tasks, TaskFn fn, void* ctx);
  void runEvery(TaskFn fn, void* ctx);
  void workerLoop(int thread);
  void drain(int thread);

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex jobMutex_;  // serializes callers (main thread and worker_threads may share the pool)
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> finished_{0};
  std::atomic<int64_t> next_{0};
  int64_t tasks_ = 0;
  bool everyThread_ = false;
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  bool stop_ = false;
};

/** The process-wide pool, created on first use. threads <= 0 means one per core. */
ThreadPool& pool();
void configurePool(int threads);

}  // namespace bs
