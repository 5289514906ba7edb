#include "index/embedder.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "data/example_reader.h"
#include "models/two_tower.h"
#include "ps/checkpoint_params.h"
#include "worker/job_plan.h"
#include "worker/step_runner.h"

namespace towerps::index {

absl::Status EmbedderOptions::Validate() const {
  if (dataset_dir.empty()) return absl::InvalidArgumentError("dataset_dir is empty");
  if (batch < 1) return absl::InvalidArgumentError("batch must be >= 1");
  if (ready_timeout_ms < 0) return absl::InvalidArgumentError("ready_timeout_ms must be >= 0");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TowerEmbedder>> TowerEmbedder::Create(
    const EmbedderOptions& options, const worker::ModelConfig& config, ps::ParamSource* params) {
  TOWERPS_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<TowerEmbedder> embedder(new TowerEmbedder(options));
  TOWERPS_ASSIGN_OR_RETURN(embedder->meta_, data::LoadDatasetMeta(options.dataset_dir));
  TOWERPS_ASSIGN_OR_RETURN(embedder->model_, worker::BindModel(config, embedder->meta_.schema));
  TOWERPS_ASSIGN_OR_RETURN(embedder->catalog_, worker::ItemCatalog::Load(options.dataset_dir));
  const uint64_t dense_params = models::DenseParamCount(embedder->model_.two_tower);
  if (params == nullptr) {
    if (options.checkpoint_dir.empty()) {
      return absl::InvalidArgumentError("neither a checkpoint nor a parameter source");
    }
    TOWERPS_ASSIGN_OR_RETURN(
        auto checkpoint,
        ps::CheckpointParams::Open(options.checkpoint_dir,
                                   worker::ServerOptionsFor(embedder->model_, 0, 1)));
    embedder->model_step_ = checkpoint->manifest().step;
    params = checkpoint.get();
    embedder->owned_params_ = std::move(checkpoint);
  } else {
    std::vector<float> scratch(dense_params);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options.ready_timeout_ms);
    while (true) {
      auto step = params->PullDense(absl::MakeSpan(scratch));
      if (step.ok()) {
        embedder->model_step_ = *step;
        break;
      }
      if (!absl::IsUnavailable(step.status()) || std::chrono::steady_clock::now() > deadline) {
        return step.status();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  TOWERPS_ASSIGN_OR_RETURN(embedder->runner_,
                           worker::StepRunner::Create(&embedder->model_, nullptr, params, 0));
  TOWERPS_RETURN_IF_ERROR(embedder->runner_->RefreshDense());
  return embedder;
}

TowerEmbedder::~TowerEmbedder() = default;

int TowerEmbedder::dim() const { return runner_->output_dim(); }

absl::Status TowerEmbedder::Embed(data::Side side, const data::ExampleBatch::SideColumns& columns,
                                  int64_t n, models::Mat<float>* out) {
  return runner_->Embed(side, columns, n, out);
}

absl::StatusOr<int64_t> TowerEmbedder::CountEntities(data::Side side) const {
  TOWERPS_ASSIGN_OR_RETURN(auto reader, data::EntityReader::Open(options_.dataset_dir, side));
  return static_cast<int64_t>(reader->size());
}

absl::Status TowerEmbedder::EmbedAll(data::Side side, ChunkSink sink) {
  TOWERPS_ASSIGN_OR_RETURN(auto reader, data::EntityReader::Open(options_.dataset_dir, side));
  data::ExampleBatch::SideColumns columns;
  columns.Init(side == data::Side::kUser ? meta_.schema.user : meta_.schema.item);
  std::vector<uint64_t> keys;
  std::vector<std::string> raw_ids;
  models::Mat<float> embedded;
  data::EntityRecord entity;
  auto flush = [&]() -> absl::Status {
    if (keys.empty()) return absl::OkStatus();
    const int64_t n = static_cast<int64_t>(keys.size());
    TOWERPS_RETURN_IF_ERROR(runner_->Embed(side, columns, n, &embedded));
    TOWERPS_RETURN_IF_ERROR(sink(keys, raw_ids, embedded));
    columns.Clear();
    keys.clear();
    raw_ids.clear();
    return absl::OkStatus();
  };
  while (true) {
    TOWERPS_ASSIGN_OR_RETURN(bool more, reader->Next(&entity));
    if (!more) break;
    columns.Append(entity.features);
    keys.push_back(entity.key);
    raw_ids.push_back(entity.raw_id);
    if (static_cast<int>(keys.size()) == options_.batch) TOWERPS_RETURN_IF_ERROR(flush());
  }
  return flush();
}

absl::Status TowerEmbedder::EmbedCatalog(std::vector<float>* out) {
  out->clear();
  out->reserve(catalog_->size() * dim());
  int64_t row = 0;
  return EmbedAll(data::Side::kItem,
                  [&](absl::Span<const uint64_t> keys, absl::Span<const std::string>,
                      const models::Mat<float>& embedded) -> absl::Status {
                    for (uint64_t key : keys) {
                      if (row >= catalog_->size() || catalog_->key(row) != key) {
                        return absl::DataLossError(absl::StrCat(
                            "items.tpr and the item catalog disagree at row ", row));
                      }
                      ++row;
                    }
                    out->insert(out->end(), embedded.data(), embedded.data() + embedded.size());
                    return absl::OkStatus();
                  });
}

}  // namespace towerps::index
