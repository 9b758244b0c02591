// dist/process_group: workers joined through c10d (TCPStore + ProcessGroupGloo). The workers are this test
// binary started again with a filter (DistWorker.*) and torchrun's variables, so each is a separate process.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>

#include "kotsu/core/error.hpp"
#include "kotsu/dist/grad_sync.hpp"
#include "kotsu/dist/process_group.hpp"
#include "kotsu/models/bert.hpp"
#include "kotsu/dist/shard.hpp"
#include "test_models.hpp"
#include "test_util.hpp"

namespace kotsu {
namespace {

int free_port() {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &n);
  close(s);
  return ntohs(a.sin_port);
}

// GradSync over the group: a tiny BERT whose gradients come in several 4 KiB buckets. Each worker's batch
// differs; after finish() every worker holds the sum over workers of (an unsynchronised accumulation
// micro-batch + the armed one), which each worker can also compute alone since it knows every batch.
void expect_grad_sync_sums_in_buckets(ProcessGroup& pg) {
  BertClassifier m(test::tiny_encoder_config(100, 16, 2, 16), 2);
  m.init_all(7);
  m.eval();
  auto batch_of = [](int r, int micro) {
    torch::manual_seed(100 * r + micro);
    auto ids = torch::randint(1, 100, {2, 6}, torch::kLong);
    return TextBatch{ids, torch::ones({2, 6}, torch::kLong), {}, torch::tensor({r % 2, (r + micro) % 2}, torch::kLong)};
  };
  auto loss_of = [&](const TextBatch& b) { return torch::nn::functional::cross_entropy(m.logits(b), b.labels); };
  // the expected sum, computed alone
  std::vector<torch::Tensor> expected;
  for (auto& p : m.parameters()) expected.push_back(torch::zeros_like(p));
  for (int r = 0; r < pg.size(); ++r)
    for (int micro = 0; micro < 2; ++micro) {
      for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
      loss_of(batch_of(r, micro)).backward();
      auto ps = m.parameters();
      for (size_t i = 0; i < ps.size(); ++i)
        if (ps[i].grad().defined()) expected[i] += ps[i].grad();
    }
  for (auto& p : m.parameters()) p.mutable_grad() = torch::Tensor();
  GradSync sync(pg, m.parameters(), 4096);
  EXPECT_GT(sync.buckets(), 3u);
  loss_of(batch_of(pg.rank(), 0)).backward();  // accumulation: nothing sent
  sync.arm();
  loss_of(batch_of(pg.rank(), 1)).backward();
  sync.finish();
  EXPECT_GT(sync.started_during_backward(), 0u) << "no bucket was sent before the backward pass ended";
  auto ps = m.parameters();
  for (size_t i = 0; i < ps.size(); ++i) EXPECT_TRUE(torch::allclose(ps[i].grad(), expected[i], 1e-5, 1e-6)) << "parameter " << i;
}

// One worker (runs only when a Dist.* test starts it): joins, sums, broadcasts, meets at a barrier.
// KOTSU_DIST_TEST=die: rank 1 leaves right after joining; the others must fail with a clear error.
TEST(DistWorker, SumBroadcastBarrier) {
  const char* mode = std::getenv("KOTSU_DIST_TEST");
  if (!mode) GTEST_SKIP() << "a worker process of the Dist.* tests (they start it)";
  DistConfig c = dist_config_from_env();
  c.timeout = std::chrono::milliseconds(std::atoi(std::getenv("KOTSU_DIST_TIMEOUT_MS")));
  ProcessGroup pg(c);
  if (std::string(mode) == "die") {
    if (pg.rank() == 1) _exit(3);
    std::vector<torch::Tensor> t{torch::ones({4})};
    const auto t0 = std::chrono::steady_clock::now();
    try {
      pg.all_reduce_sum(t);
      ADD_FAILURE() << "the all-reduce succeeded without rank 1";
    } catch (const Error& e) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("lost worker reported after %.1f s: %s\n", s, e.what());
      EXPECT_NE(std::string(e.what()).find("rank 0 of 2: worker rank 1 was lost or stopped answering"), std::string::npos) << e.what();
      EXPECT_LT(s, 30.0);
    }
    return;
  }
  const double r = pg.rank();
  std::vector<torch::Tensor> t{torch::full({3}, r + 1), torch::full({2, 2}, 10 * (r + 1), torch::kDouble), torch::full({5}, 2 * r)};
  pg.all_reduce_sum(t);  // ranks 0, 1, 2: sums 6, 60 (double), 6
  EXPECT_TRUE(torch::allclose(t[0], torch::full({3}, 6.0)));
  EXPECT_TRUE(torch::allclose(t[1], torch::full({2, 2}, 60.0, torch::kDouble)));
  EXPECT_EQ(t[1].scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::allclose(t[2], torch::full({5}, 6.0)));
  std::vector<torch::Tensor> b{torch::full({2}, pg.rank() == 0 ? 7.0 : -1.0)};
  pg.broadcast(b, 0);
  EXPECT_TRUE(torch::equal(b[0], torch::full({2}, 7.0)));
  pg.barrier();
  // gathering rows, broadcasting bytes
  const auto [from, to] = worker_range(7, pg.rank(), pg.size());
  const torch::Tensor mine = torch::arange(static_cast<int64_t>(from) * 2, static_cast<int64_t>(to) * 2, torch::kFloat).reshape({-1, 2});
  EXPECT_TRUE(torch::equal(pg.gather_rows(mine, static_cast<int64_t>(from), 7), torch::arange(14, torch::kFloat).reshape({7, 2})));
  std::string bytes = pg.rank() == 0 ? std::string("run.json\0text", 13) : std::string("other");
  pg.broadcast_bytes(bytes, 0);
  EXPECT_EQ(bytes, std::string("run.json\0text", 13));
  expect_grad_sync_sums_in_buckets(pg);
  std::printf("worker %d of %d ok\n", pg.rank(), pg.size());
}

// `n` workers of DistWorker.* with torchrun's variables; their outputs and exit statuses.
std::vector<std::pair<int, std::string>> run_workers(int n, const std::string& mode, int timeout_ms) {
  const int port = free_port();
  std::vector<std::future<std::pair<int, std::string>>> f;
  for (int r = 0; r < n; ++r)
    f.push_back(std::async(std::launch::async, [=] {
      int st = 0;
      const std::string cmd = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " WORLD_SIZE=" + std::to_string(n) +
                              " RANK=" + std::to_string(r) + " KOTSU_DIST_TEST=" + mode + " KOTSU_DIST_TIMEOUT_MS=" + std::to_string(timeout_ms) +
                              " /proc/" + std::to_string(getpid()) + "/exe --gtest_filter=DistWorker.*";
      std::string out = test::run_command(cmd, &st);
      return std::make_pair(st, out);
    }));
  std::vector<std::pair<int, std::string>> out;
  for (auto& x : f) out.push_back(x.get());
  return out;
}

TEST(Dist, ThreeWorkersSumBroadcastAndMeet) {
  const auto r = run_workers(3, "ok", 30000);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r[i].first, 0) << r[i].second;
    EXPECT_NE(r[i].second.find("worker " + std::to_string(i) + " of 3 ok"), std::string::npos) << r[i].second;
  }
}

TEST(Dist, ALostWorkerStopsTheOthersWithAClearError) {
  const auto r = run_workers(2, "die", 5000);
  EXPECT_EQ(r[0].first, 0) << r[0].second;  // its test expects the error
  EXPECT_NE(r[0].second.find("lost worker reported after"), std::string::npos) << r[0].second;
  EXPECT_NE(r[1].first, 0);
}

TEST(Dist, ConfigComesFromTorchrunVariablesAndBadOnesAreNamed) {
  ::setenv("MASTER_ADDR", "10.0.0.7", 1);
  ::setenv("MASTER_PORT", "29999", 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  const DistConfig c = dist_config_from_env();
  EXPECT_EQ(c.master_addr, "10.0.0.7");
  EXPECT_EQ(c.master_port, 29999);
  EXPECT_EQ(c.world_size, 4);
  EXPECT_EQ(c.rank, 3);
  ::setenv("RANK", "4", 1);
  try {
    dist_config_from_env();
    ADD_FAILURE() << "RANK 4 of 4 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK"), std::string::npos) << e.what();
  }
  ::setenv("RANK", "0", 1);
  ::setenv("MASTER_PORT", "http", 1);
  EXPECT_THROW(dist_config_from_env(), Error);
  // nobody else joins: the rendezvous gives up after the timeout, naming the address
  ::setenv("MASTER_PORT", std::to_string(free_port()).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("WORLD_SIZE", "2", 1);
  DistConfig alone = dist_config_from_env();
  alone.timeout = std::chrono::milliseconds(1500);
  try {
    ProcessGroup pg(alone);
    ADD_FAILURE() << "joined a group of 2 alone";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("could not join the 2 workers at 127.0.0.1"), std::string::npos) << e.what();
  }
  for (const char* v : {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"}) ::unsetenv(v);
}

// Worker shards: the union of the workers' parts of a global batch is that batch, in order (one process's
// step-g batch of W*B examples), parts are B when the batch is full and near-equal when it is short, and
// every worker has the same number of steps.
TEST(Dist, WorkerBatchesSplitEachGlobalBatchAndCoverTheEpochOnce) {
  std::vector<size_t> order(23);
  for (size_t i = 0; i < order.size(); ++i) order[i] = (i * 7) % 23;  // a permutation
  for (int world : {1, 2, 3, 4}) {
    const size_t B = 3, G = B * static_cast<size_t>(world);
    std::vector<std::vector<size_t>> global;
    for (size_t s = 0; s < order.size(); s += G)
      global.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(s), order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), s + G)));
    std::vector<std::vector<std::vector<size_t>>> per(world);
    for (int r = 0; r < world; ++r) per[r] = worker_batches(global, r, world);
    std::vector<size_t> seen;
    for (size_t g = 0; g < global.size(); ++g) {
      std::vector<size_t> joined;
      for (int r = 0; r < world; ++r) {
        ASSERT_EQ(per[r].size(), global.size()) << "world " << world;
        if (global[g].size() == G) { EXPECT_EQ(per[r][g].size(), B); }
        EXPECT_LE(per[r][g].size(), (global[g].size() + world - 1) / world);
        EXPECT_GE(per[r][g].size(), global[g].size() / world);
        joined.insert(joined.end(), per[r][g].begin(), per[r][g].end());
      }
      EXPECT_EQ(joined, global[g]) << "world " << world << " step " << g;
      seen.insert(seen.end(), joined.begin(), joined.end());
    }
    EXPECT_EQ(seen, order);
  }
  // a short last batch of 11 over 4 workers: 2, 3, 3, 3; of 1 over 4: three workers get none
  const std::vector<size_t> eleven(11), one(1);
  EXPECT_EQ(worker_slice(eleven, 0, 4).size(), 2u);
  EXPECT_EQ(worker_slice(eleven, 3, 4).size(), 3u);
  EXPECT_EQ(worker_slice(one, 0, 4).size() + worker_slice(one, 1, 4).size() + worker_slice(one, 2, 4).size(), 0u);
  EXPECT_EQ(worker_slice(one, 3, 4).size(), 1u);
  EXPECT_EQ(worker_range(10, 1, 3), (std::pair<size_t, size_t>{3, 6}));
  EXPECT_THROW(worker_slice(eleven, 2, 2), Error);
}

}  // namespace
}  // namespace kotsu
