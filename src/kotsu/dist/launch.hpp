// kotsu/dist/launch: starts this machine's data-parallel workers and watches them, as torchrun does: the
// same program and command line again, once per local worker, with torchrun's variables (MASTER_ADDR,
// MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE) plus KOTSU_WORKER=1, KOTSU_DIST_TIMEOUT
// and KOTSU_BUCKET_MB. When a worker dies or fails, the launcher names it, gives the others the
// collective timeout to stop by themselves (they fail naming the lost rank), then kills what is left;
// SIGINT/SIGTERM to the launcher are passed on to the workers.
#pragma once
#include <string>

namespace kotsu {

struct LaunchPlan {
  int nproc = 1;              // workers on this machine
  int nnodes = 1;             // machines
  int node_rank = 0;          // this machine's place among them: its workers are ranks node_rank*nproc ...
  std::string master;         // ADDR:PORT of rank 0's rendezvous; empty: 127.0.0.1 and a free port (one machine)
  int timeout_seconds = 120;  // joining, and each collective
  int bucket_mb = 25;         // gradient bucket size (dist/grad_sync)
};

// A plan's errors (nproc < 1, node_rank outside nnodes, several machines without --master, a bad
// ADDR:PORT) as kotsu::Error naming the flag.
void check_plan(const LaunchPlan& plan);
// Runs the workers and waits for them; returns 0 when all succeeded, 1 otherwise (after a one-line
// message on stderr naming the first worker that failed and how).
int launch_workers(const LaunchPlan& plan);
// True in a process the launcher (or torchrun, or another launcher) started as a worker: KOTSU_WORKER is
// set, or WORLD_SIZE > 1.
bool is_dist_worker();

}  // namespace kotsu
