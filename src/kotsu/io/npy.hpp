// kotsu/io/npy: NumPy .npy files (format version 1.0, little-endian float32, C order), the exchange format
// for feature matrices (`kotsu embed`) that numpy, scikit-learn and most tools read directly. Written by
// hand: the format is a 10-byte preamble, a Python-literal header and the raw array; no Debian C++ library
// covers it.
#pragma once
#include <torch/types.h>

#include <string>

namespace kotsu {

// Writes a float32 tensor of any rank atomically (converted to float32, C order).
void write_npy(const std::string& path, const torch::Tensor& t);
// Reads a '<f4' C-order array; any other dtype, Fortran order, or a size that does not match the header
// is refused naming the file and field.
torch::Tensor read_npy(const std::string& path);

}  // namespace kotsu
