// Whole clusters of real towerps processes on 127.0.0.1 (deploy/local.sh and the
// binaries themselves), against embedded mode on the same data and seed.
#include <unistd.h>
#include <zmq.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "net/codec.h"
#include "net/membership_client.h"
#include "nlohmann/json.hpp"
#include "ps/checkpoint.h"
#include "tests/integration/cluster_fixture.h"

namespace towerps {
namespace {

using testing::Subprocess;
using namespace std::chrono_literals;

class ClusterTest : public testing::ClusterFixture {
 protected:
  // step -> loss from a losses file.
  std::map<int64_t, double> Losses(const std::string& path) {
    std::map<int64_t, double> out;
    auto text = ReadFileToString(path);
    EXPECT_TRUE(text.ok()) << text.status();
    for (absl::string_view line : absl::StrSplit(text.value_or(""), '\n', absl::SkipEmpty())) {
      std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
      int64_t step;
      double loss;
      if (f.size() == 2 && absl::SimpleAtoi(f[0], &step) && absl::SimpleAtod(f[1], &loss)) {
        out[step] = loss;
      }
    }
    return out;
  }

  // The JSON objects of a JSON-lines file (a failure for a line that is not one).
  std::vector<nlohmann::json> JsonLines(const std::string& path) {
    std::vector<nlohmann::json> out;
    auto text = ReadFileToString(path);
    EXPECT_TRUE(text.ok()) << text.status();
    for (absl::string_view line : absl::StrSplit(text.value_or(""), '\n', absl::SkipEmpty())) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_TRUE(j.is_object()) << path << ": " << line;
      if (j.is_object()) out.push_back(std::move(j));
    }
    return out;
  }

  double Recall50(const std::string& config, const std::string& dataset,
                  const std::string& checkpoint, const std::string& name) {
    Run(name, {binary_, "evaluate", "--config=" + config, "--dataset=" + dataset,
               "--checkpoint=" + checkpoint, "--json"});
    auto out = ReadFileToString(dir_ + "/" + name + ".log");
    std::string text = out.value_or("");
    size_t at = text.find("\"recall@50\":");
    EXPECT_NE(at, std::string::npos) << text;
    return at == std::string::npos ? 0 : std::atof(text.c_str() + at + 12);
  }
};

// --staleness 0 and one worker: the cluster computes embedded mode's losses.
TEST_F(ClusterTest, SynchronousOneWorkerMatchesEmbeddedLossPerStep) {
  std::string dataset = SmallDataset();
  std::string config = Config("model");
  Run("embedded", {binary_, "train", "--config=" + config, "--dataset=" + dataset,
                   "--run_dir=" + dir_ + "/embedded", "--threads=1", "--log_losses"});
  Run("cluster", {source_ + "/deploy/local.sh", "--config", config, "--dataset", dataset,
                  "--run_dir", dir_ + "/cluster", "--servers", "2", "--workers", "1",
                  "--staleness", "0", "--log_losses", "--towerps", binary_});
  auto embedded = Losses(dir_ + "/embedded/losses.tsv");
  auto cluster = Losses(dir_ + "/cluster/losses-worker-0.tsv");
  ASSERT_GT(embedded.size(), 100u);
  ASSERT_EQ(cluster.size(), embedded.size());
  for (const auto& [step, loss] : embedded) {
    ASSERT_TRUE(cluster.contains(step)) << step;
    EXPECT_NEAR(cluster[step], loss, 1e-4 * std::max(1.0, std::abs(loss))) << "step " << step;
  }
  // What the dashboard reads: the scheduler's events, every process's memory and the
  // worker's examples, and an evaluation appended to the run directory.
  std::map<std::string, nlohmann::json> last;  // by event
  for (const nlohmann::json& e : JsonLines(dir_ + "/cluster/events.jsonl")) {
    last[e.value("event", "")] = e;
  }
  ASSERT_TRUE(last.contains("job_start") && last.contains("job_end"));
  EXPECT_EQ(last["job_start"]["servers"], 2);
  EXPECT_EQ(last["job_start"]["planned_steps"], static_cast<int64_t>(embedded.size()));
  EXPECT_EQ(last["job_end"]["phase"], "done");
  EXPECT_EQ(last["job_end"]["global_step"], static_cast<int64_t>(embedded.size()));
  ASSERT_TRUE(last.contains("checkpoint"));
  EXPECT_EQ(last["checkpoint"]["ok"], true);
  EXPECT_GT(last["checkpoint"]["bytes"].get<int64_t>(), 0);
  std::map<std::string, double> memory;  // by role
  int64_t worker_examples = 0;
  for (const nlohmann::json& m : JsonLines(dir_ + "/cluster/metrics.jsonl")) {
    memory[m.value("role", "")] = m.value("towerps_process_resident_memory_bytes", 0.0);
    if (m.value("role", "") == "worker") {
      worker_examples = m.value("towerps_worker_examples_total", int64_t{0});
    }
  }
  for (const char* role : {"scheduler", "ps", "worker"}) EXPECT_GT(memory[role], 1e6) << role;
  EXPECT_GT(worker_examples, static_cast<int64_t>(embedded.size()));
  ASSERT_EQ(Run("evaluate", {binary_, "evaluate", "--config=" + config, "--dataset=" + dataset,
                             "--checkpoint=" + dir_ + "/cluster/checkpoint", "--json",
                             "--run_dir=" + dir_ + "/cluster"}),
            0);
  auto evaluations = JsonLines(dir_ + "/cluster/evaluations.jsonl");
  ASSERT_EQ(evaluations.size(), 1u);
  EXPECT_EQ(evaluations[0]["step"], static_cast<int64_t>(embedded.size()));
  const nlohmann::json& health = evaluations[0]["embedding_health"];
  ASSERT_TRUE(health.is_object()) << evaluations[0].dump();
  EXPECT_GT(health["item_coverage"].get<double>(), 0.5);
  EXPECT_LE(health["item_coverage"].get<double>(), 1.0);
  EXPECT_FALSE(health["collapse_warning"].get<bool>());
  EXPECT_EQ(health["collapse_threshold"].get<double>(), 0.85);
  // The norms are those of the checkpoint's item_id rows (the towers' outputs are
  // L2-normalised: no tower-output norms), which training moved off their init norm.
  EXPECT_FALSE(health.contains("item_norm_quantiles"));
  ASSERT_TRUE(health["item_id_norm_quantiles"].is_array());
  ASSERT_EQ(health["item_id_norm_quantiles"].size(), 7u);
  EXPECT_GT(health["item_id_norm_quantiles"][6].get<double>(),
            health["item_id_norm_quantiles"][0].get<double>());
  int64_t binned = 0;
  for (const auto& c : health["item_id_norm_histogram"]["counts"]) binned += c.get<int64_t>();
  EXPECT_EQ(binned, health["item_id_rows"].get<int64_t>());
  EXPECT_GT(binned, 0);
}

// 2 servers and 2 asynchronous workers on MovieTweetings, secured
// (deploy/local.sh --secure): test Recall@50 within 5% (relative) of embedded mode's.
// While it trains, processes without the job's keys (none, or another job's) try to
// stop it and to order a checkpoint: each attempt fails, and the job finishes.
TEST_F(ClusterTest, SecuredAsyncClusterOnMovieTweetingsResistsKeylessPeers) {
  std::string input = Env("TOWERPS_SHARED_DATA") + "/movietweetings-100k";
  if (!PathExists(input + "/ratings.dat")) {
    GTEST_SKIP() << "MovieTweetings not found at " << input << " (../shared/data is absent)";
  }
  std::string dataset = dir_ + "/mt";
  Run("prepare", {binary_, "prepare", "--input=" + input, "--output=" + dataset,
                  "--min_rating=7"});
  std::string config = source_ + "/examples/movietweetings.conf";
  Run("embedded", {binary_, "train", "--config=" + config, "--dataset=" + dataset,
                   "--run_dir=" + dir_ + "/embedded", "--threads=1"});
  ASSERT_EQ(Run("other_keys", {binary_, "keygen", "--output_dir=" + dir_ + "/other_keys",
                               "--num_servers=2", "--num_workers=2"}),
            0);
  const std::string run_dir = dir_ + "/cluster";
  Subprocess cluster({source_ + "/deploy/local.sh", "--config", config, "--dataset", dataset,
                      "--run_dir", run_dir, "--servers", "2", "--workers", "2", "--secure",
                      "--towerps", binary_},
                     dir_ + "/cluster.log");
  std::string endpoint;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (endpoint.empty() && std::chrono::steady_clock::now() < deadline &&
         !cluster.Wait(20ms)) {
    endpoint = ReadFileToString(run_dir + "/scheduler.endpoint").value_or("");
  }
  ASSERT_FALSE(endpoint.empty()) << "no scheduler endpoint; see " << dir_ << "/cluster.log";
  endpoint.erase(endpoint.find_last_not_of("\n") + 1);
  for (const std::string& keys : {std::string(), "--curve_dir=" + dir_ + "/other_keys"}) {
    for (const char* command : {"stop", "checkpoint"}) {
      std::vector<std::string> argv = {binary_, "ctl", "--scheduler=" + endpoint,
                                       "--ctl_timeout_ms=1000"};
      if (!keys.empty()) argv.push_back(keys);
      argv.push_back(command);
      Subprocess attacker(argv, dir_ + "/attacker.log");
      std::optional<int> rc = attacker.Wait(30s);
      EXPECT_TRUE(rc.has_value() && *rc != 0) << command << " " << keys;
      EXPECT_TRUE(cluster.GroupAlive()) << "the job ended after `ctl " << command << "`";
    }
  }
  std::optional<int> rc = cluster.Wait(600s);
  ASSERT_TRUE(rc.has_value()) << "the secured cluster did not finish";
  EXPECT_EQ(*rc, 0) << ReadFileToString(dir_ + "/cluster.log").value_or("");
  // Not stopped early: the final checkpoint has every partition done.
  auto latest = ps::LatestCheckpoint(run_dir + "/checkpoint");
  ASSERT_TRUE(latest.ok()) << latest.status();
  auto manifest = ps::VerifyCheckpoint(*latest);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_FALSE(manifest->partitions.empty());
  for (const ps::PartitionProgress& p : manifest->partitions) EXPECT_TRUE(p.done) << p.id;
  double embedded = Recall50(config, dataset, dir_ + "/embedded/checkpoint", "eval_embedded");
  double secured = Recall50(config, dataset, run_dir + "/checkpoint", "eval_cluster");
  RecordProperty("embedded_recall_at_50", std::to_string(embedded));
  RecordProperty("cluster_recall_at_50", std::to_string(secured));
  EXPECT_GT(embedded, 0.3);
  EXPECT_NEAR(secured, embedded, 0.05 * embedded) << "embedded " << embedded;
}

// A real `towerps ps` process: malformed and truncated messages get error replies
// and the server keeps serving; a retried push is applied once.
TEST_F(ClusterTest, ServerRefusesBadMessagesAndAppliesRetriedPushOnce) {
  std::string dataset = SmallDataset();
  std::string config = Config("model");
  std::unique_ptr<Subprocess> scheduler;
  std::string sched = StartScheduler({"--config=" + config, "--dataset=" + dataset,
                                      "--run_dir=" + dir_ + "/run", "--num_servers=1",
                                      "--num_workers=1"},
                                     &scheduler);
  ASSERT_FALSE(sched.empty());
  auto ps = StartNode({"ps", "--run_dir=" + dir_ + "/run"}, config, dataset, sched, "ps.log");
  // Register a worker so the cluster forms, then read the server's endpoint.
  auto membership = ConnectScheduler(sched);
  ASSERT_NE(membership, nullptr);
  ASSERT_TRUE(membership->Register(net::kRoleWorker, 0, "").ok());
  auto view = membership->WaitForCluster(net::kRoleWorker, 0, 30000);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->server_endpoints.size(), 1u);

  void* raw = zmq_socket(ctx_.get(), ZMQ_DEALER);
  int linger = 0, timeout = 10000;
  zmq_setsockopt(raw, ZMQ_LINGER, &linger, sizeof(linger));
  zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
  ASSERT_EQ(zmq_connect(raw, view->server_endpoints[0].c_str()), 0);
  auto exchange = [&](const std::string& frame) -> absl::StatusOr<std::string> {
    if (zmq_send(raw, frame.data(), frame.size(), 0) < 0) return absl::InternalError("send");
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, raw, 0) < 0) {
      zmq_msg_close(&msg);
      return absl::DeadlineExceededError("no reply");
    }
    std::string reply(static_cast<char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
    return reply;
  };
  auto error_code = [&](const std::string& reply) {
    auto decoded = net::DecodeEnvelope(reply, net::CodecOptions());
    if (!decoded.ok()) return absl::StatusCode::kUnknown;
    auto body = (*decoded)->envelope().getBody();
    if (body.which() != net::wire::Envelope::Body::ERROR) return absl::StatusCode::kOk;
    return net::StatusFromError(body.getError()).code();
  };
  auto push_frame = [&](uint64_t seq) {
    capnp::MallocMessageBuilder message;
    auto envelope = message.initRoot<net::wire::Envelope>();
    net::InitEnvelope(envelope, "test", seq);
    auto push = envelope.getBody().initPushSparse();
    uint64_t key = 12345;
    std::vector<float> grad(16, 1.0f);  // table 0 (item_id) has dim 16
    auto part = push.initTables(1)[0];
    part.setTable(0);
    part.setKeys(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(&key), sizeof(key)));
    part.setGrads(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(grad.data()),
                                      grad.size() * sizeof(float)));
    part.setLearningRate(1.0f);
    push.setClientId(77);
    push.setSeq(seq);
    return net::EncodeMessage(message);
  };
  std::string good = push_frame(1);
  // Garbage, a truncated frame, and a push whose dims do not match: error replies.
  auto reply = exchange(std::string(48, '\x7f'));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(error_code(*reply), absl::StatusCode::kDataLoss);
  reply = exchange(good.substr(0, good.size() - 16));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(error_code(*reply), absl::StatusCode::kDataLoss);
  // The same push twice (a retry): applied once.
  reply = exchange(good);
  ASSERT_TRUE(reply.ok());
  ASSERT_EQ(error_code(*reply), absl::StatusCode::kOk);
  auto first = net::DecodeEnvelope(*reply, net::CodecOptions());
  EXPECT_FALSE((*first)->envelope().getBody().getPushReply().getDuplicate());
  reply = exchange(good);
  ASSERT_TRUE(reply.ok());
  auto second = net::DecodeEnvelope(*reply, net::CodecOptions());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE((*second)->envelope().getBody().getPushReply().getDuplicate());
  zmq_close(raw);
  ASSERT_TRUE(membership->Control("stop").ok());
  EXPECT_EQ(ps->Wait(30s).value_or(-1), 0);
  EXPECT_EQ(scheduler->Wait(30s).value_or(-1), 0);
}


// A worker killed mid-training: the scheduler declares it dead, its unfinished
// partitions go to the surviving worker (resuming where it reported), and the job
// still completes with every partition done and a verified final checkpoint.
TEST_F(ClusterTest, KilledWorkerPartitionsAreHandedOver) {
  std::string dataset = MediumDataset();
  std::string config = Config("model");
  std::string run = dir_ + "/run";
  std::unique_ptr<Subprocess> scheduler;
  std::string sched = StartScheduler({"--config=" + config, "--dataset=" + dataset,
                                      "--run_dir=" + run, "--num_servers=1", "--num_workers=2",
                                      "--num_partitions=4", "--heartbeat_timeout_ms=1500"},
                                     &scheduler);
  ASSERT_FALSE(sched.empty());
  auto ps = StartNode({"ps", "--run_dir=" + dir_ + "/run"}, config, dataset, sched, "ps.log");
  auto worker0 = StartNode({"worker", "--worker_rank=0"}, config, dataset, sched, "worker0.log");
  auto worker1 = StartNode({"worker", "--worker_rank=1"}, config, dataset, sched, "worker1.log");

  auto ctl = ConnectScheduler(sched);
  ASSERT_NE(ctl, nullptr);
  int64_t steps = -1;
  for (int i = 0; i < 600 && steps < 5; ++i) {
    std::this_thread::sleep_for(20ms);
    steps = WorkerSteps(ctl.get(), 1);
  }
  ASSERT_GE(steps, 5) << "worker 1 never trained";
  ASSERT_TRUE(ctl->Control("pause").ok());
  worker1->Signal(SIGKILL);  // killed mid-job (SIGTERM would make it leave cleanly)
  bool declared_dead = false;
  for (int i = 0; i < 200 && !declared_dead; ++i) {
    std::this_thread::sleep_for(50ms);
    auto status = ctl->Control("status");
    declared_dead = status.ok() &&
                    status->find("{\"rank\":1,\"alive\":false") != std::string::npos;
  }
  ASSERT_TRUE(declared_dead) << "the scheduler did not declare worker 1 dead";
  ASSERT_TRUE(ctl->Control("resume").ok());
  EXPECT_EQ(worker0->Wait(240s).value_or(-1), 0);
  EXPECT_EQ(scheduler->Wait(60s).value_or(-1), 0);
  EXPECT_EQ(ps->Wait(60s).value_or(-1), 0);
  std::string final_status = ReadFileToString(dir_ + "/scheduler.log").value_or("");
  EXPECT_NE(final_status.find("\"partitions_done\":4,\"partitions\":4"), std::string::npos)
      << final_status;
  EXPECT_NE(final_status.find("handed to worker 0"), std::string::npos) << final_status;
  auto latest = ps::LatestCheckpoint(run + "/checkpoint");
  ASSERT_TRUE(latest.ok()) << latest.status();
}

// A parameter server killed mid-job and not replaced: once --recovery_timeout_ms
// passes the scheduler fails the job; a new job started with --resume=latest loads every
// server's shards from that checkpoint, carries the global step and the partitions'
// progress on from it, and finishes with a verified final checkpoint.
TEST_F(ClusterTest, KilledServerFailsTheJobAndResumeFinishesIt) {
  std::string dataset = MediumDataset();
  std::string config = Config("model");
  std::string run = dir_ + "/run";
  const std::vector<std::string> job = {"--config=" + config, "--dataset=" + dataset,
                                        "--run_dir=" + run, "--num_servers=2",
                                        "--num_workers=1", "--num_partitions=2",
                                        "--heartbeat_timeout_ms=1500",
                                        "--recovery_timeout_ms=2000",
                                        "--checkpoint_every_steps=20"};
  int64_t checkpoint_step = -1;
  {
    std::unique_ptr<Subprocess> scheduler;
    std::string sched = StartScheduler(job, &scheduler, "scheduler1");
    ASSERT_FALSE(sched.empty());
    auto ps0 = StartNode({"ps", "--rank=0", "--run_dir=" + dir_ + "/run"}, config, dataset, sched,
                         "ps0.log");
    auto ps1 = StartNode({"ps", "--rank=1", "--run_dir=" + dir_ + "/run"}, config, dataset, sched,
                         "ps1.log");
    auto worker = StartNode({"worker"}, config, dataset, sched, "worker1.log");
    auto ctl = ConnectScheduler(sched);
    ASSERT_NE(ctl, nullptr);
    // Wait for a checkpoint past step 20, then pause so the job cannot finish first.
    for (int i = 0; i < 1500 && checkpoint_step < 20; ++i) {
      std::this_thread::sleep_for(20ms);
      auto latest = ps::LatestCheckpoint(run + "/checkpoint");
      if (latest.ok()) checkpoint_step = ps::VerifyCheckpoint(*latest)->step;
    }
    ASSERT_GE(checkpoint_step, 20) << "no checkpoint was written";
    ASSERT_TRUE(ctl->Control("pause").ok());
    ps1.reset();  // killed mid-job
    EXPECT_NE(scheduler->Wait(60s).value_or(0), 0) << "the job must fail without ps 1";
    std::string log = ReadFileToString(dir_ + "/scheduler1.log").value_or("");
    EXPECT_NE(log.find("parameter server 1 is dead"), std::string::npos) << log;
  }  // the worker and ps 0 are stopped, as deploy/local.sh does
  auto resumed_from = ps::LatestCheckpoint(run + "/checkpoint");
  ASSERT_TRUE(resumed_from.ok()) << resumed_from.status();
  const int64_t resumed_step = ps::VerifyCheckpoint(*resumed_from)->step;
  ASSERT_GE(resumed_step, checkpoint_step);

  std::vector<std::string> resume = job;
  resume.push_back("--resume=latest");
  std::unique_ptr<Subprocess> scheduler;
  std::string sched = StartScheduler(resume, &scheduler, "scheduler2");
  ASSERT_FALSE(sched.empty());
  auto ps0 = StartNode({"ps", "--rank=0", "--run_dir=" + dir_ + "/run"}, config, dataset, sched,
                       "ps0b.log");
  auto ps1 = StartNode({"ps", "--rank=1", "--run_dir=" + dir_ + "/run"}, config, dataset, sched,
                       "ps1b.log");
  auto worker = StartNode({"worker"}, config, dataset, sched, "worker2.log");
  EXPECT_EQ(worker->Wait(240s).value_or(-1), 0);
  EXPECT_EQ(scheduler->Wait(60s).value_or(-1), 0);
  for (const char* log : {"ps0b.log", "ps1b.log"}) {
    EXPECT_NE(ReadFileToString(dir_ + "/" + log).value_or("").find("restored from " + *resumed_from),
              std::string::npos)
        << log;
  }
  std::string final_status = ReadFileToString(dir_ + "/scheduler2.log").value_or("");
  EXPECT_NE(final_status.find("\"partitions_done\":2,\"partitions\":2"), std::string::npos)
      << final_status;
  auto last = ps::LatestCheckpoint(run + "/checkpoint");
  ASSERT_TRUE(last.ok()) << last.status();
  // The resumed job counted on from the checkpoint's step, not from zero.
  EXPECT_GT(ps::VerifyCheckpoint(*last)->step, resumed_step);
  EXPECT_NE(final_status.find("resuming from " + *resumed_from), std::string::npos);
  // ... and its reader went on from where the checkpoint's progress said, not from 0.
  const std::string worker_log = ReadFileToString(dir_ + "/worker2.log").value_or("");
  const std::string from = "partition 0 from example ";
  const size_t at = worker_log.find(from);
  ASSERT_NE(at, std::string::npos) << worker_log;
  EXPECT_GT(std::atoll(worker_log.c_str() + at + from.size()), 0) << worker_log;
}

}  // namespace
}  // namespace towerps
