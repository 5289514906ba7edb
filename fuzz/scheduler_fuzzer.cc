// The scheduler's request handling: the input is up to 8 request frames, handled in
// order by a fresh scheduler (2 servers, 2 workers, 3 partitions) on a clock that does
// not move, bound to an inproc endpoint. Any request must get a reply or an error
// Status: an escaped exception or a sanitizer report is a crash.
//
// Stopping a scheduler waits for its io thread's poll interval (tens of ms), which
// would bound this target to a few dozen inputs a second; so used schedulers are
// retired in batches, stopped in parallel.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "fuzz/fuzz_util.h"
#include "glog/logging.h"
#include "net/transport.h"
#include "scheduler/scheduler.h"

namespace {

using towerps::scheduler::Scheduler;

void Retire(std::unique_ptr<Scheduler> scheduler) {
  static auto* retired = new std::vector<std::unique_ptr<Scheduler>>();
  retired->push_back(std::move(scheduler));
  if (retired->size() < 32) return;
  std::vector<std::thread> stoppers;
  for (auto& s : *retired) stoppers.emplace_back([&s] { s.reset(); });
  for (auto& t : stoppers) t.join();
  retired->clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static towerps::net::ZmqContext* ctx = new towerps::net::ZmqContext();
  static towerps::FakeClock* clock = new towerps::FakeClock(1'000'000);
  static int instance = 0;
  towerps::scheduler::SchedulerOptions options;
  options.job.num_servers = 2;
  options.job.num_workers = 2;
  options.job.num_partitions = 3;
  options.job.staleness = 1;
  options.num_virtual_shards = 8;
  options.lr_scale.base_lr = 1.0;
  options.lr_scale.warmup_steps = 4;
  options.dense_params = 10;
  options.monitor_interval_ms = 1000;
  options.rpc.bind_endpoint = absl::StrCat("inproc://towerps-fuzz-scheduler-", instance++);
  options.rpc.handler_threads = 0;
  auto scheduler = Scheduler::Start(ctx, options, nullptr, clock);
  CHECK(scheduler.ok()) << scheduler.status();
  towerps::fuzz::ForEachRequest(
      towerps::fuzz::AsView(data, size), 8,
      // An insecure-mode peer: every request reaches the handler's logic (the
      // authorisation rules are table-tested in scheduler/authorization_test.cc).
      [&](const towerps::net::wire::Envelope::Reader& r) {
        (void)(*scheduler)->Handle(towerps::net::Peer(), r);
      });
  Retire(std::move(scheduler).value());
  return 0;
}
