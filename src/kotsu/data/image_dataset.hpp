// kotsu/data/image_dataset: labelled pictures from an ImageFolder tree (root/<class>/<picture>), a CSV
// of path,label (paths relative to the CSV's folder), or an IDX pair (MNIST / Fashion-MNIST layout,
// gzip or not). Files are listed here and decoded on demand (image(i)); IDX pictures live in memory.
// Classes of an ImageFolder are its sub-folders in sorted order (what torchvision does), of a CSV the
// sorted distinct labels, of IDX the numbers 0..max. The IDX reader is written by hand (a header of
// big-endian sizes; no Debian library reads the format); gzip goes through zlib, pictures through vision/image.
// requires: nothing of the files; an empty folder, a CSV without the columns, an IDX file whose header
//           disagrees with its size is refused with kotsu::Error naming file, field and reason.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kotsu/vision/image.hpp"

namespace kotsu {

struct ImageDataset {
  std::string source;                 // what was loaded (folder, CSV or IDX file)
  std::vector<std::string> classes;   // label names, in id order
  std::vector<int64_t> targets;       // class id per example
  std::vector<std::string> paths;     // file per example (empty for IDX)
  // IDX: all pictures, n x rows x cols (x channels), uint8
  std::vector<uint8_t> memory;
  int64_t rows = 0, cols = 0, channels = 0;

  size_t size() const { return targets.size(); }
  std::string name(size_t i) const;   // the file, or "<idx file>[i]"
  Image image(size_t i, int min_side = 0) const;
  // Keeps only the examples at `keep` (in that order).
  ImageDataset subset(const std::vector<size_t>& keep) const;
};

// A folder of class folders, a .csv/.tsv of path,label, or an IDX images file (its labels file is found
// by the MNIST naming: "images-idx3" -> "labels-idx1"). path_col/label_col apply to CSVs; empty picks
// "path"/"image"/"file"/"filename" and "label"/"class".
ImageDataset load_image_dataset(const std::string& spec, const std::string& path_col = "", const std::string& label_col = "");
ImageDataset read_image_folder(const std::string& root);
ImageDataset read_image_csv(const std::string& csv, const std::string& path_col = "", const std::string& label_col = "");
ImageDataset read_idx(const std::string& images, const std::string& labels);

// Decodes every picture once (threads in parallel). With skip_bad the unreadable ones are dropped and
// returned as (name, reason); without, the first one is thrown as kotsu::Error. With `decoded`, the
// pictures of the (remaining) examples are kept there, in order, decoded with `min_side` (see decode_image).
std::vector<std::pair<std::string, std::string>> check_images(ImageDataset& ds, bool skip_bad, int threads,
                                                              std::vector<Image>* decoded = nullptr, int min_side = 1);

// The rows `rows` (0-based, in that order) of a dataset, as `kotsu cv` folds name them; an index past the
// end is an error naming the source.
ImageDataset select_rows(const ImageDataset& ds, const std::vector<int64_t>& rows);

// Maps the dataset's class names onto `labels` (a model's id2label), refusing a class the model lacks.
std::vector<int64_t> remap_targets(const ImageDataset& ds, const std::vector<std::string>& labels);

}  // namespace kotsu
