#include "models/tower.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace towerps::models {

absl::Status TowerConfig::Validate() const {
  if (input_dims.empty()) return absl::InvalidArgumentError("tower: input_dims is empty");
  for (size_t k = 0; k < input_dims.size(); ++k) {
    if (input_dims[k] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("tower: input_dims[", k, "] = ",
                                                     input_dims[k], " must be > 0"));
    }
  }
  for (size_t i = 0; i < mlp_hidden.size(); ++i) {
    if (mlp_hidden[i] <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("tower: mlp_hidden[", i, "] = ",
                                                     mlp_hidden[i], " must be > 0"));
    }
  }
  if (cross_layers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tower: cross_layers = ", cross_layers, " must be >= 0"));
  }
  if (output_dim <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tower: output_dim = ", output_dim, " must be > 0"));
  }
  if (!(l2_epsilon > 0)) return absl::InvalidArgumentError("tower: l2_epsilon must be > 0");
  if (!(cross_init_scale > 0)) {
    return absl::InvalidArgumentError("tower: cross_init_scale must be > 0");
  }
  return absl::OkStatus();
}

int TowerConfig::input_dim() const {
  int d = 0;
  for (int k : input_dims) d += k;
  return d;
}

double TowerFlopsPerExample(const TowerConfig& config) {
  // Forward x W, backward x^T dy and dy W^T: three products of 2*in*out each.
  auto linear = [](double in, double out) { return 3.0 * 2.0 * in * out; };
  const double d = config.input_dim();
  double flops = 0;
  double prev = d;
  for (int h : config.mlp_hidden) {
    flops += linear(prev, h);
    prev = h;
  }
  if (!config.mlp_hidden.empty() && prev != d) flops += linear(prev, d);
  flops += config.cross_layers * linear(d, d);
  flops += linear(d, config.output_dim);
  return flops;
}

template <typename T>
absl::StatusOr<std::unique_ptr<Tower<T>>> Tower<T>::Create(const TowerConfig& config,
                                                           absl::string_view name,
                                                           ParamStore<T>* store) {
  absl::Status status = config.Validate();
  if (!status.ok()) return status;
  if (store == nullptr) return absl::InvalidArgumentError("tower: store is null");
  return std::unique_ptr<Tower<T>>(new Tower<T>(config, name, store));
}

template <typename T>
Tower<T>::Tower(const TowerConfig& config, absl::string_view name, ParamStore<T>* store)
    : config_(config), norm_(config.l2_epsilon) {
  const int d = config.input_dim();
  int offset = 0;
  for (int k : config.input_dims) {
    block_offsets_.push_back(offset);
    offset += k;
  }
  int prev = d;
  for (size_t i = 0; i < config.mlp_hidden.size(); ++i) {
    mlp_.push_back(std::make_unique<Linear<T>>(store, absl::StrCat(name, "/mlp", i), prev,
                                               config.mlp_hidden[i]));
    act_.push_back(std::make_unique<Activation<T>>(config.activation));
    prev = config.mlp_hidden[i];
  }
  if (!mlp_.empty() && prev != d) {
    mlp_to_input_ = std::make_unique<Linear<T>>(store, absl::StrCat(name, "/mlp_to_input"),
                                                prev, d);
  }
  for (int l = 0; l < config.cross_layers; ++l) {
    cross_.push_back(std::make_unique<CrossLayer<T>>(store, absl::StrCat(name, "/cross", l), d));
  }
  proj_ = std::make_unique<Linear<T>>(store, absl::StrCat(name, "/proj"), d, config.output_dim);
}

template <typename T>
void Tower<T>::Init(uint64_t seed) {
  for (size_t i = 0; i < mlp_.size(); ++i) mlp_[i]->Init(DeriveSeed(seed, absl::StrCat("mlp", i)));
  if (mlp_to_input_) mlp_to_input_->Init(DeriveSeed(seed, "mlp_to_input"));
  for (size_t l = 0; l < cross_.size(); ++l) {
    cross_[l]->Init(DeriveSeed(seed, absl::StrCat("cross", l)), config_.cross_init_scale);
  }
  proj_->Init(DeriveSeed(seed, "proj"));
}

template <typename T>
const Mat<T>& Tower<T>::Forward(std::span<const ConstMatRef<T>> blocks) {
  CHECK_EQ(blocks.size(), config_.input_dims.size());
  const Eigen::Index b = blocks.empty() ? 0 : blocks[0].rows();
  EnsureShape(b, config_.input_dim(), &x0_storage_);
  for (size_t k = 0; k < blocks.size(); ++k) {
    CHECK_EQ(blocks[k].rows(), b);
    CHECK_EQ(blocks[k].cols(), config_.input_dims[k]);
    x0_storage_.middleCols(block_offsets_[k], config_.input_dims[k]) = blocks[k];
  }
  x0_ = x0_storage_.data();
  batch_ = b;
  return ForwardFromX0();
}

template <typename T>
const Mat<T>& Tower<T>::Forward(ConstMatRef<T> x0) {
  CHECK_EQ(x0.cols(), config_.input_dim());
  x0_ = x0.data();
  batch_ = x0.rows();
  return ForwardFromX0();
}

template <typename T>
const Mat<T>& Tower<T>::ForwardFromX0() {
  const int d = config_.input_dim();
  ConstMatRef<T> x0(x0_, batch_, d);
  const Mat<T>* mlp_out = nullptr;
  if (!mlp_.empty()) {
    ConstMatRef<T> h = x0;
    for (size_t i = 0; i < mlp_.size(); ++i) {
      mlp_out = &act_[i]->Forward(View(mlp_[i]->Forward(h)));
      new (&h) ConstMatRef<T>(View(*mlp_out));  // rebind the view (Map's = copies data)
    }
    if (mlp_to_input_) mlp_out = &mlp_to_input_->Forward(h);
  }
  const Mat<T>* cross_out = nullptr;
  for (size_t l = 0; l < cross_.size(); ++l) {
    cross_out = &cross_[l]->Forward(x0, l == 0 ? x0 : View(*cross_out));
  }
  EnsureShape(batch_, d, &sum_);
  if (mlp_out && cross_out) {
    sum_ = *mlp_out + *cross_out;
  } else if (mlp_out) {
    sum_ = *mlp_out;
  } else if (cross_out) {
    sum_ = *cross_out;
  } else {
    sum_ = x0;
  }
  const Mat<T>& projected = proj_->Forward(View(sum_));
  return config_.l2_normalize ? norm_.Forward(View(projected)) : projected;
}

template <typename T>
void Tower<T>::Backward(ConstMatRef<T> d_out) {
  CHECK_EQ(d_out.rows(), batch_);
  CHECK_EQ(d_out.cols(), config_.output_dim);
  const Mat<T>& dsum = config_.l2_normalize ? proj_->Backward(View(norm_.Backward(d_out)))
                                             : proj_->Backward(d_out);
  EnsureShape(batch_, config_.input_dim(), &dx0_);
  if (mlp_.empty() && cross_.empty()) {
    dx0_ = dsum;
    return;
  }
  dx0_.setZero();
  if (!cross_.empty()) {
    const Mat<T>* g = &dsum;
    for (size_t l = cross_.size(); l-- > 0;) g = &cross_[l]->Backward(View(*g), &dx0_);
    dx0_ += *g;  // x_0 of the cross chain is x0 itself
  }
  if (!mlp_.empty()) {
    const Mat<T>* g = &dsum;
    if (mlp_to_input_) g = &mlp_to_input_->Backward(View(*g));
    for (size_t i = mlp_.size(); i-- > 0;) {
      g = &mlp_[i]->Backward(View(act_[i]->Backward(View(*g))));
    }
    dx0_ += *g;
  }
}

template class Tower<float>;
template class Tower<double>;

}  // namespace towerps::models
