// bench/vision_step: images per second for a ResNet-18 training step (batch 32 at 224x224: forward,
// cross-entropy, backward, AdamW; batch norm in training mode) and for the picture pipeline alone
// (JPEG decode + random resized crop to 224 + flip + colour jitter + normalise) with --workers threads,
// each running single-threaded torch ops. Prints one JSON line. The peer is bench/peer_vision_step.py
// (PyTorch + torchvision, same model, step and transforms), driven by bench/run_vision_step.py.
// usage: bench_vision_step step [--batch 32] [--size 224] [--steps 5] [--threads 2]
//        bench_vision_step loader DIR [--workers 2] [--rounds 3]
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "kotsu/core/runtime.hpp"
#include "kotsu/models/image_classifier.hpp"
#include "kotsu/train/adamw.hpp"
#include "kotsu/vision/transforms.hpp"

using namespace kotsu;
using clk = std::chrono::steady_clock;

namespace {

double seconds_since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

int step_bench(int64_t batch, int64_t size, int64_t steps, int threads) {
  runtime_init(threads);
  ImageConfig c;
  c.model_type = "resnet";
  c.layer_type = "basic";
  c.hidden_sizes = {64, 128, 256, 512};
  c.depths = {2, 2, 2, 2};
  c.layer_norm_eps = 1e-5;
  c.classifier_dropout_prob = 0;
  auto model = make_image_classifier(c, 10);
  model->init_all(1);
  model->train();
  std::vector<torch::Tensor> decay, plain;
  for (auto& p : model->named_parameters()) (p.key().find("normalization") != std::string::npos || p.key().find("bias") != std::string::npos ? plain : decay).push_back(p.value());
  FusedAdamW opt({{decay, 0.01}, {plain, 0.0}}, {});
  torch::manual_seed(0);
  auto x = torch::randn({batch, 3, size, size});
  auto y = torch::randint(0, 10, {batch}, torch::kLong);
  std::vector<double> times;
  for (int64_t s = 0; s < steps + 2; ++s) {  // two warm-up steps
    auto t = clk::now();
    auto loss = torch::nn::functional::cross_entropy(model->logits(x), y);
    loss.backward();
    opt.step(1e-3, 0);
    if (s >= 2) times.push_back(seconds_since(t));
  }
  std::sort(times.begin(), times.end());
  const double med = times[times.size() / 2];
  fmt::print("{{\"variant\": \"kotsu\", \"mode\": \"step\", \"batch\": {}, \"size\": {}, \"seconds_per_step\": {:.4f}, \"images_per_second\": {:.2f}}}\n",
             batch, size, med, static_cast<double>(batch) / med);
  return 0;
}

int loader_bench(const std::string& dir, int workers, int rounds) {
  at::set_num_threads(1);  // each worker runs its torch ops on its own thread
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().extension() == ".jpg") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ImagePreprocess p;
  p.crop_height = p.crop_width = 224;
  Augment aug;
  std::vector<double> rates;
  for (int r = 0; r < rounds; ++r) {
    std::atomic<size_t> next{0};
    auto t = clk::now();
    std::vector<std::thread> pool;
    for (int w = 0; w < workers; ++w)
      pool.emplace_back([&, w] {
        std::mt19937_64 rng(static_cast<uint64_t>(w) * 7919 + static_cast<uint64_t>(r));
        for (size_t i; (i = next++) < files.size();) {
          // decode at the smallest DCT scale that keeps 224 pixels (what training does)
          Image img = decode_image(files[i], 224);
          torch::Tensor x = train_transform(img, p, aug, rng);
          if (x.size(1) != 224) std::abort();
        }
      });
    for (auto& th : pool) th.join();
    rates.push_back(static_cast<double>(files.size()) / seconds_since(t));
  }
  std::sort(rates.begin(), rates.end());
  fmt::print("{{\"variant\": \"kotsu\", \"mode\": \"loader\", \"workers\": {}, \"images\": {}, \"images_per_second\": {:.2f}}}\n",
             workers, files.size(), rates[rates.size() / 2]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_vision_step step|loader [DIR] [--batch N] [--size N] [--steps N] [--threads N] [--workers N] [--rounds N]\n");
    return 2;
  }
  const std::string mode = argv[1];
  std::string dir;
  int64_t batch = 32, size = 224, steps = 5;
  int threads = 2, workers = 2, rounds = 3;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : "0"); };
    if (a == "--batch") batch = std::stoll(next());
    else if (a == "--size") size = std::stoll(next());
    else if (a == "--steps") steps = std::stoll(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--workers") workers = std::stoi(next());
    else if (a == "--rounds") rounds = std::stoi(next());
    else dir = a;
  }
  if (mode == "step") return step_bench(batch, size, steps, threads);
  if (mode == "loader") return loader_bench(dir, workers, rounds);
  fmt::print(stderr, "unknown mode {}\n", mode);
  return 2;
}
