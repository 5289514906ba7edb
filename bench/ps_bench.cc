// bench/run.sh ps: parameter-server traffic on tcp loopback beside raw ZeroMQ moving
// the same bytes with the same concurrency (the transport bound).
//   sparse pull:  4096 keys of dim 64 per request (32 KiB out, 1 MiB back)
//   sparse push:  4096 keys + 4096 x 64 gradients (1 MiB out, a few bytes back)
//   dense pull / push: one block of 1M floats (4 MiB)
// Each figure: keys/s (or floats/s), MB/s and p50/p99 latency, with `clients`
// threads each keeping one request in flight; medians of 5 rounds that alternate
// between ours and the raw peer (the 2-core machine's noise hits both alike).
// Then the cost of encryption: each workload over CURVE (ZAP-authenticated, as
// --curve_dir runs it) beside the same workload in plaintext, alternating the same way
// (`*_curve_throughput`, `*_curve_latency_p50`; peer "towerps_plaintext").
#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "common/allocator.h"
#include "common/metrics.h"
#include "net/transport.h"
#include "net/zap_authenticator.h"
#include "ps/client.h"
#include "ps/server.h"

namespace towerps::bench {
namespace {

constexpr int kDim = 64;
constexpr int kBatch = 4096;
// Key batches each client cycles through (drawn before timing starts).
constexpr size_t kKeyBatches = 64;

struct Result {
  double requests_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};

// Runs `op` from `clients` threads for `seconds`; each thread builds its own state.
template <typename MakeOp>
Result Drive(int clients, double seconds, MakeOp make_op) {
  Histogram latency;
  std::atomic<int64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto op = make_op(c);
      while (!stop.load()) {
        auto t0 = std::chrono::steady_clock::now();
        op();
        latency.Record(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count());
        done.fetch_add(1);
      }
    });
  }
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Histogram::Snapshot s = latency.TakeSnapshot(false);
  return {done.load() / elapsed, s.p50, s.p99};
}

// A raw ROUTER that answers every request with `reply_bytes` bytes.
class RawEchoServer {
 public:
  RawEchoServer(const net::ZmqContext* ctx) : ctx_(ctx) {
    socket_ = zmq_socket(ctx->get(), ZMQ_ROUTER);
    zmq_bind(socket_, "tcp://127.0.0.1:0");
    char endpoint[256];
    size_t size = sizeof(endpoint);
    zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, endpoint, &size);
    endpoint_ = endpoint;
    thread_ = std::thread([this] { Loop(); });
  }
  ~RawEchoServer() {
    stop_ = true;
    thread_.join();
    zmq_close(socket_);
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void Loop() {
    int timeout = 50;
    zmq_setsockopt(socket_, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    std::vector<char> reply;
    while (!stop_) {
      zmq_msg_t id, body;
      zmq_msg_init(&id);
      if (zmq_msg_recv(&id, socket_, 0) < 0) {
        zmq_msg_close(&id);
        continue;
      }
      zmq_msg_init(&body);
      zmq_msg_recv(&body, socket_, 0);
      // The first 8 bytes of a request say how many bytes to answer with.
      uint64_t reply_bytes = 8;
      if (zmq_msg_size(&body) >= 8) std::memcpy(&reply_bytes, zmq_msg_data(&body), 8);
      reply.resize(reply_bytes);
      zmq_msg_send(&id, socket_, ZMQ_SNDMORE);
      zmq_send(socket_, reply.data(), reply.size(), 0);
      zmq_msg_close(&body);
    }
  }
  const net::ZmqContext* ctx_;
  void* socket_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Raw DEALER round trips: send `request_bytes`, receive the reply.
Result RawRoundTrips(const net::ZmqContext* ctx, const std::string& endpoint, int clients,
                     double seconds, uint64_t request_bytes, uint64_t reply_bytes) {
  return Drive(clients, seconds, [&](int) {
    struct State {
      void* socket;
      std::vector<char> request;
      ~State() { zmq_close(socket); }
    };
    auto state = std::make_shared<State>();
    state->socket = zmq_socket(ctx->get(), ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(state->socket, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(state->socket, endpoint.c_str());
    state->request.resize(std::max<uint64_t>(request_bytes, 8));
    std::memcpy(state->request.data(), &reply_bytes, 8);
    return [state] {
      zmq_send(state->socket, state->request.data(), state->request.size(), 0);
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      zmq_msg_recv(&msg, state->socket, 0);
      zmq_msg_close(&msg);
    };
  });
}

// Runs ours and the raw peer in interleaved rounds and returns each one's medians
// (throughput and each latency figure separately).
std::pair<Result, Result> Alternate(int rounds, const std::function<Result()>& ours,
                                    const std::function<Result()>& raw) {
  std::vector<Result> medians;
  for (const auto& results : InterleavedRounds<Result>(rounds, {ours, raw})) {
    auto median = [&](double Result::*field) {
      std::vector<double> v;
      for (const Result& r : results) v.push_back(r.*field);
      return Median(std::move(v));
    };
    medians.push_back({median(&Result::requests_per_s), median(&Result::p50_us),
                       median(&Result::p99_us)});
  }
  return {medians[0], medians[1]};
}

void Report(const std::string& name, const Result& ours, const Result& raw, double units,
            const std::string& unit, double bytes) {
  PrintFigure({"ps", name + "_throughput", ours.requests_per_s * units, unit,
               "raw_zeromq_same_bytes", raw.requests_per_s * units});
  PrintFigure({"ps", name + "_bandwidth", ours.requests_per_s * bytes / 1e6, "MB/s",
               "raw_zeromq_same_bytes", raw.requests_per_s * bytes / 1e6});
  PrintFigure({"ps", name + "_latency_p50", ours.p50_us, "us", "raw_zeromq_same_bytes",
               raw.p50_us});
  PrintFigure({"ps", name + "_latency_p99", ours.p99_us, "us", "raw_zeromq_same_bytes",
               raw.p99_us});
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  using namespace towerps;
  using namespace towerps::bench;
  // As `towerps` does (common/allocator.h), unless --default_malloc: the allocator
  // setting moves the raw peer too, so BENCHMARKS.md reports both.
  bool default_malloc = false;
  for (int i = 1; i < argc; ++i) default_malloc |= std::string(argv[i]) == "--default_malloc";
  if (!default_malloc) KeepLargeAllocationsInHeap();
  const bool quick = QuickMode(argc, argv);
  const int64_t rows = quick ? 100000 : 1000000;
  const uint64_t dense = 1 << 20;
  // Each figure: `rounds` alternating rounds of ours and the raw peer, medians.
  const int rounds = 5;
  const double seconds = quick ? 0.3 : 1.0;
  const int clients = 2;

  ps::ParameterServerOptions options;
  sparse_emb::TableConfig table;
  table.name = "bench";
  table.dim = kDim;
  table.optimizer.kind = sparse_emb::OptimizerKind::kRowwiseAdagrad;
  options.tables = {table};
  options.dense_params = dense;
  options.dense_optimizer.kind = models::DenseOptimizerKind::kSgd;
  auto server = ps::ParameterServer::Create(options, nullptr);
  if (!server.ok()) return 1;
  {  // populate
    std::vector<uint64_t> keys(rows);
    std::iota(keys.begin(), keys.end(), 0);
    std::vector<float> out(rows * kDim);
    (*server)->table(0)->Pull(keys, 0, out.data());
    std::vector<float> init(dense, 0.5f);
    (void)(*server)->dense()->Assign(init);
  }
  net::ZmqContext ctx;
  // The same server twice: plaintext, and with CURVE (encryption + the ZAP handshake
  // check) for the encryption-cost figures.
  auto server_keys = net::GenerateCurveKeys();
  auto client_keys = net::GenerateCurveKeys();
  if (!server_keys.ok() || !client_keys.ok()) return 1;
  auto zap = net::ZapAuthenticator::Start(&ctx, {{client_keys->public_key, "worker/0"}}, nullptr);
  if (!zap.ok()) return 1;
  ps::ParameterServer* raw_server = server->get();
  auto serve = [&](const net::CurveKeys& curve) {
    net::RpcServerOptions rpc;
    rpc.handler_threads = 0;  // served inline, like the raw peer's one-thread ROUTER loop
    rpc.curve = curve;
    return net::RpcServer::Start(
        &ctx, rpc,
        [raw_server](const net::Peer&, const net::wire::Envelope::Reader& r) {
          return raw_server->Handle(r);
        },
        nullptr);
  };
  auto rpc_server = serve(net::CurveKeys());
  auto curve_server = serve(*server_keys);
  if (!rpc_server.ok() || !curve_server.ok()) return 1;
  RawEchoServer echo(&ctx);

  // Clients of the plaintext server, or with `secure` of the CURVE one.
  auto make_client = [&](int c, bool secure) {
    ps::PsClientOptions o;
    o.server_endpoints = {(secure ? *curve_server : *rpc_server)->endpoint()};
    o.client_id = 100 + c;
    o.dense_params = dense;
    if (secure) {
      o.rpc.curve = *client_keys;
      o.server_public_keys = {server_keys->public_key};
    }
    return std::move(ps::PsClient::Create(&ctx, o, *ps::ShardMap::Balanced(1, 1))).value();
  };
  const double pull_bytes = kBatch * 8.0 + kBatch * kDim * 4.0;
  auto pull_run = [&](bool secure) {
    return Drive(clients, seconds, [&, secure](int c) {
      auto client = std::shared_ptr<ps::PsClient>(make_client(c, secure));
      // Random keys drawn before the clock starts (the raw peer sends ready bytes too).
      auto batches = std::make_shared<std::vector<std::vector<uint64_t>>>(kKeyBatches);
      std::mt19937_64 rng(c);
      std::uniform_int_distribution<uint64_t> pick(0, rows - 1);
      for (auto& batch : *batches) {
        batch.resize(kBatch);
        for (auto& k : batch) k = pick(rng);
      }
      auto out = std::make_shared<std::vector<float>>(kBatch * kDim);
      auto next = std::make_shared<size_t>(0);
      return [=] {
        const auto& keys = (*batches)[(*next)++ % batches->size()];
        ps::SparseSlice slice{0, kDim, keys, out->data(), nullptr, 0};
        (void)client->Pull({&slice, 1}, 1, true);
      };
    });
  };
  auto push_run = [&](bool secure) {
    return Drive(clients, seconds, [&, secure](int c) {
      auto client = std::shared_ptr<ps::PsClient>(make_client(c, secure));
      auto keys = std::make_shared<std::vector<uint64_t>>(kBatch);
      auto grads = std::make_shared<std::vector<float>>(kBatch * kDim, 1e-3f);
      auto rng = std::make_shared<std::mt19937_64>(c + 7);
      return [=] {
        // Unique keys per push, as a worker sends them.
        uint64_t base = (*rng)() % (rows - kBatch);
        for (int i = 0; i < kBatch; ++i) (*keys)[i] = base + i;
        ps::SparseSlice slice{0, kDim, *keys, nullptr, grads->data(), 0.01f};
        (void)client->Push({&slice, 1}, 1);
      };
    });
  };
  auto dense_pull_run = [&](bool secure) {
    return Drive(clients, seconds, [&, secure](int c) {
      auto client = std::shared_ptr<ps::PsClient>(make_client(c, secure));
      auto params = std::make_shared<std::vector<float>>(dense);
      return [=] { (void)client->PullDense(absl::MakeSpan(*params)); };
    });
  };
  auto dense_push_run = [&](bool secure) {
    return Drive(clients, seconds, [&, secure](int c) {
      auto client = std::shared_ptr<ps::PsClient>(make_client(c, secure));
      auto grads = std::make_shared<std::vector<float>>(dense, 1e-6f);
      return [=] { (void)client->PushDense(*grads, 0.01f, 1, {}); };
    });
  };
  struct Workload {
    std::string name;
    std::function<Result(bool)> run;
    std::function<Result()> raw;
    double units;
    std::string unit;
    double bytes;
  };
  const std::vector<Workload> workloads = {
      {"sparse_pull_4096x64", pull_run,
       [&] {
         return RawRoundTrips(&ctx, echo.endpoint(), clients, seconds, kBatch * 8,
                              kBatch * kDim * 4);
       },
       kBatch, "keys/s", pull_bytes},
      {"sparse_push_4096x64", push_run,
       [&] {
         return RawRoundTrips(&ctx, echo.endpoint(), clients, seconds,
                              kBatch * 8 + kBatch * kDim * 4, 16);
       },
       kBatch, "keys/s", pull_bytes},
      {"dense_pull_1M", dense_pull_run,
       [&] { return RawRoundTrips(&ctx, echo.endpoint(), clients, seconds, 16, dense * 4); },
       static_cast<double>(dense), "floats/s", dense * 4.0},
      {"dense_push_1M", dense_push_run,
       [&] { return RawRoundTrips(&ctx, echo.endpoint(), clients, seconds, dense * 4, 16); },
       static_cast<double>(dense), "floats/s", dense * 4.0},
  };
  for (const Workload& w : workloads) {
    auto vs_raw = Alternate(rounds, [&] { return w.run(false); }, w.raw);
    Report(w.name, vs_raw.first, vs_raw.second, w.units, w.unit, w.bytes);
  }
  // The cost of encryption: the same requests over CURVE beside plaintext, same run.
  for (const Workload& w : workloads) {
    auto vs_plain = Alternate(rounds, [&] { return w.run(true); }, [&] { return w.run(false); });
    PrintFigure({"ps", w.name + "_curve_throughput", vs_plain.first.requests_per_s * w.units,
                 w.unit, "towerps_plaintext", vs_plain.second.requests_per_s * w.units});
    PrintFigure({"ps", w.name + "_curve_latency_p50", vs_plain.first.p50_us, "us",
                 "towerps_plaintext", vs_plain.second.p50_us});
  }
  (*curve_server)->Stop();
  (*rpc_server)->Stop();
  return 0;
}
