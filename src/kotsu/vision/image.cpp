#include "kotsu/vision/image.hpp"

#include <png.h>
#include <stb_image.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {

void check_size(int64_t w, int64_t h, const std::string& name) {
  if (w <= 0 || h <= 0) throw Error(name, "image", "has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  if (w * h > kMaxPixels)
    throw Error(name, "image", std::to_string(w) + "x" + std::to_string(h) + " pixels is over the limit of " +
                                   std::to_string(kMaxPixels));
}

// The scaled size libjpeg-turbo decodes a w x h JPEG at: the smallest DCT scale (M/8) that keeps both
// sides >= min_side (the full size when min_side is 0).
std::pair<int, int> jpeg_scaled(int w, int h, int min_side) {
  int dw = w, dh = h;
  if (min_side > 0) {
    int n = 0;
    tjscalingfactor* f = tjGetScalingFactors(&n);
    for (int i = 0; i < n; ++i) {
      if (f[i].num >= f[i].denom) continue;  // shrinking factors only (libjpeg-turbo offers M/8, M = 1..15)
      const int sw = TJSCALED(w, f[i]), sh = TJSCALED(h, f[i]);
      if (sw >= min_side && sh >= min_side && static_cast<int64_t>(sw) * sh < static_cast<int64_t>(dw) * dh) {
        dw = sw;
        dh = sh;
      }
    }
  }
  return {dw, dh};
}

// Whether a JPEG is progressive (its frame marker SOF2/6/10/14): libjpeg then keeps every DCT coefficient
// of the whole picture in memory, whatever the output scale.
bool jpeg_progressive(std::string_view b) {
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (static_cast<unsigned char>(b[i]) != 0xFF) return false;
    const auto m = static_cast<unsigned char>(b[i + 1]);
    if (m == 0xFF) {
      ++i;
      continue;
    }
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE;
    if (m == 0xDA || m == 0xD9) return false;
    const size_t len = (static_cast<size_t>(static_cast<unsigned char>(b[i + 2])) << 8) | static_cast<unsigned char>(b[i + 3]);
    i += 2 + len;
  }
  return false;
}

Image decode_jpeg(std::string_view b, const std::string& name, int dw, int dh) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) throw Error(name, "jpeg", "cannot start the JPEG decoder");
  auto* src = reinterpret_cast<const unsigned char*>(b.data());
  Image img;
  img.width = dw;
  img.height = dh;
  img.pixels.resize(static_cast<size_t>(dw) * dh * 3);
  // a warning (a truncated file: "Premature end of JPEG file") is an error here: half a picture is not data
  if (tjDecompress2(tj.get(), src, b.size(), img.pixels.data(), dw, 0, dh, TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
    throw Error(name, "jpeg", std::string("corrupt or truncated: ") + tjGetErrorStr2(tj.get()));
  return img;
}

Image decode_png(std::string_view b, const std::string& name) {
  png_image pi;
  std::memset(&pi, 0, sizeof pi);
  pi.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&pi, b.data(), b.size()))
    throw Error(name, "png", std::string("unreadable header: ") + pi.message);
  struct Free {
    png_image* p;
    ~Free() { png_image_free(p); }
  } guard{&pi};
  check_size(pi.width, pi.height, name);
  // read RGBA and drop the alpha (what PIL's convert("RGB") does); gray and palette expand to RGB
  pi.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> rgba(PNG_IMAGE_SIZE(pi));
  if (!png_image_finish_read(&pi, nullptr, rgba.data(), 0, nullptr))
    throw Error(name, "png", std::string("corrupt or truncated: ") + pi.message);
  Image img;
  img.width = static_cast<int>(pi.width);
  img.height = static_cast<int>(pi.height);
  const size_t n = static_cast<size_t>(img.width) * img.height;
  img.pixels.resize(n * 3);
  for (size_t i = 0; i < n; ++i) std::memcpy(&img.pixels[i * 3], &rgba[i * 4], 3);
  return img;
}

Image decode_webp(std::string_view b, const std::string& name) {
  auto* src = reinterpret_cast<const uint8_t*>(b.data());
  int w = 0, h = 0;
  if (!WebPGetInfo(src, b.size(), &w, &h)) throw Error(name, "webp", "unreadable header");
  check_size(w, h, name);
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w) * h * 3);
  if (!WebPDecodeRGBInto(src, b.size(), img.pixels.data(), img.pixels.size(), w * 3))
    throw Error(name, "webp", "corrupt or truncated");
  return img;
}

// BMP: stb_image decodes it, but reads past a short file as zeros; the header's sizes are checked first.
void check_bmp(std::string_view b, const std::string& name) {
  auto u32 = [&](size_t o) { uint32_t v; std::memcpy(&v, b.data() + o, 4); return v; };
  auto i32 = [&](size_t o) { int32_t v; std::memcpy(&v, b.data() + o, 4); return v; };
  auto u16 = [&](size_t o) { uint16_t v; std::memcpy(&v, b.data() + o, 2); return v; };
  if (b.size() < 26) throw Error(name, "bmp", "truncated header");
  const uint32_t off = u32(10), hsize = u32(14);
  if (hsize < 40 || b.size() < 14 + 40) return;  // old OS/2 headers: leave it to stb
  const int64_t w = i32(18), h = std::abs(static_cast<int64_t>(i32(22)));
  const int bpp = u16(28);
  const uint32_t compression = u32(30);
  check_size(w, h, name);
  if (compression == 0 && (bpp == 8 || bpp == 24 || bpp == 32)) {  // BI_RGB: rows padded to 4 bytes
    const uint64_t row = ((static_cast<uint64_t>(w) * bpp + 31) / 32) * 4;
    if (static_cast<uint64_t>(off) + row * h > b.size())
      throw Error(name, "bmp", "truncated: the header promises " + std::to_string(off + row * h) + " bytes, the file has " +
                                   std::to_string(b.size()));
  }
}

Image decode_stb(std::string_view b, const std::string& name, const std::string& fmt) {
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(b.data()), static_cast<int>(b.size()), &w, &h, &c))
    throw Error(name, fmt, std::string("unreadable header: ") + stbi_failure_reason());
  check_size(w, h, name);
  std::unique_ptr<stbi_uc, void (*)(void*)> px(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(b.data()), static_cast<int>(b.size()), &w, &h, &c, 3),
      stbi_image_free);
  if (!px) throw Error(name, fmt, std::string("corrupt or truncated: ") + stbi_failure_reason());
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.assign(px.get(), px.get() + static_cast<size_t>(w) * h * 3);
  return img;
}

// PNG, row by row through libpng's classic API, each k x k block of pixels averaged into one: the memory
// is a row and the shrunk picture, never the whole one. Transforms as PIL's convert("RGB"): palettes and
// low bit depths expanded, 16 bits cut to 8, gray replicated, alpha dropped. libpng reports errors by
// longjmp; the functions that call it hold no C++ objects, so none is skipped.
struct PngRead {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string_view data;
  size_t at = 0;
  char message[256] = {0};
  ~PngRead() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngRead*>(png_get_io_ptr(png));
  if (n > r->data.size() - r->at) png_error(png, "truncated");
  std::memcpy(out, r->data.data() + r->at, n);
  r->at += n;
}

void png_fail(png_structp png, png_const_charp msg) {
  auto* r = static_cast<PngRead*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", msg);
  png_longjmp(png, 1);
}

void png_warn(png_structp, png_const_charp) {}

// Header and transforms; false (and r.message) on a libpng error.
bool png_begin(PngRead& r) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &r, png_read_memory);
  png_read_info(r.png, r.info);
  png_set_expand(r.png);
  png_set_strip_16(r.png);
  png_set_gray_to_rgb(r.png);
  png_set_strip_alpha(r.png);
  png_read_update_info(r.png, r.info);
  return true;
}

// Rows into `acc` (sums per output pixel and channel, ow x oh x 3), averaging k x k blocks; rows and
// columns past the last whole block are read and dropped. false (and r.message) on a libpng error.
bool png_rows(PngRead& r, uint32_t w, uint32_t h, uint32_t k, uint8_t* row, uint32_t* acc) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  const uint32_t ow = w / k, oh = h / k;
  for (uint32_t y = 0; y < h; ++y) {
    png_read_row(r.png, row, nullptr);
    const uint32_t oy = y / k;
    if (oy >= oh) continue;
    uint32_t* a = acc + static_cast<size_t>(oy) * ow * 3;
    for (uint32_t x = 0; x < ow * k; ++x) {
      const uint32_t o = (x / k) * 3;
      a[o] += row[x * 3];
      a[o + 1] += row[x * 3 + 1];
      a[o + 2] += row[x * 3 + 2];
    }
  }
  return true;
}

Image decode_png_shrunk(std::string_view b, const std::string& name, uint32_t k) {
  PngRead r;
  r.data = b;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_fail, png_warn);
  if (!r.png) throw Error(name, "png", "cannot start the PNG decoder");
  r.info = png_create_info_struct(r.png);
  if (!r.info) throw Error(name, "png", "cannot start the PNG decoder");
  png_set_user_limits(r.png, 0x7fffffff, 0x7fffffff);
  if (!png_begin(r)) throw Error(name, "png", std::string("unreadable header: ") + r.message);
  const uint32_t w = png_get_image_width(r.png, r.info), h = png_get_image_height(r.png, r.info);
  if (png_get_rowbytes(r.png, r.info) != static_cast<size_t>(w) * 3) throw Error(name, "png", "unexpected row layout after conversion to RGB");
  const uint32_t ow = w / k, oh = h / k;
  std::vector<uint8_t> row(static_cast<size_t>(w) * 3);
  std::vector<uint32_t> acc(static_cast<size_t>(ow) * oh * 3, 0);
  if (!png_rows(r, w, h, k, row.data(), acc.data())) throw Error(name, "png", std::string("corrupt or truncated: ") + r.message);
  Image img;
  img.width = static_cast<int>(ow);
  img.height = static_cast<int>(oh);
  img.pixels.resize(acc.size());
  const uint32_t n = k * k;
  for (size_t i = 0; i < acc.size(); ++i) img.pixels[i] = static_cast<uint8_t>((acc[i] + n / 2) / n);
  return img;
}

// How a picture will be decoded, from its header: size as stored and as returned, the memory it takes.
struct Plan {
  std::string fmt;
  int64_t w = 0, h = 0;
  int out_w = 0, out_h = 0;  // JPEG: the DCT-scaled size
  uint32_t png_shrink = 1;   // > 1: PNG decoded row by row, k x k blocks averaged
  size_t bytes = 0;
};

std::string megabytes(size_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MB"; }

Plan plan_decode(std::string_view b, const std::string& name, int min_side, size_t max_bytes) {
  Plan p;
  p.fmt = sniff_image_format(b);
  if (p.fmt.empty()) throw Error(name, "image", b.empty() ? "empty file" : "not a JPEG, PNG, WebP, BMP or GIF picture (unknown first bytes)");
  if (b.size() > (size_t(1) << 31)) throw Error(name, "image", "file over 2 GiB");
  const std::string& fmt = p.fmt;
  auto refuse = [&](size_t need, const std::string& how) {
    throw Error(name, fmt, std::to_string(p.w) + "x" + std::to_string(p.h) + " picture needs " + megabytes(need) + " to decode" + how +
                               ", over the limit of " + megabytes(max_bytes));
  };
  if (fmt == "jpeg") {
    std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
    if (!tj) throw Error(name, "jpeg", "cannot start the JPEG decoder");
    int w = 0, h = 0, sub = 0, cs = 0;
    if (tjDecompressHeader3(tj.get(), reinterpret_cast<const unsigned char*>(b.data()), b.size(), &w, &h, &sub, &cs) != 0)
      throw Error(name, "jpeg", std::string("unreadable header: ") + tjGetErrorStr2(tj.get()));
    p.w = w, p.h = h;
    check_size(w, h, name);
    std::tie(p.out_w, p.out_h) = jpeg_scaled(w, h, min_side);
    const size_t full = static_cast<size_t>(w) * static_cast<size_t>(h);
    // row buffers of a baseline decode (a few MCU rows), or every coefficient of a progressive one
    const bool progressive = jpeg_progressive(b);
    const size_t work = progressive ? full * 6 : static_cast<size_t>(w) * 64;
    p.bytes = static_cast<size_t>(p.out_w) * static_cast<size_t>(p.out_h) * 3 + work;
    if (max_bytes > 0 && p.bytes > max_bytes) refuse(p.bytes, progressive ? " (progressive JPEG)" : "");
    return p;
  }
  if (fmt == "png") {
    // IHDR is the first chunk: width, height (big-endian), bit depth, colour type, ..., interlace
    if (b.size() < 33 || b.compare(12, 4, "IHDR") != 0) throw Error(name, "png", "unreadable header: no IHDR chunk first");
    auto be32 = [&](size_t o) {
      return (static_cast<uint32_t>(static_cast<unsigned char>(b[o])) << 24) | (static_cast<uint32_t>(static_cast<unsigned char>(b[o + 1])) << 16) |
             (static_cast<uint32_t>(static_cast<unsigned char>(b[o + 2])) << 8) | static_cast<unsigned char>(b[o + 3]);
    };
    p.w = be32(16), p.h = be32(20);
    check_size(p.w, p.h, name);
    const bool interlaced = static_cast<unsigned char>(b[28]) != 0;
    const size_t full = static_cast<size_t>(p.w) * static_cast<size_t>(p.h);
    p.bytes = full * 7;  // RGBA, then RGB
    p.out_w = static_cast<int>(p.w), p.out_h = static_cast<int>(p.h);
    if (max_bytes == 0 || p.bytes <= max_bytes) return p;
    if (interlaced) refuse(p.bytes, " (interlaced PNG: decoded whole)");
    // the largest whole shrink that keeps both sides >= min_side (a model's input needs no more)
    const int64_t k = min_side > 0 ? std::min(p.w, p.h) / min_side : 1;
    if (k < 2) refuse(p.bytes, "");
    p.png_shrink = static_cast<uint32_t>(k);
    p.out_w = static_cast<int>(p.w / k), p.out_h = static_cast<int>(p.h / k);
    const size_t out = static_cast<size_t>(p.out_w) * static_cast<size_t>(p.out_h);
    p.bytes = static_cast<size_t>(p.w) * 8 + out * (3 * 4 + 3);  // a row, the sums, the pixels
    if (p.bytes > max_bytes) refuse(p.bytes, " even shrunk");
    return p;
  }
  if (fmt == "webp") {
    WebPBitstreamFeatures f;
    if (WebPGetFeatures(reinterpret_cast<const uint8_t*>(b.data()), b.size(), &f) != VP8_STATUS_OK) throw Error(name, "webp", "unreadable header");
    p.w = f.width, p.h = f.height;
    check_size(p.w, p.h, name);
    p.out_w = f.width, p.out_h = f.height;
    const size_t full = static_cast<size_t>(p.w) * static_cast<size_t>(p.h);
    p.bytes = full * 3 + (f.format == 2 ? full * 4 : static_cast<size_t>(p.w) * 64);  // lossless keeps ARGB of all of it
    if (max_bytes > 0 && p.bytes > max_bytes) refuse(p.bytes, "");
    return p;
  }
  if (fmt == "bmp") check_bmp(b, name);
  int w = 0, h = 0, c = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(b.data()), static_cast<int>(b.size()), &w, &h, &c))
    throw Error(name, fmt, std::string("unreadable header: ") + stbi_failure_reason());
  p.w = w, p.h = h;
  check_size(w, h, name);
  p.out_w = w, p.out_h = h;
  p.bytes = static_cast<size_t>(w) * static_cast<size_t>(h) * 15;  // stb's RGBA frame and buffers, then RGB
  if (max_bytes > 0 && p.bytes > max_bytes) refuse(p.bytes, "");
  return p;
}

}  // namespace

std::string sniff_image_format(std::string_view b) {
  auto starts = [&](const char* m, size_t n, size_t at = 0) { return b.size() >= at + n && std::memcmp(b.data() + at, m, n) == 0; };
  if (starts("\xFF\xD8\xFF", 3)) return "jpeg";
  if (starts("\x89PNG\r\n\x1A\n", 8)) return "png";
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return "webp";
  if (starts("BM", 2)) return "bmp";
  if (starts("GIF87a", 6) || starts("GIF89a", 6)) return "gif";
  return "";
}

size_t image_decode_bytes(std::string_view bytes, const std::string& name, int min_side, size_t max_bytes) {
  return plan_decode(bytes, name, min_side, max_bytes).bytes;
}

Image decode_image_bytes(std::string_view bytes, const std::string& name, int min_side, size_t max_bytes) {
  const Plan p = plan_decode(bytes, name, min_side, max_bytes);
  if (p.fmt == "jpeg") return decode_jpeg(bytes, name, p.out_w, p.out_h);
  if (p.fmt == "png") return p.png_shrink > 1 ? decode_png_shrunk(bytes, name, p.png_shrink) : decode_png(bytes, name);
  if (p.fmt == "webp") return decode_webp(bytes, name);
  return decode_stb(bytes, name, p.fmt);
}

Image decode_image(const std::string& path, int min_side) {
  const std::string bytes = read_file(path, size_t(1) << 31);
  return decode_image_bytes(bytes, path, min_side);
}

}  // namespace kotsu
