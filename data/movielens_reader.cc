// Readers of the MovieLens family and MovieTweetings (declared in data/sources.h).
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status.h"
#include "data/keys.h"
#include "data/sources.h"
#include "data/text_io.h"

namespace towerps::data {
namespace {

constexpr int64_t kSideFileTime = std::numeric_limits<int64_t>::min();

// ML-100k's u.item genre flags, in column order.
constexpr const char* kMl100kGenres[] = {
    "unknown", "Action",  "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western"};

FeatureSpec Feature(const char* name, FeatureKind kind) {
  FeatureSpec f;
  f.name = name;
  f.kind = kind;
  return f;
}

void UseMovieItemSchema(RawDataset* out) {
  out->item_attrs.sparse = {Feature("genres", FeatureKind::kMulti),
                            Feature("year", FeatureKind::kSingle)};
}

std::string Path(const std::string& dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

// Stores genres (split on '|') and year as the item's attributes.
void SetMovieAttrs(absl::string_view genres, absl::string_view year, EntityAttrs* attrs,
                   AttrBuilder* b) {
  b->Clear();
  if (!genres.empty() && genres != "(no genres listed)") {
    for (absl::string_view g : absl::StrSplit(genres, '|', absl::SkipEmpty())) b->Add(HashKey(g));
  }
  b->EndSlot();
  if (!year.empty()) b->Add(HashKey(year));
  b->EndSlot();
  b->StoreTo(attrs, kSideFileTime);
}

// Interns a side-file id; reports duplicates and bad ids. Returns the index or -1.
absl::StatusOr<int64_t> AddSideEntity(absl::string_view file, int64_t line, absl::string_view id,
                                      bool numeric, EntityTable* table, IssueLog* issues) {
  absl::Status s;
  if (numeric ? !IsDigits(id) : id.empty()) {
    s = issues->Report(file, line, "bad id", id);
  } else if (table->Find(id) >= 0) {
    s = issues->Report(file, line, "duplicate id", id);
  } else {
    int64_t index = table->Intern(id);
    if (index >= 0) return index;
    s = issues->Report(file, line, "id hash collision", id);
  }
  if (!s.ok()) return s;
  return -1;
}

absl::Status WrongColumns(IssueLog* issues, absl::string_view file, int64_t line, size_t want,
                          size_t got) {
  return issues->Report(file, line, "wrong column count",
                        absl::StrCat("expected ", want, " fields, got ", got));
}

// One "user item rating timestamp" row (fields already split).
absl::Status AddRating(absl::string_view file, int64_t line,
                       const std::vector<absl::string_view>& f, IssueLog* issues,
                       RawDataset* out) {
  ++out->interaction_lines;
  if (f.size() != 4) return WrongColumns(issues, file, line, 4, f.size());
  float rating;
  int64_t ts;
  if (!absl::SimpleAtof(f[2], &rating)) return issues->Report(file, line, "non-numeric rating", f[2]);
  if (!absl::SimpleAtoi(f[3], &ts)) return issues->Report(file, line, "non-numeric timestamp", f[3]);
  return out->AddInteraction(file, line, f[0], f[1], ts, rating, /*numeric_ids=*/true, issues)
      .status();
}

// A title: checked as UTF-8 (or converted from Latin-1) and stored.
absl::Status SetTitle(absl::string_view file, int64_t line, absl::string_view title, bool latin1,
                      int64_t index, RawDataset* out, IssueLog* issues, bool* ok) {
  *ok = true;
  if (latin1) {
    out->items.set_title(index, Latin1ToUtf8(title));
    return absl::OkStatus();
  }
  if (!IsValidUtf8(title)) {
    *ok = false;
    return issues->Report(file, line, "invalid UTF-8 in title");
  }
  out->items.set_title(index, std::string(title));
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadMovieLens100k(const std::string& dir, IssueLog* issues, RawDataset* out) {
  out->format = "ml-100k";
  UseMovieItemSchema(out);
  out->user_attrs.sparse = {Feature("gender", FeatureKind::kSingle),
                            Feature("occupation", FeatureKind::kSingle)};
  out->user_attrs.dense = {Feature("age", FeatureKind::kDense)};
  std::vector<absl::string_view> f;
  AttrBuilder b;
  // u.item: id|title|release date|video release|url|19 genre flags (Latin-1).
  const std::string items = Path(dir, "u.item");
  if (PathExists(items)) {
    out->items_closed = true;
    TOWERPS_RETURN_IF_ERROR(ForEachLine(items, [&](absl::string_view line, int64_t n) {
      if (line.empty()) return absl::OkStatus();
      ++out->side_lines;
      SplitFields(line, "|", &f);
      if (f.size() != 24) return WrongColumns(issues, "u.item", n, 24, f.size());
      TOWERPS_ASSIGN_OR_RETURN(int64_t i, AddSideEntity("u.item", n, f[0], true, &out->items, issues));
      if (i < 0) return absl::OkStatus();
      bool ok;
      TOWERPS_RETURN_IF_ERROR(SetTitle("u.item", n, f[1], true, i, out, issues, &ok));
      std::string genres;
      for (int g = 0; g < 19; ++g) {
        if (f[5 + g] == "1") absl::StrAppend(&genres, genres.empty() ? "" : "|", kMl100kGenres[g]);
      }
      absl::string_view date = f[2];
      SetMovieAttrs(genres, date.size() >= 4 ? date.substr(date.size() - 4) : "",
                    &out->items.attrs(i), &b);
      return absl::OkStatus();
    }));
  }
  // u.user: id|age|gender|occupation|zip.
  const std::string users = Path(dir, "u.user");
  if (PathExists(users)) {
    out->users_closed = true;
    TOWERPS_RETURN_IF_ERROR(ForEachLine(users, [&](absl::string_view line, int64_t n) {
      if (line.empty()) return absl::OkStatus();
      ++out->side_lines;
      SplitFields(line, "|", &f);
      if (f.size() != 5) return WrongColumns(issues, "u.user", n, 5, f.size());
      float age;
      if (!absl::SimpleAtof(f[1], &age)) return issues->Report("u.user", n, "non-numeric age", f[1]);
      TOWERPS_ASSIGN_OR_RETURN(int64_t u, AddSideEntity("u.user", n, f[0], true, &out->users, issues));
      if (u < 0) return absl::OkStatus();
      b.Clear();
      b.Add(HashKey(f[2]));
      b.EndSlot();
      b.Add(HashKey(f[3]));
      b.EndSlot();
      b.dense.push_back(age);
      b.StoreTo(&out->users.attrs(u), kSideFileTime);
      return absl::OkStatus();
    }));
  }
  return ForEachLine(Path(dir, "u.data"), [&](absl::string_view line, int64_t n) {
    if (line.empty()) return absl::OkStatus();
    SplitFields(line, "\t", &f);
    return AddRating("u.data", n, f, issues, out);
  });
}

absl::Status ReadDatFormat(const std::string& dir, const std::string& format, IssueLog* issues,
                           RawDataset* out) {
  out->format = format;
  UseMovieItemSchema(out);
  const bool ml1m = format == "ml-1m";
  const bool latin1 = format != "movietweetings";
  if (ml1m) {
    out->user_attrs.sparse = {Feature("gender", FeatureKind::kSingle),
                              Feature("age", FeatureKind::kSingle),
                              Feature("occupation", FeatureKind::kSingle)};
  }
  std::vector<absl::string_view> f;
  AttrBuilder b;
  // movies.dat: id::Title (year)::Genre|Genre.
  const std::string movies = Path(dir, "movies.dat");
  if (PathExists(movies)) {
    out->items_closed = true;
    TOWERPS_RETURN_IF_ERROR(ForEachLine(movies, [&](absl::string_view line, int64_t n) {
      if (line.empty()) return absl::OkStatus();
      ++out->side_lines;
      SplitFields(line, "::", &f);
      if (f.size() != 3) return WrongColumns(issues, "movies.dat", n, 3, f.size());
      bool ok = latin1 || IsValidUtf8(f[1]);
      if (!ok) return issues->Report("movies.dat", n, "invalid UTF-8 in title");
      TOWERPS_ASSIGN_OR_RETURN(int64_t i,
                               AddSideEntity("movies.dat", n, f[0], true, &out->items, issues));
      if (i < 0) return absl::OkStatus();
      TOWERPS_RETURN_IF_ERROR(SetTitle("movies.dat", n, f[1], latin1, i, out, issues, &ok));
      SetMovieAttrs(f[2], YearFromTitle(f[1]), &out->items.attrs(i), &b);
      return absl::OkStatus();
    }));
  }
  // users.dat: ml-1m id::gender::age::occupation::zip; movietweetings id::twitter_id.
  const std::string users = Path(dir, "users.dat");
  if (format != "ml-10m" && PathExists(users)) {
    out->users_closed = true;
    const size_t want = ml1m ? 5 : 2;
    TOWERPS_RETURN_IF_ERROR(ForEachLine(users, [&](absl::string_view line, int64_t n) {
      if (line.empty()) return absl::OkStatus();
      ++out->side_lines;
      SplitFields(line, "::", &f);
      if (f.size() != want) return WrongColumns(issues, "users.dat", n, want, f.size());
      TOWERPS_ASSIGN_OR_RETURN(int64_t u,
                               AddSideEntity("users.dat", n, f[0], true, &out->users, issues));
      if (u < 0 || !ml1m) return absl::OkStatus();
      b.Clear();
      for (int k = 1; k <= 3; ++k) {
        b.Add(HashKey(f[k]));
        b.EndSlot();
      }
      b.StoreTo(&out->users.attrs(u), kSideFileTime);
      return absl::OkStatus();
    }));
  }
  return ForEachLine(Path(dir, "ratings.dat"), [&](absl::string_view line, int64_t n) {
    if (line.empty()) return absl::OkStatus();
    SplitFields(line, "::", &f);
    return AddRating("ratings.dat", n, f, issues, out);
  });
}

absl::Status ReadMovieLensCsv(const std::string& dir, IssueLog* issues, RawDataset* out) {
  out->format = "ml-csv";
  UseMovieItemSchema(out);
  std::vector<absl::string_view> f;
  std::vector<std::string> scratch;
  AttrBuilder b;
  // movies.csv: movieId,title,genres with a header; titles may be quoted.
  const std::string movies = Path(dir, "movies.csv");
  if (PathExists(movies)) {
    out->items_closed = true;
    TOWERPS_RETURN_IF_ERROR(ForEachLine(movies, [&](absl::string_view line, int64_t n) {
      if (n == 1 || line.empty()) return absl::OkStatus();
      ++out->side_lines;
      if (!SplitCsv(line, ',', &f, &scratch)) {
        return issues->Report("movies.csv", n, "unterminated quote");
      }
      if (f.size() != 3) return WrongColumns(issues, "movies.csv", n, 3, f.size());
      if (!IsValidUtf8(f[1])) return issues->Report("movies.csv", n, "invalid UTF-8 in title");
      TOWERPS_ASSIGN_OR_RETURN(int64_t i,
                               AddSideEntity("movies.csv", n, f[0], true, &out->items, issues));
      if (i < 0) return absl::OkStatus();
      out->items.set_title(i, std::string(f[1]));
      SetMovieAttrs(f[2], YearFromTitle(Trim(f[1])), &out->items.attrs(i), &b);
      return absl::OkStatus();
    }));
  }
  // ratings.csv: userId,movieId,rating,timestamp with a header.
  return ForEachLine(Path(dir, "ratings.csv"), [&](absl::string_view line, int64_t n) {
    if (n == 1 || line.empty()) return absl::OkStatus();
    SplitFields(line, ",", &f);
    return AddRating("ratings.csv", n, f, issues, out);
  });
}

}  // namespace towerps::data
