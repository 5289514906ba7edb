// Every source format parses; malformed lines are reported at their exact lines.
#include <string>
#include <vector>

#include "data/column_spec.h"
#include "data/issue_log.h"
#include "data/keys.h"
#include "data/sources.h"
#include "data/test_util.h"
#include "data/text_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace towerps::data {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

std::vector<std::string> IssueStrings(const IssueLog& log) {
  std::vector<std::string> out;
  for (const LineIssue& i : log.issues()) out.push_back(i.ToString());
  return out;
}

// The keys of one attribute slot of an entity.
std::vector<uint64_t> Slot(const EntityAttrs& a, int slot) {
  const uint32_t begin = slot == 0 ? 0 : a.ends[slot - 1];
  return std::vector<uint64_t>(a.values.begin() + begin, a.values.begin() + a.ends[slot]);
}

absl::Status Read(const std::string& dir, IssueLog* log, RawDataset* out,
                  const std::string& format = "auto") {
  SourceOptions o;
  o.input = dir;
  o.format = format;
  return ReadSource(o, log, out);
}

TEST(TextIoTest, SplitsFieldsAndCsv) {
  std::vector<absl::string_view> f;
  SplitFields("a::::b::", "::", &f);
  EXPECT_THAT(f, ElementsAre("a", "", "b", ""));
  std::vector<std::string> scratch;
  ASSERT_TRUE(SplitCsv(R"x(1,"Heat, ""the"" movie (1995)",Action|Crime)x", ',', &f, &scratch));
  EXPECT_THAT(f, ElementsAre("1", "Heat, \"the\" movie (1995)", "Action|Crime"));
  EXPECT_FALSE(SplitCsv(R"(1,"open,x)", ',', &f, &scratch));
  EXPECT_TRUE(IsValidUtf8("Fant\xc3\xb4mas"));
  EXPECT_FALSE(IsValidUtf8("Fant\xf4mas"));
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));  // overlong
  EXPECT_EQ(Latin1ToUtf8("Fant\xf4mas"), "Fant\xc3\xb4mas");
  EXPECT_EQ(YearFromTitle("Toy Story (1995)"), "1995");
  EXPECT_EQ(YearFromTitle("Babylon 5 (TV) (1994)"), "1994");
  EXPECT_EQ(YearFromTitle("No year"), "");
}

TEST(SourcesTest, MovieLens100k) {
  TempDir dir;
  WriteFile(dir.Sub("u.data"), "1\t10\t5\t881250949\n2\t10\t3\t891717742\n1\t20\t4\t878887116\n");
  WriteFile(dir.Sub("u.user"), "1|24|M|technician|85711\n2|53|F|other|94043\n");
  std::string flags10(19, '0'), flags20(19, '0');
  auto join = [](const std::string& flags) {
    std::string s;
    for (char c : flags) s += std::string("|") + c;
    return s;
  };
  flags10[1] = '1';  // Action
  flags10[8] = '1';  // Drama
  WriteFile(dir.Sub("u.item"), "10|Mis\xe9rables (1995)|01-Jan-1995||http://x" + join(flags10) +
                                   "\n20|Other (1994)|01-Jan-1994||http://y" + join(flags20) + "\n");
  IssueLog log(false);
  RawDataset raw;
  ASSERT_TRUE(Read(dir.path(), &log, &raw).ok());
  EXPECT_EQ(raw.format, "ml-100k");
  EXPECT_EQ(log.total(), 0);
  ASSERT_EQ(raw.interactions.size(), 3u);
  EXPECT_EQ(raw.users.size(), 2u);
  EXPECT_EQ(raw.items.size(), 2u);
  EXPECT_EQ(raw.interactions[1].label, 3.0f);
  EXPECT_EQ(raw.interactions[2].timestamp, 878887116);
  const int64_t item = raw.items.Find("10");
  ASSERT_GE(item, 0);
  EXPECT_EQ(raw.items.title(item), "Mis\xc3\xa9rables (1995)");  // Latin-1 -> UTF-8
  EXPECT_THAT(Slot(raw.items.attrs(item), 0), ElementsAre(HashKey("Action"), HashKey("Drama")));
  EXPECT_THAT(Slot(raw.items.attrs(item), 1), ElementsAre(HashKey("1995")));
  const EntityAttrs& user = raw.users.attrs(raw.users.Find("2"));
  EXPECT_THAT(Slot(user, 0), ElementsAre(HashKey("F")));
  EXPECT_THAT(user.dense, ElementsAre(53.0f));
}

TEST(SourcesTest, MovieLens1mAnd10m) {
  TempDir dir;
  WriteFile(dir.Sub("ratings.dat"), "1::1193::5::978300760\n1::661::3::978302109\n");
  WriteFile(dir.Sub("movies.dat"),
            "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James (1996)::Animation|Children's\n");
  WriteFile(dir.Sub("users.dat"), "1::F::1::10::48067\n");
  IssueLog log(false);
  RawDataset raw;
  ASSERT_TRUE(Read(dir.path(), &log, &raw).ok());
  EXPECT_EQ(raw.format, "ml-1m");
  EXPECT_EQ(raw.interactions.size(), 2u);
  EXPECT_EQ(raw.user_attrs.num_sparse(), 3);
  EXPECT_THAT(Slot(raw.users.attrs(0), 2), ElementsAre(HashKey("10")));
  EXPECT_THAT(Slot(raw.items.attrs(raw.items.Find("661")), 0),
              ElementsAre(HashKey("Animation"), HashKey("Children's")));

  TempDir dir10;
  WriteFile(dir10.Sub("ratings.dat"), "1::122::5::838985046\n");
  WriteFile(dir10.Sub("movies.dat"), "122::Boomerang (1992)::Comedy|Romance\n");
  RawDataset raw10;
  ASSERT_TRUE(Read(dir10.path(), &log, &raw10).ok());
  EXPECT_EQ(raw10.format, "ml-10m");
  EXPECT_EQ(raw10.interactions.size(), 1u);
  EXPECT_EQ(log.total(), 0);
}

TEST(SourcesTest, MovieTweetingsKeepsLeadingZeros) {
  TempDir dir;
  WriteFile(dir.Sub("ratings.dat"), "1::0110912::9::1365029107\n1::110912::7::1365029108\n");
  WriteFile(dir.Sub("movies.dat"),
            "0110912::Pulp Fiction (1994)::Crime|Drama\n110912::Other (2001)::\n");
  WriteFile(dir.Sub("users.dat"), "1::18405182\n");
  IssueLog log(false);
  RawDataset raw;
  ASSERT_TRUE(Read(dir.path(), &log, &raw).ok());
  EXPECT_EQ(raw.format, "movietweetings");
  ASSERT_EQ(raw.items.size(), 2u);
  EXPECT_NE(raw.items.key(raw.items.Find("0110912")), raw.items.key(raw.items.Find("110912")));
  EXPECT_EQ(raw.items.key(raw.items.Find("0110912")), HashKey("0110912"));
  EXPECT_TRUE(Slot(raw.items.attrs(raw.items.Find("110912")), 0).empty());  // empty genres
  EXPECT_EQ(raw.user_attrs.num_sparse(), 0);
}

TEST(SourcesTest, MovieLensCsvWithQuotedTitles) {
  TempDir dir;
  WriteFile(dir.Sub("ratings.csv"), "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n");
  WriteFile(dir.Sub("movies.csv"),
            "movieId,title,genres\n2,\"Jumanji, The (1995)\",Adventure|Children\n"
            "3,\"Say \"\"Hi\"\" (2000)\",(no genres listed)\n");
  IssueLog log(false);
  RawDataset raw;
  ASSERT_TRUE(Read(dir.path(), &log, &raw).ok());
  EXPECT_EQ(raw.format, "ml-csv");
  EXPECT_EQ(log.total(), 0);
  EXPECT_EQ(raw.interactions[0].label, 3.5f);
  EXPECT_EQ(raw.items.title(raw.items.Find("2")), "Jumanji, The (1995)");
  EXPECT_EQ(raw.items.title(raw.items.Find("3")), "Say \"Hi\" (2000)");
  EXPECT_TRUE(Slot(raw.items.attrs(raw.items.Find("3")), 0).empty());
  EXPECT_THAT(Slot(raw.items.attrs(raw.items.Find("3")), 1), ElementsAre(HashKey("2000")));
}

TEST(SourcesTest, GenericTsvWithColumnSpec) {
  TempDir dir;
  WriteFile(dir.Sub("log.tsv"),
            "uid\tiid\ttime\tclick\tlike\tcountry\ttags\tdur\n"
            "a\tx\t200\t1\t1\tde\tt1|t2\t9\n"
            "a\ty\t100\t1\t0\tfr\tt3\t0\n"  // earlier row: a's attributes come from here
            "b\tx\t300\t0\t0\tde\tt9\t99\n");
  WriteFile(dir.Sub("vec.tsv"), "x\t0.5\t-1\ny\t2\t3\n");
  WriteFile(dir.Sub("my.spec"),
            "# test spec\ninteractions = log.tsv\ndelimiter = tab\nuser = uid\nitem = iid\n"
            "timestamp = time\nlabel = click:1, like:2.5\nuser_categorical = country\n"
            "item_multi = tags\nitem_dense = dur:log1p\nitem_vectors = vec.tsv\n");
  SourceOptions o;
  o.column_spec = dir.Sub("my.spec");
  IssueLog log(false);
  RawDataset raw;
  ASSERT_TRUE(ReadSource(o, &log, &raw).ok());
  EXPECT_EQ(log.total(), 0);
  ASSERT_EQ(raw.interactions.size(), 3u);
  EXPECT_FLOAT_EQ(raw.interactions[0].label, 3.5f);
  EXPECT_FLOAT_EQ(raw.interactions[2].label, 0.0f);
  EXPECT_THAT(Slot(raw.users.attrs(raw.users.Find("a")), 0), ElementsAre(HashKey("fr")));
  const EntityAttrs& x = raw.items.attrs(raw.items.Find("x"));
  EXPECT_THAT(Slot(x, 0), ElementsAre(HashKey("t1"), HashKey("t2")));
  ASSERT_EQ(x.dense.size(), 3u);  // log1p(dur) then the 2-d content vector
  EXPECT_FLOAT_EQ(x.dense[0], std::log1p(9.0f));
  EXPECT_FLOAT_EQ(x.dense[1], 0.5f);
  EXPECT_FLOAT_EQ(x.dense[2], -1.0f);
  EXPECT_EQ(raw.item_attrs.dense_dim(), 3);
  EXPECT_EQ(raw.item_attrs.dense.back().name, "content");
}

TEST(SourcesTest, MalformedLinesReportedAtExactLines) {
  TempDir dir;
  WriteFile(dir.Sub("movies.dat"),
            "1::Good (1999)::Drama\n2::Bad \xff title (2000)::Drama\n3::Fine (2001)::Comedy\n");
  WriteFile(dir.Sub("users.dat"), "7::123\n8::456\n");
  WriteFile(dir.Sub("ratings.dat"),
            "7::1::8::1000\n"      // 1 ok
            "7::3::9::1001\n"      // 2 ok
            "7::1::8\n"            // 3 wrong column count
            "8::1::8::1002\n"      // 4 ok
            "8::3::7::noon\n"      // 5 non-numeric timestamp
            "8::99::7::1003\n"     // 6 unknown item id
            "x::1::7::1004\n"      // 7 non-numeric user id
            "9::1::7::1005\n"      // 8 unknown user id
            "8::2::7::1006\n");    // 9 item 2 was dropped (bad title): unknown item id
  IssueLog log(false);
  RawDataset raw;
  ASSERT_TRUE(Read(dir.path(), &log, &raw).ok());
  EXPECT_THAT(IssueStrings(log),
              ElementsAre("movies.dat:2: invalid UTF-8 in title",
                          "ratings.dat:3: wrong column count (expected 4 fields, got 3)",
                          "ratings.dat:5: non-numeric timestamp (noon)",
                          "ratings.dat:6: unknown item id (item 99)",
                          "ratings.dat:7: non-numeric user id (x)",
                          "ratings.dat:8: unknown user id (user 9)",
                          "ratings.dat:9: unknown item id (item 2)"));
  EXPECT_EQ(log.counts().at("unknown item id"), 2);
  EXPECT_EQ(raw.interactions.size(), 3u);

  IssueLog strict(true);
  RawDataset raw2;
  absl::Status s = Read(dir.path(), &strict, &raw2);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "movies.dat:2: invalid UTF-8 in title");
}

TEST(SourcesTest, MissingFilesAndBadSpecsAreOneClearError) {
  TempDir dir;
  IssueLog log(false);
  RawDataset raw;
  absl::Status s = Read(dir.Sub("nope"), &log, &raw);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("nope"));
  s = Read(dir.path(), &log, &raw, "ml-1m");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("ratings.dat"));

  EXPECT_THAT(ParseColumnSpec("interactions = a.csv\nuser = u\nitem = i\ncolour = red\n").status().message(),
              HasSubstr("spec:4: unknown key 'colour'"));
  EXPECT_THAT(ParseColumnSpec("interactions = a.csv\nuser = u\n").status().message(),
              HasSubstr("'item' is missing"));
  EXPECT_THAT(ParseColumnSpec("interactions=a\nuser=u\nitem=i\nlabel = c:heavy\n").status().message(),
              HasSubstr("spec:4: bad label weight"));
  // A huge line is refused by its length, never echoed whole.
  const std::string huge = "interactions=a\nuser=u\nitem=i\nuser_categorical = " +
                           std::string(1 << 20, 'x') + "\n";
  auto long_line = ParseColumnSpec(huge);
  EXPECT_THAT(long_line.status().message(), HasSubstr("spec:4: a line of"));
  EXPECT_LT(long_line.status().message().size(), 200u);
  EXPECT_THAT(ParseColumnSpec("interactions=a\nuser=u\nitem=i\nuser_categorical = history\n")
                  .status().message(), HasSubstr("reserved"));
  WriteFile(dir.Sub("log.csv"), "u,i\na,b\n");
  WriteFile(dir.Sub("s.spec"), "interactions = log.csv\nuser = u\nitem = item\n");
  SourceOptions o;
  o.column_spec = dir.Sub("s.spec");
  s = ReadSource(o, &log, &raw);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'item', which the header lacks"));
}

}  // namespace
}  // namespace towerps::data
