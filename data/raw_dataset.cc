#include "data/raw_dataset.h"

#include "absl/strings/str_cat.h"
#include "data/keys.h"

namespace towerps::data {

int64_t EntityTable::Intern(absl::string_view raw_id) {
  const uint64_t key = HashKey(raw_id);
  auto [it, inserted] = index_.try_emplace(key, static_cast<uint32_t>(keys_.size()));
  if (!inserted) return raw_ids_[it->second] == raw_id ? it->second : -1;
  keys_.push_back(key);
  raw_ids_.emplace_back(raw_id);
  attrs_.emplace_back();
  return it->second;
}

int64_t EntityTable::Find(absl::string_view raw_id) const {
  auto it = index_.find(HashKey(raw_id));
  if (it == index_.end() || raw_ids_[it->second] != raw_id) return -1;
  return it->second;
}

void EntityTable::set_title(size_t i, std::string title) {
  if (titles_.size() <= i) titles_.resize(i + 1);
  titles_[i] = std::move(title);
}

absl::StatusOr<int64_t> RawDataset::AddInteraction(absl::string_view file, int64_t line,
                                                   absl::string_view user, absl::string_view item,
                                                   int64_t timestamp, float label,
                                                   bool numeric_ids, IssueLog* issues) {
  auto skip = [&](absl::string_view reason, absl::string_view detail) -> absl::StatusOr<int64_t> {
    absl::Status s = issues->Report(file, line, reason, detail);
    if (!s.ok()) return s;
    return -1;
  };
  if (user.empty() || item.empty()) return skip("empty id", "");
  if (numeric_ids && !IsDigits(user)) return skip("non-numeric user id", user);
  if (numeric_ids && !IsDigits(item)) return skip("non-numeric item id", item);
  int64_t u = users_closed ? users.Find(user) : users.Intern(user);
  if (u < 0) {
    return skip(users_closed ? "unknown user id" : "id hash collision",
                absl::StrCat("user ", user));
  }
  int64_t i = items_closed ? items.Find(item) : items.Intern(item);
  if (i < 0) {
    return skip(items_closed ? "unknown item id" : "id hash collision",
                absl::StrCat("item ", item));
  }
  interactions.push_back(
      Interaction{static_cast<uint32_t>(u), static_cast<uint32_t>(i), timestamp, label});
  return u;
}

bool IsDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

absl::string_view YearFromTitle(absl::string_view title) {
  size_t pos = title.rfind('(');
  while (pos != absl::string_view::npos) {
    absl::string_view rest = title.substr(pos + 1);
    if (rest.size() >= 5 && IsDigits(rest.substr(0, 4)) && rest[4] == ')') return rest.substr(0, 4);
    if (pos == 0) break;
    pos = title.rfind('(', pos - 1);
  }
  return {};
}

}  // namespace towerps::data
