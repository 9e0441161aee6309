#include "nn/onnx_io.h"

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <onnx/onnx_pb.h>

#include "models/files.h"

namespace faultline::nn {
namespace {


const char* onnx_type_name(int type) {
  switch (type) {
    case onnx::TensorProto::FLOAT: return "FLOAT";
    case onnx::TensorProto::UINT8: return "UINT8";
    case onnx::TensorProto::INT8: return "INT8";
    case onnx::TensorProto::UINT16: return "UINT16";
    case onnx::TensorProto::INT16: return "INT16";
    case onnx::TensorProto::INT32: return "INT32";
    case onnx::TensorProto::INT64: return "INT64";
    case onnx::TensorProto::STRING: return "STRING";
    case onnx::TensorProto::BOOL: return "BOOL";
    case onnx::TensorProto::FLOAT16: return "FLOAT16";
    case onnx::TensorProto::DOUBLE: return "DOUBLE";
    case onnx::TensorProto::BFLOAT16: return "BFLOAT16";
    default: return "UNKNOWN";
  }
}

// Maps an ONNX element type to the engine's: FLOAT stays float32; the integer types that shape
// arithmetic uses (INT64, INT32, BOOL) are held exactly as int64.
DType engine_dtype(int type, const std::string& where) {
  switch (type) {
    case onnx::TensorProto::FLOAT: return DType::Float32;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::BOOL: return DType::Int64;
    default: throw UnsupportedError(where + ": data type " + onnx_type_name(type) + " is not supported (FLOAT, INT64, INT32, BOOL are)");
  }
}

template <typename T>
std::vector<T> raw_values(const std::string& raw, std::int64_t count, const std::string& where) {
  if (static_cast<std::int64_t>(raw.size()) != count * static_cast<std::int64_t>(sizeof(T)))
    throw Error(where + ": raw_data holds " + std::to_string(raw.size()) + " bytes, " + std::to_string(count) + " elements need " +
                std::to_string(count * static_cast<std::int64_t>(sizeof(T))));
  std::vector<T> values(static_cast<std::size_t>(count));
  if (count > 0) std::memcpy(values.data(), raw.data(), raw.size());  // ONNX raw_data is little-endian, as is x86/ARM
  return values;
}

Tensor tensor_from_proto(const onnx::TensorProto& proto, const std::string& where) {
  if (proto.data_location() == onnx::TensorProto::EXTERNAL)
    throw UnsupportedError(where + ": tensor '" + proto.name() + "' uses external data, which is not supported");
  Shape shape(proto.dims().begin(), proto.dims().end());
  for (auto d : shape) if (d < 0) throw Error(where + ": tensor '" + proto.name() + "' has a negative dimension");
  const std::int64_t count = shape_numel(shape);
  const std::string what = where + ": tensor '" + proto.name() + "'";
  const DType dtype = engine_dtype(proto.data_type(), what);
  auto check = [&](std::int64_t have) {
    if (have != count) throw Error(what + " has " + std::to_string(have) + " values for shape " + shape_string(shape));
  };
  if (dtype == DType::Float32) {
    if (proto.has_raw_data()) return Tensor::floats(shape, raw_values<float>(proto.raw_data(), count, what));
    check(proto.float_data_size());
    return Tensor::floats(shape, std::vector<float>(proto.float_data().begin(), proto.float_data().end()));
  }
  std::vector<std::int64_t> values;
  switch (proto.data_type()) {
    case onnx::TensorProto::INT64:
      if (proto.has_raw_data()) values = raw_values<std::int64_t>(proto.raw_data(), count, what);
      else { check(proto.int64_data_size()); values.assign(proto.int64_data().begin(), proto.int64_data().end()); }
      break;
    case onnx::TensorProto::INT32:
      if (proto.has_raw_data()) { auto v = raw_values<std::int32_t>(proto.raw_data(), count, what); values.assign(v.begin(), v.end()); }
      else { check(proto.int32_data_size()); values.assign(proto.int32_data().begin(), proto.int32_data().end()); }
      break;
    default:  // BOOL: one byte per element in raw_data, int32_data otherwise
      if (proto.has_raw_data()) { auto v = raw_values<std::uint8_t>(proto.raw_data(), count, what); values.assign(v.begin(), v.end()); }
      else { check(proto.int32_data_size()); values.assign(proto.int32_data().begin(), proto.int32_data().end()); }
      for (auto& v : values) v = v != 0;
      break;
  }
  return Tensor::ints(shape, std::move(values));
}

Attribute attribute_from_proto(const onnx::AttributeProto& a, const std::string& where) {
  Attribute out;
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT: out.kind = Attribute::Kind::Float; out.f = a.f(); break;
    case onnx::AttributeProto::INT: out.kind = Attribute::Kind::Int; out.i = a.i(); break;
    case onnx::AttributeProto::STRING: out.kind = Attribute::Kind::String; out.s = a.s(); break;
    case onnx::AttributeProto::FLOATS: out.kind = Attribute::Kind::Floats; out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case onnx::AttributeProto::INTS: out.kind = Attribute::Kind::Ints; out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case onnx::AttributeProto::STRINGS: out.kind = Attribute::Kind::Strings; out.strings.assign(a.strings().begin(), a.strings().end()); break;
    case onnx::AttributeProto::TENSOR: out.kind = Attribute::Kind::Tensor; out.tensor = tensor_from_proto(a.t(), where + " attribute '" + a.name() + "'"); break;
    default: out.kind = Attribute::Kind::Other; break;
  }
  return out;
}

}  // namespace

std::unique_ptr<Graph> parse_onnx(const std::string& bytes, const std::string& source) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw Error(source + ": not an ONNX model (protobuf parsing failed)");
  if (!model.has_graph() || model.ir_version() <= 0)
    throw Error(source + ": not an ONNX model (no graph or no IR version)");
  int opset = 0;
  for (const auto& imp : model.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx") opset = static_cast<int>(imp.version());
  // IR version 1/2 models without opset_import mean opset 1; from IR version 3 on the list is
  // required (onnx/onnx.proto), so its absence means a file cut off (PyTorch writes it last).
  if (model.opset_import_size() == 0) {
    if (model.ir_version() >= 3)
      throw Error(source + ": no opset_import although IR version " + std::to_string(model.ir_version()) + " requires it (truncated file?)");
    opset = 1;
  }
  if (opset == 0) throw Error(source + ": opset_import does not name the default domain (ai.onnx)");
  if (opset < kMinOpset || opset > kMaxOpset)
    throw UnsupportedError(source + ": opset " + std::to_string(opset) + " of the default domain is not supported (supported: " +
                           std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")");
  const onnx::GraphProto& g = model.graph();
  if (g.sparse_initializer_size() > 0) throw UnsupportedError(source + ": sparse initializers are not supported");

  auto graph = std::make_unique<Graph>();
  graph->source = source;
  graph->opset = opset;
  std::set<std::string> initializers;
  for (const auto& t : g.initializer()) {
    if (t.name().empty()) throw Error(source + ": an initializer has no name");
    if (initializers.count(t.name())) throw Error(source + ": initializer '" + t.name() + "' is defined twice");
    graph->add_constant(t.name(), tensor_from_proto(t, source));
    initializers.insert(t.name());
  }
  for (const auto& in : g.input()) {
    if (initializers.count(in.name())) continue;  // IR < 4 lists initializers among the inputs
    ValueInfo info;
    info.name = in.name();
    const std::string what = source + ": input '" + in.name() + "'";
    if (!in.type().has_tensor_type()) throw UnsupportedError(what + " is not a tensor");
    info.dtype = engine_dtype(in.type().tensor_type().elem_type(), what);
    if (in.type().tensor_type().has_shape()) {
      info.shape_known = true;
      for (const auto& d : in.type().tensor_type().shape().dim()) info.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
    graph->add_input(info);
  }
  for (int n = 0; n < g.node_size(); ++n) {
    const onnx::NodeProto& node = g.node(n);
    NodeSpec spec;
    spec.name = node.name().empty() ? (node.output_size() > 0 ? node.output(0) : "#" + std::to_string(n)) : node.name();
    spec.op_type = node.op_type();
    spec.opset = opset;
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      spec.unsupported("operator domain '" + node.domain() + "' is not supported");
    // Every operator Faultline runs has a first output (found by fuzzing: a node without outputs).
    if (node.output_size() == 0) throw Error(source + ": " + spec.where() + " has no outputs");
    spec.inputs.assign(node.input().begin(), node.input().end());
    spec.outputs.assign(node.output().begin(), node.output().end());
    for (const auto& a : node.attribute()) {
      if (a.name().empty()) spec.fail("an attribute has no name");
      spec.attributes[a.name()] = attribute_from_proto(a, source + ": " + spec.where());
    }
    // Prefix errors from building the operator with the file name.
    try {
      if (!op_supported(spec.op_type)) spec.unsupported("unsupported operator");
    } catch (const UnsupportedError& e) {
      throw UnsupportedError(source + ": " + e.what());
    }
    graph->add_node(std::move(spec));
  }
  for (const auto& out : g.output()) graph->add_output(out.name());
  try {
    graph->finalize();
  } catch (const UnsupportedError& e) {
    const std::string msg = e.what();
    throw UnsupportedError(msg.rfind(source, 0) == 0 ? msg : source + ": " + msg);
  } catch (const Error& e) {
    const std::string msg = e.what();
    throw Error(msg.rfind(source, 0) == 0 ? msg : source + ": " + msg);
  }
  return graph;
}

std::unique_ptr<Graph> load_onnx(const std::string& path) { return parse_onnx(read_input_file(path), path); }

std::string replace_initializers(const std::string& bytes, const std::string& source,
                                 const std::function<const Tensor*(const std::string&)>& value_of) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) throw Error(source + ": not an ONNX model (protobuf parsing failed)");
  for (onnx::TensorProto& t : *model.mutable_graph()->mutable_initializer()) {
    const Tensor* value = value_of(t.name());
    if (value == nullptr) continue;
    if (t.data_type() != onnx::TensorProto::FLOAT || value->dtype() != DType::Float32)
      throw std::logic_error("replace_initializers: '" + t.name() + "' is not a float32 initializer");
    std::int64_t count = 1;
    for (auto d : t.dims()) count *= d;
    if (count != value->numel()) throw std::logic_error("replace_initializers: '" + t.name() + "' changed its size");
    t.clear_float_data();
    t.set_raw_data(std::string(reinterpret_cast<const char*>(value->f()), static_cast<std::size_t>(value->numel()) * sizeof(float)));
  }
  std::string out;
  if (!model.SerializeToString(&out)) throw std::runtime_error("ONNX serialization failed");
  return out;
}

Tensor load_tensor_pb(const std::string& path) {
  onnx::TensorProto proto;
  if (!proto.ParseFromString(read_input_file(path))) throw Error(path + ": not an ONNX TensorProto (protobuf parsing failed)");
  return tensor_from_proto(proto, path);
}

// ---------------------------------------------------------------------------------------------
// Export

struct OnnxModelBuilder::Impl {
  onnx::ModelProto model;
};

namespace {
void fill_value_info(onnx::ValueInfoProto* info, const std::string& name, const Shape& shape) {
  info->set_name(name);
  auto* tensor = info->mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto::FLOAT);
  auto* s = tensor->mutable_shape();
  for (auto d : shape) {
    auto* dim = s->add_dim();
    if (d < 0) dim->set_dim_param("batch");
    else dim->set_dim_value(d);
  }
}
}  // namespace

OnnxModelBuilder::OnnxModelBuilder(std::string graph_name, int opset) : impl_(std::make_unique<Impl>()) {
  // IR version 8 is what ONNX 1.12 writes for opsets up to 17 (onnx/helper.py VERSION_TABLE).
  impl_->model.set_ir_version(8);
  impl_->model.set_producer_name("faultline");
  impl_->model.set_producer_version("0.1.0");
  auto* op = impl_->model.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  impl_->model.mutable_graph()->set_name(std::move(graph_name));
}

OnnxModelBuilder::~OnnxModelBuilder() = default;

void OnnxModelBuilder::add_input(const std::string& name, const Shape& shape) {
  fill_value_info(impl_->model.mutable_graph()->add_input(), name, shape);
}

void OnnxModelBuilder::add_output(const std::string& name, const Shape& shape) {
  fill_value_info(impl_->model.mutable_graph()->add_output(), name, shape);
}

void OnnxModelBuilder::add_initializer(const std::string& name, const Tensor& value) {
  auto* t = impl_->model.mutable_graph()->add_initializer();
  t->set_name(name);
  for (auto d : value.shape()) t->add_dims(d);
  if (value.dtype() == DType::Float32) {
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(value.f()), static_cast<std::size_t>(value.numel()) * sizeof(float)));
  } else {
    t->set_data_type(onnx::TensorProto::INT64);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(value.i()), static_cast<std::size_t>(value.numel()) * sizeof(std::int64_t)));
  }
}

void OnnxModelBuilder::add_node(const std::string& op_type, const std::string& name, const std::vector<std::string>& inputs,
                                const std::vector<std::string>& outputs, const std::map<std::string, Attribute>& attributes) {
  auto* node = impl_->model.mutable_graph()->add_node();
  node->set_op_type(op_type);
  node->set_name(name);
  for (const auto& in : inputs) node->add_input(in);
  for (const auto& out : outputs) node->add_output(out);
  for (const auto& [key, value] : attributes) {
    auto* a = node->add_attribute();
    a->set_name(key);
    switch (value.kind) {
      case Attribute::Kind::Float: a->set_type(onnx::AttributeProto::FLOAT); a->set_f(value.f); break;
      case Attribute::Kind::Int: a->set_type(onnx::AttributeProto::INT); a->set_i(value.i); break;
      case Attribute::Kind::String: a->set_type(onnx::AttributeProto::STRING); a->set_s(value.s); break;
      case Attribute::Kind::Ints: a->set_type(onnx::AttributeProto::INTS); for (auto v : value.ints) a->add_ints(v); break;
      case Attribute::Kind::Floats: a->set_type(onnx::AttributeProto::FLOATS); for (auto v : value.floats) a->add_floats(v); break;
      default: throw std::logic_error("OnnxModelBuilder: attribute kind not writable: " + key);
    }
  }
}

void OnnxModelBuilder::set_doc(const std::string& doc) { impl_->model.set_doc_string(doc); }

std::string OnnxModelBuilder::serialize() const {
  std::string bytes;
  if (!impl_->model.SerializeToString(&bytes)) throw std::runtime_error("ONNX serialization failed");
  return bytes;
}

void OnnxModelBuilder::save(const std::string& path) const {
  write_file_atomically(path, serialize());
}

Attribute int_attribute(std::int64_t value) { Attribute a; a.kind = Attribute::Kind::Int; a.i = value; return a; }
Attribute float_attribute(float value) { Attribute a; a.kind = Attribute::Kind::Float; a.f = value; return a; }
Attribute ints_attribute(std::vector<std::int64_t> values) { Attribute a; a.kind = Attribute::Kind::Ints; a.ints = std::move(values); return a; }

}  // namespace faultline::nn
