// kotsu/io/tflite: TensorFlow Lite flatbuffer models (.tflite): tensors (shape, type, constant data,
// quantization) and the operator list of the first subgraph, with each operator's options for the ops
// kotsu imports (convolutions, pooling, fully connected, add, reshape, softmax, pad, mean, quantize).
// The flatbuffer is checked with libflatbuffers' Verifier before any field is read; the TFLite schema's
// field numbers for the tables read here are written out in tflite.cpp (no Debian package ships the
// generated TFLite schema). Everything else of the schema is ignored.
// requires: nothing of the file; a truncated or malformed file, a buffer out of range or a tensor whose
//           data does not fit its shape is refused with kotsu::Error naming the file and the field.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kotsu {

enum class TfliteType : int8_t { Float32 = 0, Float16 = 1, Int32 = 2, UInt8 = 3, Int64 = 4, String = 5, Bool = 6,
                                 Int16 = 7, Complex64 = 8, Int8 = 9, Float64 = 10 };
std::string tflite_type_name(TfliteType t);

enum class TfliteActivation : int8_t { None = 0, Relu = 1, ReluN1To1 = 2, Relu6 = 3, Tanh = 4, SignBit = 5 };

struct TfliteTensor {
  std::string name;
  std::vector<int64_t> shape;
  TfliteType type = TfliteType::Float32;
  size_t data_offset = 0, data_bytes = 0;  // constant data inside the file's bytes; 0 bytes: none
  std::vector<float> scale;                // empty: not quantized
  std::vector<int64_t> zero_point;
  int quantized_dimension = 0;
  bool quantized() const { return !scale.empty(); }
  bool constant() const { return data_bytes > 0; }
};

struct TfliteOp {
  int code = 0;              // BuiltinOperator
  std::string name;          // "CONV_2D", or "CUSTOM:<name>", or "BUILTIN_<code>" for codes kotsu does not name
  std::vector<int> inputs;   // tensor indices (-1: optional input absent)
  std::vector<int> outputs;
  // options (the ones that apply to the op; defaults otherwise)
  bool same_padding = true;
  int stride_w = 1, stride_h = 1, filter_w = 0, filter_h = 0, dilation_w = 1, dilation_h = 1;
  int depth_multiplier = 1;
  TfliteActivation activation = TfliteActivation::None;
  bool keep_dims = false;  // MEAN
};

struct TfliteModel {
  std::string path;
  std::string bytes;  // the whole file
  std::string description;
  std::vector<TfliteTensor> tensors;
  std::vector<TfliteOp> ops;  // in execution order
  std::vector<int> inputs, outputs;
  // The tensor's constant data as float32 (dequantized with its scale/zero point, per channel along
  // quantized_dimension), in the tensor's own shape and layout. Throws if the tensor has no data.
  torch::Tensor dequantize(int index) const;
  // The raw constant values (int8/uint8/int32/... as stored) as an int64 tensor; for reference checks.
  torch::Tensor raw_values(int index) const;
  const TfliteTensor& tensor(int index) const;
};

TfliteModel read_tflite(const std::string& path);

}  // namespace kotsu
