// The Python binding `faultline._faultline`: the libraries' calls (models, hwcfg, nn, studies,
// traces, the cycle and RTL levels) for the package in python/faultline. Only conversions live
// here; every computation is the libraries'. Arrays come in as C-contiguous float32 (converted
// once when they are not) and go out as NumPy arrays that own the result's storage (no copy).
// Long calls release the GIL; faultline::Error becomes faultline.Error with the same message.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "hwcfg/hardware_config.h"
#include "models/error.h"
#include "models/files.h"
#include "models/substrate.h"
#include "nn/dataset.h"
#include "nn/evaluate.h"
#include "nn/graph.h"
#include "nn/json.h"
#include "nn/onnx_io.h"
#include "nn/parallel.h"
#include "studies/hardware.h"
#include "studies/levels.h"
#include "studies/study.h"
#include "studies/sweep.h"
#include "traces/trace.h"

namespace py = pybind11;
using namespace faultline;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A NumPy array that owns `values` (moved, not copied).
py::array_t<float> to_numpy(std::vector<float> values, const std::vector<std::int64_t>& shape) {
  auto* owner = new std::vector<float>(std::move(values));
  py::capsule free_owner(owner, [](void* p) { delete static_cast<std::vector<float>*>(p); });
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array_t<float>(dims, owner->data(), free_owner);
}

nn::Tensor to_tensor(const FloatArray& a) {
  nn::Shape shape(a.shape(), a.shape() + a.ndim());
  return nn::Tensor::floats(shape, std::vector<float>(a.data(), a.data() + a.size()));
}

// The result of a study JSON as a string; the Python side parses it (json.loads) so that Python
// sees exactly the document the command line writes.
struct Model {
  std::shared_ptr<nn::Graph> graph;
  std::string path;
  std::mutex busy;  // one study at a time on a graph (programming changes its layers)
};

// The SystemC kernel elaborates one simulation per process: the cycle and RTL levels run once.
bool systemc_used = false;

// Runs `f` without the GIL.
template <typename F>
auto released(F&& f) {
  py::gil_scoped_release release;
  return f();
}

hwcfg::HardwareConfig hardware_from(const std::string& spec, const std::vector<std::string>& overrides, bool is_text,
                                    const std::string& source) {
  return is_text ? hwcfg::parse_hardware_config(spec, source, overrides) : hwcfg::load_hardware_config(spec, overrides);
}

py::dict param_spec_dict(const models::ParamSpec& p) {
  py::dict d;
  d["name"] = p.name;
  static const char* types[] = {"number", "integer", "bool", "choice"};
  d["type"] = types[static_cast<int>(p.type)];
  if (p.type == models::ParamSpec::Type::Choice) {
    d["default"] = p.choices.empty() ? "" : p.choices[0];
    d["choices"] = p.choices;
  } else {
    d["default"] = p.type == models::ParamSpec::Type::Bool ? py::cast(p.fallback != 0) : py::cast(p.fallback);
    if (p.type != models::ParamSpec::Type::Bool) d["range"] = py::make_tuple(p.min, p.max);
  }
  d["unit"] = p.unit;
  d["doc"] = p.doc;
  return d;
}

py::list param_list(const std::vector<models::ParamSpec>& specs) {
  py::list l;
  for (const auto& p : specs) l.append(param_spec_dict(p));
  return l;
}

// Declared parameters with values from a dict {name: value}: every value checked as a
// description's would be (unknown names, ranges, choices).
models::Params params_from(const models::SubstrateKind& kind, const py::dict& values) {
  models::Params p = models::default_params(kind.params);
  for (const auto& item : values) {
    const std::string name = py::cast<std::string>(item.first);
    const auto spec = std::find_if(kind.params.begin(), kind.params.end(), [&](const models::ParamSpec& s) { return s.name == name; });
    if (spec == kind.params.end()) throw Error("kind " + kind.name + ": no parameter '" + name + "'");
    if (spec->type == models::ParamSpec::Type::Choice) {
      const std::string v = py::cast<std::string>(item.second);
      if (std::find(spec->choices.begin(), spec->choices.end(), v) == spec->choices.end())
        throw Error("kind " + kind.name + ": parameter '" + name + "' has no choice '" + v + "'");
      p.set_choice(name, v);
    } else {
      const double v = py::cast<double>(item.second);
      const std::string wrong = models::check_number(*spec, v);
      if (!wrong.empty()) throw Error("kind " + kind.name + ": parameter '" + name + "' " + wrong);
      p.set_number(name, v);
    }
  }
  return p;
}

// One substrate, to probe a kind from Python: program(W), multiply(X), counters.
class PySubstrate {
 public:
  PySubstrate(const std::string& kind, const models::Params& params) : kind_(kind), substrate_(models::create_substrate(kind, params)) {}

  void program(const FloatArray& weights, const std::string& name, const std::string& op_type, int index, std::uint64_t seed,
               std::uint64_t trial, py::object input_range, py::object output_range) {
    if (weights.ndim() != 2) throw Error("program: weights must be 2-D (outputs x inputs), got " + std::to_string(weights.ndim()) + "-D");
    if (weights.shape(0) < 1 || weights.shape(1) < 1) throw Error("program: weights must not be empty");
    models::MatrixRM w = Eigen::Map<const models::MatrixRM>(weights.data(), weights.shape(0), weights.shape(1));
    models::LayerInfo info{name, op_type, index, 0};
    if (!input_range.is_none() || !output_range.is_none()) {
      if (input_range.is_none() || output_range.is_none()) throw Error("program: give both input_range and output_range, or neither");
      info.calibrated = true;
      info.input_range = py::cast<double>(input_range);
      info.output_range = py::cast<double>(output_range);
    }
    released([&] {
      substrate_->program(w, info, models::ProgramContext{seed, trial});
      return 0;
    });
    programmed_ = true;
  }

  py::array_t<float> multiply(const FloatArray& x, std::uint64_t first_row, std::uint64_t rows_per_sample, int threads) const {
    if (!programmed_) throw Error("multiply: program(weights) first");
    if (x.ndim() != 2 || x.shape(1) != substrate_->inputs())
      throw Error("multiply: x must be rows x " + std::to_string(substrate_->inputs()) + " (the programmed inputs)");
    if (threads < 1 || threads > 1024) throw Error("threads: must be between 1 and 1024");
    const std::int64_t rows = x.shape(0), outputs = substrate_->outputs(), inputs = substrate_->inputs();
    std::vector<float> y(static_cast<std::size_t>(rows * outputs));
    const float* xp = x.data();
    released([&] {
      // Fixed tasks of 64 rows, keyed by their global rows: the same bits for any thread count.
      const std::int64_t chunk = 64;
      nn::parallel_for((rows + chunk - 1) / chunk, threads, [&](std::int64_t t, int) {
        const std::int64_t r0 = t * chunk, n = std::min(chunk, rows - r0);
        Eigen::Map<const models::MatrixRM> xs(xp + r0 * inputs, n, inputs);
        Eigen::Map<models::MatrixRM> ys(y.data() + r0 * outputs, n, outputs);
        substrate_->multiply(xs, ys, models::MultiplyContext{first_row + static_cast<std::uint64_t>(r0), rows_per_sample});
      });
      return 0;
    });
    return to_numpy(std::move(y), {rows, outputs});
  }

  std::map<std::string, double> counters() const {
    std::map<std::string, double> c;
    substrate_->add_counters(c);
    return c;
  }
  const std::string& kind() const { return kind_; }
  std::int64_t inputs() const { return programmed_ ? substrate_->inputs() : 0; }
  std::int64_t outputs() const { return programmed_ ? substrate_->outputs() : 0; }

 private:
  std::string kind_;
  std::unique_ptr<models::Substrate> substrate_;
  bool programmed_ = false;
};

// One Gemm or Conv layer of a PyTorch model on a hardware description: a one-node graph of the NN
// engine, so that its forward pass is the engine's code path (the same bits as evaluating the
// exported model), programmed with the unit the description maps the layer's name to.
class HardwareLayer {
 public:
  HardwareLayer(const std::string& op_type, const std::string& name, int index, const hwcfg::HardwareConfig& config,
                std::vector<std::int64_t> strides, std::vector<std::int64_t> pads, std::vector<std::int64_t> dilations, std::int64_t group)
      : op_type_(op_type), name_(name), index_(index), config_(config) {
    if (op_type != "Gemm" && op_type != "Conv") throw Error("HardwareLayer: op_type must be Gemm or Conv, got '" + op_type + "'");
    if (!config_.noise_sites.empty())
      throw Error(config_.source + ": noise sites are not applied by faultline.torch layers (evaluate the exported model instead)");
    unit_ = config_.unit_for(name_, op_type_);
    if (unit_ && !unit_->impl.empty())
      throw Error(config_.source + ": unit '" + unit_->name + "' has impl: " + unit_->impl + "; PyTorch layers run the functional models (drop impl:)");
    const models::SubstrateKind* kind = unit_ ? models::find_substrate_kind(unit_->kind) : nullptr;
    needs_calibration_ = kind && kind->capabilities.calibration_images > 0;
    strides_ = std::move(strides);
    pads_ = std::move(pads);
    dilations_ = std::move(dilations);
    group_ = group;
  }

  // New weights (and bias): the layer is rebuilt and must be programmed again.
  void set_weights(const FloatArray& w, py::object b) {
    if (op_type_ == "Gemm" && w.ndim() != 2) throw Error("layer '" + name_ + "': Linear weights must be 2-D");
    if (op_type_ == "Conv" && w.ndim() != 4) throw Error("layer '" + name_ + "': Conv2d weights must be 4-D");
    auto graph = std::make_unique<nn::Graph>();
    graph->source = "layer '" + name_ + "'";
    graph->opset = 13;
    nn::ValueInfo in;
    in.name = "x";
    graph->add_input(in);
    graph->add_constant("w", to_tensor(w));
    nn::NodeSpec node;
    node.name = name_;
    node.op_type = op_type_;
    node.opset = 13;
    node.inputs = {"x", "w"};
    if (!b.is_none()) {
      graph->add_constant("b", to_tensor(py::cast<FloatArray>(b)));
      node.inputs.push_back("b");
    }
    node.outputs = {"y"};
    auto ints = [](std::vector<std::int64_t> v) {
      nn::Attribute a;
      a.kind = nn::Attribute::Kind::Ints;
      a.ints = std::move(v);
      return a;
    };
    if (op_type_ == "Gemm") {
      nn::Attribute t;
      t.kind = nn::Attribute::Kind::Int;
      t.i = 1;
      node.attributes["transB"] = t;
    } else {
      node.attributes["strides"] = ints(strides_);
      node.attributes["pads"] = ints(pads_);
      node.attributes["dilations"] = ints(dilations_);
      nn::Attribute g;
      g.kind = nn::Attribute::Kind::Int;
      g.i = group_;
      node.attributes["group"] = g;
    }
    graph->add_node(node);
    graph->add_output("y");
    graph->finalize();
    if (graph->layers().size() != 1) throw std::logic_error("HardwareLayer: the one-node graph has no linear layer");
    graph->layers()[0]->set_index(index_);
    if (graph_ && !ranges_.empty()) graph->layers()[0]->set_ranges(ranges_);
    graph_ = std::move(graph);
    programmed_ = false;
  }

  void program(std::uint64_t seed, std::uint64_t trial) {
    require_weights();
    nn::LinearLayer* layer = graph_->layers()[0];
    if (needs_calibration_ && !layer->calibrated())
      throw Error("layer '" + name_ + "': unit '" + unit_->name + "' (" + unit_->kind +
                  ") quantizes with calibrated ranges: run faultline.torch.calibrate(model, images) first");
    released([&] {
      if (unit_) layer->program(unit_->kind, unit_->params_for(name_), models::ProgramContext{seed, trial});
      else layer->program_exact({});
      return 0;
    });
    programmed_ = true;
  }

  // The hardware's output for x (N×in, or N×C×H×W); `first_sample` is x's first sample's index
  // in the current pass (what keys the read noise). Samples go in fixed tasks of 16 (the
  // trainer's micro-batch); every draw is keyed by its global row, so neither the task size nor
  // `threads` changes the bits (tested against whole-batch inference).
  py::array_t<float> forward(const FloatArray& x, std::uint64_t first_sample, int threads) {
    require_weights();
    if (!programmed_) throw Error("layer '" + name_ + "': program(seed, trial) first");
    if (threads < 1 || threads > 1024) throw Error("threads: must be between 1 and 1024, got " + std::to_string(threads));
    if (x.ndim() < 1 || x.shape(0) < 1) throw Error("layer '" + name_ + "': the input holds no samples");
    const std::int64_t n = x.shape(0), per_sample = static_cast<std::int64_t>(x.size()) / n, chunk = 16;
    const nn::Shape shape(x.shape(), x.shape() + x.ndim());
    const float* xp = x.data();
    std::vector<nn::Tensor> parts(static_cast<std::size_t>((n + chunk - 1) / chunk));
    released([&] {
      nn::parallel_for(static_cast<std::int64_t>(parts.size()), threads, [&](std::int64_t t, int) {
        const std::int64_t s0 = t * chunk, count = std::min(chunk, n - s0);
        nn::Shape part_shape = shape;
        part_shape[0] = count;
        nn::Tensor part = nn::Tensor::floats(part_shape, std::vector<float>(xp + s0 * per_sample, xp + (s0 + count) * per_sample));
        nn::RunContext context;
        context.first_sample = first_sample + static_cast<std::uint64_t>(s0);
        parts[static_cast<std::size_t>(t)] = std::move(graph_->run({std::move(part)}, context)[0]);
      });
      return 0;
    });
    std::vector<std::int64_t> out_shape = parts[0].shape();
    out_shape[0] = n;
    std::vector<float> y;
    y.reserve(static_cast<std::size_t>(n * (parts[0].numel() / parts[0].dim(0))));
    for (const nn::Tensor& p : parts) y.insert(y.end(), p.f(), p.f() + p.numel());
    return to_numpy(std::move(y), out_shape);
  }

  // Calibration: the exact product, recording each block's max |x| and max |y| over the reads.
  void start_calibration() {
    require_weights();
    graph_->layers()[0]->program_exact({});
    graph_->layers()[0]->record_ranges(true);
    programmed_ = true;
  }
  void finish_calibration() {
    require_weights();
    nn::LinearLayer* layer = graph_->layers()[0];
    layer->record_ranges(false);
    ranges_ = layer->ranges();
    programmed_ = false;
  }

  std::map<std::string, double> counters() const {
    return graph_ ? graph_->layers()[0]->counters() : std::map<std::string, double>{};
  }
  std::string unit() const { return unit_ ? unit_->name : ""; }
  std::string kind() const { return unit_ ? unit_->kind : models::exact_kind_name(); }
  bool needs_calibration() const { return needs_calibration_; }

 private:
  void require_weights() const {
    if (!graph_) throw Error("layer '" + name_ + "': set_weights first");
  }
  std::string op_type_, name_;
  int index_;
  hwcfg::HardwareConfig config_;
  const hwcfg::HardwareUnit* unit_ = nullptr;
  bool needs_calibration_ = false;
  std::vector<std::int64_t> strides_, pads_, dilations_;
  std::int64_t group_ = 1;
  std::unique_ptr<nn::Graph> graph_;
  std::vector<nn::LinearLayer::Ranges> ranges_;
  bool programmed_ = false;
};

nn::Dataset dataset_from_arrays(const FloatArray& images, const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& labels,
                                const std::string& name) {
  if (images.ndim() != 4 && images.ndim() != 3) throw Error(name + ": images must be N x C x H x W or N x H x W");
  if (labels.ndim() != 1 || labels.shape(0) != images.shape(0))
    throw Error(name + ": " + std::to_string(labels.ndim() == 1 ? labels.shape(0) : -1) + " labels for " + std::to_string(images.shape(0)) + " images");
  if (images.shape(0) == 0) throw Error(name + ": no images");
  nn::Dataset d;
  d.name = name;
  d.preprocessing.format = "arrays";
  d.preprocessing.scale = "1";
  d.count = images.shape(0);
  d.channels = images.ndim() == 4 ? images.shape(1) : 1;
  d.height = images.shape(images.ndim() - 2);
  d.width = images.shape(images.ndim() - 1);
  d.images.assign(images.data(), images.data() + images.size());
  int highest = 1;
  for (py::ssize_t k = 0; k < labels.shape(0); ++k) {
    const std::int64_t l = labels.data()[k];
    if (l < 0 || l > 255) throw Error(name + ": label " + std::to_string(l) + " at index " + std::to_string(k) + " is not a class 0-255");
    d.labels.push_back(static_cast<std::uint8_t>(l));
    highest = std::max(highest, static_cast<int>(l));
  }
  d.classes = std::max(10, highest + 1);
  return d;
}

}  // namespace

PYBIND11_MODULE(_faultline, module) {
  module.doc() = "Faultline's libraries (the binding behind the faultline package; use the package)";
  static py::exception<Error> error(module, "Error", PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      error(e.what());
    }
  });

  py::class_<hwcfg::HardwareConfig>(module, "HardwareConfig", "A validated hardware description (hwcfg/README.md)")
      .def_readonly("name", &hwcfg::HardwareConfig::name)
      .def_readonly("source", &hwcfg::HardwareConfig::source)
      .def_readonly("description", &hwcfg::HardwareConfig::description)
      .def("to_yaml", &hwcfg::HardwareConfig::to_yaml, "The description with every parameter (defaults filled in)")
      .def_property_readonly("units", [](const hwcfg::HardwareConfig& c) {
        py::list units;
        for (const auto& u : c.units) {
          py::dict d;
          d["name"] = u.name;
          d["kind"] = u.kind;
          py::dict params;
          for (const auto& [k, v] : u.params.numbers()) params[py::str(k)] = v;
          for (const auto& [k, v] : u.params.choices()) params[py::str(k)] = v;
          d["params"] = params;
          d["impl"] = u.impl;
          units.append(d);
        }
        return units;
      })
      .def("unit_for", [](const hwcfg::HardwareConfig& c, const std::string& layer, const std::string& op) -> py::object {
        const hwcfg::HardwareUnit* u = c.unit_for(layer, op);
        return u ? py::cast(u->name) : py::none();
      }, py::arg("layer"), py::arg("op_type"));

  module.def("load_hardware", &hardware_from, py::arg("spec"), py::arg("overrides"), py::arg("is_text"), py::arg("source"));

  module.def("hw_kinds", [] {
    py::list kinds;
    for (const auto& name : models::registered_substrates()) {
      const models::SubstrateKind* k = models::find_substrate_kind(name);
      py::dict d;
      d["name"] = k->name;
      d["doc"] = k->doc;
      d["params"] = param_list(k->params);
      d["timing"] = param_list(k->timing);
      d["energy"] = param_list(k->energy);
      d["schedule"] = param_list(k->schedule);
      d["cycle_model"] = k->capabilities.cycle_model;
      d["rtl_binding"] = k->capabilities.rtl_binding;
      d["training_noise"] = k->capabilities.training_noise;
      d["summary_counters"] = k->summary_counters;
      kinds.append(d);
    }
    return kinds;
  });
  module.def("hw_presets", &hwcfg::hardware_presets);

  py::class_<nn::Dataset>(module, "Dataset", "Labelled images (N x C x H x W float32, labels 0..255)")
      .def_readonly("name", &nn::Dataset::name)
      .def_readonly("count", &nn::Dataset::count)
      .def_readonly("classes", &nn::Dataset::classes)
      .def_readonly("class_names", &nn::Dataset::class_names)
      .def_property_readonly("shape", [](const nn::Dataset& d) { return py::make_tuple(d.count, d.channels, d.height, d.width); },
                             "(N, C, H, W)")
      .def_property_readonly("images", [](py::object self) {
        const nn::Dataset& d = py::cast<const nn::Dataset&>(self);
        // A view of the dataset's storage, kept alive by the dataset object.
        py::array_t<float> view({d.count, d.channels, d.height, d.width}, d.images.data(), self);
        view.attr("setflags")(py::arg("write") = false);  // the dataset is shared: no writes through the view
        return view;
      }, "The preprocessed images, N x C x H x W float32: a read-only view of the dataset's storage (no copy)")
      .def_property_readonly("labels", [](py::object self) {
        const nn::Dataset& d = py::cast<const nn::Dataset&>(self);
        py::array_t<std::uint8_t> view({d.count}, d.labels.data(), self);
        view.attr("setflags")(py::arg("write") = false);
        return view;
      }, "The labels (uint8), a view")
      .def_property_readonly("preprocessing", [](const nn::Dataset& d) {
        nn::JsonWriter j;
        d.preprocessing.write_json(j);
        return j.str();
      }, "How the images were read (format, layout, scale, normalize) as the result JSON records it");
  module.def("load_data", [](const std::string& spec, bool train, const std::string& layout, const std::string& scale, const std::string& normalize) {
    return released([&] { return nn::load_dataset(spec, train, nn::parse_data_options(layout, scale, normalize)); });
  }, py::arg("spec"), py::arg("train"), py::arg("layout"), py::arg("scale"), py::arg("normalize"));
  module.def("dataset_from_arrays", &dataset_from_arrays, py::arg("images"), py::arg("labels"), py::arg("name"));

  py::class_<Model>(module, "Model", "An ONNX model loaded by the NN engine")
      .def(py::init([](const std::string& path) {
        auto model = std::make_unique<Model>();
        model->graph = nn::load_onnx(path);
        model->path = path;
        return model;
      }), py::arg("path"))
      .def_readonly("path", &Model::path, "The file the model was read from")
      .def_property_readonly("layers", [](const Model& m) {
        py::list l;
        for (const nn::LinearLayer* layer : m.graph->layers()) {
          py::dict d;
          d["name"] = layer->name();
          d["op_type"] = layer->op_type();
          d["index"] = layer->index();
          d["blocks"] = layer->blocks().size();
          l.append(d);
        }
        return l;
      }, "The Conv/Gemm/MatMul layers hardware runs, in execution order: name, op_type, index, blocks")
      .def_property_readonly("inputs", [](const Model& m) {
        py::list l;
        for (const auto& i : m.graph->inputs()) l.append(py::make_tuple(i.name, i.shape_known ? py::cast(i.shape) : py::none()));
        return l;
      }, "The declared inputs: (name, shape with -1 for free dimensions, or None)")
      .def("infer", [](Model& m, const std::vector<FloatArray>& inputs, const hwcfg::HardwareConfig& config, std::uint64_t seed, std::uint64_t trial) {
        std::vector<nn::Tensor> tensors;
        for (const auto& a : inputs) tensors.push_back(to_tensor(a));
        if (tensors.size() != m.graph->inputs().size())
          throw Error(m.path + ": the model has " + std::to_string(m.graph->inputs().size()) + " input(s), " + std::to_string(tensors.size()) + " given");
        std::vector<nn::Tensor> outputs = released([&] {
          std::lock_guard<std::mutex> lock(m.busy);
          studies::calibrate(config, *m.graph, [&](std::int64_t) { (void)m.graph->run(tensors); });
          studies::program(config, *m.graph, models::ProgramContext{seed, trial});
          return m.graph->run(std::move(tensors));
        });
        py::list out;
        for (auto& t : outputs) {
          if (t.dtype() != nn::DType::Float32) {
            std::vector<float> v(t.int_storage().begin(), t.int_storage().end());
            out.append(to_numpy(std::move(v), t.shape()));
          } else {
            std::vector<std::int64_t> shape = t.shape();
            out.append(to_numpy(std::move(t.float_storage()), shape));
          }
        }
        return out;
      }, py::arg("inputs"), py::arg("hw"), py::arg("seed"), py::arg("trial"));

  module.def("evaluate", [](Model& m, const hwcfg::HardwareConfig& hw, const nn::Dataset& data, int trials, std::uint64_t seed,
                       const std::string& level, std::int64_t limit, int threads, bool layer_errors, bool verbose_table) {
    if (level != "functional" && level != "cycle" && level != "rtl") throw Error("level: must be functional, cycle or rtl, got '" + level + "'");
    if (trials < 1 || trials > 1000000) throw Error("trials: must be between 1 and 1000000, got " + std::to_string(trials));
    if (threads < 1 || threads > 1024) throw Error("threads: must be between 1 and 1024, got " + std::to_string(threads));
    if (limit < 0) throw Error("limit: must not be negative");
    if (level != "functional" && systemc_used)
      throw Error("level " + level + ": the cycle and RTL levels run once per Python process (SystemC elaborates one simulation); start a new process");
    studies::StudyOptions so;
    so.trials = trials;
    so.seed = seed;
    so.level = level;
    so.eval.limit = limit;
    so.eval.threads = threads;
    so.layer_errors = layer_errors;
    so.data_preprocessing = data.preprocessing;
    std::vector<hwcfg::HardwareConfig> configs = {hw};
    return released([&] {
      std::lock_guard<std::mutex> lock(m.busy);
      std::unique_ptr<sim::CycleSimulation> simulation;
      std::unique_ptr<sim::RtlSimulation> rtl;
      if (level == "cycle") {
        systemc_used = true;
        simulation = studies::attach_cycle_level(configs, *m.graph, "");
        so.after_evaluate = [&simulation] { simulation->run_pending(); };
      } else if (level == "rtl") {
        systemc_used = true;
        rtl = studies::attach_rtl_level(configs, *m.graph, "", false);
        so.eval.threads = 1;
      }
      const studies::StudyResult r = studies::run_study(*m.graph, configs[0], data, so);
      const std::string table = studies::study_table(r, verbose_table) + studies::study_timing_table(r);
      return std::make_pair(studies::study_json(r, m.path, data.name, so), table);
    });
  }, py::arg("model"), py::arg("hw"), py::arg("data"), py::arg("trials"), py::arg("seed"), py::arg("level"), py::arg("limit"),
     py::arg("threads"), py::arg("layer_errors"), py::arg("verbose"));

  module.def("sweep", [](Model& m, const nn::Dataset& data, const std::string& hw, const std::vector<std::string>& sets,
                    const std::vector<std::string>& axes, const std::string& walking, const std::string& sigma, const std::string& layers,
                    double tolerance, int max_bisections, int trials, std::uint64_t seed, std::int64_t limit, int threads,
                    const std::string& out, std::function<void(py::dict)> on_row) {
    studies::SweepOptions o;
    o.model = m.path;
    o.data = data.name;
    o.hw = hw;
    o.sets = sets;
    for (const auto& a : axes) o.axes.push_back(studies::parse_sweep_axis(a));
    o.walking = walking;
    o.sigma = sigma;
    o.layers = layers;
    o.tolerance = tolerance;
    o.max_bisections = max_bisections;
    o.study.trials = trials;
    o.study.seed = seed;
    o.study.eval.limit = limit;
    o.study.eval.threads = threads;
    o.study.data_preprocessing = data.preprocessing;
    o.out = out;
    if (trials < 1 || trials > 1000000) throw Error("trials: must be between 1 and 1000000, got " + std::to_string(trials));
    if (threads < 1 || threads > 1024) throw Error("threads: must be between 1 and 1024, got " + std::to_string(threads));
    if (limit < 0) throw Error("limit: must not be negative");
    hwcfg::load_hardware_config(o.hw, o.sets);
    return released([&] {
      std::lock_guard<std::mutex> lock(m.busy);
      studies::LocalRunner runner;
      const studies::SweepOutcome r = studies::run_sweep(*m.graph, data, o, runner, [&](const studies::SweepRow& row, bool resumed) {
        if (!on_row) return;
        py::gil_scoped_acquire gil;
        py::dict d;
        d["index"] = row.index;
        d["key"] = row.key;
        d["role"] = row.role;
        d["layer"] = row.layer;
        d["sigma"] = row.sigma;
        d["accuracy"] = row.result.mean;
        d["std"] = row.result.stddev;
        d["resumed"] = resumed;
        on_row(d);
      });
      return studies::sweep_json(r, o);
    });
  }, py::arg("model"), py::arg("data"), py::arg("hw"), py::arg("sets"), py::arg("axes"), py::arg("walking"), py::arg("sigma"),
     py::arg("layers"), py::arg("tolerance"), py::arg("max_bisections"), py::arg("trials"), py::arg("seed"), py::arg("limit"),
     py::arg("threads"), py::arg("out"), py::arg("on_row"));

  module.def("trace", [](Model& m, const hwcfg::HardwareConfig& hw, const nn::Dataset& data, const std::string& out, std::int64_t limit,
                    std::int64_t max_samples, std::uint64_t seed, int threads, bool fit, const std::string& shape) {
    if (shape != "quantiles" && shape != "gaussian") throw Error("fit_shape: must be quantiles or gaussian, got '" + shape + "'");
    if (max_samples < 1 || max_samples > 100000000) throw Error("max_samples: must be between 1 and 100000000");
    if (limit < 0) throw Error("limit: must not be negative");
    if (threads < 1 || threads > 1024) throw Error("threads: must be between 1 and 1024, got " + std::to_string(threads));
    return released([&] {
      std::lock_guard<std::mutex> lock(m.busy);
      studies::StudyOptions so;
      so.eval.limit = limit;
      so.eval.threads = threads;
      so.seed = seed;
      const traces::Trace trace = traces::record_trace(*m.graph, hw, data, so, max_samples, m.path, data.name);
      const traces::TraceMeta& meta = trace.meta;
      const std::vector<traces::LayerTrace>& layers = trace.layers;
      traces::write_trace(out, meta, layers);
      nn::JsonWriter j;
      j.begin_object();
      j.key("accuracy").value(meta.accuracy);
      j.key("images").value(static_cast<long long>(meta.images));
      j.key("folder").value(out);
      if (fit) {
        std::vector<traces::LayerFit> fits;
        for (const auto& l : layers) fits.push_back(traces::fit_layer(l));
        const std::string yaml = traces::fitted_hwcfg_yaml(fits, meta, shape);
        const std::string fits_text = traces::fits_json(fits, meta);
        write_file_atomically(out + "/noise_from_trace.yaml", yaml);
        write_file_atomically(out + "/noise_fit.json", fits_text);
        j.key("noise_from_trace").value(out + "/noise_from_trace.yaml");
        j.key("fits").raw(fits_text);
      }
      j.end_object();
      return j.str();
    });
  }, py::arg("model"), py::arg("hw"), py::arg("data"), py::arg("out"), py::arg("limit"), py::arg("max_samples"), py::arg("seed"),
     py::arg("threads"), py::arg("fit"), py::arg("fit_shape"));

  module.def("create_substrate", [](const std::string& kind, const py::dict& params) {
    const models::SubstrateKind* k = models::find_substrate_kind(kind);
    if (!k) throw Error("kind '" + kind + "' is not registered");
    return std::make_unique<PySubstrate>(kind, params_from(*k, params));
  }, py::arg("kind"), py::arg("params"));
  module.def("substrate_for_unit", [](const hwcfg::HardwareConfig& c, const std::string& unit, const std::string& layer) {
    for (const auto& u : c.units)
      if (u.name == unit) return std::make_unique<PySubstrate>(u.kind, u.params_for(layer));
    throw Error(c.source + ": no unit '" + unit + "'");
  }, py::arg("hw"), py::arg("unit"), py::arg("layer"));
  py::class_<PySubstrate>(module, "Substrate", "One piece of hardware of a kind: program(weights), then multiply(x)")
      .def("program", &PySubstrate::program, py::arg("weights"), py::arg("name"), py::arg("op_type"), py::arg("index"), py::arg("seed"),
           py::arg("trial"), py::arg("input_range"), py::arg("output_range"))
      .def("multiply", &PySubstrate::multiply, py::arg("x"), py::arg("first_row"), py::arg("rows_per_sample"), py::arg("threads"))
      .def("counters", &PySubstrate::counters)
      .def_property_readonly("kind", &PySubstrate::kind)
      .def_property_readonly("inputs", &PySubstrate::inputs)
      .def_property_readonly("outputs", &PySubstrate::outputs);

  py::class_<HardwareLayer>(module, "HardwareLayer", "A Gemm or Conv layer on a hardware description (for faultline.torch)")
      .def(py::init<const std::string&, const std::string&, int, const hwcfg::HardwareConfig&, std::vector<std::int64_t>,
                    std::vector<std::int64_t>, std::vector<std::int64_t>, std::int64_t>(),
           py::arg("op_type"), py::arg("name"), py::arg("index"), py::arg("hw"), py::arg("strides"), py::arg("pads"), py::arg("dilations"),
           py::arg("group"))
      .def("set_weights", &HardwareLayer::set_weights, py::arg("weights"), py::arg("bias"))
      .def("program", &HardwareLayer::program, py::arg("seed"), py::arg("trial"))
      .def("forward", &HardwareLayer::forward, py::arg("x"), py::arg("first_sample"), py::arg("threads"))
      .def("start_calibration", &HardwareLayer::start_calibration)
      .def("finish_calibration", &HardwareLayer::finish_calibration)
      .def("counters", &HardwareLayer::counters)
      .def_property_readonly("unit", &HardwareLayer::unit)
      .def_property_readonly("kind", &HardwareLayer::kind)
      .def_property_readonly("needs_calibration", &HardwareLayer::needs_calibration);
}
