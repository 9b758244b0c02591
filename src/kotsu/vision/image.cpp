#include "kotsu/vision/image.hpp"

#include <png.h>
#include <stb_image.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include <cstring>
#include <memory>

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

Image decode_jpeg(std::string_view b, const std::string& name, int min_side) {
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
  if (!tj) throw Error(name, "jpeg", "cannot start the JPEG decoder");
  auto* src = reinterpret_cast<const unsigned char*>(b.data());
  int w = 0, h = 0, sub = 0, cs = 0;
  if (tjDecompressHeader3(tj.get(), src, b.size(), &w, &h, &sub, &cs) != 0)
    throw Error(name, "jpeg", std::string("unreadable header: ") + tjGetErrorStr2(tj.get()));
  check_size(w, h, name);
  int dw = w, dh = h;
  if (min_side > 0) {  // the smallest DCT scale that keeps both sides >= min_side
    int n = 0;
    tjscalingfactor* f = tjGetScalingFactors(&n);
    for (int i = 0; i < n; ++i) {
      if (f[i].num >= f[i].denom) continue;  // shrinking factors only (libjpeg-turbo offers M/8, M = 1..15)
      const int sw = TJSCALED(w, f[i]), sh = TJSCALED(h, f[i]);
      if (sw >= min_side && sh >= min_side && sw * sh < dw * dh) {
        dw = sw;
        dh = sh;
      }
    }
  }
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

Image decode_image_bytes(std::string_view bytes, const std::string& name, int min_side) {
  const std::string fmt = sniff_image_format(bytes);
  if (fmt.empty())
    throw Error(name, "image", bytes.empty() ? "empty file" : "not a JPEG, PNG, WebP, BMP or GIF picture (unknown first bytes)");
  if (bytes.size() > (size_t(1) << 31)) throw Error(name, "image", "file over 2 GiB");
  if (fmt == "jpeg") return decode_jpeg(bytes, name, min_side);
  if (fmt == "png") return decode_png(bytes, name);
  if (fmt == "webp") return decode_webp(bytes, name);
  if (fmt == "bmp") check_bmp(bytes, name);
  return decode_stb(bytes, name, fmt);
}

Image decode_image(const std::string& path, int min_side) {
  const std::string bytes = read_file(path, size_t(1) << 31);
  return decode_image_bytes(bytes, path, min_side);
}

}  // namespace kotsu
