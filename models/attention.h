// The sequential user tower's encoder: self-attention over a user's last L items.
//
// A batch of B sequences is one padded matrix `rows`: N = B * L rows of width d,
// row b * L + p is position p of example b, position 0 the MOST RECENT item;
// lengths[b] in [0, L] says how many leading positions are real (the rest are
// padding: masked as attention keys, ignored by pooling, zero input gradient).
//
//   x_p     = rows_p + pos_p                      (learned recency embedding, L x d)
//   block:  h = x + MHSA(LN1(x)),  y = h + W2 relu(W1 LN2(h) + b1) + b2   (pre-LN)
//   pooled  = mean of y over the real positions (kMean) or y at position 0 (kLast)
//   out     = LN_final(pooled)                    B x d; a user with no history
//                                                  pools to zeros (out = beta)
//
// MHSA: H heads of width d / H, scores Q K^T / sqrt(d / H) per example and head,
// softmax over the real keys only. The projections (QKV, output, FFN) are
// whole-batch GEMMs (N x d times d x 3d, ...); the per-example L x L score and
// context products are small GEMMs. Parameters live in a borrowed ParamStore under
// "<name>/pos", "<name>/block<k>/{ln1,qkv,out,ln2,ffn1,ffn2}", "<name>/final_ln".
//
// Thread-compatible. Allocation-free after the first step at fixed B (and L).
#ifndef TOWERPS_MODELS_ATTENTION_H_
#define TOWERPS_MODELS_ATTENTION_H_

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

// Multi-head self-attention with key padding mask over B sequences of length L.
// Parameters: "<name>/qkv" (Linear d -> 3d) and "<name>/out" (Linear d -> d).
template <typename T>
class MultiHeadSelfAttention {
 public:
  MultiHeadSelfAttention(ParamStore<T>* store, absl::string_view name, int dim, int heads);

  void Init(uint64_t seed);
  // x: (B * L) x d, lengths: B values in [0, L] (borrowed until Backward).
  // Returns (B * L) x d. Rows of a query with no real key are zero before the
  // output projection.
  const Mat<T>& Forward(ConstMatRef<T> x, int seq_len, std::span<const int32_t> lengths);
  // dy: (B * L) x d -> dx: (B * L) x d; adds the parameter gradients.
  const Mat<T>& Backward(ConstMatRef<T> dy);

 private:
  int dim_, heads_, head_dim_;
  Linear<T> qkv_, out_;
  int seq_len_ = 0;
  std::span<const int32_t> lengths_;
  const Mat<T>* qkv_out_ = nullptr;  // qkv_'s output, until its next Forward
  Mat<T> probs_;     // (B * H * L) x L, zero in masked columns
  Mat<T> ctx_;       // (B * L) x d, heads side by side
  Mat<T> dqkv_;      // (B * L) x 3d
  Mat<T> dp_;        // L x L workspace
};

enum class SequencePool { kMean, kLast };

struct SequenceEncoderConfig {
  int dim = 32;       // d, the width of the item rows (> 0)
  int max_len = 20;   // L, positions kept (the most recent), in [1, 1024]
  int heads = 2;      // in [1, d], divides d
  int blocks = 1;     // in [1, 4]
  int ffn_dim = 64;   // FFN hidden width, in [1, 65536]
  SequencePool pool = SequencePool::kMean;

  // InvalidArgument naming the bad field.
  absl::Status Validate() const;
};

// Parses "mean" | "last"; InvalidArgument otherwise.
absl::StatusOr<SequencePool> ParseSequencePool(absl::string_view name);

// Dense parameters the encoder registers (no allocation).
uint64_t SequenceEncoderParamCount(const SequenceEncoderConfig& config);
// GEMM FLOPs per example of forward + backward (3x the forward products), with
// every one of the L positions computed (padding included).
double SequenceEncoderFlopsPerExample(const SequenceEncoderConfig& config);

template <typename T>
class SequenceEncoder {
 public:
  static absl::StatusOr<std::unique_ptr<SequenceEncoder>> Create(
      const SequenceEncoderConfig& config, absl::string_view name, ParamStore<T>* store);

  void Init(uint64_t seed);

  // rows: (B * L) x d padded as in the header comment (padding rows are ignored);
  // lengths: B values in [0, L], borrowed until Backward (CHECKed: the caller
  // builds them). Returns B x d, valid until the next Forward.
  const Mat<T>& Forward(ConstMatRef<T> rows, std::span<const int32_t> lengths);
  // d_out: B x d. Adds the parameter gradients; input_grad() is (B * L) x d with
  // zero padding rows.
  void Backward(ConstMatRef<T> d_out);
  const Mat<T>& input_grad() const { return d_rows_; }

  const SequenceEncoderConfig& config() const { return config_; }

 private:
  struct Block {
    Block(ParamStore<T>* store, const std::string& name, const SequenceEncoderConfig& c);
    LayerNorm<T> ln1;
    MultiHeadSelfAttention<T> attn;
    LayerNorm<T> ln2;
    Linear<T> ffn1;
    Activation<T> act;
    Linear<T> ffn2;
    Mat<T> h, y, dh, dx;  // (B * L) x d
  };
  SequenceEncoder(const SequenceEncoderConfig& config, absl::string_view name,
                  ParamStore<T>* store);

  SequenceEncoderConfig config_;
  ParamStore<T>* store_;
  ParamRef pos_;
  std::vector<std::unique_ptr<Block>> blocks_;
  std::unique_ptr<LayerNorm<T>> final_ln_;
  std::span<const int32_t> lengths_;
  Mat<T> x_, pooled_, d_top_, d_rows_;
};

extern template class MultiHeadSelfAttention<float>;
extern template class MultiHeadSelfAttention<double>;
extern template class SequenceEncoder<float>;
extern template class SequenceEncoder<double>;

}  // namespace towerps::models

#endif  // TOWERPS_MODELS_ATTENTION_H_
