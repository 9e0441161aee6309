#include "nn/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace faultline::nn {

int default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

void parallel_for(std::int64_t tasks, int threads, const std::function<void(std::int64_t, int)>& fn) {
  if (tasks <= 0) return;
  const int workers = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, tasks)));
  if (workers == 1) {
    for (std::int64_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<std::int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto body = [&](int worker) {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      const std::int64_t t = next.fetch_add(1);
      if (t >= tasks) return;
      try {
        fn(t, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(body, w);
  body(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace faultline::nn
