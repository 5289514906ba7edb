#include "data/example.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace towerps::data {
namespace {

template <typename T>
void Put(const T& v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void PutBytes(absl::string_view s, std::string* out) {
  Put(static_cast<uint32_t>(s.size()), out);
  out->append(s.data(), s.size());
}

void PutSide(const SideFeatures& f, std::string* out) {
  for (int s = 0; s < f.num_slots(); ++s) Put(f.offsets[s + 1] - f.offsets[s], out);
  out->append(reinterpret_cast<const char*>(f.values.data()), f.values.size() * sizeof(uint64_t));
  out->append(reinterpret_cast<const char*>(f.dense.data()), f.dense.size() * sizeof(float));
}

// Bounds-checked little-endian cursor over one record.
class Cursor {
 public:
  explicit Cursor(absl::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  template <typename T>
  bool Get(T* v) {
    if (static_cast<size_t>(end_ - p_) < sizeof(T)) return false;
    std::memcpy(v, p_, sizeof(T));
    p_ += sizeof(T);
    return true;
  }
  bool GetArray(void* out, size_t bytes) {
    if (static_cast<size_t>(end_ - p_) < bytes) return false;
    if (bytes > 0) std::memcpy(out, p_, bytes);
    p_ += bytes;
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n;
    if (!Get(&n) || static_cast<size_t>(end_ - p_) < n) return false;
    s->assign(p_, n);
    p_ += n;
    return true;
  }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

 private:
  const char* p_;
  const char* end_;
};

bool GetSide(Cursor* c, const SideSchema& schema, SideFeatures* f) {
  const int slots = schema.num_sparse();
  f->offsets.resize(slots + 1);
  f->offsets[0] = 0;
  for (int s = 0; s < slots; ++s) {
    uint32_t count;
    if (!c->Get(&count)) return false;
    // A count larger than the bytes left is corrupt; checking here keeps a bad
    // record from asking for a huge allocation.
    if (count > c->remaining() / sizeof(uint64_t)) return false;
    f->offsets[s + 1] = f->offsets[s] + count;
  }
  f->values.resize(f->offsets[slots]);
  f->dense.resize(schema.dense_dim());
  return c->GetArray(f->values.data(), f->values.size() * sizeof(uint64_t)) &&
         c->GetArray(f->dense.data(), f->dense.size() * sizeof(float));
}

}  // namespace

void ExampleBatch::SideColumns::Append(const SideFeatures& f) {
  CHECK_EQ(f.num_slots(), static_cast<int>(sparse.size())) << "example does not match schema";
  CHECK_EQ(f.dense.size(), static_cast<size_t>(dense_dim)) << "example does not match schema";
  for (size_t s = 0; s < sparse.size(); ++s) {
    absl::Span<const uint64_t> keys = f.slot(static_cast<int>(s));
    SparseColumn& col = sparse[s];
    col.values.insert(col.values.end(), keys.begin(), keys.end());
    col.offsets.push_back(static_cast<uint32_t>(col.values.size()));
  }
  dense.insert(dense.end(), f.dense.begin(), f.dense.end());
}

void ExampleBatch::SideColumns::Init(const SideSchema& schema) {
  sparse.resize(schema.num_sparse());
  dense_dim = schema.dense_dim();
  Clear();
}

void ExampleBatch::SideColumns::Clear() {
  for (SparseColumn& col : sparse) {
    col.offsets.assign(1, 0);
    col.values.clear();
  }
  dense.clear();
}

void SideFeatures::Clear() {
  offsets.assign(1, 0);
  values.clear();
  dense.clear();
}

void SideFeatures::AddSlot(absl::Span<const uint64_t> keys) {
  values.insert(values.end(), keys.begin(), keys.end());
  offsets.push_back(static_cast<uint32_t>(values.size()));
}

void EncodeExample(const Example& e, std::string* out) {
  Put(e.user_id, out);
  Put(e.item_id, out);
  Put(e.timestamp, out);
  Put(e.label, out);
  Put(e.weight, out);
  PutSide(e.user, out);
  PutSide(e.item, out);
}

void EncodeEntity(const EntityRecord& e, std::string* out) {
  Put(e.key, out);
  Put(e.train_count, out);
  PutBytes(e.raw_id, out);
  PutBytes(e.title, out);
  PutSide(e.features, out);
}

absl::Status DecodeExample(absl::string_view bytes, const DatasetSchema& schema, Example* out) {
  Cursor c(bytes);
  if (!c.Get(&out->user_id) || !c.Get(&out->item_id) || !c.Get(&out->timestamp) ||
      !c.Get(&out->label) || !c.Get(&out->weight) || !GetSide(&c, schema.user, &out->user) ||
      !GetSide(&c, schema.item, &out->item) || c.remaining() != 0) {
    return absl::DataLossError(
        absl::StrCat("example record of ", bytes.size(), " bytes does not match the schema"));
  }
  return absl::OkStatus();
}

absl::Status DecodeEntity(absl::string_view bytes, const SideSchema& schema, EntityRecord* out) {
  Cursor c(bytes);
  if (!c.Get(&out->key) || !c.Get(&out->train_count) || !c.GetString(&out->raw_id) ||
      !c.GetString(&out->title) || !GetSide(&c, schema, &out->features) || c.remaining() != 0) {
    return absl::DataLossError(
        absl::StrCat("entity record of ", bytes.size(), " bytes does not match the schema"));
  }
  return absl::OkStatus();
}

ExampleBatch::ExampleBatch(const DatasetSchema& schema) {
  user.Init(schema.user);
  item.Init(schema.item);
  Clear();
}

void ExampleBatch::Clear() {
  user_ids.clear();
  item_ids.clear();
  timestamps.clear();
  labels.clear();
  weights.clear();
  user.Clear();
  item.Clear();
}

void ExampleBatch::Add(const Example& e) {
  user_ids.push_back(e.user_id);
  item_ids.push_back(e.item_id);
  timestamps.push_back(e.timestamp);
  labels.push_back(e.label);
  weights.push_back(e.weight);
  user.Append(e.user);
  item.Append(e.item);
}

}  // namespace towerps::data
