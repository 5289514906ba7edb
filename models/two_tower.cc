#include "models/two_tower.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace towerps::models {

absl::Status TwoTowerConfig::Validate() const {
  TOWERPS_RETURN_IF_ERROR(Annotate(user.Validate(), "user tower"));
  TOWERPS_RETURN_IF_ERROR(Annotate(item.Validate(), "item tower"));
  TOWERPS_RETURN_IF_ERROR(loss.Validate());
  if (user.output_dim != item.output_dim) {
    return absl::InvalidArgumentError(absl::StrCat("two towers: user output_dim ",
                                                   user.output_dim, " != item output_dim ",
                                                   item.output_dim));
  }
  return absl::OkStatus();
}

double TwoTowerFlopsPerExample(const TwoTowerConfig& config, int batch, int num_extra) {
  const double item_rows_per_example = (static_cast<double>(batch) + num_extra) / batch;
  return TowerFlopsPerExample(config.user) +
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
  return TowerDenseParamCount(config.user) + TowerDenseParamCount(config.item);
}

absl::StatusOr<std::unique_ptr<TwoTower>> TwoTower::Create(const TwoTowerConfig& config) {
  TOWERPS_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<TwoTower> model(new TwoTower(config));
  TOWERPS_ASSIGN_OR_RETURN(model->user_,
                           Tower<float>::Create(config.user, "user", &model->params_));
  TOWERPS_ASSIGN_OR_RETURN(model->item_,
                           Tower<float>::Create(config.item, "item", &model->params_));
  TOWERPS_ASSIGN_OR_RETURN(model->loss_, RetrievalLoss<float>::Create(config.loss));
  return model;
}

void TwoTower::Init(uint64_t seed) {
  user_->Init(DeriveSeed(seed, "user"));
  item_->Init(DeriveSeed(seed, "item"));
}

absl::StatusOr<double> TwoTower::ForwardBackward(ConstMatRef<float> user_x0,
                                                 ConstMatRef<float> item_x0, int num_extra,
                                                 const PairInfo& info) {
  const Eigen::Index b = user_x0.rows();
  if (num_extra < 0 || item_x0.rows() != b + num_extra || b == 0 ||
      user_x0.cols() != config_.user.input_dim() || item_x0.cols() != config_.item.input_dim()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "two towers: user input ", user_x0.rows(), " x ", user_x0.cols(), ", item input ",
        item_x0.rows(), " x ", item_x0.cols(), " with ", num_extra, " extras; want B x ",
        config_.user.input_dim(), " and (B + N) x ", config_.item.input_dim(), ", B > 0"));
  }
  const Mat<float>& u = user_->Forward(user_x0);
  const Mat<float>& items = item_->Forward(item_x0);
  const Eigen::Index d = items.cols();
  LossBatch<float> batch(View(u), ConstMatRef<float>(items.data(), b, d),
                         ConstMatRef<float>(items.data() + b * d, num_extra, d));
  batch.item_ids = info.item_ids;
  batch.extra_item_ids = info.extra_item_ids;
  batch.item_log_q = info.item_log_q;
  batch.extra_log_q = info.extra_log_q;
  batch.weights = info.weights;
  batch.labels = info.labels;
  TOWERPS_ASSIGN_OR_RETURN(double loss, loss_->Compute(batch));
  params_.ZeroGrads();
  user_->Backward(loss_->d_user());
  item_->Backward(loss_->d_items_all());
  return loss;
}

}  // namespace towerps::models
