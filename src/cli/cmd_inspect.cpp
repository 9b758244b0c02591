// kotsu inspect FILE: prints the tensors of a safetensors file or a TFJS model.json, or the metadata of a GGUF
// file, validating it.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "kotsu/io/gguf.hpp"
#include "kotsu/io/safetensors.hpp"
#include "kotsu/io/tfjs.hpp"
#include "kotsu/io/tflite.hpp"

namespace kotsu::cli {

Action add_inspect(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* c = app.add_subcommand("inspect", "validate and list a .safetensors, .gguf, .tflite or TFJS model.json file");
  c->add_option("file", *path, "file to inspect")->required();
  return [path]() {
    const std::string& p = *path;
    if (p.size() > 5 && p.substr(p.size() - 5) == ".gguf") {
      GgufFile g = read_gguf(p);
      fmt::print("GGUF v{}: {} keys, {} tensors\n", g.version, g.kv.size(), g.tensors.size());
      for (auto& [k, v] : g.kv) {
        std::string s = v.is_array() ? fmt::format("[{} values]", v.size()) : v.dump();
        fmt::print("  {} = {}\n", k, s.substr(0, 100));
      }
      return 0;
    }
    if (p.size() > 7 && p.substr(p.size() - 7) == ".tflite") {
      TfliteModel m = read_tflite(p);
      for (size_t i = 0; i < m.ops.size(); ++i) {
        const TfliteOp& o = m.ops[i];
        std::vector<std::string> outs;
        for (int t : o.outputs) {
          const TfliteTensor& x = m.tensor(t);
          outs.push_back(fmt::format("{} {}[{}]", x.name, tflite_type_name(x.type), fmt::join(x.shape, ",")));
        }
        fmt::print("{:4} {:18} -> {}\n", i, o.name, fmt::join(outs, "; "));
      }
      for (int t : m.inputs) {
        const TfliteTensor& x = m.tensor(t);
        fmt::print("input {} {}[{}]{}\n", x.name, tflite_type_name(x.type), fmt::join(x.shape, ","),
                   x.quantized() ? fmt::format(" scale {} zero point {}", x.scale[0],
                                               x.zero_point.empty() ? 0 : x.zero_point[0]) : "");
      }
      int64_t params = 0;
      for (const auto& t : m.tensors)
        if (t.constant()) {
          int64_t n = 1;
          for (auto d : t.shape) n *= d;
          params += n;
        }
      fmt::print("TFLite: {} tensors, {} operators, {} constant values\n", m.tensors.size(), m.ops.size(), params);
      return 0;
    }
    if (p.size() > 5 && p.substr(p.size() - 5) == ".json") {
      TfjsModel m = read_tfjs(p);
      int64_t total = 0;
      for (const auto& w : m.weights) {
        if (w.value.defined()) total += w.value.numel();
        fmt::print("{:100} {:7}{} [{}]\n", w.name, w.dtype, w.quantization.empty() ? "" : " (" + w.quantization + ")",
                   fmt::join(w.shape, ", "));
      }
      fmt::print("TFJS {}: {} weights, {} values\n", m.format.empty() ? "model" : m.format, m.weights.size(), total);
      return 0;
    }
    SafetensorsReader r(p);
    int64_t total = 0;
    for (const auto& t : r.tensors()) {
      int64_t n = 1;
      for (auto d : t.shape) n *= d;
      total += n;
      fmt::print("{:60} {:5} [{}]\n", t.name, t.dtype, fmt::join(t.shape, ", "));
    }
    fmt::print("{} tensors, {} parameters\n", r.tensors().size(), total);
    return 0;
  };
}

}  // namespace kotsu::cli
