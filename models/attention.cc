#include "models/attention.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

#ifndef EIGEN_USE_BLAS
#error "models/ must be compiled with EIGEN_USE_BLAS (see models/CMakeLists.txt)"
#endif

namespace towerps::models {

// ---- MultiHeadSelfAttention ----

template <typename T>
MultiHeadSelfAttention<T>::MultiHeadSelfAttention(ParamStore<T>* store, absl::string_view name,
                                                  int dim, int heads)
    : dim_(dim),
      heads_(heads),
      head_dim_(dim / heads),
      qkv_(store, absl::StrCat(name, "/qkv"), dim, 3 * dim),
      out_(store, absl::StrCat(name, "/out"), dim, dim) {
  CHECK_GT(heads, 0);
  CHECK_EQ(dim % heads, 0);
}

template <typename T>
void MultiHeadSelfAttention<T>::Init(uint64_t seed) {
  qkv_.Init(DeriveSeed(seed, "qkv"));
  out_.Init(DeriveSeed(seed, "out"));
}

template <typename T>
const Mat<T>& MultiHeadSelfAttention<T>::Forward(ConstMatRef<T> x, int seq_len,
                                                 std::span<const int32_t> lengths) {
  const Eigen::Index b_count = static_cast<Eigen::Index>(lengths.size());
  const Eigen::Index l = seq_len;
  CHECK_EQ(x.rows(), b_count * l);
  seq_len_ = seq_len;
  lengths_ = lengths;
  const Mat<T>& qkv = qkv_.Forward(x);
  EnsureShape(b_count * heads_ * l, l, &probs_);
  EnsureShape(b_count * l, dim_, &ctx_);
  const T scale = T(1) / std::sqrt(static_cast<T>(head_dim_));
  for (Eigen::Index b = 0; b < b_count; ++b) {
    const Eigen::Index len = lengths[b];
    CHECK(len >= 0 && len <= l);
    for (int h = 0; h < heads_; ++h) {
      auto p = probs_.block((b * heads_ + h) * l, 0, l, l);
      auto c = ctx_.block(b * l, h * head_dim_, l, head_dim_);
      if (len == 0) {
        p.setZero();
        c.setZero();
        continue;
      }
      auto q = qkv.block(b * l, h * head_dim_, l, head_dim_);
      auto k = qkv.block(b * l, dim_ + h * head_dim_, len, head_dim_);
      auto v = qkv.block(b * l, 2 * dim_ + h * head_dim_, len, head_dim_);
      auto pv = p.leftCols(len);
      pv.noalias() = q * k.transpose();
      p.rightCols(l - len).setZero();
      for (Eigen::Index i = 0; i < l; ++i) {
        const T m = pv.row(i).maxCoeff();
        pv.row(i) = ((pv.row(i).array() - m) * scale).exp().matrix();
        pv.row(i) /= pv.row(i).sum();
      }
      c.noalias() = pv * v;
    }
  }
  qkv_out_ = &qkv;
  return out_.Forward(View(ctx_));
}

template <typename T>
const Mat<T>& MultiHeadSelfAttention<T>::Backward(ConstMatRef<T> dy) {
  const Eigen::Index b_count = static_cast<Eigen::Index>(lengths_.size());
  const Eigen::Index l = seq_len_;
  CHECK_EQ(dy.rows(), b_count * l);
  const Mat<T>& dctx = out_.Backward(dy);
  const Mat<T>& qkv = *qkv_out_;
  EnsureShape(b_count * l, 3 * dim_, &dqkv_);
  EnsureShape(l, l, &dp_);
  const T scale = T(1) / std::sqrt(static_cast<T>(head_dim_));
  for (Eigen::Index b = 0; b < b_count; ++b) {
    const Eigen::Index len = lengths_[b];
    if (len == 0) {
      dqkv_.middleRows(b * l, l).setZero();
      continue;
    }
    // Padding keys get no gradient (their probabilities are 0).
    dqkv_.block(b * l + len, dim_, l - len, 2 * dim_).setZero();
    for (int h = 0; h < heads_; ++h) {
      auto p = probs_.block((b * heads_ + h) * l, 0, l, len);
      auto dc = dctx.block(b * l, h * head_dim_, l, head_dim_);
      auto q = qkv.block(b * l, h * head_dim_, l, head_dim_);
      auto k = qkv.block(b * l, dim_ + h * head_dim_, len, head_dim_);
      auto v = qkv.block(b * l, 2 * dim_ + h * head_dim_, len, head_dim_);
      auto ds = dp_.block(0, 0, l, len);
      ds.noalias() = dc * v.transpose();  // dP
      for (Eigen::Index i = 0; i < l; ++i) {
        const T dot = ds.row(i).dot(p.row(i));
        ds.row(i) = (p.row(i).array() * (ds.row(i).array() - dot) * scale).matrix();
      }
      dqkv_.block(b * l, h * head_dim_, l, head_dim_).noalias() = ds * k;
      dqkv_.block(b * l, dim_ + h * head_dim_, len, head_dim_).noalias() = ds.transpose() * q;
      dqkv_.block(b * l, 2 * dim_ + h * head_dim_, len, head_dim_).noalias() =
          p.transpose() * dc;
    }
  }
  return qkv_.Backward(View(dqkv_));
}

// ---- SequenceEncoderConfig ----

absl::Status SequenceEncoderConfig::Validate() const {
  if (dim < 1 || dim > 65536) return absl::InvalidArgumentError("sequence dim must be in [1, 65536]");
  if (max_len < 1 || max_len > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("max_len=", max_len, " is out of range [1, 1024]"));
  }
  if (heads < 1 || heads > dim || dim % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("heads=", heads, " must divide the table dim ", dim));
  }
  if (blocks < 1 || blocks > 4) {
    return absl::InvalidArgumentError(absl::StrCat("blocks=", blocks, " is out of range [1, 4]"));
  }
  if (ffn_dim < 1 || ffn_dim > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("ffn=", ffn_dim, " is out of range [1, 65536]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SequencePool> ParseSequencePool(absl::string_view name) {
  if (name == "mean") return SequencePool::kMean;
  if (name == "last") return SequencePool::kLast;
  return absl::InvalidArgumentError(absl::StrCat("seq_pool must be mean or last, got '", name, "'"));
}

uint64_t SequenceEncoderParamCount(const SequenceEncoderConfig& c) {
  const uint64_t d = c.dim, f = c.ffn_dim;
  const uint64_t block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * f + f) +
                         (f * d + d);
  return static_cast<uint64_t>(c.max_len) * d + c.blocks * block + 2 * d;
}

double SequenceEncoderFlopsPerExample(const SequenceEncoderConfig& c) {
  const double d = c.dim, l = c.max_len, f = c.ffn_dim;
  const double forward = 2 * l * d * 3 * d  // QKV
                         + 2 * 2 * l * l * d  // scores and context, all heads
                         + 2 * l * d * d      // output projection
                         + 2 * 2 * l * d * f;  // FFN
  return 3 * c.blocks * forward;
}

// ---- SequenceEncoder ----

template <typename T>
SequenceEncoder<T>::Block::Block(ParamStore<T>* store, const std::string& name,
                                 const SequenceEncoderConfig& c)
    : ln1(store, name + "/ln1", c.dim),
      attn(store, name + "/attn", c.dim, c.heads),
      ln2(store, name + "/ln2", c.dim),
      ffn1(store, name + "/ffn1", c.dim, c.ffn_dim),
      act(ActivationKind::kRelu),
      ffn2(store, name + "/ffn2", c.ffn_dim, c.dim) {}

template <typename T>
absl::StatusOr<std::unique_ptr<SequenceEncoder<T>>> SequenceEncoder<T>::Create(
    const SequenceEncoderConfig& config, absl::string_view name, ParamStore<T>* store) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (store == nullptr) return absl::InvalidArgumentError("sequence encoder: no store");
  return std::unique_ptr<SequenceEncoder>(new SequenceEncoder(config, name, store));
}

template <typename T>
SequenceEncoder<T>::SequenceEncoder(const SequenceEncoderConfig& config, absl::string_view name,
                                    ParamStore<T>* store)
    : config_(config),
      store_(store),
      pos_(store->Add(absl::StrCat(name, "/pos"), config.max_len, config.dim)) {
  // Registration order is the layout order: pos, the blocks, then the final norm.
  for (int k = 0; k < config.blocks; ++k) {
    blocks_.push_back(std::make_unique<Block>(store, absl::StrCat(name, "/block", k), config));
  }
  final_ln_ = std::make_unique<LayerNorm<T>>(store, absl::StrCat(name, "/final_ln"), config.dim);
}

template <typename T>
void SequenceEncoder<T>::Init(uint64_t seed) {
  store_->InitUniform(pos_, 0.05, DeriveSeed(seed, "pos"));
  for (size_t k = 0; k < blocks_.size(); ++k) {
    Block& blk = *blocks_[k];
    const uint64_t s = DeriveSeed(seed, absl::StrCat("block", k));
    blk.ln1.Init();
    blk.attn.Init(DeriveSeed(s, "attn"));
    blk.ln2.Init();
    blk.ffn1.Init(DeriveSeed(s, "ffn1"));
    blk.ffn2.Init(DeriveSeed(s, "ffn2"));
  }
  final_ln_->Init();
}

template <typename T>
const Mat<T>& SequenceEncoder<T>::Forward(ConstMatRef<T> rows, std::span<const int32_t> lengths) {
  const Eigen::Index b_count = static_cast<Eigen::Index>(lengths.size());
  const Eigen::Index l = config_.max_len;
  const int d = config_.dim;
  CHECK_EQ(rows.rows(), b_count * l);
  CHECK_EQ(rows.cols(), d);
  lengths_ = lengths;
  EnsureShape(b_count * l, d, &x_);
  const auto pos = store_->Value(pos_);
  for (Eigen::Index b = 0; b < b_count; ++b) {
    const Eigen::Index len = lengths[b];
    CHECK(len >= 0 && len <= l);
    x_.middleRows(b * l, len) = rows.middleRows(b * l, len) + pos.topRows(len);
    x_.middleRows(b * l + len, l - len).setZero();
  }
  const Mat<T>* cur = &x_;
  for (auto& bp : blocks_) {
    Block& blk = *bp;
    const Mat<T>& m = blk.attn.Forward(View(blk.ln1.Forward(View(*cur))), config_.max_len, lengths);
    EnsureShape(b_count * l, d, &blk.h);
    blk.h = *cur + m;
    const Mat<T>& f = blk.ffn2.Forward(
        View(blk.act.Forward(View(blk.ffn1.Forward(View(blk.ln2.Forward(View(blk.h))))))));
    EnsureShape(b_count * l, d, &blk.y);
    blk.y = blk.h + f;
    cur = &blk.y;
  }
  EnsureShape(b_count, d, &pooled_);
  for (Eigen::Index b = 0; b < b_count; ++b) {
    const Eigen::Index len = lengths[b];
    if (len == 0) {
      pooled_.row(b).setZero();
    } else if (config_.pool == SequencePool::kLast) {
      pooled_.row(b) = cur->row(b * l);
    } else {
      pooled_.row(b) = cur->middleRows(b * l, len).colwise().sum() / static_cast<T>(len);
    }
  }
  return final_ln_->Forward(View(pooled_));
}

template <typename T>
void SequenceEncoder<T>::Backward(ConstMatRef<T> d_out) {
  const Eigen::Index b_count = static_cast<Eigen::Index>(lengths_.size());
  const Eigen::Index l = config_.max_len;
  const int d = config_.dim;
  CHECK_EQ(d_out.rows(), b_count);
  const Mat<T>& dpool = final_ln_->Backward(d_out);
  EnsureShape(b_count * l, d, &d_top_);
  d_top_.setZero();
  for (Eigen::Index b = 0; b < b_count; ++b) {
    const Eigen::Index len = lengths_[b];
    if (len == 0) continue;
    if (config_.pool == SequencePool::kLast) {
      d_top_.row(b * l) = dpool.row(b);
    } else {
      const T inv = T(1) / static_cast<T>(len);
      for (Eigen::Index p = 0; p < len; ++p) d_top_.row(b * l + p) = dpool.row(b) * inv;
    }
  }
  const Mat<T>* dy = &d_top_;
  for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
    Block& blk = **it;
    const Mat<T>& dc = blk.ffn1.Backward(View(blk.act.Backward(View(blk.ffn2.Backward(View(*dy))))));
    const Mat<T>& dh_ln = blk.ln2.Backward(View(dc));
    EnsureShape(b_count * l, d, &blk.dh);
    blk.dh = *dy + dh_ln;
    const Mat<T>& dx_ln = blk.ln1.Backward(View(blk.attn.Backward(View(blk.dh))));
    EnsureShape(b_count * l, d, &blk.dx);
    blk.dx = blk.dh + dx_ln;
    dy = &blk.dx;
  }
  EnsureShape(b_count * l, d, &d_rows_);
  auto dpos = store_->Grad(pos_);
  for (Eigen::Index b = 0; b < b_count; ++b) {
    const Eigen::Index len = lengths_[b];
    d_rows_.middleRows(b * l, len) = dy->middleRows(b * l, len);
    d_rows_.middleRows(b * l + len, l - len).setZero();
    dpos.topRows(len) += dy->middleRows(b * l, len);
  }
}

template class MultiHeadSelfAttention<float>;
template class MultiHeadSelfAttention<double>;
template class SequenceEncoder<float>;
template class SequenceEncoder<double>;

}  // namespace towerps::models
