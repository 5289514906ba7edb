// `towerps generate`: synthetic interaction logs with planted structure, written as
// a generic CSV with a column spec (<dir>/towerps.spec, which prepare detects).
//
// Planted structure: items belong to `clusters` interest clusters (item n is in
// cluster n % clusters); popularity within a cluster follows a power law over the
// item's rank n / clusters; each user has a primary and a secondary cluster and
// draws in_cluster of their engagements from them; clusters have a home country
// and countries a main language, so users' country and language correlate with
// the items they engage with; each cluster has its own creators and tags; item
// content vectors are the cluster's centroid plus noise; per-user timestamps
// increase over the time span. negative_fraction of the rows are impressions
// without a click (label 0: not positives).
//
// Sequential structure (sequence_strength > 0): each cluster c has a planted next
// cluster T(c) != c and each item `successors` planted successors, popular items
// of T(its cluster). With probability sequence_strength a user's next positive is
// one of the successors of their previous positive (in timestamp order), else it
// is drawn as above: the most recent item then predicts the next one far better
// than the mean of the whole history. 0 (the default) leaves the output unchanged.
//
// Streaming: each user's and item's attributes are functions of (seed, id), so
// memory does not grow with users, items or interactions (100M rows and 10M items
// in a few MB); output is deterministic for a seed. Single-threaded.
//
// Files: interactions.csv (user,item,ts,click,like,country,language,age,creator,
// item_country,item_language,tags,duration), item_vectors.csv (item,v1..vd),
// towerps.spec.
#ifndef TOWERPS_DATA_GENERATOR_H_
#define TOWERPS_DATA_GENERATOR_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace towerps::data {

struct GenerateOptions {
  // Directory to write (created; the three files are replaced atomically).
  std::string output_dir;
  // Everything is a function of the seed.
  uint64_t seed = 1;
  // Sizes. interactions is the total number of rows; per-user counts follow a
  // heavy-tailed activity distribution (every user gets at least one row when
  // interactions >= users).
  int64_t users = 5000;
  int64_t items = 3000;
  int64_t interactions = 200000;
  // Interest clusters (>= 2).
  int clusters = 20;
  // Popularity within a cluster ~ rank^-zipf_exponent (0 = uniform).
  double zipf_exponent = 1.0;
  // Probability an engagement is drawn from the user's own clusters.
  double in_cluster = 0.8;
  int countries = 12;
  int languages = 6;
  int creators_per_cluster = 25;
  // Item content vector dims; 0 = no item_vectors.csv.
  int content_dim = 16;
  // Share of rows that are impressions without a click (not positives).
  double negative_fraction = 0.1;
  // Probability a positive follows the planted successor chain (in [0, 1]).
  double sequence_strength = 0;
  // Planted successors per item (in [1, 64]).
  int successors = 3;
  // Time range of the log (unix seconds).
  int64_t start_time = 1672531200;  // 2023-01-01
  int64_t time_span_seconds = 180 * 86400;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

struct GenerateResult {
  int64_t users = 0;
  int64_t items = 0;
  int64_t interactions = 0;  // rows of interactions.csv
  int64_t positives = 0;     // rows with click = 1
  uint64_t bytes = 0;        // bytes written over all files
};

// Writes the files. `cancel` (may be null) is polled. Errors: InvalidArgument,
// Cancelled, I/O errors (nothing is left half-written: each file is atomic).
absl::StatusOr<GenerateResult> Generate(const GenerateOptions& options,
                                        const std::atomic<bool>* cancel = nullptr);

// The planted truth, for tests and docs. Thread-safe (pure functions of options).
class PlantedTruth {
 public:
  explicit PlantedTruth(const GenerateOptions& options) : options_(options) {}

  static std::string UserId(int64_t user);  // "u<user>"
  static std::string ItemId(int64_t item);  // "i<item>"
  int ItemCluster(int64_t item) const { return static_cast<int>(item % options_.clusters); }
  // which: 0 = primary, 1 = secondary cluster of the user.
  int UserCluster(int64_t user, int which) const;
  int UserCountry(int64_t user) const;
  int ItemCountry(int64_t item) const;
  // The planted next cluster T(cluster) and successor j (< successors) of an item.
  int NextCluster(int cluster) const;
  int64_t Successor(int64_t item, int j) const;

 private:
  const GenerateOptions options_;
};

}  // namespace towerps::data

#endif  // TOWERPS_DATA_GENERATOR_H_
