#include "worker/sparse_inputs.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace towerps::worker {
namespace {

void DenseStats(const data::SideSchema& schema, int dense_dim, std::vector<float>* mean,
                std::vector<float>* inv_std) {
  mean->assign(dense_dim, 0.0f);
  inv_std->assign(dense_dim, 1.0f);
  int offset = 0;
  for (const data::FeatureSpec& f : schema.dense) {
    for (int d = 0; d < f.dim && offset + d < dense_dim; ++d) {
      if (d < static_cast<int>(f.mean.size())) (*mean)[offset + d] = f.mean[d];
      if (d < static_cast<int>(f.stddev.size())) {
        (*inv_std)[offset + d] = 1.0f / std::max(f.stddev[d], 1e-6f);
      }
    }
    offset += f.dim;
  }
}

}  // namespace

SparseInputs::SparseInputs(const BoundModel* model) : model_(model) {
  DenseStats(model->schema.user, model->user_dense_dim, &user_mean_, &user_inv_std_);
  DenseStats(model->schema.item, model->item_dense_dim, &item_mean_, &item_inv_std_);
  tables_.resize(model->config.tables.size());
  for (data::Side side : {data::Side::kUser, data::Side::kItem}) {
    for (const BoundFeature& f : model->features(side)) {
      FeatureBatch fb;
      fb.bag = std::make_unique<models::EmbeddingBag<float>>(f.spec.pooling);
      if (f.spec.attention) sequence_features_.push_back(feature_batches(side).size());
      feature_batches(side).push_back(std::move(fb));
    }
  }
}

void SparseInputs::CollectSequence(const data::ExampleBatch::SparseColumn& col, int64_t n,
                                   int max_len, TableBatch* table, FeatureBatch* fb) {
  fb->seq_index.assign(static_cast<size_t>(n) * max_len, -1);
  fb->seq_lengths.resize(n);
  for (int64_t b = 0; b < n; ++b) {
    const uint32_t begin = col.offsets[b], end = col.offsets[b + 1];
    const int len = end < begin || end > col.values.size()
                        ? 0  // malformed (the reader refuses these; never read past values)
                        : static_cast<int>(std::min<uint32_t>(end - begin, max_len));
    fb->seq_lengths[b] = len;
    for (int p = 0; p < len; ++p) {  // position 0: the last (most recent) value
      const uint64_t key = col.values[end - 1 - p];
      auto [it, inserted] = table->index.try_emplace(key, static_cast<int32_t>(table->keys.size()));
      if (inserted) table->keys.push_back(key);
      fb->seq_index[b * max_len + p] = it->second;
    }
  }
}

void SparseInputs::Collect(data::Side side) {
  const auto* cols = columns(side);
  if (cols == nullptr) return;
  const auto& features = model_->features(side);
  const int64_t n = rows(side);
  for (size_t k = 0; k < features.size(); ++k) {
    const BoundFeature& f = features[k];
    const data::ExampleBatch::SparseColumn& col = cols->sparse[f.slot];
    TableBatch& table = tables_[f.spec.table];
    FeatureBatch& fb = feature_batches(side)[k];
    if (f.spec.attention) {
      CollectSequence(col, n, f.spec.sequence.max_len, &table, &fb);
      continue;
    }
    fb.offsets.resize(n + 1);
    fb.indices.resize(col.offsets[n]);
    for (int64_t b = 0; b <= n; ++b) fb.offsets[b] = col.offsets[b];
    for (uint32_t j = 0; j < col.offsets[n]; ++j) {
      auto [it, inserted] =
          table.index.try_emplace(col.values[j], static_cast<int32_t>(table.keys.size()));
      if (inserted) table.keys.push_back(col.values[j]);
      fb.indices[j] = it->second;
    }
  }
}

void SparseInputs::Begin(const data::ExampleBatch::SideColumns* user, int64_t n_user,
                         const data::ExampleBatch::SideColumns* item, int64_t n_item) {
  user_ = user;
  item_ = item;
  n_user_ = user ? n_user : 0;
  n_item_ = item ? n_item : 0;
  for (TableBatch& t : tables_) {
    t.index.clear();
    t.keys.clear();
  }
  Collect(data::Side::kUser);
  Collect(data::Side::kItem);
  pull_slices_.clear();
  for (size_t t = 0; t < tables_.size(); ++t) {
    TableBatch& table = tables_[t];
    const int dim = model_->config.tables[t].config.dim;
    table.rows.resize(table.keys.size() * dim);
    table.grads.assign(table.keys.size() * dim, 0.0f);
    if (table.keys.empty()) continue;
    ps::SparseSlice slice;
    slice.table = static_cast<uint32_t>(t);
    slice.dim = dim;
    slice.keys = table.keys;
    slice.out = table.rows.data();
    pull_slices_.push_back(slice);
  }
}

absl::Status SparseInputs::BuildInput(data::Side side, models::Mat<float>* x0) {
  const auto* cols = columns(side);
  if (cols == nullptr) return absl::FailedPreconditionError("side not in this batch");
  const int64_t n = rows(side);
  const int dense_dim = model_->dense_dim(side);
  const auto& features = model_->features(side);
  int width = dense_dim;
  for (const BoundFeature& f : features) width += f.dim;
  models::EnsureShape<float>(n, width, x0);
  int col = 0;
  if (side == data::Side::kUser) sequences_.clear();
  for (size_t k = 0; k < features.size(); ++k) {
    const BoundFeature& f = features[k];
    TableBatch& table = tables_[f.spec.table];
    FeatureBatch& fb = feature_batches(side)[k];
    if (f.spec.attention) {
      fb.seq_rows.resize(fb.seq_index.size() * f.dim);
      for (size_t i = 0; i < fb.seq_index.size(); ++i) {
        float* dst = fb.seq_rows.data() + i * f.dim;
        if (fb.seq_index[i] < 0) {
          std::fill(dst, dst + f.dim, 0.0f);
        } else {
          std::memcpy(dst, table.rows.data() + static_cast<size_t>(fb.seq_index[i]) * f.dim,
                      f.dim * sizeof(float));
        }
      }
      sequences_.push_back({fb.seq_rows, fb.seq_lengths});
      x0->block(0, col, n, f.dim).setZero();  // the model's encoder fills it
      col += f.dim;
      continue;
    }
    models::ConstMatRef<float> rows(table.rows.data(), static_cast<Eigen::Index>(table.keys.size()),
                                    f.dim);
    models::Bags<float> bags{fb.offsets, fb.indices, {}};
    absl::Status status = fb.bag->Forward(rows, bags);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("feature ", f.spec.feature, ": ", status.message()));
    }
    x0->block(0, col, n, f.dim) = fb.bag->output();
    col += f.dim;
  }
  if (dense_dim > 0) {
    if (cols->dense_dim != static_cast<int>(model_->schema.side(side).dense_dim()) ||
        cols->dense.size() != static_cast<size_t>(n) * cols->dense_dim) {
      return absl::InvalidArgumentError("dense area does not match the schema");
    }
    const auto& mean = side == data::Side::kUser ? user_mean_ : item_mean_;
    const auto& inv = side == data::Side::kUser ? user_inv_std_ : item_inv_std_;
    for (int64_t b = 0; b < n; ++b) {
      const float* src = cols->dense.data() + b * cols->dense_dim;
      for (int d = 0; d < dense_dim; ++d) (*x0)(b, col + d) = (src[d] - mean[d]) * inv[d];
    }
  }
  return absl::OkStatus();
}

void SparseInputs::Backward(data::Side side, models::ConstMatRef<float> d_x0) {
  const int64_t n = rows(side);
  const auto& features = model_->features(side);
  int col = 0;
  for (size_t k = 0; k < features.size(); ++k) {
    const BoundFeature& f = features[k];
    TableBatch& table = tables_[f.spec.table];
    if (f.spec.attention) {  // BackwardSequence
      col += f.dim;
      continue;
    }
    models::EnsureShape<float>(n, f.dim, &d_pooled_);
    d_pooled_ = d_x0.block(0, col, n, f.dim);
    const models::Mat<float>& d_rows = feature_batches(side)[k].bag->Backward(models::View(d_pooled_));
    models::MatRef<float> grads(table.grads.data(), static_cast<Eigen::Index>(table.keys.size()),
                                f.dim);
    grads += d_rows;
    col += f.dim;
  }
}

void SparseInputs::BackwardSequence(size_t k, models::ConstMatRef<float> d_rows) {
  CHECK_LT(k, sequence_features_.size());
  const BoundFeature& f = model_->user_features[sequence_features_[k]];
  const FeatureBatch& fb = user_batches_[sequence_features_[k]];
  CHECK_EQ(static_cast<size_t>(d_rows.rows()), fb.seq_index.size());
  TableBatch& table = tables_[f.spec.table];
  for (size_t i = 0; i < fb.seq_index.size(); ++i) {
    if (fb.seq_index[i] < 0) continue;
    float* dst = table.grads.data() + static_cast<size_t>(fb.seq_index[i]) * f.dim;
    for (int d = 0; d < f.dim; ++d) dst[d] += d_rows(static_cast<Eigen::Index>(i), d);
  }
}

absl::Span<const ps::SparseSlice> SparseInputs::PushSlices(float lr_scale) {
  push_slices_.clear();
  for (size_t t = 0; t < tables_.size(); ++t) {
    TableBatch& table = tables_[t];
    if (table.keys.empty()) continue;
    ps::SparseSlice slice;
    slice.table = static_cast<uint32_t>(t);
    slice.dim = model_->config.tables[t].config.dim;
    slice.keys = table.keys;
    slice.grads = table.grads.data();
    slice.learning_rate = model_->config.tables[t].learning_rate * lr_scale;
    push_slices_.push_back(slice);
  }
  return push_slices_;
}

int64_t SparseInputs::unique_keys() const {
  int64_t total = 0;
  for (const TableBatch& t : tables_) total += static_cast<int64_t>(t.keys.size());
  return total;
}

}  // namespace towerps::worker
