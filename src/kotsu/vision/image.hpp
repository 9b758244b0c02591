// kotsu/vision/image: decoding image files into 8-bit RGB pixels with well-kept libraries: JPEG with
// libjpeg-turbo (TurboJPEG API), PNG with libpng, WebP with libwebp, BMP/GIF/TGA with stb_image.
// The format is taken from the file's first bytes, not its name. Grayscale is replicated to RGB and
// alpha is dropped (what PIL's convert("RGB") does); 16-bit PNGs are reduced to 8 bits.
// requires: nothing of the bytes; a truncated or corrupt file, a picture over kMaxPixels or an unknown
//           format is refused with kotsu::Error naming the file and the reason, before the pixel buffer
//           it would need is allocated.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kotsu {

struct Image {
  int height = 0, width = 0;    // 3 channels (RGB), row-major, height x width x 3 bytes
  std::vector<uint8_t> pixels;
};

constexpr int64_t kMaxPixels = int64_t(1) << 28;  // 268M pixels (16384 x 16384)

// min_side > 0 lets JPEG decode at a reduced scale (libjpeg-turbo's DCT scaling by M/8, faster)
// while both sides stay >= min_side: for a picture that is about to be shrunk to min_side anyway.
// max_bytes > 0 bounds the memory a decode may take (its working buffers and the pixels it returns), as a
// server must: the need is read from the header first; a PNG whose full decode would exceed it is decoded
// row by row and shrunk on the fly by a whole factor (averaging k x k blocks) while both sides stay
// >= min_side; any other picture over it is refused (kotsu::Error naming the size and the limit) before
// anything is allocated. With max_bytes 0 (files of one's own: training, predict) pictures decode whole.
Image decode_image(const std::string& path, int min_side = 0);
Image decode_image_bytes(std::string_view bytes, const std::string& name, int min_side = 0, size_t max_bytes = 0);

// The memory decode_image_bytes(bytes, name, min_side, max_bytes) will take, from the header alone;
// kotsu::Error for an unreadable header or a picture over max_bytes (when max_bytes > 0).
size_t image_decode_bytes(std::string_view bytes, const std::string& name, int min_side = 0, size_t max_bytes = 0);

// "jpeg", "png", "webp", "bmp", "gif" or "" (unknown), from the magic bytes.
std::string sniff_image_format(std::string_view bytes);

}  // namespace kotsu
