#include "kotsu/io/tflite.hpp"

#include <flatbuffers/flatbuffers.h>
#include <torch/torch.h>

#include <cstring>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {

using flatbuffers::Table;
using flatbuffers::Verifier;
using flatbuffers::voffset_t;

// Field slots of the TFLite schema (schema.fbs v3): slot = 4 + 2 * field index.
constexpr voffset_t slot(int field) { return static_cast<voffset_t>(4 + 2 * field); }
namespace model_f { constexpr int operator_codes = 1, subgraphs = 2, description = 3, buffers = 4; }
namespace opcode_f { constexpr int deprecated_builtin_code = 0, custom_code = 1, builtin_code = 3; }
namespace subgraph_f { constexpr int tensors = 0, inputs = 1, outputs = 2, operators = 3; }
namespace tensor_f { constexpr int shape = 0, type = 1, buffer = 2, name = 3, quantization = 4; }
namespace quant_f { constexpr int scale = 2, zero_point = 3, quantized_dimension = 6; }
namespace op_f { constexpr int opcode_index = 0, inputs = 1, outputs = 2, options_type = 3, options = 4; }
namespace buffer_f { constexpr int data = 0, offset = 1, size = 2; }

// BuiltinOperator codes kotsu names (the rest print as BUILTIN_<code>).
const char* builtin_name(int code) {
  switch (code) {
    case 0: return "ADD";
    case 1: return "AVERAGE_POOL_2D";
    case 2: return "CONCATENATION";
    case 3: return "CONV_2D";
    case 4: return "DEPTHWISE_CONV_2D";
    case 6: return "DEQUANTIZE";
    case 9: return "FULLY_CONNECTED";
    case 14: return "LOGISTIC";
    case 17: return "MAX_POOL_2D";
    case 18: return "MUL";
    case 19: return "RELU";
    case 21: return "RELU6";
    case 22: return "RESHAPE";
    case 25: return "SOFTMAX";
    case 28: return "TANH";
    case 34: return "PAD";
    case 40: return "MEAN";
    case 41: return "SUB";
    case 43: return "SQUEEZE";
    case 98: return "LEAKY_RELU";
    case 114: return "QUANTIZE";
    default: return nullptr;
  }
}

size_t type_size(TfliteType t) {
  switch (t) {
    case TfliteType::Float32: case TfliteType::Int32: return 4;
    case TfliteType::Float16: case TfliteType::Int16: return 2;
    case TfliteType::UInt8: case TfliteType::Int8: case TfliteType::Bool: return 1;
    case TfliteType::Int64: case TfliteType::Float64: case TfliteType::Complex64: return 8;
    default: return 0;
  }
}

float half_to_float(uint16_t h) {
  return static_cast<float>(c10::Half(h, c10::Half::from_bits()));
}

class Reader {
 public:
  Reader(const std::string& path, const std::string& bytes)
      : path_(path), buf_(reinterpret_cast<const uint8_t*>(bytes.data())), v_(buf_, bytes.size()) {}

  const Table* root() {
    if (v_.VerifyOffset(0) == 0) fail("header", "no valid root table offset (not a TFLite flatbuffer?)");
    const Table* t = flatbuffers::GetRoot<Table>(buf_);
    table(t, "model");
    return t;
  }
  void table(const Table* t, const std::string& what) {
    if (!t || !t->VerifyTableStart(v_)) fail(what, "table is truncated or malformed");
    v_.EndTable();  // depth bookkeeping only; the fields are verified one by one as they are read
  }
  template <typename T>
  T scalar(const Table* t, int field, T def, const std::string& what) {
    if (!t->VerifyField<T>(v_, slot(field), sizeof(T))) fail(what, "field out of the file");
    return t->GetField<T>(slot(field), def);
  }
  template <typename T>
  const flatbuffers::Vector<T>* vec(const Table* t, int field, const std::string& what) {
    if (!t->VerifyOffset(v_, slot(field))) fail(what, "offset out of the file");
    auto* p = t->GetPointer<const flatbuffers::Vector<T>*>(slot(field));
    if (p && !v_.VerifyVector(p)) fail(what, "vector runs past the end of the file");
    return p;
  }
  const Table* sub(const Table* t, int field, const std::string& what) {
    if (!t->VerifyOffset(v_, slot(field))) fail(what, "offset out of the file");
    auto* p = t->GetPointer<const Table*>(slot(field));
    if (p) table(p, what);
    return p;
  }
  std::string str(const Table* t, int field, const std::string& what) {
    if (!t->VerifyOffset(v_, slot(field))) fail(what, "offset out of the file");
    auto* s = t->GetPointer<const flatbuffers::String*>(slot(field));
    if (!s) return "";
    if (!v_.VerifyString(s)) fail(what, "string runs past the end of the file");
    return s->str();
  }
  std::vector<const Table*> tables(const Table* t, int field, const std::string& what) {
    auto* vv = vec<flatbuffers::Offset<Table>>(t, field, what);
    std::vector<const Table*> out;
    if (!vv) return out;
    for (flatbuffers::uoffset_t i = 0; i < vv->size(); ++i) {
      const Table* e = vv->Get(i);
      table(e, what + "[" + std::to_string(i) + "]");
      out.push_back(e);
    }
    return out;
  }
  std::vector<int> ints(const Table* t, int field, const std::string& what) {
    auto* vv = vec<int32_t>(t, field, what);
    return vv ? std::vector<int>(vv->begin(), vv->end()) : std::vector<int>();
  }
  size_t offset_of(const void* p) const { return static_cast<const uint8_t*>(p) - buf_; }
  [[noreturn]] void fail(const std::string& field, const std::string& reason) { throw Error(path_, field, reason); }

 private:
  std::string path_;
  const uint8_t* buf_;
  Verifier v_;
};

void read_options(Reader& r, const Table* op, TfliteOp& o, const std::string& what) {
  const uint8_t type = r.scalar<uint8_t>(op, op_f::options_type, 0, what + ".builtin_options_type");
  const Table* t = r.sub(op, op_f::options, what + ".builtin_options");
  if (!t) return;
  // BuiltinOptions union members for the ops read here, and the field order of each options table.
  auto expect = [&](uint8_t want) {
    if (type != want)
      r.fail(what + ".builtin_options_type", "is " + std::to_string(type) + ", expected " + std::to_string(want) +
                                                 " for " + o.name);
  };
  auto act = [&](int field) {
    int a = r.scalar<int8_t>(t, field, 0, what + ".fused_activation_function");
    if (a < 0 || a > 5) r.fail(what + ".fused_activation_function", "unknown value " + std::to_string(a));
    o.activation = static_cast<TfliteActivation>(a);
  };
  auto pad = [&](int field) {
    int p = r.scalar<int8_t>(t, field, 0, what + ".padding");
    if (p != 0 && p != 1) r.fail(what + ".padding", "unknown value " + std::to_string(p));
    o.same_padding = p == 0;
  };
  switch (o.code) {
    case 3:  // Conv2DOptions: padding, stride_w, stride_h, fused_activation_function, dilation_w, dilation_h
      expect(1);
      pad(0);
      o.stride_w = r.scalar<int32_t>(t, 1, 0, what + ".stride_w");
      o.stride_h = r.scalar<int32_t>(t, 2, 0, what + ".stride_h");
      act(3);
      o.dilation_w = r.scalar<int32_t>(t, 4, 1, what + ".dilation_w_factor");
      o.dilation_h = r.scalar<int32_t>(t, 5, 1, what + ".dilation_h_factor");
      break;
    case 4:  // DepthwiseConv2DOptions: padding, stride_w, stride_h, depth_multiplier, activation, dilation_w/h
      expect(2);
      pad(0);
      o.stride_w = r.scalar<int32_t>(t, 1, 0, what + ".stride_w");
      o.stride_h = r.scalar<int32_t>(t, 2, 0, what + ".stride_h");
      o.depth_multiplier = r.scalar<int32_t>(t, 3, 0, what + ".depth_multiplier");
      act(4);
      o.dilation_w = r.scalar<int32_t>(t, 5, 1, what + ".dilation_w_factor");
      o.dilation_h = r.scalar<int32_t>(t, 6, 1, what + ".dilation_h_factor");
      break;
    case 1: case 17:  // Pool2DOptions: padding, stride_w, stride_h, filter_width, filter_height, activation
      expect(5);
      pad(0);
      o.stride_w = r.scalar<int32_t>(t, 1, 0, what + ".stride_w");
      o.stride_h = r.scalar<int32_t>(t, 2, 0, what + ".stride_h");
      o.filter_w = r.scalar<int32_t>(t, 3, 0, what + ".filter_width");
      o.filter_h = r.scalar<int32_t>(t, 4, 0, what + ".filter_height");
      act(5);
      break;
    case 9:  // FullyConnectedOptions: fused_activation_function, weights_format, keep_num_dims
      expect(8);
      act(0);
      break;
    case 0:  // AddOptions: fused_activation_function
      expect(11);
      act(0);
      break;
    case 40:  // ReducerOptions: keep_dims
      o.keep_dims = r.scalar<uint8_t>(t, 0, 0, what + ".keep_dims") != 0;
      break;
    default:
      break;
  }
  if (o.stride_w < 1 || o.stride_h < 1 || o.dilation_w < 1 || o.dilation_h < 1 || o.depth_multiplier < 1 ||
      o.filter_w < 0 || o.filter_h < 0)
    r.fail(what + ".builtin_options", "has a non-positive stride, dilation, filter or depth multiplier");
}

}  // namespace

std::string tflite_type_name(TfliteType t) {
  static const char* names[] = {"float32", "float16", "int32", "uint8", "int64", "string",
                                "bool", "int16", "complex64", "int8", "float64"};
  int i = static_cast<int>(t);
  return i >= 0 && i <= 10 ? names[i] : "type" + std::to_string(i);
}

const TfliteTensor& TfliteModel::tensor(int index) const {
  if (index < 0 || static_cast<size_t>(index) >= tensors.size())
    throw Error(path, "tensors", "index " + std::to_string(index) + " out of range");
  return tensors[index];
}

torch::Tensor TfliteModel::raw_values(int index) const {
  const TfliteTensor& t = tensor(index);
  if (!t.constant()) throw Error(path, "tensors[" + std::to_string(index) + "] " + t.name, "has no constant data");
  const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data()) + t.data_offset;
  const int64_t n = static_cast<int64_t>(t.data_bytes / type_size(t.type));
  torch::Tensor out = torch::empty({n}, torch::kInt64);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    switch (t.type) {
      case TfliteType::UInt8: o[i] = p[i]; break;
      case TfliteType::Int8: o[i] = static_cast<int8_t>(p[i]); break;
      case TfliteType::Int16: { int16_t v; std::memcpy(&v, p + 2 * i, 2); o[i] = v; break; }
      case TfliteType::Int32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); o[i] = v; break; }
      case TfliteType::Int64: { int64_t v; std::memcpy(&v, p + 8 * i, 8); o[i] = v; break; }
      default: throw Error(path, t.name, "raw values of a " + tflite_type_name(t.type) + " tensor");
    }
  }
  return out.reshape(t.shape);
}

torch::Tensor TfliteModel::dequantize(int index) const {
  const TfliteTensor& t = tensor(index);
  torch::Tensor v;
  if (t.type == TfliteType::Float32) {
    v = torch::empty(t.shape, torch::kFloat32);
    std::memcpy(v.data_ptr(), bytes.data() + t.data_offset, t.data_bytes);
  } else if (t.type == TfliteType::Float16) {
    v = torch::empty(t.shape, torch::kFloat32);
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data()) + t.data_offset;
    float* o = v.data_ptr<float>();
    for (int64_t i = 0; i < v.numel(); ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      o[i] = half_to_float(h);
    }
  } else {
    v = raw_values(index).to(torch::kFloat64);
    if (t.quantized()) {
      const int64_t nq = static_cast<int64_t>(t.scale.size());
      auto scale = torch::tensor(std::vector<double>(t.scale.begin(), t.scale.end()), torch::kFloat64);
      auto zero = torch::tensor(std::vector<int64_t>(t.zero_point.begin(), t.zero_point.end())).to(torch::kFloat64);
      if (zero.numel() == 0) zero = torch::zeros({nq}, torch::kFloat64);
      if (nq > 1) {  // per channel along quantized_dimension: broadcast over that axis
        std::vector<int64_t> view(t.shape.size(), 1);
        view[t.quantized_dimension] = nq;
        scale = scale.view(view);
        zero = zero.view(view);
      }
      v = (v - zero) * scale;
    }
    v = v.to(torch::kFloat32);
  }
  return v;
}

TfliteModel read_tflite(const std::string& path) {
  TfliteModel m;
  m.path = path;
  m.bytes = read_file(path, size_t(1) << 31);
  if (m.bytes.size() < 8) throw Error(path, "header", "file is too short to be a TFLite model");
  if (m.bytes.compare(4, 4, "TFL3") != 0)
    throw Error(path, "header", "no TFL3 identifier: not a TensorFlow Lite model");
  Reader r(path, m.bytes);
  const Table* model = r.root();
  m.description = r.str(model, model_f::description, "description");

  // Buffers: data vectors (or offset/size into the file for models over 2 GB).
  std::vector<std::pair<size_t, size_t>> buffers;  // offset, bytes
  for (const Table* b : r.tables(model, model_f::buffers, "buffers")) {
    auto* data = r.vec<uint8_t>(b, buffer_f::data, "buffers.data");
    if (data && data->size() > 0) {
      buffers.emplace_back(r.offset_of(data->Data()), data->size());
    } else {
      uint64_t off = r.scalar<uint64_t>(b, buffer_f::offset, 0, "buffers.offset");
      uint64_t size = r.scalar<uint64_t>(b, buffer_f::size, 0, "buffers.size");
      if (off > 1 && (off > m.bytes.size() || size > m.bytes.size() - off))
        r.fail("buffers.offset", "points past the end of the file");
      buffers.emplace_back(off > 1 ? off : 0, off > 1 ? size : 0);
    }
  }

  std::vector<TfliteOp> codes;  // name and code per operator_codes entry
  for (const Table* c : r.tables(model, model_f::operator_codes, "operator_codes")) {
    TfliteOp o;
    int dep = r.scalar<int8_t>(c, opcode_f::deprecated_builtin_code, 0, "operator_codes.deprecated_builtin_code");
    int full = r.scalar<int32_t>(c, opcode_f::builtin_code, 0, "operator_codes.builtin_code");
    o.code = std::max(dep, full);
    if (o.code == 32) {
      o.name = "CUSTOM:" + r.str(c, opcode_f::custom_code, "operator_codes.custom_code");
    } else {
      const char* n = builtin_name(o.code);
      o.name = n ? n : "BUILTIN_" + std::to_string(o.code);
    }
    codes.push_back(o);
  }

  auto subgraphs = r.tables(model, model_f::subgraphs, "subgraphs");
  if (subgraphs.empty()) r.fail("subgraphs", "the model has no subgraph");
  const Table* g = subgraphs[0];
  auto tensors = r.tables(g, subgraph_f::tensors, "subgraphs[0].tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Table* t = tensors[i];
    const std::string what = "tensors[" + std::to_string(i) + "]";
    TfliteTensor x;
    x.name = r.str(t, tensor_f::name, what + ".name");
    for (int d : r.ints(t, tensor_f::shape, what + ".shape")) {
      if (d < 0 && d != -1) r.fail(what + " " + x.name + ".shape", "negative dimension " + std::to_string(d));
      x.shape.push_back(d);
    }
    int type = r.scalar<int8_t>(t, tensor_f::type, 0, what + ".type");
    if (type < 0 || type > 10) r.fail(what + " " + x.name + ".type", "unknown tensor type " + std::to_string(type));
    x.type = static_cast<TfliteType>(type);
    uint32_t buf = r.scalar<uint32_t>(t, tensor_f::buffer, 0, what + ".buffer");
    if (buf >= buffers.size() && buf != 0)
      r.fail(what + " " + x.name + ".buffer", "index " + std::to_string(buf) + " out of range");
    if (buf < buffers.size() && buffers[buf].second > 0) {
      x.data_offset = buffers[buf].first;
      x.data_bytes = buffers[buf].second;
      uint64_t n = 1;
      for (int64_t d : x.shape) {
        if (d < 0) r.fail(what + " " + x.name + ".shape", "a constant tensor has an unknown dimension");
        n *= static_cast<uint64_t>(d);
        if (n > (uint64_t(1) << 34)) r.fail(what + " " + x.name + ".shape", "absurdly large");
      }
      const size_t es = type_size(x.type);
      if (es == 0 || n * es != x.data_bytes)
        r.fail(what + " " + x.name, "holds " + std::to_string(x.data_bytes) + " bytes, its shape and type (" +
                                        tflite_type_name(x.type) + ") need " + std::to_string(n * es));
    }
    if (const Table* q = r.sub(t, tensor_f::quantization, what + ".quantization")) {
      if (auto* s = r.vec<float>(q, quant_f::scale, what + ".quantization.scale")) x.scale.assign(s->begin(), s->end());
      if (auto* z = r.vec<int64_t>(q, quant_f::zero_point, what + ".quantization.zero_point"))
        x.zero_point.assign(z->begin(), z->end());
      x.quantized_dimension = r.scalar<int32_t>(q, quant_f::quantized_dimension, 0, what + ".quantization.quantized_dimension");
      if (!x.zero_point.empty() && x.zero_point.size() != x.scale.size())
        r.fail(what + " " + x.name + ".quantization", "scale and zero_point differ in length");
      if (x.scale.size() > 1 &&
          (x.quantized_dimension < 0 || static_cast<size_t>(x.quantized_dimension) >= x.shape.size() ||
           x.shape[x.quantized_dimension] != static_cast<int64_t>(x.scale.size())))
        r.fail(what + " " + x.name + ".quantization", "per-channel scales do not match quantized_dimension");
    }
    m.tensors.push_back(std::move(x));
  }
  const int nt = static_cast<int>(m.tensors.size());
  auto check_indices = [&](const std::vector<int>& ix, const std::string& what) {
    for (int i : ix)
      if (i < -1 || i >= nt) r.fail(what, "tensor index " + std::to_string(i) + " out of range");
    return ix;
  };
  m.inputs = check_indices(r.ints(g, subgraph_f::inputs, "subgraphs[0].inputs"), "subgraphs[0].inputs");
  m.outputs = check_indices(r.ints(g, subgraph_f::outputs, "subgraphs[0].outputs"), "subgraphs[0].outputs");
  auto ops = r.tables(g, subgraph_f::operators, "subgraphs[0].operators");
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string what = "operators[" + std::to_string(i) + "]";
    uint32_t oc = r.scalar<uint32_t>(ops[i], op_f::opcode_index, 0, what + ".opcode_index");
    if (oc >= codes.size()) r.fail(what + ".opcode_index", "index " + std::to_string(oc) + " out of range");
    TfliteOp o = codes[oc];
    o.inputs = check_indices(r.ints(ops[i], op_f::inputs, what + ".inputs"), what + ".inputs");
    o.outputs = check_indices(r.ints(ops[i], op_f::outputs, what + ".outputs"), what + ".outputs");
    read_options(r, ops[i], o, what + " " + o.name);
    m.ops.push_back(std::move(o));
  }
  return m;
}

}  // namespace kotsu
