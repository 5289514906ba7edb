// `towerps generate`: synthetic interaction logs with planted structure (data/generator.h).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>

#include "cmd/job_flags.h"
#include "cmd/subcommand.h"
#include "data/generator.h"
#include "gflags/gflags.h"

DEFINE_uint64(seed, 1, "Everything generated is a function of the seed.");
DEFINE_int64(users, 5000, "Users.");
DEFINE_int64(items, 3000, "Items.");
DEFINE_int64(interactions, 200000, "Rows in total; per-user counts are heavy-tailed.");
DEFINE_int32(clusters, 20, "Latent interest clusters.");
DEFINE_double(zipf_exponent, 1.0, "Item popularity within a cluster ~ rank^-zipf_exponent.");
DEFINE_double(in_cluster, 0.8, "Probability an engagement comes from the user's clusters.");
DEFINE_double(sequence_strength, 0.0,
              "Probability a positive is a planted successor of the user's previous one "
              "(sequential structure; 0 = none).");
DEFINE_int32(successors, 3, "Planted successors per item (with --sequence_strength).");
DEFINE_int32(countries, 12, "Countries.");
DEFINE_int32(languages, 6, "Languages.");
DEFINE_int32(creators_per_cluster, 25, "Creators per cluster.");
DEFINE_int32(content_dim, 16, "Item content vector dims (0 = none).");
DEFINE_double(negative_fraction, 0.1, "Share of rows that are impressions without a click.");
DEFINE_int64(start_time, 1672531200, "First timestamp (unix seconds).");
DEFINE_int64(time_span_seconds, 180 * 86400, "Length of the log in seconds.");

namespace towerps::cmd {
namespace {

std::atomic<bool> g_generate_cancel{false};

void OnSignal(int) { g_generate_cancel.store(true); }

}  // namespace

int RunGenerate(int /*argc*/, char** /*argv*/) {
  data::GenerateOptions o;
  o.output_dir = FLAGS_output_dir;
  o.seed = FLAGS_seed;
  o.users = FLAGS_users;
  o.items = FLAGS_items;
  o.interactions = FLAGS_interactions;
  o.clusters = FLAGS_clusters;
  o.zipf_exponent = FLAGS_zipf_exponent;
  o.in_cluster = FLAGS_in_cluster;
  o.sequence_strength = FLAGS_sequence_strength;
  o.successors = FLAGS_successors;
  o.countries = FLAGS_countries;
  o.languages = FLAGS_languages;
  o.creators_per_cluster = FLAGS_creators_per_cluster;
  o.content_dim = FLAGS_content_dim;
  o.negative_fraction = FLAGS_negative_fraction;
  o.start_time = FLAGS_start_time;
  o.time_span_seconds = FLAGS_time_span_seconds;
  if (absl::Status s = o.Validate(); !s.ok()) {
    std::fprintf(stderr, "towerps generate: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<data::GenerateResult> r = data::Generate(o, &g_generate_cancel);
  if (!r.ok()) {
    std::fprintf(stderr, "towerps generate: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("users: %lld\nitems: %lld\ninteractions: %lld (positives %lld)\nbytes: %llu\n"
              "seconds: %.2f\noutput: %s\n",
              static_cast<long long>(r->users), static_cast<long long>(r->items),
              static_cast<long long>(r->interactions), static_cast<long long>(r->positives),
              static_cast<unsigned long long>(r->bytes), seconds, o.output_dir.c_str());
  return 0;
}

}  // namespace towerps::cmd
