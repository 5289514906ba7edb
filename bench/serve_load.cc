// bench_serve_load: a bounded closed-loop load generator for `towerps serve` (run by
// bench/serve_e2e.sh, `bench/run.sh serve`). It starts nothing: it drives a running
// server, first over its HTTP API and then over ZeroMQ + Cap'n Proto, with N
// concurrent clients each keeping exactly one request in flight (so the offered
// load is bounded by N) for a fixed duration, and prints QPS and p50/p99/p999
// latency of both side by side (bench_util.h figures, suite "serve").
//
//   bench_serve_load --http=http://H:P --zmq=tcp://H:P --users=DIR/users.emb
//                    [--clients=1,8] [--seconds=5] [--k=10] [--ef=0] [--label=demo]
//   bench_serve_load --make_embeddings=DIR [--items=1000000] [--dim=128]
//     writes synthetic DIR/items.emb and DIR/users.emb (20,000 query users; the
//     clustered vectors of bench/synthetic_vectors.h) for `towerps build-index`.
//
// Queries are user ids read from the exported users table, round robin from a
// different offset per client. Any failed request is counted and reported; the
// figures count only answered ones.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "bench/synthetic_vectors.h"
#include "common/status.h"
#include "data/keys.h"
#include "glog/logging.h"
#include "http/topk_client.h"
#include "index/embeddings.h"
#include "index/retrieval_service.h"
#include "net/transport.h"

namespace towerps::bench {
namespace {

struct LoadOptions {
  std::string http_url, zmq_endpoint, users_path, label = "demo";
  std::string make_embeddings;  // a directory: write synthetic embeddings instead
  int64_t items = 1000000;
  int dim = 128;
  std::vector<int> clients = {1, 8};
  double seconds = 5;
  int k = 10;
  int ef = 0;
};

struct LoadResult {
  double qps = 0, p50_us = 0, p99_us = 0, p999_us = 0;
  int64_t answered = 0, failed = 0;
  std::string first_error;
};

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(i, sorted.size() - 1)];
}

// One client's loop: `ask(user)` until the deadline; latencies in microseconds.
template <typename Ask>
void ClientLoop(Ask&& ask, const std::vector<std::string>& users, size_t offset,
                std::chrono::steady_clock::time_point deadline, std::vector<double>* latencies,
                int64_t* failed, std::string* first_error) {
  for (size_t i = offset;; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (start >= deadline) return;
    absl::Status status = ask(users[i % users.size()]);
    const auto end = std::chrono::steady_clock::now();
    if (status.ok()) {
      latencies->push_back(std::chrono::duration<double, std::micro>(end - start).count());
    } else {
      if (++*failed == 1) *first_error = status.ToString();
    }
  }
}

// Runs `clients` threads, each with its own connection made by `connect` (which
// returns a callable Status(const std::string& user)).
template <typename Connect>
LoadResult RunLoad(int clients, double seconds, const std::vector<std::string>& users,
                   Connect&& connect) {
  std::vector<std::vector<double>> latencies(clients);
  std::vector<int64_t> failed(clients, 0);
  std::vector<std::string> errors(clients);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto ask = connect();
      ClientLoop(ask, users, users.size() * c / clients, deadline, &latencies[c], &failed[c],
                 &errors[c]);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  LoadResult result;
  std::vector<double> all;
  for (int c = 0; c < clients; ++c) {
    all.insert(all.end(), latencies[c].begin(), latencies[c].end());
    result.failed += failed[c];
    if (result.first_error.empty()) result.first_error = errors[c];
  }
  std::sort(all.begin(), all.end());
  result.answered = static_cast<int64_t>(all.size());
  result.qps = static_cast<double>(all.size()) / elapsed;
  result.p50_us = Quantile(all, 0.5);
  result.p99_us = Quantile(all, 0.99);
  result.p999_us = Quantile(all, 0.999);
  return result;
}

LoadResult HttpLoad(const LoadOptions& o, int clients, const std::vector<std::string>& users) {
  return RunLoad(clients, o.seconds, users, [&o] {
    auto client = http::TopKHttpClient::Create(o.http_url, 10000);
    CHECK(client.ok()) << client.status();
    std::shared_ptr<http::TopKHttpClient> shared = *std::move(client);  // copyable lambda
    return [shared, &o](const std::string& user) {
      http::TopKHttpRequest request;
      request.user = user;
      request.k = o.k;
      request.ef = o.ef;
      return shared->Search(request).status();
    };
  });
}

LoadResult ZmqLoad(const LoadOptions& o, int clients, const std::vector<std::string>& users,
                   const net::ZmqContext* ctx) {
  return RunLoad(clients, o.seconds, users, [&o, ctx] {
    net::RpcClientOptions rpc;
    rpc.endpoint = o.zmq_endpoint;
    rpc.name = "load";
    rpc.timeout_ms = 10000;
    auto client = net::RpcClient::Connect(ctx, rpc);
    CHECK(client.ok()) << client.status();
    std::shared_ptr<net::RpcClient> shared = *std::move(client);
    return [shared, &o](const std::string& user) -> absl::Status {
      index::TopKQuery query;
      query.user_id = user;
      query.k = o.k;
      query.ef_search = o.ef;
      const uint64_t id = shared->NextRequestId();
      auto reply = shared->Call(id, index::EncodeTopKRequest("load", id, query), true);
      if (!reply.ok()) return reply.status();
      return index::DecodeTopKReply(*reply).status();
    };
  });
}

void Report(const LoadOptions& o, int clients, const LoadResult& http, const LoadResult& zmq) {
  const std::string tag = absl::StrCat(o.label, "_c", clients);
  PrintFigure({"serve", absl::StrCat("http_qps_", tag), http.qps, "queries/s", "zeromq", zmq.qps});
  for (auto [name, h, z] :
       {std::tuple{"p50", http.p50_us, zmq.p50_us}, std::tuple{"p99", http.p99_us, zmq.p99_us},
        std::tuple{"p999", http.p999_us, zmq.p999_us}}) {
    PrintFigure({"serve", absl::StrCat("http_", name, "_us_", tag), h, "us", "zeromq", z});
  }
  for (auto [name, r] : {std::pair{"http", &http}, std::pair{"zeromq", &zmq}}) {
    if (r->failed > 0) {
      std::fprintf(stderr, "serve_load: %s, %d clients: %lld failed of %lld (first: %s)\n", name,
                   clients, static_cast<long long>(r->failed),
                   static_cast<long long>(r->failed + r->answered), r->first_error.c_str());
    }
  }
}

// One side's synthetic table: ids "<prefix><row>", written 65,536 rows at a time.
absl::Status WriteSynthetic(const std::string& path, data::Side side, const std::string& prefix,
                            int64_t rows, int dim, const std::vector<float>& centres,
                            uint64_t seed) {
  TOWERPS_ASSIGN_OR_RETURN(auto writer,
                           index::EmbeddingWriter::Open(path, "", side, dim, rows, 0));
  constexpr int64_t kChunk = 65536;
  for (int64_t start = 0; start < rows; start += kChunk) {
    const int64_t n = std::min(kChunk, rows - start);
    std::vector<uint64_t> keys(n);
    std::vector<std::string> raw_ids(n);
    for (int64_t i = 0; i < n; ++i) {
      raw_ids[i] = absl::StrCat(prefix, start + i);
      keys[i] = data::HashKey(raw_ids[i]);
    }
    TOWERPS_RETURN_IF_ERROR(
        writer->Append(keys, raw_ids, Clustered(n, dim, centres, seed + start / kChunk)));
  }
  return writer->Finish();
}

absl::Status MakeEmbeddings(const LoadOptions& o) {
  const std::vector<float> centres = RandomUnitRows(1024, o.dim, 7);
  TOWERPS_RETURN_IF_ERROR(WriteSynthetic(o.make_embeddings + "/items.emb", data::Side::kItem,
                                         "i", o.items, o.dim, centres, 1000));
  return WriteSynthetic(o.make_embeddings + "/users.emb", data::Side::kUser, "u", 20000, o.dim,
                        centres, 1);
}

bool ParseArgs(int argc, char** argv, LoadOptions* o) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto value = [&a](absl::string_view flag) -> std::optional<absl::string_view> {
      if (!absl::ConsumePrefix(&a, flag)) return std::nullopt;
      return a;
    };
    if (auto v = value("--make_embeddings=")) {
      o->make_embeddings = std::string(*v);
    } else if (auto v = value("--items=")) {
      if (!absl::SimpleAtoi(*v, &o->items) || o->items < 1 || o->items > (int64_t{1} << 32)) {
        return false;
      }
    } else if (auto v = value("--dim=")) {
      if (!absl::SimpleAtoi(*v, &o->dim) || o->dim < 1 || o->dim > 4096) return false;
    } else if (auto v = value("--http=")) {
      o->http_url = std::string(*v);
    } else if (auto v = value("--zmq=")) {
      o->zmq_endpoint = std::string(*v);
    } else if (auto v = value("--users=")) {
      o->users_path = std::string(*v);
    } else if (auto v = value("--label=")) {
      o->label = std::string(*v);
    } else if (auto v = value("--clients=")) {
      o->clients.clear();
      for (absl::string_view c : absl::StrSplit(*v, ',')) {
        int n;
        if (!absl::SimpleAtoi(c, &n) || n < 1 || n > 1024) return false;
        o->clients.push_back(n);
      }
    } else if (auto v = value("--seconds=")) {
      if (!absl::SimpleAtod(*v, &o->seconds) || o->seconds <= 0 || o->seconds > 3600) return false;
    } else if (auto v = value("--k=")) {
      if (!absl::SimpleAtoi(*v, &o->k)) return false;
    } else if (auto v = value("--ef=")) {
      if (!absl::SimpleAtoi(*v, &o->ef)) return false;
    } else {
      return false;
    }
  }
  if (!o->make_embeddings.empty()) return true;
  return !o->http_url.empty() && !o->zmq_endpoint.empty() && !o->users_path.empty();
}

}  // namespace
}  // namespace towerps::bench

int main(int argc, char** argv) {
  using namespace towerps;
  google::InitGoogleLogging(argv[0]);
  bench::LoadOptions options;
  if (!bench::ParseArgs(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: bench_serve_load --http=http://H:P --zmq=tcp://H:P --users=users.emb "
                 "[--clients=1,8] [--seconds=5] [--k=10] [--ef=0] [--label=demo]\n"
                 "       bench_serve_load --make_embeddings=DIR [--items=1000000] [--dim=128]\n");
    return 2;
  }
  if (!options.make_embeddings.empty()) {
    std::filesystem::create_directories(options.make_embeddings);
    absl::Status made = bench::MakeEmbeddings(options);
    if (!made.ok()) {
      std::fprintf(stderr, "bench_serve_load: %s\n", made.ToString().c_str());
      return 1;
    }
    return 0;
  }
  auto users = index::EmbeddingTable::Read(options.users_path);
  if (!users.ok() || (*users)->raw_ids.empty()) {
    std::fprintf(stderr, "bench_serve_load: %s\n",
                 users.ok() ? "no users" : users.status().ToString().c_str());
    return 1;
  }
  net::ZmqContext ctx;
  for (int clients : options.clients) {
    bench::LoadResult http = bench::HttpLoad(options, clients, (*users)->raw_ids);
    bench::LoadResult zmq = bench::ZmqLoad(options, clients, (*users)->raw_ids, &ctx);
    bench::Report(options, clients, http, zmq);
  }
  return 0;
}
