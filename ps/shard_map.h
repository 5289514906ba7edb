// Where a key lives: the 64-bit key space is cut into V virtual shards
// (ReduceToRange(Mix64(key), V)), and each virtual shard is owned by one parameter
// server. The scheduler makes the map and hands it to every node at registration;
// it is the only place that knows where a key lives, so re-sharding or adding
// servers changes the owner table, never the key -> virtual shard function.
// Dense parameters (one flat array) are split into contiguous, nearly equal blocks,
// block s on server s.
//
// Immutable after construction; thread-safe.
#ifndef TOWERPS_PS_SHARD_MAP_H_
#define TOWERPS_PS_SHARD_MAP_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/hash.h"

namespace towerps::ps {

// Server `server`'s block [begin, end) of a dense array of `total` floats split
// over `num_servers` servers in contiguous, nearly equal blocks.
std::pair<uint64_t, uint64_t> DenseRange(int server, int num_servers, uint64_t total);

class ShardMap {
 public:
  // Balanced map: virtual shard v -> server v * num_servers / V (contiguous ranges).
  // InvalidArgument unless 0 < num_servers <= num_virtual_shards <= 2^20 and
  // num_servers <= 65535.
  static absl::StatusOr<ShardMap> Balanced(uint32_t num_virtual_shards, int num_servers);

  // A map received from the wire: owners = V little-endian u16 server ranks.
  // InvalidArgument for an empty table, an odd byte count, or an owner >= num_servers.
  static absl::StatusOr<ShardMap> FromWire(absl::string_view owners, int num_servers);
  // The owner table as V little-endian u16 (FromWire's input).
  std::string ToWire() const;

  uint32_t VirtualShardOf(uint64_t key) const {
    return ReduceToRange(Mix64(key), static_cast<uint32_t>(owners_.size()));
  }
  int ServerOf(uint64_t key) const { return owners_[VirtualShardOf(key)]; }

  // Splits keys by owning server: for each server s, positions[s] lists the indices
  // i (into keys) with ServerOf(keys[i]) == s, in order. positions is resized to
  // num_servers; its vectors' capacity is reused across calls.
  void GroupByServer(absl::Span<const uint64_t> keys,
                     std::vector<std::vector<uint32_t>>* positions) const;

  // Server s's block of a dense array of `total` floats (DenseRange).
  std::pair<uint64_t, uint64_t> DenseBlock(int server, uint64_t total) const {
    return DenseRange(server, num_servers_, total);
  }

  int num_servers() const { return num_servers_; }
  uint32_t num_virtual_shards() const { return static_cast<uint32_t>(owners_.size()); }

 private:
  ShardMap(std::vector<uint16_t> owners, int num_servers)
      : owners_(std::move(owners)), num_servers_(num_servers) {}

  std::vector<uint16_t> owners_;
  int num_servers_;
};

}  // namespace towerps::ps

#endif  // TOWERPS_PS_SHARD_MAP_H_
