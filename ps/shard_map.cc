#include "ps/shard_map.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace towerps::ps {

absl::StatusOr<ShardMap> ShardMap::Balanced(uint32_t num_virtual_shards, int num_servers) {
  if (num_servers <= 0 || num_servers > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_servers must be in [1, 65535], got ", num_servers));
  }
  if (num_virtual_shards < static_cast<uint32_t>(num_servers) ||
      num_virtual_shards > (1u << 20)) {
    return absl::InvalidArgumentError(absl::StrCat("num_virtual_shards must be in [",
                                                   num_servers, ", 2^20], got ",
                                                   num_virtual_shards));
  }
  std::vector<uint16_t> owners(num_virtual_shards);
  for (uint32_t v = 0; v < num_virtual_shards; ++v) {
    owners[v] = static_cast<uint16_t>(uint64_t{v} * num_servers / num_virtual_shards);
  }
  return ShardMap(std::move(owners), num_servers);
}

absl::StatusOr<ShardMap> ShardMap::FromWire(absl::string_view owners, int num_servers) {
  if (owners.empty() || owners.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard owner table of ", owners.size(), " bytes is not a u16 list"));
  }
  if (num_servers <= 0) return absl::InvalidArgumentError("num_servers must be > 0");
  std::vector<uint16_t> table(owners.size() / 2);
  std::memcpy(table.data(), owners.data(), owners.size());
  for (size_t v = 0; v < table.size(); ++v) {
    if (table[v] >= num_servers) {
      return absl::InvalidArgumentError(absl::StrCat("virtual shard ", v, " owned by server ",
                                                     table[v], " of ", num_servers));
    }
  }
  return ShardMap(std::move(table), num_servers);
}

std::string ShardMap::ToWire() const {
  std::string out(owners_.size() * 2, '\0');
  std::memcpy(out.data(), owners_.data(), out.size());
  return out;
}

void ShardMap::GroupByServer(absl::Span<const uint64_t> keys,
                             std::vector<std::vector<uint32_t>>* positions) const {
  positions->resize(num_servers_);
  for (auto& p : *positions) p.clear();
  for (uint32_t i = 0; i < keys.size(); ++i) (*positions)[ServerOf(keys[i])].push_back(i);
}

std::pair<uint64_t, uint64_t> DenseRange(int server, int num_servers, uint64_t total) {
  const uint64_t n = static_cast<uint64_t>(num_servers);
  const uint64_t s = static_cast<uint64_t>(server);
  return {total * s / n, total * (s + 1) / n};
}

}  // namespace towerps::ps
