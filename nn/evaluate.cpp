#include "nn/evaluate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>

#include "models/error.h"
#include "nn/parallel.h"

namespace faultline::nn {

EvalResult evaluate(const Graph& graph, const Dataset& data, const EvalOptions& options,
                    const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
  if (options.limit < 0) throw Error("limit: must not be negative");
  if (options.threads < 1) throw Error("threads: must be at least 1");
  if (graph.inputs().size() != 1)
    throw Error(graph.source + ": classification needs a model with one input, this one has " + std::to_string(graph.inputs().size()));
  const std::int64_t total = options.limit > 0 ? std::min(options.limit, data.count) : data.count;
  const std::int64_t chunk = std::max<std::int64_t>(1, options.chunk);
  const std::int64_t tasks = (total + chunk - 1) / chunk;
  std::vector<std::int32_t> predictions(static_cast<std::size_t>(total), -1);
  std::atomic<std::int64_t> done{0};
  std::mutex progress_mutex;
  const auto start = std::chrono::steady_clock::now();
  parallel_for(tasks, options.threads, [&](std::int64_t t, int) {
    const std::int64_t first = t * chunk, n = std::min(chunk, total - first);
    std::vector<Tensor> inputs;
    inputs.push_back(data.batch(first, n));
    std::vector<Tensor> out = graph.run(std::move(inputs), RunContext{static_cast<std::uint64_t>(first)});
    const Tensor& scores = out.at(0);
    if (scores.dtype() != DType::Float32 || scores.rank() != 2 || scores.dim(0) != n || scores.dim(1) < data.classes)
      throw Error(graph.source + ": output '" + graph.outputs().at(0) + "' has shape " + shape_string(scores.shape()) +
                  ", expected class scores [" + std::to_string(n) + ", " + std::to_string(data.classes) + "]");
    const std::int64_t classes = scores.dim(1);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* row = scores.f() + i * classes;
      predictions[first + i] = static_cast<std::int32_t>(std::max_element(row, row + classes) - row);
    }
    const std::int64_t now = done += n;
    if (on_progress) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      on_progress(now, total);
    }
  });
  EvalResult r;
  r.count = total;
  r.class_count.assign(static_cast<std::size_t>(data.classes), 0);
  r.class_correct.assign(static_cast<std::size_t>(data.classes), 0);
  for (std::int64_t i = 0; i < total; ++i) {
    const int label = data.labels[i];
    ++r.class_count[label];
    if (predictions[i] == label) { ++r.correct; ++r.class_correct[label]; }
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace faultline::nn

#include "nn/json.h"

namespace faultline::nn {

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  return names;
}

std::string eval_result_json(const EvalResult& r, const std::string& model, const std::string& data,
                             const std::string& hardware) {
  JsonWriter j;
  j.begin_object();
  j.key("model").value(model);
  j.key("data").value(data);
  j.key("hardware").value(hardware);
  j.key("images").value(static_cast<long long>(r.count));
  j.key("correct").value(static_cast<long long>(r.correct));
  j.key("accuracy").value(r.accuracy());
  j.key("per_class").begin_array();
  for (std::size_t c = 0; c < r.class_count.size(); ++c) {
    j.begin_object();
    j.key("class").value(static_cast<long long>(c));
    j.key("images").value(static_cast<long long>(r.class_count[c]));
    j.key("correct").value(static_cast<long long>(r.class_correct[c]));
    j.key("accuracy").value(r.class_accuracy(static_cast<int>(c)));
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace faultline::nn
