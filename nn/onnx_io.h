// ONNX import and export with Debian's libonnx/protobuf. Protobuf types stay inside
// onnx_io.cpp; the rest of the engine sees Graph and Tensor only.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/graph.h"
#include "nn/op.h"
#include "nn/tensor.h"

namespace faultline::nn {

// Opsets of the default domain the importer accepts.
// Opsets 9 to 17 are the supported range; older models load where the operators they use kept
// their meaning (operators check the opset where it changed).
constexpr int kMinOpset = 1;
constexpr int kMaxOpset = 17;

// Loads an ONNX model file into a finalized graph (not yet programmed: call Graph::program).
// Malformed files, unsupported opsets, operators, attributes and data types are errors that
// name the file and the node.
std::unique_ptr<Graph> load_onnx(const std::string& path);
std::unique_ptr<Graph> parse_onnx(const std::string& bytes, const std::string& source);

// The model `bytes` with the float initializers for which `value_of(name)` gives a tensor
// replaced by it (same element count; raw little-endian data). Everything else stays as it was.
std::string replace_initializers(const std::string& bytes, const std::string& source,
                                 const std::function<const Tensor*(const std::string&)>& value_of);

// Reads a serialized ONNX TensorProto (the `.pb` files of ONNX test data sets).
Tensor load_tensor_pb(const std::string& path);

// Writes models the engine builds (the trainer's networks) as ONNX.
class OnnxModelBuilder {
 public:
  explicit OnnxModelBuilder(std::string graph_name, int opset = 13);
  ~OnnxModelBuilder();
  OnnxModelBuilder(const OnnxModelBuilder&) = delete;
  OnnxModelBuilder& operator=(const OnnxModelBuilder&) = delete;

  // Shape dims < 0 are written as the symbolic dimension "batch".
  void add_input(const std::string& name, const Shape& shape);
  void add_output(const std::string& name, const Shape& shape);
  void add_initializer(const std::string& name, const Tensor& value);
  void add_node(const std::string& op_type, const std::string& name, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, const std::map<std::string, Attribute>& attributes = {});
  void set_doc(const std::string& doc);

  std::string serialize() const;
  // Writes the model; throws faultline::Error naming the file when it cannot be written.
  void save(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

Attribute int_attribute(std::int64_t value);
Attribute float_attribute(float value);
Attribute ints_attribute(std::vector<std::int64_t> values);

}  // namespace faultline::nn
