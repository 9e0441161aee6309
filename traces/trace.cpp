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


std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
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
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
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
  std::ofstream out(std::filesystem::path(dir) / "trace.json", std::ios::trunc);
  out << j.str() << "\n";
  if (!out) throw Error(dir + "/trace.json: write failed");
}

Trace read_trace(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "trace.json").string();
  if (!std::filesystem::exists(path)) throw Error(dir + ": not a trace folder (no trace.json)");
  Trace t;
  try {
    const YAML::Node n = YAML::Load(read_text(path));
    if (!n["faultline_trace"]) throw Error(path + ": not a faultline trace (no 'faultline_trace' field)");
    t.meta.model = n["model"].as<std::string>();
    t.meta.data = n["data"].as<std::string>();
    t.meta.hardware = n["hardware"].as<std::string>();
    t.meta.hardware_source = n["hardware_source"].as<std::string>();
    t.meta.level = n["level"].as<std::string>();
    t.meta.seed = n["seed"].as<std::uint64_t>();
    t.meta.images = n["images"].as<std::int64_t>();
    t.meta.max_samples = n["max_samples"].as<std::int64_t>();
    t.meta.accuracy = n["accuracy"].as<double>();
    t.meta.hwcfg_yaml = n["hwcfg"].as<std::string>();
    for (const auto& l : n["layers"]) {
      LayerTrace lt;
      lt.name = l["name"].as<std::string>();
      lt.op = l["op"].as<std::string>();
      lt.unit = l["unit"].as<std::string>();
      lt.kind = l["kind"].as<std::string>();
      lt.outputs = l["outputs"].as<std::int64_t>();
      lt.rows_seen = l["rows_seen"].as<std::uint64_t>();
      const nn::Tensor ideal = nn::load_npy((std::filesystem::path(dir) / l["ideal"].as<std::string>()).string());
      const nn::Tensor hw = nn::load_npy((std::filesystem::path(dir) / l["hardware"].as<std::string>()).string());
      if (ideal.shape() != hw.shape() || ideal.shape().size() != 2 || (ideal.numel() && ideal.shape()[1] != lt.outputs))
        throw Error(dir + ": layer '" + lt.name + "': ideal " + nn::shape_string(ideal.shape()) + " and hardware " + nn::shape_string(hw.shape()) +
                    " must both be [rows, " + std::to_string(lt.outputs) + "]");
      lt.ideal.assign(ideal.f(), ideal.f() + ideal.numel());
      lt.hardware.assign(hw.f(), hw.f() + hw.numel());
      t.layers.push_back(std::move(lt));
    }
  } catch (const YAML::Exception& e) {
    throw Error(path + ": " + e.msg);
  }
  return t;
}

}  // namespace faultline::traces
