// kotsu inspect FILE: prints the tensors of a safetensors file or a TFJS model.json, or the metadata of a GGUF
// file, validating it.
#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "kotsu/core/error.hpp"
#include "kotsu/io/file_kind.hpp"
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
    auto ends = [&](const char* ext) { return p.size() > std::strlen(ext) && p.compare(p.size() - std::strlen(ext), std::string::npos, ext) == 0; };
    // by content, so a misnamed file is still read by the right reader; by name when the content says
    // nothing (a truncated file), so its reader can say what is wrong with it
    FileKind kind = sniff_file_kind(p);
    if (kind == FileKind::Unknown)
      kind = ends(".gguf") ? FileKind::Gguf : ends(".tflite") ? FileKind::Tflite : ends(".json") ? FileKind::Json
           : ends(".safetensors") ? FileKind::Safetensors : kind;
    if (kind == FileKind::Gguf) {
      GgufFile g = read_gguf(p);
      fmt::print("GGUF v{}: {} keys, {} tensors\n", g.version, g.kv.size(), g.tensors.size());
      for (auto& [k, v] : g.kv) {
        std::string s = v.is_array() ? fmt::format("[{} values]", v.size()) : v.dump();
        fmt::print("  {} = {}\n", k, s.substr(0, 100));
      }
      for (const auto& t : g.tensors) fmt::print("{:48} {:7} [{}]\n", t.name, gguf_type_name(t.type), fmt::join(t.dims, ", "));
      return 0;
    }
    if (kind == FileKind::Tflite) {
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
    if (kind == FileKind::Json) {
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
    if (kind != FileKind::Safetensors)
      throw Error(p, "", "is " + describe_file_kind(kind) + "; kotsu inspect reads safetensors, GGUF, TFLite and TF.js model.json files");
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
