#include "models/two_tower.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::models {

absl::Status TwoTowerConfig::Validate() const {
  TOWERPS_RETURN_IF_ERROR(Annotate(user.Validate(), "user tower"));
  TOWERPS_RETURN_IF_ERROR(Annotate(item.Validate(), "item tower"));
  TOWERPS_RETURN_IF_ERROR(loss.Validate());
  std::vector<bool> taken(user.input_dims.size(), false);
  for (const UserSequenceConfig& seq : user_sequences) {
    TOWERPS_RETURN_IF_ERROR(Annotate(seq.encoder.Validate(), "user sequence"));
    if (seq.block < 0 || seq.block >= static_cast<int>(user.input_dims.size()) ||
        taken[seq.block] || user.input_dims[seq.block] != seq.encoder.dim) {
      return absl::InvalidArgumentError(absl::StrCat(
          "user sequence: block ", seq.block, " is not a free user input of width ",
          seq.encoder.dim));
    }
    taken[seq.block] = true;
  }
  if (user.output_dim != item.output_dim) {
    return absl::InvalidArgumentError(absl::StrCat("two towers: user output_dim ",
                                                   user.output_dim, " != item output_dim ",
                                                   item.output_dim));
  }
  return absl::OkStatus();
}

double TwoTowerFlopsPerExample(const TwoTowerConfig& config, int batch, int num_extra) {
  const double item_rows_per_example = (static_cast<double>(batch) + num_extra) / batch;
  double sequences = 0;
  for (const UserSequenceConfig& seq : config.user_sequences) {
    sequences += SequenceEncoderFlopsPerExample(seq.encoder);
  }
  return sequences + TowerFlopsPerExample(config.user) +
         item_rows_per_example * TowerFlopsPerExample(config.item) +
         LogitsFlopsPerExample(batch, num_extra, config.user.output_dim);
}

uint64_t TowerDenseParamCount(const TowerConfig& config) {
  // The layers Tower registers: a Linear is in x out weights plus out biases, a
  // cross layer d x d plus d.
  auto linear = [](uint64_t in, uint64_t out) { return in * out + out; };
  const uint64_t d = static_cast<uint64_t>(config.input_dim());
  uint64_t count = 0;
  uint64_t prev = d;
  for (int h : config.mlp_hidden) {
    count += linear(prev, static_cast<uint64_t>(h));
    prev = static_cast<uint64_t>(h);
  }
  if (!config.mlp_hidden.empty() && prev != d) count += linear(prev, d);
  count += static_cast<uint64_t>(config.cross_layers) * linear(d, d);
  count += linear(d, static_cast<uint64_t>(config.output_dim));
  return count;
}

uint64_t DenseParamCount(const TwoTowerConfig& config) {
  uint64_t sequences = 0;
  for (const UserSequenceConfig& seq : config.user_sequences) {
    sequences += SequenceEncoderParamCount(seq.encoder);
  }
  return TowerDenseParamCount(config.user) + sequences + TowerDenseParamCount(config.item);
}

absl::StatusOr<std::unique_ptr<TwoTower>> TwoTower::Create(const TwoTowerConfig& config) {
  TOWERPS_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<TwoTower> model(new TwoTower(config));
  TOWERPS_ASSIGN_OR_RETURN(model->user_,
                           Tower<float>::Create(config.user, "user", &model->params_));
  for (size_t k = 0; k < config.user_sequences.size(); ++k) {
    TOWERPS_ASSIGN_OR_RETURN(auto encoder,
                             SequenceEncoder<float>::Create(config.user_sequences[k].encoder,
                                                            absl::StrCat("user/seq", k),
                                                            &model->params_));
    model->sequences_.push_back(std::move(encoder));
  }
  TOWERPS_ASSIGN_OR_RETURN(model->item_,
                           Tower<float>::Create(config.item, "item", &model->params_));
  TOWERPS_ASSIGN_OR_RETURN(model->loss_, RetrievalLoss<float>::Create(config.loss));
  return model;
}

void TwoTower::Init(uint64_t seed) {
  user_->Init(DeriveSeed(seed, "user"));
  item_->Init(DeriveSeed(seed, "item"));
  for (size_t k = 0; k < sequences_.size(); ++k) {
    sequences_[k]->Init(DeriveSeed(seed, absl::StrCat("user/seq", k)));
  }
}

absl::StatusOr<ConstMatRef<float>> TwoTower::UserInput(ConstMatRef<float> user_x0,
                                                       std::span<const SequenceBatch> sequences) {
  if (sequences.size() != sequences_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("two towers: ", sequences.size(),
                                                   " sequence inputs, want ", sequences_.size()));
  }
  if (sequences_.empty()) return user_x0;
  const Eigen::Index b = user_x0.rows();
  for (size_t k = 0; k < sequences_.size(); ++k) {
    const SequenceEncoderConfig& c = sequences_[k]->config();
    const SequenceBatch& s = sequences[k];
    bool ok = static_cast<Eigen::Index>(s.lengths.size()) == b &&
              s.rows.size() == static_cast<size_t>(b) * c.max_len * c.dim;
    for (int32_t len : s.lengths) ok = ok && len >= 0 && len <= c.max_len;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "two towers: sequence ", k, " has ", s.lengths.size(), " lengths and ", s.rows.size(),
          " values; want ", b, " lengths in [0, ", c.max_len, "] and B * ", c.max_len, " * ",
          c.dim, " values"));
    }
  }
  EnsureShape(b, user_x0.cols(), &user_x0_);
  user_x0_ = user_x0;
  for (size_t k = 0; k < sequences_.size(); ++k) {
    const SequenceEncoderConfig& c = sequences_[k]->config();
    const int block = config_.user_sequences[k].block;
    ConstMatRef<float> rows(sequences[k].rows.data(), b * c.max_len, c.dim);
    user_x0_.middleCols(user_->InputOffset(block), c.dim) =
        sequences_[k]->Forward(rows, sequences[k].lengths);
  }
  return View(user_x0_);
}

absl::StatusOr<const Mat<float>*> TwoTower::EmbedUsers(ConstMatRef<float> user_x0,
                                                       std::span<const SequenceBatch> sequences) {
  if (user_x0.cols() != config_.user.input_dim()) {
    return absl::InvalidArgumentError("two towers: user input width differs from the config");
  }
  TOWERPS_ASSIGN_OR_RETURN(ConstMatRef<float> x0, UserInput(user_x0, sequences));
  return &user_->Forward(x0);
}

absl::StatusOr<double> TwoTower::ForwardBackward(ConstMatRef<float> user_x0,
                                                 ConstMatRef<float> item_x0, int num_extra,
                                                 const PairInfo& info,
                                                 std::span<const SequenceBatch> sequences) {
  const Eigen::Index b = user_x0.rows();
  if (num_extra < 0 || item_x0.rows() != b + num_extra || b == 0 ||
      user_x0.cols() != config_.user.input_dim() || item_x0.cols() != config_.item.input_dim()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "two towers: user input ", user_x0.rows(), " x ", user_x0.cols(), ", item input ",
        item_x0.rows(), " x ", item_x0.cols(), " with ", num_extra, " extras; want B x ",
        config_.user.input_dim(), " and (B + N) x ", config_.item.input_dim(), ", B > 0"));
  }
  TOWERPS_ASSIGN_OR_RETURN(ConstMatRef<float> user_in, UserInput(user_x0, sequences));
  const Mat<float>& u = user_->Forward(user_in);
  const Mat<float>& items = item_->Forward(item_x0);
  const Eigen::Index d = items.cols();
  LossBatch<float> batch(View(u), ConstMatRef<float>(items.data(), b, d),
                         ConstMatRef<float>(items.data() + b * d, num_extra, d));
  batch.item_ids = info.item_ids;
  batch.extra_item_ids = info.extra_item_ids;
  batch.item_log_q = info.item_log_q;
  batch.extra_log_q = info.extra_log_q;
  batch.extra_owner = info.extra_owner;
  batch.weights = info.weights;
  batch.labels = info.labels;
  TOWERPS_ASSIGN_OR_RETURN(double loss, loss_->Compute(batch));
  params_.ZeroGrads();
  user_->Backward(loss_->d_user());
  item_->Backward(loss_->d_items_all());
  for (size_t k = 0; k < sequences_.size(); ++k) {
    EnsureShape(b, sequences_[k]->config().dim, &d_sequence_);
    d_sequence_ = user_->InputGrad(config_.user_sequences[k].block);
    sequences_[k]->Backward(View(d_sequence_));
  }
  return loss;
}

}  // namespace towerps::models
