// Accuracy of a classifier graph on a labelled dataset, evaluated in parallel over fixed-size
// chunks of images (never "one slice per thread"), so results are the same for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nn/dataset.h"
#include "nn/graph.h"

namespace faultline::nn {

struct EvalOptions {
  std::int64_t limit = 0;  // evaluate the first `limit` images (0: all)
  int threads = 1;
  std::int64_t chunk = 64;  // images per task
};

struct EvalResult {
  std::int64_t count = 0;
  std::int64_t correct = 0;
  std::vector<std::int64_t> class_count;
  std::vector<std::int64_t> class_correct;
  double seconds = 0;

  double accuracy() const { return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0; }
  double class_accuracy(int c) const {
    return class_count[c] ? static_cast<double>(class_correct[c]) / static_cast<double>(class_count[c]) : 0.0;
  }
};

// Runs `graph` (already programmed) on the dataset's images. The model must take one NCHW image
// tensor and return class scores [N, classes] as its first output.
EvalResult evaluate(const Graph& graph, const Dataset& data, const EvalOptions& options,
                    const std::function<void(std::int64_t done, std::int64_t total)>& on_progress = {});

}  // namespace faultline::nn

namespace faultline::nn {

// Class names of Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Table 1), for reports.
const std::vector<std::string>& fashion_mnist_classes();

// The result as JSON: accuracy, per-class accuracy, counts, and what was evaluated. Wall time
// and thread count are left out so that the file is identical for any thread count.
std::string eval_result_json(const EvalResult& result, const std::string& model, const std::string& data,
                             const std::string& hardware);

}  // namespace faultline::nn
