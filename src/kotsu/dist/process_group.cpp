#include "kotsu/dist/process_group.hpp"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <map>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {
int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw Error("<environment>", name, "'" + std::string(v) + "' is not a whole number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

// c10d's messages carry a C++ stack trace after the first line
std::string first_line(const std::exception& e) {
  std::string msg = e.what();
  const auto nl = msg.find('\n');
  if (nl != std::string::npos) msg.resize(nl);
  return msg;
}

}  // namespace

// What a worker sees when a collective fails: Gloo's reason plus who was lost, on one line. In a group of
// two the lost worker is the other one; in a larger group Gloo's reason names the peer's address.
void ProcessGroup::fail(const std::string& what, const std::exception& e) const {
  const DistConfig& c = config_;
  const std::string who = c.world_size == 2 ? "worker rank " + std::to_string(1 - c.rank) + " was lost or stopped answering"
                                            : "a worker was lost or stopped answering";
  throw Error("distributed", what, "rank " + std::to_string(c.rank) + " of " + std::to_string(c.world_size) + ": " + who + " (" + first_line(e) + ")");
}

DistConfig dist_config_from_env() {
  DistConfig c;
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.master_addr = a;
  c.master_port = env_int("MASTER_PORT", c.master_port, 1, 65535);
  c.world_size = env_int("WORLD_SIZE", c.world_size, 1, 4096);
  c.rank = env_int("RANK", c.rank, 0, c.world_size - 1);
  c.timeout = std::chrono::seconds(env_int("KOTSU_DIST_TIMEOUT", static_cast<int>(c.timeout.count() / 1000), 1, 86400));
  c.bucket_bytes = static_cast<size_t>(env_int("KOTSU_BUCKET_MB", static_cast<int>(c.bucket_bytes >> 20), 1, 1024)) << 20;
  return c;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

ProcessGroup::ProcessGroup(const DistConfig& config) : config_(config), impl_(std::make_unique<Impl>()) {
  // A peer that dies closes its sockets: a send to it must fail with EPIPE, which this worker reports
  // ("worker rank N was lost"), not kill this worker by SIGPIPE, as some of Gloo's and the store's sends (no
  // MSG_NOSIGNAL) would: the launcher then named the survivor as the worker that died.
  std::signal(SIGPIPE, SIG_IGN);
  if (config.world_size < 1 || config.rank < 0 || config.rank >= config.world_size)
    throw Error("distributed", "RANK", "rank " + std::to_string(config.rank) + " is outside a world of " + std::to_string(config.world_size));
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(config.master_port);
    so.isServer = config.rank == 0;
    so.numWorkers = static_cast<size_t>(config.world_size);
    so.waitWorkers = true;
    so.timeout = config.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(config.master_addr, so);
    auto opts = c10d::ProcessGroupGloo::Options::create();
    // the network interface Gloo uses: GLOO_SOCKET_IFNAME as torch reads it, loopback for a local group,
    // else the address this machine's hostname resolves to
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const bool local = config.master_addr == "localhost" || config.master_addr.rfind("127.", 0) == 0;
    opts->devices.push_back(ifname && *ifname ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                            : local           ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                              : c10d::ProcessGroupGloo::createDefaultDevice());
    opts->timeout = config.timeout;
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, config.rank, config.world_size, opts);
  } catch (const std::exception& e) {
    throw Error("distributed", "MASTER_ADDR:MASTER_PORT",
                "rank " + std::to_string(config.rank) + " could not join the " + std::to_string(config.world_size) + " workers at " +
                    config.master_addr + ":" + std::to_string(config.master_port) + " (" + first_line(e) + ")");
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  if (config_.world_size == 1 || tensors.empty()) return;
  torch::NoGradGuard ng;
  std::map<torch::ScalarType, std::vector<size_t>> by_type;
  for (size_t i = 0; i < tensors.size(); ++i) by_type[tensors[i].scalar_type()].push_back(i);
  for (auto& [type, idx] : by_type) {
    std::vector<torch::Tensor> parts;
    for (size_t i : idx) parts.push_back(tensors[i].reshape(-1));
    std::vector<torch::Tensor> flat{torch::cat(parts).cpu()};
    try {
      impl_->pg->allreduce(flat)->wait(config_.timeout);
    } catch (const std::exception& e) {
      fail("all_reduce", e);
    }
    int64_t at = 0;
    for (size_t i : idx) {
      const int64_t n = tensors[i].numel();
      tensors[i].copy_(flat[0].narrow(0, at, n).view(tensors[i].sizes()));
      at += n;
    }
  }
}

struct ProcessGroup::PendingSum::Work {
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<torch::Tensor> tensors;
  std::exception_ptr error;  // starting failed
};

ProcessGroup::PendingSum ProcessGroup::start_sum(torch::Tensor flat) {
  PendingSum p;
  p.group_ = this;
  p.work_ = std::make_shared<PendingSum::Work>();
  p.work_->tensors = {std::move(flat)};
  if (config_.world_size == 1) return p;
  try {
    p.work_->work = impl_->pg->allreduce(p.work_->tensors);
  } catch (const std::exception&) {
    p.work_->error = std::current_exception();
  }
  return p;
}

void ProcessGroup::PendingSum::wait() {
  if (!work_) return;
  try {
    if (work_->error) std::rethrow_exception(work_->error);
    if (work_->work) work_->work->wait(group_->config_.timeout);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    group_->fail("all_reduce", e);
  }
  work_.reset();
}

void ProcessGroup::broadcast_bytes(std::string& bytes, int root) {
  if (config_.world_size == 1) return;
  std::vector<torch::Tensor> size{torch::full({1}, static_cast<int64_t>(bytes.size()), torch::kLong)};
  broadcast(size, root);
  torch::Tensor data = torch::empty({size[0].item<int64_t>()}, torch::kUInt8);
  if (config_.rank == root && !bytes.empty()) std::memcpy(data.data_ptr(), bytes.data(), bytes.size());
  std::vector<torch::Tensor> one{data};
  broadcast(one, root);
  bytes.assign(reinterpret_cast<const char*>(one[0].data_ptr()), static_cast<size_t>(one[0].numel()));
}

torch::Tensor ProcessGroup::gather_rows(const torch::Tensor& mine, int64_t offset, int64_t total_rows) {
  torch::NoGradGuard ng;
  std::vector<int64_t> shape = mine.sizes().vec();
  shape[0] = total_rows;
  torch::Tensor all = torch::zeros(shape, torch::kFloat);
  all.narrow(0, offset, mine.size(0)).copy_(mine.to(torch::kCPU, torch::kFloat));
  std::vector<torch::Tensor> t{all};
  all_reduce_sum(t);  // the other rows are zero on every worker but their owner's
  return t[0];
}

void ProcessGroup::broadcast(std::vector<torch::Tensor>& tensors, int root) {
  if (config_.world_size == 1 || tensors.empty()) return;
  torch::NoGradGuard ng;
  for (auto& t : tensors) {
    std::vector<torch::Tensor> one{t.contiguous().cpu()};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = config_.timeout;
    try {
      impl_->pg->broadcast(one, o)->wait(config_.timeout);
    } catch (const std::exception& e) {
      fail("broadcast", e);
    }
    t.copy_(one[0]);
  }
}

void ProcessGroup::barrier() {
  if (config_.world_size == 1) return;
  try {
    c10d::BarrierOptions o;
    o.timeout = config_.timeout;
    impl_->pg->barrier(o)->wait(config_.timeout);
  } catch (const std::exception& e) {
    fail("barrier", e);
  }
}

}  // namespace kotsu
