// Tower: one side (user or item) of the two-tower model.
//
//   x0 = concat(input blocks)                       B x D
//   mlp: [Linear -> activation] per hidden size     B x h_last
//        (+ a Linear h_last -> D when h_last != D, so the branches can be summed)
//   cross: x_{l+1} = x0 * (x_l W_l + b_l) + x_l     L layers, B x D
//   s = mlp(x0) + cross(x0)                          B x D (ResNet-style sum)
//   out = L2Normalize(s W_p + b_p)                   B x output_dim
//
// An empty MLP or zero cross layers drops that branch (both empty: s = x0).
// Parameters are registered in a borrowed ParamStore under "<name>/mlp<i>",
// "<name>/mlp_to_input", "<name>/cross<l>", "<name>/proj", so a user and an
// item tower can share one store (one flat array of all dense parameters).
//
// Thread-compatible: one thread drives a Tower. Allocation-free after the
// first step at a fixed batch size.
#ifndef TOWERPS_MODELS_TOWER_H_
#define TOWERPS_MODELS_TOWER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/layers.h"
#include "models/param_store.h"
#include "models/tensor.h"

namespace towerps::models {

struct TowerConfig {
  // Widths of the input blocks concatenated into x0 (each > 0; D = their sum).
  std::vector<int> input_dims;
  // Hidden sizes of the MLP branch (each > 0); empty drops the branch.
  std::vector<int> mlp_hidden = {512, 256};
  // DCN-v2 cross layers on x0 (>= 0); 0 drops the branch.
  int cross_layers = 4;
  // Width of the tower output (> 0).
  int output_dim = 128;
  // Activation after every MLP Linear.
  ActivationKind activation = ActivationKind::kRelu;
  // L2-normalise the output (the retrieval score is then a cosine).
  bool l2_normalize = true;
  // epsilon of the normalisation, > 0.
  double l2_epsilon = 1e-12;
  // Scale of the cross weights' initial range (> 0; small = near identity).
  double cross_init_scale = 0.5;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
  // D, the width of x0.
  int input_dim() const;
};

// Analytic GEMM FLOPs per example of one forward + backward of a tower:
// 2*m*n*k per product, counting the forward product and both backward
// products (weight and input gradient) of every Linear and cross layer.
// Elementwise work (bias, activations, normalisation) is not counted.
double TowerFlopsPerExample(const TowerConfig& config);

template <typename T>
class Tower {
 public:
  // InvalidArgument when config does not validate. `store` is borrowed and
  // must outlive the tower.
  static absl::StatusOr<std::unique_ptr<Tower>> Create(const TowerConfig& config,
                                                       absl::string_view name,
                                                       ParamStore<T>* store);

  // Initialises every parameter of this tower deterministically from `seed`.
  void Init(uint64_t seed);

  // blocks: one B x input_dims[k] matrix per input block (copied into x0).
  // Returns B x output_dim, valid until the next Forward.
  const Mat<T>& Forward(std::span<const ConstMatRef<T>> blocks);
  // x0: B x D, already concatenated; borrowed until Backward (no copy).
  const Mat<T>& Forward(ConstMatRef<T> x0);

  // d_out: B x output_dim. Accumulates parameter gradients into the store and
  // computes input_grad().
  void Backward(ConstMatRef<T> d_out);
  // d x0: B x D, valid until the next Backward.
  const Mat<T>& input_grad() const { return dx0_; }
  // Columns of input_grad() that belong to input block k: B x input_dims[k].
  auto InputGrad(int k) const {
    return dx0_.middleCols(block_offsets_[k], config_.input_dims[k]);
  }

  // The first column of input block k in x0.
  int InputOffset(int k) const { return block_offsets_[k]; }
  const TowerConfig& config() const { return config_; }

 private:
  Tower(const TowerConfig& config, absl::string_view name, ParamStore<T>* store);
  const Mat<T>& ForwardFromX0();

  TowerConfig config_;
  std::vector<int> block_offsets_;
  std::vector<std::unique_ptr<Linear<T>>> mlp_;
  std::vector<std::unique_ptr<Activation<T>>> act_;
  std::unique_ptr<Linear<T>> mlp_to_input_;  // null when h_last == D
  std::vector<std::unique_ptr<CrossLayer<T>>> cross_;
  std::unique_ptr<Linear<T>> proj_;
  L2Normalize<T> norm_;

  const T* x0_ = nullptr;  // x0_storage_ or the caller's x0
  Eigen::Index batch_ = 0;
  Mat<T> x0_storage_, sum_, dx0_;
};

extern template class Tower<float>;
extern template class Tower<double>;

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_TOWER_H_
