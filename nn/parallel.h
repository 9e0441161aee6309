// Parallel loops whose results never depend on the thread count: work is cut into tasks whose
// boundaries the caller fixes (never "one slice per thread"), threads only decide who runs which
// task, and callers combine task results in task order.
#pragma once

#include <cstdint>
#include <functional>

namespace faultline::nn {

// Number of hardware threads (at least 1): the default for --threads.
int default_threads();

// Runs fn(task, worker) for task in [0, tasks) on up to `threads` threads (worker in
// [0, threads)). The first exception thrown by any task is rethrown after all threads stop;
// tasks not yet started are then skipped.
void parallel_for(std::int64_t tasks, int threads, const std::function<void(std::int64_t task, int worker)>& fn);

}  // namespace faultline::nn
