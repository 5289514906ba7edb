#include "data/positive_log.h"

#include <algorithm>
#include <utility>

#include "common/hash.h"

namespace towerps::data {
namespace {

// Removes users / items with too few positives until none is left (k-core).
void KCore(int min_user, int min_item, size_t num_users, size_t num_items,
           std::vector<Interaction>* positives) {
  if (min_user <= 1 && min_item <= 1) return;
  std::vector<uint32_t> user_count(num_users), item_count(num_items);
  while (true) {
    std::fill(user_count.begin(), user_count.end(), 0);
    std::fill(item_count.begin(), item_count.end(), 0);
    for (const Interaction& x : *positives) {
      ++user_count[x.user];
      ++item_count[x.item];
    }
    size_t before = positives->size();
    std::erase_if(*positives, [&](const Interaction& x) {
      return user_count[x.user] < static_cast<uint32_t>(min_user) ||
             item_count[x.item] < static_cast<uint32_t>(min_item);
    });
    if (positives->size() == before) return;
  }
}

// Dense renumbering of the entities that still have positives.
std::vector<uint32_t> Renumber(size_t n, bool user, std::vector<Interaction>* positives,
                               std::vector<uint32_t>* source) {
  std::vector<uint32_t> map(n, UINT32_MAX);
  for (const Interaction& x : *positives) map[user ? x.user : x.item] = 0;
  for (size_t i = 0; i < n; ++i) {
    if (map[i] == 0) {
      map[i] = static_cast<uint32_t>(source->size());
      source->push_back(static_cast<uint32_t>(i));
    }
  }
  for (Interaction& x : *positives) (user ? x.user : x.item) = map[user ? x.user : x.item];
  return map;
}

int64_t Percentile(const std::vector<Interaction>& positives, double q) {
  std::vector<int64_t> ts;
  ts.reserve(positives.size());
  for (const Interaction& x : positives) ts.push_back(x.timestamp);
  if (ts.empty()) return 0;
  auto nth = ts.begin() + static_cast<int64_t>(q * static_cast<double>(ts.size() - 1));
  std::nth_element(ts.begin(), nth, ts.end());
  return *nth;
}

}  // namespace

PositiveLog BuildPositiveLog(const PrepareOptions& options, RawDataset* raw) {
  PositiveLog log;
  std::vector<Interaction>& p = log.positives;
  p = std::move(raw->interactions);
  raw->interactions = {};
  const size_t before = p.size();
  const auto min_rating = static_cast<float>(options.min_rating);
  std::erase_if(p, [&](const Interaction& x) { return !(x.label >= min_rating && x.label > 0); });
  log.not_positive = static_cast<int64_t>(before - p.size());
  const size_t before_kcore = p.size();
  KCore(options.min_user_interactions, options.min_item_interactions, raw->users.size(),
        raw->items.size(), &p);
  log.removed_by_kcore = static_cast<int64_t>(before_kcore - p.size());
  p.shrink_to_fit();

  Renumber(raw->users.size(), true, &p, &log.user_source);
  Renumber(raw->items.size(), false, &p, &log.item_source);
  // Stable: equal timestamps keep their input order.
  std::stable_sort(p.begin(), p.end(), [](const Interaction& a, const Interaction& b) {
    return a.user != b.user ? a.user < b.user : a.timestamp < b.timestamp;
  });
  log.user_begin.assign(log.num_users() + 1, 0);
  for (const Interaction& x : p) ++log.user_begin[x.user + 1];
  for (size_t u = 0; u < log.num_users(); ++u) log.user_begin[u + 1] += log.user_begin[u];

  log.split.assign(p.size(), kTrain);
  if (options.cold_item_fraction > 0) {
    const uint64_t salt = Mix64(options.seed ^ 0xc01d17e5ULL);
    std::vector<uint8_t> cold(log.num_items());
    for (size_t i = 0; i < cold.size(); ++i) {
      const uint64_t h = Mix64(raw->items.key(log.item_source[i]) ^ salt);
      cold[i] = static_cast<double>(h >> 11) * 0x1p-53 < options.cold_item_fraction;
    }
    for (size_t k = 0; k < p.size(); ++k) {
      if (cold[p[k].item]) log.split[k] = kCold;
    }
  }
  if (options.split_mode == "time") {
    log.valid_cutoff = options.valid_cutoff != 0 ? options.valid_cutoff : Percentile(p, 0.8);
    log.test_cutoff = options.test_cutoff != 0 ? options.test_cutoff : Percentile(p, 0.9);
    for (size_t k = 0; k < p.size(); ++k) {
      if (log.split[k] == kCold) continue;
      log.split[k] = p[k].timestamp >= log.test_cutoff    ? kTest
                     : p[k].timestamp >= log.valid_cutoff ? kValid
                                                          : kTrain;
    }
  } else {
    // Per user, over the positives of warm items: the last -> test, the one before ->
    // valid (with at least 2 / 3 of them).
    std::vector<uint64_t> warm;
    for (size_t u = 0; u < log.num_users(); ++u) {
      warm.clear();
      for (uint64_t k = log.user_begin[u]; k < log.user_begin[u + 1]; ++k) {
        if (log.split[k] != kCold) warm.push_back(k);
      }
      const size_t n = warm.size();
      if (n >= 2) log.split[warm[n - 1]] = kTest;
      if (n >= 3) log.split[warm[n - 2]] = kValid;
    }
  }
  log.user_train_count.assign(log.num_users(), 0);
  log.item_train_count.assign(log.num_items(), 0);
  for (size_t k = 0; k < p.size(); ++k) {
    if (log.split[k] != kTrain) continue;
    ++log.user_train_count[p[k].user];
    ++log.item_train_count[p[k].item];
  }
  return log;
}

}  // namespace towerps::data
