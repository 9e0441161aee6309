#include "traces/trace.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/error.h"
#include "models/files.h"
#include "models/philox.h"
#include "nn/json.h"
#include "nn/npy.h"

namespace faultline::traces {
namespace {

// Random stream of the row selection (apart from every hardware-noise stream).
constexpr std::uint64_t kStreamTraceRows = 0x7472'6365'0000'0000ull;

// A file name for a layer: its name with anything but [A-Za-z0-9_-] replaced by '_', and the
// layer's position first so that two names that differ only in such characters stay apart.
std::string file_stem(const std::string& name, std::size_t index) {
  std::string stem = std::to_string(index) + "_";
  for (char c : name) stem += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '_';
  return stem;
}


// A layer's array file named by the sidecar: a plain file name inside the trace folder (a path
// elsewhere would let a trace read any file).
std::string array_path(const std::string& dir, const nn::JsonValue& name_node, const std::string& field) {
  const std::string& name = name_node.string(field);
  if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos || name == "." || name == "..")
    throw Error(name_node.where() + ": '" + field + "' must be a file name in the trace folder, got '" + name + "'");
  return (std::filesystem::path(dir) / name).string();
}


}  // namespace

TraceRecorder::TraceRecorder(nn::Graph& graph, const hwcfg::HardwareConfig& config, std::int64_t max_rows, std::uint64_t seed)
    : graph_(graph), max_rows_(max_rows), seed_(seed) {
  if (max_rows < 1) throw Error("--max-samples: must be at least 1");
  for (nn::LinearLayer* layer : graph.layers()) {
    auto state = std::make_unique<State>();
    state->info.name = layer->name();
    state->info.op = layer->op_type();
    const hwcfg::HardwareUnit* unit = config.unit_for(layer->name(), layer->op_type());
    state->info.unit = unit ? unit->name : "-";
    state->info.kind = unit ? unit->kind : models::exact_kind_name();
    State* s = state.get();
    const std::uint64_t layer_index = static_cast<std::uint64_t>(layer->index());
    layer->observe_reads([this, s, layer_index](std::size_t block, std::uint64_t first_row, const Eigen::Ref<const models::MatrixRM>& hw,
                                                const models::MatrixRM& exact) {
      const models::CounterRng rng(seed_, kStreamTraceRows | (layer_index << 20) | static_cast<std::uint64_t>(block));
      const std::size_t cols = static_cast<std::size_t>(exact.cols());
      std::lock_guard<std::mutex> lock(s->mutex);
      s->info.outputs = static_cast<std::int64_t>(cols);
      s->info.rows_seen += static_cast<std::uint64_t>(exact.rows());
      for (Eigen::Index r = 0; r < exact.rows(); ++r) {
        const std::uint64_t row = first_row + static_cast<std::uint64_t>(r);
        const auto word = rng.block(row);
        const std::uint64_t hash = (static_cast<std::uint64_t>(word[0]) << 32) | word[1];
        const std::pair<std::uint64_t, std::uint64_t> key{hash, row * 4096 + block};
        if (static_cast<std::int64_t>(s->kept.size()) >= max_rows_ && !(key < s->kept.rbegin()->first)) continue;
        Kept k;
        k.row = row;
        k.ideal.assign(exact.row(r).data(), exact.row(r).data() + cols);
        k.hardware.resize(cols);
        for (std::size_t c = 0; c < cols; ++c) k.hardware[c] = hw(r, static_cast<Eigen::Index>(c));
        s->kept.emplace(key, std::move(k));
        if (static_cast<std::int64_t>(s->kept.size()) > max_rows_) s->kept.erase(std::prev(s->kept.end()));
      }
    });
    states_.push_back(std::move(state));
  }
}

TraceRecorder::~TraceRecorder() {
  for (nn::LinearLayer* layer : graph_.layers()) layer->observe_reads({});
}

std::vector<LayerTrace> TraceRecorder::layers() const {
  std::vector<LayerTrace> out;
  for (const auto& s : states_) {
    std::lock_guard<std::mutex> lock(s->mutex);
    LayerTrace t = s->info;
    std::vector<const Kept*> rows;
    for (const auto& [key, kept] : s->kept) rows.push_back(&kept);
    std::sort(rows.begin(), rows.end(), [](const Kept* a, const Kept* b) { return a->row < b->row; });
    for (const Kept* k : rows) {
      t.ideal.insert(t.ideal.end(), k->ideal.begin(), k->ideal.end());
      t.hardware.insert(t.hardware.end(), k->hardware.begin(), k->hardware.end());
    }
    out.push_back(std::move(t));
  }
  return out;
}

void write_trace(const std::string& dir, const TraceMeta& meta, const std::vector<LayerTrace>& layers) {
  // The folder itself is created, never its missing parents (a typo in the path is an error).
  check_output_folder(dir, dir);
  std::error_code ec;
  std::filesystem::create_directory(dir, ec);
  if (ec) throw Error(dir + ": cannot create the folder (" + ec.message() + ")");
  nn::JsonWriter j;
  j.begin_object();
  j.key("faultline_trace").value(1);
  j.key("model").value(meta.model);
  j.key("data").value(meta.data);
  j.key("hardware").value(meta.hardware);
  j.key("hardware_source").value(meta.hardware_source);
  j.key("level").value(meta.level);
  j.key("seed").value(static_cast<unsigned long long>(meta.seed));
  j.key("trial").value(0);
  j.key("images").value(static_cast<long long>(meta.images));
  j.key("max_samples").value(static_cast<long long>(meta.max_samples));
  j.key("accuracy").value(meta.accuracy);
  j.key("what").value("per layer, rows of the linear product y = x·Wᵀ (before bias): ideal = exact float product of the inputs the hardware saw, hardware = what it returned; float32 [rows, outputs]");
  j.key("layers").begin_array();
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const LayerTrace& t = layers[l];
    const std::int64_t rows = t.outputs ? static_cast<std::int64_t>(t.ideal.size()) / t.outputs : 0;
    const std::string stem = file_stem(t.name, l);
    for (const char* part : {"ideal", "hardware"}) {
      nn::Tensor tensor(nn::Shape{rows, t.outputs});
      const std::vector<float>& src = std::string(part) == "ideal" ? t.ideal : t.hardware;
      if (!src.empty()) std::memcpy(tensor.f(), src.data(), sizeof(float) * src.size());
      nn::save_npy((std::filesystem::path(dir) / (stem + "." + part + ".npy")).string(), tensor);
    }
    j.begin_object();
    j.key("name").value(t.name);
    j.key("op").value(t.op);
    j.key("unit").value(t.unit);
    j.key("kind").value(t.kind);
    j.key("outputs").value(static_cast<long long>(t.outputs));
    j.key("rows_seen").value(static_cast<unsigned long long>(t.rows_seen));
    j.key("rows_kept").value(static_cast<long long>(rows));
    j.key("ideal").value(stem + ".ideal.npy");
    j.key("hardware").value(stem + ".hardware.npy");
    j.end_object();
  }
  j.end_array();
  j.key("hwcfg").value(meta.hwcfg_yaml);
  j.end_object();
  write_file_atomically((std::filesystem::path(dir) / "trace.json").string(), j.str() + "\n");
}

Trace read_trace(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "trace.json").string();
  if (!std::filesystem::is_directory(dir)) throw Error(dir + ": not a trace folder (" + (std::filesystem::exists(dir) ? "a file" : "no such folder") + ")");
  if (!std::filesystem::exists(path)) throw Error(dir + ": not a trace folder (no trace.json)");
  Trace t;
  const nn::JsonValue n = nn::parse_json(read_input_file(path), path);
  if (n.type != nn::JsonValue::Type::Object || !n.find("faultline_trace")) throw Error(path + ": not a faultline trace (no 'faultline_trace' field)");
  t.meta.model = n.at("model").string("model");
  t.meta.data = n.at("data").string("data");
  t.meta.hardware = n.at("hardware").string("hardware");
  t.meta.hardware_source = n.at("hardware_source").string("hardware_source");
  t.meta.level = n.at("level").string("level");
  t.meta.seed = n.at("seed").uint64("seed");
  t.meta.images = n.at("images").int64("images");
  t.meta.max_samples = n.at("max_samples").int64("max_samples");
  t.meta.accuracy = n.at("accuracy").number("accuracy");
  t.meta.hwcfg_yaml = n.at("hwcfg").string("hwcfg");
  for (const auto& l : n.at("layers").array("layers")) {
    LayerTrace lt;
    lt.name = l.at("name").string("name");
    lt.op = l.at("op").string("op");
    lt.unit = l.at("unit").string("unit");
    lt.kind = l.at("kind").string("kind");
    lt.outputs = l.at("outputs").int64("outputs");
    lt.rows_seen = l.at("rows_seen").uint64("rows_seen");
    if (lt.outputs < 0) throw Error(l.at("outputs").where() + ": layer '" + lt.name + "': 'outputs' must not be negative");
    const nn::Tensor ideal = nn::load_npy(array_path(dir, l.at("ideal"), "ideal"));
    const nn::Tensor hw = nn::load_npy(array_path(dir, l.at("hardware"), "hardware"));
    if (ideal.dtype() != nn::DType::Float32 || hw.dtype() != nn::DType::Float32)
      throw Error(dir + ": layer '" + lt.name + "': ideal and hardware arrays must be float32");
    if (ideal.shape() != hw.shape() || ideal.shape().size() != 2 || (ideal.numel() && ideal.shape()[1] != lt.outputs))
      throw Error(dir + ": layer '" + lt.name + "': ideal " + nn::shape_string(ideal.shape()) + " and hardware " + nn::shape_string(hw.shape()) +
                  " must both be [rows, " + std::to_string(lt.outputs) + "]");
    lt.ideal.assign(ideal.f(), ideal.f() + ideal.numel());
    lt.hardware.assign(hw.f(), hw.f() + hw.numel());
    t.layers.push_back(std::move(lt));
  }
  return t;
}

Trace record_trace(nn::Graph& graph, const hwcfg::HardwareConfig& config, const nn::Dataset& data, const studies::StudyOptions& options,
                   std::int64_t max_rows, const std::string& model, const std::string& data_name,
                   const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
  Trace t;
  {
    TraceRecorder recorder(graph, config, max_rows, options.seed);
    const studies::StudyResult r = studies::run_study(graph, config, data, options, on_progress);
    t.meta.accuracy = r.mean;
    t.meta.images = r.images;
    t.layers = recorder.layers();
  }
  t.meta.model = model;
  t.meta.data = data_name;
  t.meta.hardware = config.name;
  t.meta.hardware_source = config.source;
  t.meta.hwcfg_yaml = config.to_yaml();
  t.meta.level = options.level;
  t.meta.seed = options.seed;
  t.meta.max_samples = max_rows;
  return t;
}

}  // namespace faultline::traces
