#include "kotsu/data/image_dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "kotsu/core/error.hpp"
#include "kotsu/data/table.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace fs = std::filesystem;

namespace {

bool is_picture(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".webp" || e == ".gif";
}

// The whole (possibly gzip-compressed) file, refusing more than max_bytes once inflated.
std::string read_maybe_gzip(const std::string& path, size_t max_bytes) {
  std::string raw = read_file(path, max_bytes);
  if (raw.size() < 2 || static_cast<unsigned char>(raw[0]) != 0x1f || static_cast<unsigned char>(raw[1]) != 0x8b) return raw;
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw Error(path, "gzip", "cannot start zlib");
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  char buf[1 << 16];
  int ret;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    ret = inflate(&z, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) {
      inflateEnd(&z);
      throw Error(path, "gzip", ret == Z_BUF_ERROR ? "truncated" : "corrupt compressed data");
    }
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) {
      inflateEnd(&z);
      throw Error(path, "gzip", "inflates to more than " + std::to_string(max_bytes) + " bytes");
    }
  } while (ret != Z_STREAM_END && (z.avail_in > 0 || z.avail_out == 0));
  inflateEnd(&z);
  if (ret != Z_STREAM_END) throw Error(path, "gzip", "truncated");
  return out;
}

struct IdxHeader {
  int type = 0;
  std::vector<int64_t> dims;
  size_t data_offset = 0;
};

IdxHeader idx_header(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 4) throw Error(path, "idx header", "file too short");
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (b[0] != 0 || b[1] != 0) throw Error(path, "idx header", "bad magic (not an IDX file)");
  IdxHeader h;
  h.type = b[2];
  const int nd = b[3];
  if (h.type != 0x08) throw Error(path, "idx header", "element type " + std::to_string(h.type) + " (only unsigned bytes, 0x08)");
  if (nd < 1 || nd > 4) throw Error(path, "idx header", std::to_string(nd) + " dimensions");
  if (bytes.size() < 4 + 4 * static_cast<size_t>(nd)) throw Error(path, "idx header", "truncated");
  uint64_t n = 1;
  for (int i = 0; i < nd; ++i) {
    const size_t o = 4 + 4 * i;
    const int64_t d = (int64_t(b[o]) << 24) | (int64_t(b[o + 1]) << 16) | (int64_t(b[o + 2]) << 8) | int64_t(b[o + 3]);
    h.dims.push_back(d);
    n *= static_cast<uint64_t>(d);
    if (n > (uint64_t(1) << 34)) throw Error(path, "idx header", "absurd dimensions");
  }
  h.data_offset = 4 + 4 * static_cast<size_t>(nd);
  if (bytes.size() - h.data_offset != n)
    throw Error(path, "idx data", "holds " + std::to_string(bytes.size() - h.data_offset) + " bytes, the header says " +
                                      std::to_string(n));
  return h;
}

std::vector<std::string> sorted_unique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

}  // namespace

std::string ImageDataset::name(size_t i) const {
  return paths.empty() ? source + "[" + std::to_string(i) + "]" : paths.at(i);
}

Image ImageDataset::image(size_t i, int min_side) const {
  if (i >= size()) throw Error(source, "index", std::to_string(i) + " out of range");
  if (!paths.empty()) return decode_image(paths[i], min_side);
  Image img;
  img.height = static_cast<int>(rows);
  img.width = static_cast<int>(cols);
  const size_t px = static_cast<size_t>(rows * cols);
  img.pixels.resize(px * 3);
  const uint8_t* src = memory.data() + i * px * channels;
  for (size_t p = 0; p < px; ++p)
    for (int c = 0; c < 3; ++c) img.pixels[p * 3 + c] = src[p * channels + (channels == 3 ? c : 0)];
  return img;
}

ImageDataset ImageDataset::subset(const std::vector<size_t>& keep) const {
  ImageDataset d;
  d.source = source;
  d.classes = classes;
  d.rows = rows;
  d.cols = cols;
  d.channels = channels;
  const size_t px = static_cast<size_t>(rows * cols * channels);
  for (size_t i : keep) {
    d.targets.push_back(targets.at(i));
    if (!paths.empty()) d.paths.push_back(paths[i]);
    else d.memory.insert(d.memory.end(), memory.begin() + i * px, memory.begin() + (i + 1) * px);
  }
  return d;
}

ImageDataset read_image_folder(const std::string& root) {
  if (!fs::is_directory(root)) throw Error(root, "", "not a folder");
  ImageDataset d;
  d.source = root;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().filename().string()[0] != '.') d.classes.push_back(e.path().filename().string());
  std::sort(d.classes.begin(), d.classes.end());
  if (d.classes.size() < 2)
    throw Error(root, "", "needs one sub-folder per class (root/<class>/<picture>); found " + std::to_string(d.classes.size()));
  for (size_t c = 0; c < d.classes.size(); ++c) {
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(fs::path(root) / d.classes[c]))
      if (e.is_regular_file() && is_picture(e.path())) files.push_back(e.path().string());
    if (files.empty()) throw Error((fs::path(root) / d.classes[c]).string(), "", "class folder holds no .jpg/.png/.bmp/.webp/.gif picture");
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      d.paths.push_back(f);
      d.targets.push_back(static_cast<int64_t>(c));
    }
  }
  return d;
}

ImageDataset read_image_csv(const std::string& csv, const std::string& path_col, const std::string& label_col) {
  Table t = read_table(csv);
  auto pick = [&](const std::string& given, std::initializer_list<const char*> names, const char* option) {
    if (!given.empty()) return t.column(given, option);
    for (const char* n : names)
      for (size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i] == n) return i;
    return t.column(*names.begin(), option);  // throws, listing the columns
  };
  const size_t pc = pick(path_col, {"path", "image", "file", "filename"}, "--path-col");
  const size_t lc = pick(label_col, {"label", "class"}, "--label-col");
  ImageDataset d;
  d.source = csv;
  std::vector<std::string> labels;
  const fs::path base = fs::path(csv).parent_path();
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const std::string& p = t.rows[r][pc];
    const std::string& l = t.rows[r][lc];
    const std::string where = "line " + std::to_string(t.lines[r]);
    if (p.empty()) throw Error(csv, where, "empty path");
    if (l.empty()) throw Error(csv, where, "empty label");
    fs::path full = fs::path(p).is_absolute() ? fs::path(p) : base / p;
    if (!fs::is_regular_file(full)) throw Error(csv, where, "picture " + full.string() + " not found");
    d.paths.push_back(full.string());
    labels.push_back(l);
  }
  if (d.paths.empty()) throw Error(csv, "", "no rows");
  d.classes = sorted_unique(labels);
  std::map<std::string, int64_t> id;
  for (size_t i = 0; i < d.classes.size(); ++i) id[d.classes[i]] = static_cast<int64_t>(i);
  for (auto& l : labels) d.targets.push_back(id[l]);
  return d;
}

ImageDataset read_idx(const std::string& images, const std::string& labels) {
  const std::string ib = read_maybe_gzip(images, size_t(4) << 30), lb = read_maybe_gzip(labels, size_t(1) << 30);
  IdxHeader ih = idx_header(ib, images), lh = idx_header(lb, labels);
  if (ih.dims.size() != 3 && ih.dims.size() != 4) throw Error(images, "idx header", "pictures need 3 or 4 dimensions (n, rows, cols[, channels])");
  if (lh.dims.size() != 1) throw Error(labels, "idx header", "labels need 1 dimension");
  if (ih.dims[0] != lh.dims[0])
    throw Error(labels, "idx header", std::to_string(lh.dims[0]) + " labels for " + std::to_string(ih.dims[0]) + " pictures");
  ImageDataset d;
  d.source = images;
  d.rows = ih.dims[1];
  d.cols = ih.dims[2];
  d.channels = ih.dims.size() == 4 ? ih.dims[3] : 1;
  if (d.channels != 1 && d.channels != 3) throw Error(images, "idx header", "pictures must have 1 or 3 channels");
  d.memory.assign(ib.begin() + ih.data_offset, ib.end());
  int64_t max_label = 0;
  for (size_t i = lh.data_offset; i < lb.size(); ++i) {
    d.targets.push_back(static_cast<unsigned char>(lb[i]));
    max_label = std::max(max_label, d.targets.back());
  }
  for (int64_t c = 0; c <= max_label; ++c) d.classes.push_back(std::to_string(c));
  return d;
}

ImageDataset load_image_dataset(const std::string& spec, const std::string& path_col, const std::string& label_col) {
  if (!fs::exists(spec)) throw Error(spec, "", "no such file or folder");
  if (fs::is_directory(spec)) return read_image_folder(spec);
  const std::string name = fs::path(spec).filename().string();
  const size_t at = name.find("images-idx");
  if (at != std::string::npos) {
    std::string lname = name;
    lname.replace(at, 11, "labels-idx1");
    std::string labels = (fs::path(spec).parent_path() / lname).string();
    if (!fs::exists(labels)) {  // the other compression: with or without .gz
      const bool gz = labels.size() > 3 && labels.substr(labels.size() - 3) == ".gz";
      const std::string other = gz ? labels.substr(0, labels.size() - 3) : labels + ".gz";
      if (!fs::exists(other)) throw Error(spec, "", "its labels file " + labels + " was not found");
      labels = other;
    }
    return read_idx(spec, labels);
  }
  return read_image_csv(spec, path_col, label_col);
}

ImageDataset select_rows(const ImageDataset& ds, const std::vector<int64_t>& rows) {
  std::vector<size_t> keep;
  for (int64_t r : rows) {
    if (r < 0 || static_cast<size_t>(r) >= ds.size())
      throw Error(ds.source, "rows", "row " + std::to_string(r) + " is past the " + std::to_string(ds.size()) + " pictures");
    keep.push_back(static_cast<size_t>(r));
  }
  return ds.subset(keep);
}

std::vector<std::pair<std::string, std::string>> check_images(ImageDataset& ds, bool skip_bad, int threads,
                                                              std::vector<Image>* decoded, int min_side) {
  std::vector<Image> images(decoded ? ds.size() : 0);
  if (ds.paths.empty()) {  // in memory: nothing can fail
    for (size_t i = 0; decoded && i < ds.size(); ++i) images[i] = ds.image(i);
    if (decoded) *decoded = std::move(images);
    return {};
  }
  std::vector<std::string> errors(ds.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < ds.size();) {
      try {
        Image im = ds.image(i, min_side);
        if (decoded) images[i] = std::move(im);
      } catch (const Error& e) {
        errors[i] = e.reason();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, threads); ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  std::vector<std::pair<std::string, std::string>> bad;
  std::vector<size_t> keep;
  std::vector<Image> kept;
  for (size_t i = 0; i < ds.size(); ++i) {
    if (errors[i].empty()) {
      keep.push_back(i);
      if (decoded) kept.push_back(std::move(images[i]));
      continue;
    }
    if (!skip_bad) throw Error(ds.paths[i], "image", errors[i] + " (pass --skip-bad to leave such pictures out)");
    bad.emplace_back(ds.paths[i], errors[i]);
  }
  if (!bad.empty()) ds = ds.subset(keep);
  if (ds.size() == 0) throw Error(ds.source, "", "no readable picture left");
  if (decoded) *decoded = std::move(kept);
  return bad;
}

std::vector<int64_t> remap_targets(const ImageDataset& ds, const std::vector<std::string>& labels) {
  std::map<std::string, int64_t> id;
  for (size_t i = 0; i < labels.size(); ++i) id[labels[i]] = static_cast<int64_t>(i);
  std::vector<int64_t> map(ds.classes.size());
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    auto it = id.find(ds.classes[c]);
    if (it == id.end()) throw Error(ds.source, "label", "class '" + ds.classes[c] + "' is not one of the model's labels");
    map[c] = it->second;
  }
  std::vector<int64_t> out;
  out.reserve(ds.size());
  for (int64_t t : ds.targets) out.push_back(map[t]);
  return out;
}

}  // namespace kotsu
