#include "data/dataset_writer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/record_io.h"

namespace towerps::data {
namespace {

constexpr int kCancelCheckEvery = 4096;

FeatureSpec Fixed(const char* name, FeatureKind kind, bool item_space, uint64_t vocab) {
  FeatureSpec f;
  f.name = name;
  f.kind = kind;
  f.item_id_space = item_space;
  f.vocab_size = vocab;
  return f;
}

// Copies the entity's dense attributes into out (dim floats; missing ones are 0).
void DenseArea(const EntityAttrs& attrs, int dim, float* out) {
  const int have = std::min(dim, static_cast<int>(attrs.dense.size()));
  std::copy(attrs.dense.begin(), attrs.dense.begin() + have, out);
  std::fill(out + have, out + dim, 0.0f);
}

// Vocabulary sizes of the attribute slots and dense stats weighted by training
// positives (== over the training examples, whose side features are the entity's).
void FillAttrStats(const EntityTable& table, const std::vector<uint32_t>& source,
                   const std::vector<uint64_t>& train_count, int first_slot, SideSchema* side) {
  const int attr_slots = side->num_sparse() - first_slot;
  std::vector<absl::flat_hash_set<uint64_t>> distinct(attr_slots);
  const int dim = side->dense_dim();
  std::vector<double> sum(dim), sum_sq(dim), x(dim);
  std::vector<float> xf(dim);
  double total = 0;
  for (size_t k = 0; k < source.size(); ++k) {
    const EntityAttrs& a = table.attrs(source[k]);
    for (int s = 0; s < attr_slots && static_cast<size_t>(s) < a.ends.size(); ++s) {
      for (uint32_t v = s == 0 ? 0 : a.ends[s - 1]; v < a.ends[s]; ++v) distinct[s].insert(a.values[v]);
    }
    const auto w = static_cast<double>(train_count[k]);
    if (dim == 0 || w == 0) continue;
    DenseArea(a, dim, xf.data());
    for (int d = 0; d < dim; ++d) {
      sum[d] += w * xf[d];
      sum_sq[d] += w * xf[d] * xf[d];
    }
    total += w;
  }
  for (int s = 0; s < attr_slots; ++s) side->sparse[first_slot + s].vocab_size = distinct[s].size();
  int offset = 0;
  for (FeatureSpec& f : side->dense) {
    f.mean.assign(f.dim, 0.0f);
    f.stddev.assign(f.dim, 1.0f);
    for (int d = 0; d < f.dim && total > 0; ++d) {
      const double mean = sum[offset + d] / total;
      const double var = std::max(0.0, sum_sq[offset + d] / total - mean * mean);
      f.mean[d] = static_cast<float>(mean);
      f.stddev[d] = static_cast<float>(std::sqrt(var));
    }
    offset += f.dim;
  }
}

absl::Status CheckCancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
    return absl::CancelledError("prepare interrupted");
  }
  return absl::OkStatus();
}

absl::Status RunHook(const PrepareHook& hook, absl::string_view stage) {
  return hook ? hook(stage) : absl::OkStatus();
}

}  // namespace

DatasetSchema BuildSchema(const RawDataset& raw, const PositiveLog& log) {
  DatasetSchema schema;
  schema.user.sparse = {Fixed(kUserIdFeature, FeatureKind::kSingle, false, log.num_users()),
                        Fixed(kHistoryFeature, FeatureKind::kMulti, true, log.num_items())};
  schema.item.sparse = {Fixed(kItemIdFeature, FeatureKind::kSingle, true, log.num_items())};
  for (const FeatureSpec& f : raw.user_attrs.sparse) schema.user.sparse.push_back(f);
  for (const FeatureSpec& f : raw.item_attrs.sparse) schema.item.sparse.push_back(f);
  schema.user.dense = raw.user_attrs.dense;
  schema.item.dense = raw.item_attrs.dense;
  FillAttrStats(raw.users, log.user_source, log.user_train_count, 2, &schema.user);
  FillAttrStats(raw.items, log.item_source, log.item_train_count, 1, &schema.item);
  return schema;
}

FeatureAssembler::FeatureAssembler(const RawDataset& raw, const PositiveLog& log,
                                   const DatasetSchema& schema, int history_length)
    : raw_(raw), log_(log), schema_(schema), history_length_(history_length) {
  history_.reserve(history_length);
}

void FeatureAssembler::AddAttrs(const EntityAttrs& attrs, const SideSchema& schema,
                                int first_slot, SideFeatures* out) const {
  const int attr_slots = schema.num_sparse() - first_slot;
  for (int s = 0; s < attr_slots; ++s) {
    if (static_cast<size_t>(s) >= attrs.ends.size()) {
      out->AddSlot({});
      continue;
    }
    const uint32_t begin = s == 0 ? 0 : attrs.ends[s - 1];
    out->AddSlot(absl::MakeConstSpan(attrs.values.data() + begin, attrs.ends[s] - begin));
  }
  out->dense.resize(schema.dense_dim());
  DenseArea(attrs, schema.dense_dim(), out->dense.data());
}

void FeatureAssembler::BuildExample(uint64_t p, Example* out) const {
  const Interaction& x = log_.positives[p];
  const uint32_t raw_user = log_.user_source[x.user];
  const uint32_t raw_item = log_.item_source[x.item];
  out->user_id = raw_.users.key(raw_user);
  out->item_id = raw_.items.key(raw_item);
  out->timestamp = x.timestamp;
  out->label = x.label;
  out->weight = 1.0f;
  // History: walk back from p over the user's positives, skipping those at the
  // same time or later (they sort after p only when the timestamp is equal), the
  // example's own item and held-out (cold) items, which no model may see by id.
  history_.clear();
  const uint64_t begin = log_.user_begin[x.user];
  for (uint64_t k = p; k > begin && static_cast<int>(history_.size()) < history_length_; --k) {
    const Interaction& h = log_.positives[k - 1];
    if (h.timestamp >= x.timestamp || h.item == x.item || log_.split[k - 1] == kCold) continue;
    history_.push_back(raw_.items.key(log_.item_source[h.item]));
  }
  std::reverse(history_.begin(), history_.end());
  UserSide(raw_user, &out->user_id, &out->user);
  ItemSide(raw_item, &out->item_id, &out->item);
}

void FeatureAssembler::UserSide(uint32_t raw_user, const uint64_t* key, SideFeatures* out) const {
  out->Clear();
  out->AddSlot({key, 1});
  out->AddSlot(history_);
  AddAttrs(raw_.users.attrs(raw_user), schema_.user, 2, out);
}

void FeatureAssembler::ItemSide(uint32_t raw_item, const uint64_t* key, SideFeatures* out) const {
  out->Clear();
  out->AddSlot({key, 1});
  AddAttrs(raw_.items.attrs(raw_item), schema_.item, 1, out);
}

void FeatureAssembler::BuildUser(uint32_t u, EntityRecord* out) const {
  const uint32_t raw_user = log_.user_source[u];
  out->key = raw_.users.key(raw_user);
  out->train_count = log_.user_train_count[u];
  out->raw_id = raw_.users.raw_id(raw_user);
  out->title.clear();
  history_.clear();
  for (uint64_t k = log_.user_begin[u + 1];
       k > log_.user_begin[u] && static_cast<int>(history_.size()) < history_length_; --k) {
    if (log_.split[k - 1] != kTrain) continue;
    history_.push_back(raw_.items.key(log_.item_source[log_.positives[k - 1].item]));
  }
  std::reverse(history_.begin(), history_.end());
  UserSide(raw_user, &out->key, &out->features);
}

void FeatureAssembler::BuildItem(uint32_t i, EntityRecord* out) const {
  const uint32_t raw_item = log_.item_source[i];
  out->key = raw_.items.key(raw_item);
  out->train_count = log_.item_train_count[i];
  out->raw_id = raw_.items.raw_id(raw_item);
  out->title = std::string(raw_.items.title(raw_item));
  ItemSide(raw_item, &out->key, &out->features);
}

absl::Status WriteDatasetFiles(const RawDataset& raw, const PositiveLog& log,
                               const PrepareOptions& options, const std::string& dir,
                               const PrepareHook& hook, const std::atomic<bool>* cancel,
                               DatasetMeta* meta) {
  meta->schema = BuildSchema(raw, log);
  FeatureAssembler assembler(raw, log, meta->schema, options.history_length);
  Example example;
  EntityRecord entity;
  std::string payload;

  TOWERPS_RETURN_IF_ERROR(RunHook(hook, "write_shards"));
  for (int s = kTrain; s <= kCold; ++s) {
    std::vector<uint64_t> order;
    for (uint64_t k = 0; k < log.positives.size(); ++k) {
      if (log.split[k] == s) order.push_back(k);
    }
    if (s == kCold && order.empty()) continue;  // no cold split asked for
    std::mt19937_64 rng(options.seed * 3 + static_cast<uint64_t>(s));
    std::shuffle(order.begin(), order.end(), rng);
    const uint64_t n = order.size();
    const uint64_t shards = std::max<uint64_t>(1, std::min<uint64_t>(options.num_shards, n));
    for (uint64_t j = 0; j < shards; ++j) {
      const uint64_t begin = j * n / shards, end = (j + 1) * n / shards;
      ShardInfo info{absl::StrFormat("%s-%05d-of-%05d.tpr", kSplitNames[s], j, shards),
                     end - begin};
      TOWERPS_ASSIGN_OR_RETURN(
          RecordFileWriter writer,
          RecordFileWriter::Open(absl::StrCat(dir, "/", info.file), RecordKind::kExamples,
                                 info.records));
      for (uint64_t k = begin; k < end; ++k) {
        if ((k - begin) % kCancelCheckEvery == 0) TOWERPS_RETURN_IF_ERROR(CheckCancel(cancel));
        assembler.BuildExample(order[k], &example);
        payload.clear();
        EncodeExample(example, &payload);
        TOWERPS_RETURN_IF_ERROR(writer.Append(payload));
      }
      TOWERPS_RETURN_IF_ERROR(writer.Finish());
      meta->shards[kSplitNames[s]].push_back(std::move(info));
    }
  }

  TOWERPS_RETURN_IF_ERROR(RunHook(hook, "write_entities"));
  for (Side side : {Side::kUser, Side::kItem}) {
    const bool users = side == Side::kUser;
    const uint64_t n = users ? log.num_users() : log.num_items();
    TOWERPS_ASSIGN_OR_RETURN(
        RecordFileWriter writer,
        RecordFileWriter::Open(absl::StrCat(dir, "/", users ? kUsersFile : kItemsFile),
                               users ? RecordKind::kUsers : RecordKind::kItems, n));
    for (uint32_t k = 0; k < n; ++k) {
      if (k % kCancelCheckEvery == 0) TOWERPS_RETURN_IF_ERROR(CheckCancel(cancel));
      users ? assembler.BuildUser(k, &entity) : assembler.BuildItem(k, &entity);
      payload.clear();
      EncodeEntity(entity, &payload);
      TOWERPS_RETURN_IF_ERROR(writer.Append(payload));
    }
    TOWERPS_RETURN_IF_ERROR(writer.Finish());
  }
  // Item frequencies, most frequent first.
  std::vector<uint32_t> by_count(log.num_items());
  std::iota(by_count.begin(), by_count.end(), 0);
  std::stable_sort(by_count.begin(), by_count.end(), [&](uint32_t a, uint32_t b) {
    return log.item_train_count[a] > log.item_train_count[b];
  });
  TOWERPS_ASSIGN_OR_RETURN(AtomicFileWriter freq,
                           AtomicFileWriter::Open(absl::StrCat(dir, "/", kItemFrequencyFile)));
  TOWERPS_RETURN_IF_ERROR(freq.Append("# item_key\traw_id\ttrain_count\n"));
  for (uint32_t i : by_count) {
    const uint32_t r = log.item_source[i];
    TOWERPS_RETURN_IF_ERROR(freq.Append(
        absl::StrCat(raw.items.key(r), "\t", raw.items.raw_id(r), "\t", log.item_train_count[i], "\n")));
  }
  TOWERPS_RETURN_IF_ERROR(freq.Commit());

  TOWERPS_RETURN_IF_ERROR(RunHook(hook, "write_meta"));
  meta->source_format = raw.format;
  meta->split = options.split_mode;
  meta->history_length = options.history_length;
  meta->min_rating = options.min_rating;
  meta->valid_cutoff = log.valid_cutoff;
  meta->test_cutoff = log.test_cutoff;
  meta->num_users = log.num_users();
  meta->num_items = log.num_items();
  meta->train_positives = std::accumulate(log.item_train_count.begin(), log.item_train_count.end(),
                                          uint64_t{0});
  return WriteFileAtomically(absl::StrCat(dir, "/", kMetaFile), SerializeDatasetMeta(*meta));
}

}  // namespace towerps::data
