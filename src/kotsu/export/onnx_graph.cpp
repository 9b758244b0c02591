#include "kotsu/export/onnx_graph.hpp"

// Debian's libonnx is built with the ONNX-ML protos in namespace onnx; these must match it.
#define ONNX_ML 1
#define ONNX_NAMESPACE onnx
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/torch.h>

#include <cstring>
#include <map>
#include <set>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

struct OnnxGraph::Impl {
  onnx::ModelProto model;
  onnx::GraphProto* graph = nullptr;
  std::set<std::string> names;
  std::map<std::string, std::string> constants;  // content key -> initializer name
};

OnnxGraph::OnnxGraph(const std::string& name, int64_t opset) : impl_(std::make_unique<Impl>()) {
  auto& m = impl_->model;
  m.set_ir_version(onnx::IR_VERSION);
  m.set_producer_name("kotsu");
  m.set_producer_version("0.1");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  impl_->graph = m.mutable_graph();
  impl_->graph->set_name(name);
}

OnnxGraph::~OnnxGraph() = default;

std::string OnnxGraph::unique(const std::string& hint) {
  std::string base = hint.empty() ? "t" : hint;
  std::string n = base;
  for (int i = 1; impl_->names.count(n); ++i) n = base + "_" + std::to_string(i);
  impl_->names.insert(n);
  return n;
}

namespace {
void set_type(onnx::ValueInfoProto* v, OnnxType type, const std::vector<OnnxDim>& dims) {
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(type));
  auto* shape = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) dim->set_dim_value(std::get<int64_t>(d));
    else dim->set_dim_param(std::get<std::string>(d));
  }
}

void fill_tensor(onnx::TensorProto* p, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU);
  if (c.is_floating_point()) {
    c = c.to(torch::kFloat32).contiguous();
    p->set_data_type(onnx::TensorProto::FLOAT);
  } else if (c.scalar_type() == torch::kBool) {
    c = c.contiguous();
    p->set_data_type(onnx::TensorProto::BOOL);
  } else {
    c = c.to(torch::kInt64).contiguous();
    p->set_data_type(onnx::TensorProto::INT64);
  }
  for (int64_t s : c.sizes()) p->add_dims(s);
  p->set_raw_data(std::string(static_cast<const char*>(c.data_ptr()), c.nbytes()));
}
}  // namespace

void OnnxGraph::input(const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims) {
  impl_->names.insert(name);
  set_type(impl_->graph->add_input(), type, dims);
  impl_->graph->mutable_input(impl_->graph->input_size() - 1)->set_name(name);
}

void OnnxGraph::output(const std::string& value, const std::string& name, OnnxType type, const std::vector<OnnxDim>& dims) {
  auto* g = impl_->graph;
  if (value != name) {
    // rename the producing node's output (and any later use, though outputs are declared last)
    if (impl_->names.count(name)) throw Error("onnx", name, "graph output name already used");
    impl_->names.insert(name);
    for (auto& n : *g->mutable_node()) {
      for (auto& o : *n.mutable_output())
        if (o == value) o = name;
      for (auto& i : *n.mutable_input())
        if (i == value) i = name;
    }
  }
  auto* v = g->add_output();
  set_type(v, type, dims);
  v->set_name(name);
}

std::string OnnxGraph::weight(const std::string& name, const torch::Tensor& t) {
  const std::string n = unique(name);
  auto* p = impl_->graph->add_initializer();
  fill_tensor(p, t);
  p->set_name(n);
  if (t.is_floating_point()) parameters_ += t.numel();
  return n;
}

std::string OnnxGraph::constant(const std::string& key, const std::string& hint, const torch::Tensor& value) {
  auto it = impl_->constants.find(key);
  if (it != impl_->constants.end()) return it->second;
  const std::string n = unique(hint);
  auto* p = impl_->graph->add_initializer();
  fill_tensor(p, value);
  p->set_name(n);
  return impl_->constants[key] = n;
}

std::string OnnxGraph::ints(const std::vector<int64_t>& values) {
  std::string key = "i";
  for (int64_t v : values) key.append(1, ':').append(std::to_string(v));  // (+= of a temporary trips a GCC 12 false warning)
  return constant(key, "const_ints", torch::tensor(values, torch::kInt64));
}

std::string OnnxGraph::int_scalar(int64_t value) {
  return constant(std::string("s").append(std::to_string(value)), "const_int", torch::scalar_tensor(value, torch::kInt64));
}

std::string OnnxGraph::scalar(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);  // the key tells -0.0 from 0.0
  return constant(std::string("f").append(std::to_string(bits)), "const_float", torch::scalar_tensor(value, torch::kFloat32));
}

std::string OnnxGraph::op(const std::string& type, const std::vector<std::string>& inputs, const std::vector<OnnxAttr>& attrs,
                          const std::string& hint, int outputs) {
  auto* n = impl_->graph->add_node();
  n->set_op_type(type);
  for (const auto& i : inputs) n->add_input(i);
  const std::string first = unique(hint.empty() ? type : hint);
  n->set_name(first);
  n->add_output(first);
  for (int i = 1; i < outputs; ++i) {
    const std::string o = output_name(first, i);
    impl_->names.insert(o);
    n->add_output(o);
  }
  for (const auto& a : attrs) {
    auto* p = n->add_attribute();
    p->set_name(a.name);
    std::visit([&](const auto& v) {
      using T = std::decay_t<decltype(v)>;
      if constexpr (std::is_same_v<T, int64_t>) {
        p->set_type(onnx::AttributeProto::INT);
        p->set_i(v);
      } else if constexpr (std::is_same_v<T, float>) {
        p->set_type(onnx::AttributeProto::FLOAT);
        p->set_f(v);
      } else if constexpr (std::is_same_v<T, std::string>) {
        p->set_type(onnx::AttributeProto::STRING);
        p->set_s(v);
      } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
        p->set_type(onnx::AttributeProto::INTS);
        for (int64_t x : v) p->add_ints(x);
      } else if constexpr (std::is_same_v<T, std::vector<float>>) {
        p->set_type(onnx::AttributeProto::FLOATS);
        for (float x : v) p->add_floats(x);
      } else {
        p->set_type(onnx::AttributeProto::TENSOR);
        fill_tensor(p->mutable_t(), v);
      }
    }, a.value);
  }
  return first;
}

void OnnxGraph::metadata(const std::string& key, const std::string& value) {
  auto* p = impl_->model.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

size_t OnnxGraph::nodes() const { return static_cast<size_t>(impl_->graph->node_size()); }

std::string OnnxGraph::serialize() const {
  std::string out;
  if (!impl_->model.SerializeToString(&out))
    throw Error("onnx", "model", "protobuf could not serialize the model (over its 2 GiB limit?)");
  return out;
}

void OnnxGraph::save(const std::string& path) {
  size_t bytes = 0;
  for (const auto& t : impl_->graph->initializer()) bytes += t.raw_data().size();
  // one protobuf message cannot exceed 2 GiB
  if (bytes > (size_t(2000) << 20))
    throw Error(path, "weights", std::to_string(bytes >> 20) + " MiB of weights exceed ONNX's 2 GiB single-file limit");
  try {
    onnx::checker::check_model(impl_->model);
    onnx::ModelProto inferred = impl_->model;  // strict shape inference catches wrong ranks and types
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n') c = ' ';
    throw Error(path, "onnx checker", msg);
  }
  write_atomic(path, serialize());
}

}  // namespace kotsu
