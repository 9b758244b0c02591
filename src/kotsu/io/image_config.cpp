#include "kotsu/io/image_config.hpp"

#include <algorithm>
#include <cmath>

#include "kotsu/core/error.hpp"
#include "kotsu/io/hf_config.hpp"
#include "kotsu/io/json_file.hpp"

namespace kotsu {

namespace {
template <typename T>
T get(const nlohmann::json& j, const char* key, T def, const std::string& path) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(path, key, "has the wrong type");
  }
}
void check(bool ok, const std::string& path, const char* key, const char* why) {
  if (!ok) throw Error(path, key, why);
}
}  // namespace

bool is_image_model_type(const std::string& t) {
  return t == "mobilenet_v1" || t == "mobilenet_v2" || t == "darknet" || t == "resnet" || t == "efficientnet_lite";
}

ImageConfig ImageConfig::from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw Error(path, "", "config is not a JSON object");
  ImageConfig c;
  c.raw = j;
  c.model_type = get<std::string>(j, "model_type", "", path);
  if (!is_image_model_type(c.model_type))
    throw Error(path, "model_type", "'" + c.model_type + "' is not an image model kotsu supports (mobilenet_v1, mobilenet_v2, darknet, resnet, efficientnet_lite)");
  c.num_channels = get<int64_t>(j, "num_channels", 3, path);
  c.image_size = get<int64_t>(j, "image_size", 224, path);
  c.depth_multiplier = get<double>(j, "depth_multiplier", 1.0, path);
  c.min_depth = get<int64_t>(j, "min_depth", 8, path);
  c.depth_divisible_by = get<int64_t>(j, "depth_divisible_by", 8, path);
  c.expand_ratio = get<double>(j, "expand_ratio", 6.0, path);
  c.first_layer_is_expansion = get<bool>(j, "first_layer_is_expansion", true, path);
  c.finegrained_output = get<bool>(j, "finegrained_output", true, path);
  c.hidden_act = get<std::string>(j, "hidden_act", "relu6", path);
  c.tf_padding = get<bool>(j, "tf_padding", true, path);
  c.classifier_dropout_prob = get<double>(j, "classifier_dropout_prob", 0.2, path);
  c.layer_norm_eps = get<double>(j, "layer_norm_eps", 0.001, path);
  c.initializer_range = get<double>(j, "initializer_range", 0.02, path);
  check(c.num_channels >= 1 && c.num_channels <= 64, path, "num_channels", "must be in [1, 64]");
  check(c.image_size >= 8 && c.image_size <= 4096, path, "image_size", "must be in [8, 4096]");
  check(c.depth_multiplier > 0 && c.depth_multiplier <= 8, path, "depth_multiplier", "must be in (0, 8]");
  check(c.min_depth >= 1 && c.min_depth <= 1024, path, "min_depth", "must be in [1, 1024]");
  check(c.depth_divisible_by >= 1 && c.depth_divisible_by <= 1024, path, "depth_divisible_by", "must be in [1, 1024]");
  check(c.expand_ratio > 0 && c.expand_ratio <= 64, path, "expand_ratio", "must be in (0, 64]");
  check(c.hidden_act == "relu6" || c.hidden_act == "relu", path, "hidden_act", "must be relu6 or relu");
  check(c.classifier_dropout_prob >= 0 && c.classifier_dropout_prob < 1, path, "classifier_dropout_prob", "must be in [0, 1)");
  check(c.layer_norm_eps > 0 && c.layer_norm_eps < 1, path, "layer_norm_eps", "must be in (0, 1)");
  if (c.model_type == "resnet") {
    c.layer_norm_eps = get<double>(j, "layer_norm_eps", 1e-5, path);
    c.classifier_dropout_prob = get<double>(j, "classifier_dropout_prob", 0.0, path);
    c.embedding_size = get<int64_t>(j, "embedding_size", 64, path);
    c.hidden_sizes = get<std::vector<int64_t>>(j, "hidden_sizes", c.hidden_sizes, path);
    c.depths = get<std::vector<int64_t>>(j, "depths", c.depths, path);
    c.layer_type = get<std::string>(j, "layer_type", "bottleneck", path);
    c.downsample_in_first_stage = get<bool>(j, "downsample_in_first_stage", false, path);
    if (c.hidden_act == "relu6") c.hidden_act = "relu";
    check(c.layer_type == "basic" || c.layer_type == "bottleneck", path, "layer_type", "must be basic or bottleneck");
    check(!c.depths.empty() && c.depths.size() == c.hidden_sizes.size() && c.depths.size() <= 16, path, "depths",
          "must list one depth per hidden size (1 to 16 stages)");
    check(c.embedding_size >= 1 && c.embedding_size <= 8192, path, "embedding_size", "must be in [1, 8192]");
    for (size_t i = 0; i < c.depths.size(); ++i)
      check(c.depths[i] >= 1 && c.depths[i] <= 256 && c.hidden_sizes[i] >= 4 && c.hidden_sizes[i] <= 65536 &&
                (c.layer_type == "basic" || c.hidden_sizes[i] % 4 == 0),
            path, "hidden_sizes", "each stage needs a depth in [1, 256] and a width in [4, 65536] (a multiple of 4 for bottlenecks)");
  }
  if (c.model_type == "efficientnet_lite") {
    c.width_coefficient = get<double>(j, "width_coefficient", 1.0, path);
    c.depth_coefficient = get<double>(j, "depth_coefficient", 1.0, path);
    check(c.width_coefficient > 0 && c.width_coefficient <= 8, path, "width_coefficient", "must be in (0, 8]");
    check(c.depth_coefficient > 0 && c.depth_coefficient <= 8, path, "depth_coefficient", "must be in (0, 8]");
    check(c.hidden_act == "relu6", path, "hidden_act", "must be relu6 (EfficientNet-Lite)");
  }
  if (c.model_type == "darknet") {
    c.leaky_slope = get<double>(j, "leaky_slope", 0.1, path);
    c.conv_layers = get<std::vector<std::array<int64_t, 3>>>(j, "conv_layers", {}, path);
    check(!c.conv_layers.empty() && c.conv_layers.size() <= 1000, path, "conv_layers", "must list 1 to 1000 [filters, kernel, pool] layers");
    for (auto& l : c.conv_layers)
      check(l[0] >= 1 && l[0] <= 65536 && l[1] >= 1 && l[1] % 2 == 1 && l[1] <= 15 && (l[2] == 0 || l[2] == 1), path,
            "conv_layers", "each layer needs filters in [1, 65536], an odd kernel up to 15 and pool 0 or 1");
  }
  c.labels = read_labels(j, path);
  return c;
}

ImageConfig ImageConfig::load(const std::string& path) { return from_json(read_json(path, size_t(16) << 20), path); }

nlohmann::json ImageConfig::to_json() const {
  nlohmann::json j = raw.is_object() ? raw : nlohmann::json::object();
  j["model_type"] = model_type;
  j["num_channels"] = num_channels;
  j["image_size"] = image_size;
  j["depth_multiplier"] = depth_multiplier;
  j["min_depth"] = min_depth;
  j["hidden_act"] = hidden_act;
  j["tf_padding"] = tf_padding;
  j["classifier_dropout_prob"] = classifier_dropout_prob;
  j["layer_norm_eps"] = layer_norm_eps;
  j["initializer_range"] = initializer_range;
  if (model_type == "efficientnet_lite") {
    j["width_coefficient"] = width_coefficient;
    j["depth_coefficient"] = depth_coefficient;
  }
  if (model_type == "resnet") {
    j["embedding_size"] = embedding_size;
    j["hidden_sizes"] = hidden_sizes;
    j["depths"] = depths;
    j["layer_type"] = layer_type;
    j["downsample_in_first_stage"] = downsample_in_first_stage;
    j["hidden_act"] = "relu";
    for (const char* k : {"depth_multiplier", "min_depth", "tf_padding"}) j.erase(k);
  }
  if (model_type == "darknet") {
    j["conv_layers"] = conv_layers;
    j["leaky_slope"] = leaky_slope;
    j.erase("depth_multiplier");
    j.erase("min_depth");
    j.erase("tf_padding");
    j.erase("hidden_act");
  }
  if (model_type == "mobilenet_v2") {
    j["depth_divisible_by"] = depth_divisible_by;
    j["expand_ratio"] = expand_ratio;
    j["first_layer_is_expansion"] = first_layer_is_expansion;
    j["finegrained_output"] = finegrained_output;
  }
  j.erase("id2label");
  j.erase("label2id");
  j.erase("num_labels");
  write_labels(j, labels);
  j["architectures"] = {model_type == "mobilenet_v1"   ? "MobileNetV1ForImageClassification"
                        : model_type == "mobilenet_v2" ? "MobileNetV2ForImageClassification"
                        : model_type == "resnet"       ? "ResNetForImageClassification"
                                                       : "DarknetForImageClassification"};
  return j;
}

ImagePreprocess ImagePreprocess::from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) throw Error(path, "", "preprocessor config is not a JSON object");
  ImagePreprocess p;
  if (j.contains("size")) {
    const auto& s = j["size"];
    if (s.is_number_integer()) p.resize_shortest = s.get<int64_t>();
    else if (s.is_object() && s.contains("shortest_edge")) p.resize_shortest = get<int64_t>(s, "shortest_edge", 256, path);
    else if (s.is_object() && s.contains("height")) p.resize_shortest = get<int64_t>(s, "height", 256, path);
  }
  if (j.contains("crop_size")) {
    const auto& s = j["crop_size"];
    if (s.is_number_integer()) p.crop_height = p.crop_width = s.get<int64_t>();
    else if (s.is_object()) {
      p.crop_height = get<int64_t>(s, "height", p.crop_height, path);
      p.crop_width = get<int64_t>(s, "width", p.crop_width, path);
    }
  }
  if (get<bool>(j, "do_rescale", true, path)) p.rescale_factor = get<double>(j, "rescale_factor", 1.0 / 255.0, path);
  else p.rescale_factor = 1.0;
  if (get<bool>(j, "do_normalize", true, path)) {
    p.mean = get<std::vector<double>>(j, "image_mean", p.mean, path);
    p.std = get<std::vector<double>>(j, "image_std", p.std, path);
  } else {
    p.mean.assign(p.mean.size(), 0.0);
    p.std.assign(p.std.size(), 1.0);
  }
  check(p.resize_shortest >= 1 && p.resize_shortest <= 8192, path, "size", "must be in [1, 8192]");
  check(p.crop_height >= 1 && p.crop_width >= 1 && p.crop_height <= 8192 && p.crop_width <= 8192, path, "crop_size",
        "must be in [1, 8192]");
  check(p.mean.size() == p.std.size() && !p.mean.empty(), path, "image_std", "must have as many values as image_mean");
  for (double s : p.std) check(s > 0, path, "image_std", "values must be positive");
  return p;
}

ImagePreprocess ImagePreprocess::load(const std::string& path) {
  return from_json(read_json(path, size_t(1) << 20), path);
}

nlohmann::json ImagePreprocess::to_json() const {
  return {{"do_resize", true}, {"size", {{"shortest_edge", resize_shortest}}}, {"do_center_crop", true},
          {"crop_size", {{"height", crop_height}, {"width", crop_width}}}, {"do_rescale", true},
          {"rescale_factor", rescale_factor}, {"do_normalize", true}, {"image_mean", mean}, {"image_std", std}};
}

void ImagePreprocess::set_size(int64_t size) {
  const double ratio = static_cast<double>(resize_shortest) / static_cast<double>(std::max(crop_height, crop_width));
  crop_height = crop_width = size;
  resize_shortest = std::max<int64_t>(size, std::lround(static_cast<double>(size) * ratio));
}

}  // namespace kotsu
