// kotsu/data/audit_images: what is wrong with a labelled picture dataset before any training: unreadable
// files, blank (single-colour) and tiny pictures, class counts and imbalance, exact duplicates (the same
// decoded pixels, whatever the file format), the same picture under different labels, near duplicates
// (perceptual hash: the DCT hash of imagehash.phash, within a Hamming distance, found exactly with a
// multi-index over hash chunks, then confirmed by the correlation of 32 x 32 grey thumbnails) and pictures shared between a training and a test set (leakage).
// Written by hand: no C++ library in Debian does this.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kotsu/vision/image.hpp"

namespace kotsu {

// A picture's fingerprint: decoded size, a hash of its pixels, its grey thumbnail and perceptual hash,
// whether it is blank.
struct PictureFingerprint {
  std::string error;  // non-empty: unreadable, the reason
  int width = 0, height = 0;
  uint64_t exact = 0, phash = 0;
  std::vector<uint8_t> thumbnail;  // 32 x 32 grey levels
  bool blank = false;  // grey levels' standard deviation under 2 (of 255)
};

// Grey levels (ITU-R 601 luma) area-averaged to 32 x 32, rounded to bytes.
std::vector<uint8_t> grey_thumbnail(const Image& img);
// The 64-bit perceptual hash of imagehash.phash on that thumbnail (before rounding): 2-D DCT-II, the
// 8 x 8 lowest frequencies compared with their median (bit 63 = frequency (0, 0)).
uint64_t perceptual_hash(const Image& img);
// The highest Pearson correlation of two thumbnails over shifts of up to max_shift pixels each way (the
// overlap only): 1 for the same picture whatever its brightness and contrast.
double thumbnail_similarity(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b, int max_shift);
PictureFingerprint fingerprint(const Image& img);

// Pairs (i, j), i < j, of valid hashes within max_distance differing bits (and not identical when
// skip_equal). Exact: every pair within the distance shares one of max_distance + 1 hash chunks.
std::vector<std::pair<size_t, size_t>> hash_neighbours(const std::vector<uint64_t>& hashes, const std::vector<bool>& valid,
                                                       int max_distance);

struct AuditPicture {
  std::string name, label, source;  // source: the dataset it came from (the first one is the training set)
  PictureFingerprint print;
};

struct PictureAuditOptions {
  int max_distance = 6;    // near duplicates: perceptual hashes within this many of 64 bits
  double min_similarity = 0.9;  // and thumbnails this correlated (thumbnail_similarity, shifts of 1 pixel)
  int min_side = 32;       // smaller pictures are listed as tiny
  size_t max_listed = 50;  // examples listed per finding
};

nlohmann::json audit_pictures(const std::vector<AuditPicture>& rows, const PictureAuditOptions& o);

}  // namespace kotsu
