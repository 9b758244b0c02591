// kotsu/export/onnx_graph: builds one ONNX model (a graph of standard operators with the weights as
// initializers) and writes it, checked by the ONNX checker (libonnx, Debian libonnx-dev) and atomically.
// The protobuf types stay inside onnx_graph.cpp, so an exporter sees only names and tensors:
//   OnnxGraph g("bert", 17);
//   g.input("input_ids", OnnxType::Int64, {"batch", "sequence"});
//   auto h = g.op("Gather", {g.weight("embeddings", w), "input_ids"});
//   g.output(g.op("MatMul", {h, g.weight("w", w2)}, {}, "logits"), OnnxType::Float, {"batch", 2});
// Weights are stored as float32 (what every runtime executes); an int64 or float constant that appears
// twice is stored once. Operator names and semantics are the ONNX spec's (onnx/docs/Operators.md).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace kotsu {

enum class OnnxType { Float = 1, Int64 = 7, Bool = 9 };  // TensorProto.DataType values

// A node attribute: an int, a float, a string, a list of ints or floats, or a tensor (ConstantOfShape).
struct OnnxAttr {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>, torch::Tensor> value;
};

// A dimension of a graph input or output: a fixed size or a symbolic name ("batch").
using OnnxDim = std::variant<int64_t, std::string>;

class OnnxGraph {
 public:
  OnnxGraph(const std::string& name, int64_t opset);
  ~OnnxGraph();
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  void input(const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims);
  // Declares `value` (a node's output) as the graph output `name` (renaming the node's output).
  void output(const std::string& value, const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims);
  // An initializer holding `t` as float32 (any float dtype) or int64 (integer dtypes); returns its name.
  std::string weight(const std::string& name, const torch::Tensor& t);
  std::string ints(const std::vector<int64_t>& values);  // a 1-D int64 constant
  std::string scalar(float value);                        // a 0-D float constant
  std::string int_scalar(int64_t value);                  // a 0-D int64 constant
  // Adds a node; returns the name of its (first) output, `hint` made unique. outputs > 1: names are
  // "<first>", "<first>_1", ... (see outputs_of).
  std::string op(const std::string& type, const std::vector<std::string>& inputs, const std::vector<OnnxAttr>& attrs = {},
                 const std::string& hint = "", int outputs = 1);
  static std::string output_name(const std::string& first, int i) { return i == 0 ? first : first + "_" + std::to_string(i); }
  void metadata(const std::string& key, const std::string& value);
  int64_t parameters() const { return parameters_; }  // elements in float initializers
  size_t nodes() const;

  // Runs the ONNX checker (with shape inference) and writes the model to `path` atomically; a failed
  // check is a kotsu::Error naming `path` and the checker's message (an exporter bug, never written).
  void save(const std::string& path);
  // The serialized model (for tests).
  std::string serialize() const;

 private:
  std::string unique(const std::string& hint);
  std::string constant(const std::string& key, const std::string& hint, const torch::Tensor& value);  // stored once per key
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t parameters_ = 0;
};

}  // namespace kotsu
