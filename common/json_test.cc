#include "common/json.h"

#include <limits>

#include "gtest/gtest.h"

namespace towerps {
namespace {

TEST(JsonTest, WritesTypedFieldsInOrder) {
  JsonObject o;
  o.Add("s", "a\"b\\c\n").Add("i", int64_t{-3}).Add("u", uint64_t{7}).Add("d", 0.5).Add("b", true);
  EXPECT_EQ(o.ToString(), R"({"s":"a\"b\\c\n","i":-3,"u":7,"d":0.5,"b":true})");
}

TEST(JsonTest, NonFiniteIsNull) {
  JsonObject o;
  o.Add("nan", std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(o.ToString(), R"({"nan":null})");
}

TEST(JsonTest, ControlCharactersEscaped) {
  std::string out;
  AppendJsonString(std::string("\x01", 1), &out);
  EXPECT_EQ(out, "\"\\u0001\"");
}

TEST(JsonTest, NumberArrays) {
  const double doubles[] = {1, 0.5, std::numeric_limits<double>::infinity()};
  EXPECT_EQ(JsonArray(doubles), "[1,0.5,null]");
  const int64_t ints[] = {3, -4};
  EXPECT_EQ(JsonArray(ints), "[3,-4]");
  EXPECT_EQ(JsonArray(absl::Span<const double>()), "[]");
}

TEST(JsonTest, MergeAppendsTheOtherObjectsKeys) {
  JsonObject a, b, empty;
  a.Add("x", 1);
  b.Add("y", 2).Add("z", "s");
  EXPECT_EQ(a.Merge(b).Merge(empty).ToString(), R"({"x":1,"y":2,"z":"s"})");
  EXPECT_EQ(empty.Merge(b).ToString(), R"({"y":2,"z":"s"})");
}

}  // namespace
}  // namespace towerps
