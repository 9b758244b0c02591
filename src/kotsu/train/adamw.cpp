#include "kotsu/train/adamw.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <sys/mman.h>

#include <cmath>
#include <exception>
#include <sstream>

#include "kotsu/core/error.hpp"
#include "kotsu/io/file.hpp"

namespace kotsu {

namespace {

struct Coeffs {
  float decay, b1, b2, one_minus_b1, one_minus_b2, step_size, bc2_sqrt, eps, clip;
};

// torch.optim.AdamW over n contiguous elements, in its operation order; g == nullptr means a zero gradient.
// Compiled twice (AVX2+FMA and baseline x86-64), the CPU picks at load time; the build targets baseline.
__attribute__((target_clones("arch=x86-64-v3", "default")))
void adamw_span(float* __restrict p, float* __restrict m, float* __restrict v, const float* __restrict g, int64_t n,
                Coeffs c) {
  for (int64_t j = 0; j < n; ++j) {
    const float gj = g ? g[j] * c.clip : 0.0f;
    p[j] *= c.decay;
    m[j] = m[j] * c.b1 + gj * c.one_minus_b1;
    v[j] = v[j] * c.b2 + c.one_minus_b2 * gj * gj;
    const float denom = std::sqrt(v[j]) / c.bc2_sqrt + c.eps;
    p[j] += -c.step_size * (m[j] / denom);
  }
}

// Zeros of `like`'s shape in fresh anonymous pages: the kernel backs a page with memory only when it is first
// written, so the moments of a vocabulary's rows that the data never touches cost nothing (a few thousand of
// MiniLM's 30,522 word rows in a few-shot run: about 85 of the 94 MB that zeros_like would make resident).
// Reading an untouched page (saving the state) maps the kernel's shared zero page, not new memory.
torch::Tensor untouched_zeros_like(const torch::Tensor& like) {
  const size_t bytes = static_cast<size_t>(like.numel()) * like.element_size();
  void* mem = bytes ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
  if (mem == MAP_FAILED) return torch::zeros_like(like);
  return torch::from_blob(mem, like.sizes(), [bytes](void* q) { ::munmap(q, bytes); }, like.options());
}

}  // namespace

FusedAdamW::FusedAdamW(std::vector<Group> groups, std::vector<torch::Tensor> row_sparse, Options o) : o_(o) {
  for (auto& g : groups) {
    for (auto& p : g.params) {
      Slot s;
      s.param = p;
      if (p.scalar_type() != torch::kFloat || !p.is_contiguous())
        throw Error("", "optimizer", "AdamW needs contiguous float32 parameters (master weights)");
      s.weight_decay = g.weight_decay;
      s.lr_scale = g.lr_scale;
      for (auto& r : row_sparse)
        if (r.is_same(p)) s.row_sparse = true;
      if (s.row_sparse) {
        if (p.dim() != 2 || !p.device().is_cpu()) throw Error("", "optimizer", "a row-sparse parameter must be 2-D and on the CPU");
        s.active.assign(static_cast<size_t>(p.size(0)), 0);
        s.m = untouched_zeros_like(p);  // only active rows are ever written
        s.v = untouched_zeros_like(p);
      } else {
        s.m = torch::zeros_like(p);
        s.v = torch::zeros_like(p);
      }
      slots_.push_back(std::move(s));
    }
  }
}

void FusedAdamW::activate(Slot& s, int64_t row) {
  if (s.active[static_cast<size_t>(row)]) return;
  s.active[static_cast<size_t>(row)] = 1;
  s.active_rows.push_back(row);
  if (s.pending != 1.0) {
    const int64_t H = s.param.size(1);
    float* w = s.param.data_ptr<float>() + row * H;
    const float f = static_cast<float>(s.pending);
    for (int64_t j = 0; j < H; ++j) w[j] *= f;
  }
}

void FusedAdamW::prepare(const torch::Tensor& ids) {
  auto flat = ids.to(torch::kCPU).to(torch::kLong).contiguous().view(-1);
  const int64_t* p = flat.data_ptr<int64_t>();
  for (auto& s : slots_) {
    if (!s.row_sparse) continue;
    const int64_t rows = s.param.size(0);
    for (int64_t i = 0; i < flat.numel(); ++i)
      if (p[i] >= 0 && p[i] < rows) activate(s, p[i]);
  }
}

void FusedAdamW::flush() {
  torch::NoGradGuard ng;
  for (auto& s : slots_) {
    if (!s.row_sparse || s.pending == 1.0) continue;
    const float f = static_cast<float>(s.pending);
    const int64_t H = s.param.size(1);
    float* w = s.param.data_ptr<float>();
    const auto& act = s.active;
    at::parallel_for(0, s.param.size(0), 256, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r)
        if (!act[static_cast<size_t>(r)])
          for (int64_t j = 0; j < H; ++j) w[r * H + j] *= f;
    });
    s.pending = 1.0;
  }
}

void FusedAdamW::zero_grad() {
  for (auto& s : slots_) s.param.mutable_grad() = torch::Tensor();
}

double FusedAdamW::step(double lr, double max_norm) {
  torch::NoGradGuard ng;
  // coalesce sparse gradients (duplicate rows summed) and measure the global norm
  std::vector<torch::Tensor> grads(slots_.size());
  double sq = 0;
  for (size_t i = 0; i < slots_.size(); ++i) {
    auto g = slots_[i].param.grad();
    if (!g.defined()) continue;
    if (g.is_sparse()) {
      if (!slots_[i].row_sparse) g = g.to_dense();
      else g = g.coalesce();
    } else if (slots_[i].row_sparse) {
      g = g.to_sparse().coalesce();  // dense gradient on a row-sparse parameter: keep exactness
    }
    grads[i] = g;
    auto vals = (g.is_sparse() ? g._values() : g).contiguous();
    if (vals.device().is_cpu() && vals.scalar_type() == torch::kFloat) {
      const float* vp = vals.data_ptr<float>();
      sq += at::parallel_reduce(
          0, vals.numel(), 32768, 0.0,
          [&](int64_t b, int64_t e, double acc) {
            for (int64_t j = b; j < e; ++j) acc += static_cast<double>(vp[j]) * vp[j];
            return acc;
          },
          std::plus<double>());
    } else {
      sq += vals.to(torch::kDouble).pow(2).sum().item<double>();
    }
  }
  const double norm = std::sqrt(sq);
  float clip = 1.0f;
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) clip = static_cast<float>(coef);
  }
  ++step_;
  const double bc1 = 1.0 - std::pow(o_.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(o_.beta2, static_cast<double>(step_));
  const double base_lr = lr;
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    lr = base_lr * s.lr_scale;
    Coeffs c{static_cast<float>(1.0 - lr * s.weight_decay), static_cast<float>(o_.beta1), static_cast<float>(o_.beta2),
             static_cast<float>(1.0 - o_.beta1), static_cast<float>(1.0 - o_.beta2), static_cast<float>(lr / bc1),
             static_cast<float>(std::sqrt(bc2)), static_cast<float>(o_.eps), clip};
    const auto& g = grads[i];
    if (!s.param.device().is_cpu()) {  // accelerators: the same update from tensor ops
      if (!g.defined()) continue;
      auto gg = clip != 1.0f ? g * clip : g;
      s.param.mul_(1.0 - lr * s.weight_decay);
      s.m.mul_(o_.beta1).add_(gg, 1.0 - o_.beta1);
      s.v.mul_(o_.beta2).addcmul_(gg, gg, 1.0 - o_.beta2);
      s.param.addcdiv_(s.m, (s.v.sqrt() / std::sqrt(bc2)).add_(o_.eps), -lr / bc1);
      continue;
    }
    float* p = s.param.data_ptr<float>();
    float* m = s.m.data_ptr<float>();
    float* v = s.v.data_ptr<float>();
    if (!s.row_sparse) {
      // torch.optim.AdamW skips parameters without a gradient
      if (!g.defined()) continue;
      auto gc = g.contiguous();
      const float* gp = gc.data_ptr<float>();
      at::parallel_for(0, s.param.numel(), 16384,
                       [&](int64_t b, int64_t e) { adamw_span(p + b, m + b, v + b, gp + b, e - b, c); });
      continue;
    }
    // row-sparse: make rows with a gradient active, then update every active row
    if (!g.defined()) continue;  // as torch.optim.AdamW: no gradient, no update (not even decay)
    const int64_t H = s.param.size(1);
    std::vector<int64_t> grad_row(static_cast<size_t>(s.param.size(0)), -1);
    const auto idx = g._indices().select(0, 0).contiguous();
    const auto values = g._values().contiguous();
    const int64_t* ip = idx.data_ptr<int64_t>();
    for (int64_t k = 0; k < idx.numel(); ++k) {
      activate(s, ip[k]);
      grad_row[static_cast<size_t>(ip[k])] = k;
    }
    const float* vp = values.data_ptr<float>();
    const auto& rows = s.active_rows;
    at::parallel_for(0, static_cast<int64_t>(rows.size()), 64, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const int64_t r = rows[static_cast<size_t>(k)];
        const int64_t gr = grad_row[static_cast<size_t>(r)];
        float* pr = p + r * H;
        float* mr = m + r * H;
        float* vr = v + r * H;
        adamw_span(pr, mr, vr, gr >= 0 ? vp + gr * H : nullptr, H, c);
      }
    });
    s.pending *= 1.0 - lr * s.weight_decay;  // the rows not yet active
  }
  zero_grad();
  return norm;
}

void FusedAdamW::save(torch::serialize::OutputArchive& ar) const {
  ar.write("step", torch::tensor(step_));
  for (size_t i = 0; i < slots_.size(); ++i) {
    const auto& s = slots_[i];
    const std::string k = std::to_string(i);
    ar.write("m." + k, s.m);
    ar.write("v." + k, s.v);
    if (s.row_sparse) {
      ar.write("active." + k, torch::tensor(s.active_rows, torch::kLong));
      ar.write("pending." + k, torch::tensor(s.pending, torch::kDouble));
    }
  }
}

// The state of a row-sparse and of a dense optimizer are read by either (a run resumed with or without
// data-parallel workers, which train embeddings densely).
void FusedAdamW::load(torch::serialize::InputArchive& ar) {
  auto activate_loaded = [](Slot& s, int64_t r) {
    s.active[static_cast<size_t>(r)] = 1;
    s.active_rows.push_back(r);
  };
  torch::Tensor t;
  ar.read("step", t);
  step_ = t.item<int64_t>();
  for (size_t i = 0; i < slots_.size(); ++i) {
    auto& s = slots_[i];
    const std::string k = std::to_string(i);
    torch::Tensor m, v;
    ar.read("m." + k, m);
    ar.read("v." + k, v);
    if (m.sizes() != s.param.sizes() || v.sizes() != s.param.sizes())
      throw Error("optimizer.pt", "m." + k, "state does not match the model's parameter shapes");
    if (!s.row_sparse) {  // a dense slot reads a row-sparse state as is: m = v = 0 on untouched rows
      s.m.copy_(m);
      s.v.copy_(v);
      continue;
    }
    // a row-sparse slot's moments are written on its active rows only, so the others stay untouched pages
    if (!s.active_rows.empty()) {
      const auto rows = torch::tensor(s.active_rows, torch::kLong);
      s.m.index_fill_(0, rows, 0);
      s.v.index_fill_(0, rows, 0);
    }
    s.active.assign(s.active.size(), 0);
    s.active_rows.clear();
    torch::Tensor act, pend;
    if (!ar.try_read("active." + k, act)) {
      // written by a dense optimizer (a data-parallel run): rows with any moment have been active
      const torch::Tensor touched = (m.ne(0).any(1) | v.ne(0).any(1)).nonzero().reshape(-1).to(torch::kLong).contiguous();
      for (int64_t j = 0; j < touched.numel(); ++j) activate_loaded(s, touched.data_ptr<int64_t>()[j]);
      s.pending = 1.0;
    } else {
      ar.read("pending." + k, pend);
      auto a = act.contiguous();
      for (int64_t j = 0; j < a.numel(); ++j) {
        int64_t r = a.data_ptr<int64_t>()[j];
        if (r < 0 || r >= s.param.size(0)) throw Error("optimizer.pt", "active." + k, "row out of range");
        activate_loaded(s, r);
      }
      s.pending = pend.item<double>();
    }
    if (!s.active_rows.empty()) {
      const auto rows = torch::tensor(s.active_rows, torch::kLong);
      s.m.index_copy_(0, rows, m.index_select(0, rows));
      s.v.index_copy_(0, rows, v.index_select(0, rows));
    }
  }
}

std::string FusedAdamW::to_bytes() const {
  torch::serialize::OutputArchive ar;
  save(ar);
  std::string out;  // appended to directly: an ostringstream's str() would copy the whole state once more
  ar.save_to([&](const void* data, size_t size) -> size_t {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  return out;
}

void FusedAdamW::save_file(const std::string& path) const {
  torch::serialize::OutputArchive ar;
  save(ar);
  write_atomic(path, [&](const ByteSink& sink) {
    // A failed write (a full disk) is kept and thrown once torch's writer has finished: an exception through
    // libtorch 1.13's zip writer reaches its destructor, which writes again, throws again and aborts.
    std::exception_ptr failed;
    ar.save_to([&](const void* data, size_t size) -> size_t {
      if (!failed) {
        try {
          sink(data, size);
        } catch (...) {
          failed = std::current_exception();
        }
      }
      return size;
    });
    if (failed) std::rethrow_exception(failed);
  });
}

void FusedAdamW::from_bytes(const std::string& bytes) {
  std::istringstream in(bytes);
  torch::serialize::InputArchive ar;
  ar.load_from(in);
  load(ar);
}

void FusedAdamW::load_file(const std::string& path) {
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(path);
    load(ar);
  } catch (const c10::Error&) {
    throw Error(path, "", "unreadable optimizer state");
  }
}

}  // namespace kotsu
