#include "kotsu/io/npy.hpp"

#include <torch/torch.h>

#include <cstring>
#include <regex>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {
constexpr char kMagic[] = "\x93NUMPY";
}

void write_npy(const std::string& path, const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();
  std::string shape = "(";
  for (int64_t d = 0; d < c.dim(); ++d) shape += std::to_string(c.size(d)) + (c.dim() == 1 ? ",)" : d + 1 < c.dim() ? ", " : ")");
  if (c.dim() == 0) shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // preamble (10 bytes) + header + '\n' padded with spaces to a multiple of 64 bytes
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string pre(kMagic, 6);
  pre += '\x01';
  pre += '\x00';
  const auto len = static_cast<uint16_t>(header.size());
  pre += static_cast<char>(len & 0xff);
  pre += static_cast<char>(len >> 8);
  pre += header;
  const void* parts[2] = {pre.data(), c.data_ptr()};
  const size_t sizes[2] = {pre.size(), static_cast<size_t>(c.numel()) * sizeof(float)};
  write_atomic(path, parts, sizes, 2);
}

torch::Tensor read_npy(const std::string& path) {
  const std::string s = read_file(path);
  if (s.size() < 10 || s.compare(0, 6, std::string(kMagic, 6)) != 0) throw Error(path, "magic", "not a .npy file");
  const int major = static_cast<unsigned char>(s[6]);
  size_t hlen, start;
  if (major == 1) {
    hlen = static_cast<unsigned char>(s[8]) | (static_cast<size_t>(static_cast<unsigned char>(s[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (s.size() < 12) throw Error(path, "header", "truncated");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<unsigned char>(s[8 + i])) << (8 * i);
    start = 12;
  } else {
    throw Error(path, "version", "unsupported .npy version " + std::to_string(major));
  }
  if (s.size() < start + hlen) throw Error(path, "header", "truncated");
  const std::string h = s.substr(start, hlen);
  std::smatch m;
  if (!std::regex_search(h, m, std::regex(R"('descr'\s*:\s*'([^']*)')")) || m[1] != "<f4")
    throw Error(path, "descr", "only little-endian float32 ('<f4') arrays are read");
  if (!std::regex_search(h, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")) || m[1] != "False")
    throw Error(path, "fortran_order", "only C-order arrays are read");
  if (!std::regex_search(h, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) throw Error(path, "shape", "missing");
  std::vector<int64_t> shape;
  const std::string dims = m[1];
  int64_t numel = 1;
  const std::regex digits(R"(\d+)");
  for (std::sregex_iterator it(dims.begin(), dims.end(), digits), end; it != end; ++it) {
    const std::string d = it->str();
    if (d.size() > 12) throw Error(path, "shape", "dimension too large");
    shape.push_back(std::stoll(d));
    numel *= shape.back();
    if (numel > (int64_t(1) << 40)) throw Error(path, "shape", "too many elements");
  }
  const size_t need = static_cast<size_t>(numel) * sizeof(float);
  if (s.size() - start - hlen != need)
    throw Error(path, "data", "holds " + std::to_string(s.size() - start - hlen) + " bytes, the shape needs " + std::to_string(need));
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  std::memcpy(t.data_ptr(), s.data() + start + hlen, need);
  return t;
}

}  // namespace kotsu
