#include "net/curve_keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace towerps::net {
namespace {

constexpr char kKeyA[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr char kKeyB[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

TEST(CurveKeysTest, Identities) {
  for (const char* good :
       {"scheduler", "operator", "serve", "ps/0", "worker/12", "ps/2147483647"}) {
    EXPECT_TRUE(ValidateIdentity(good).ok()) << good;
  }
  for (const char* bad : {"", "ps", "ps/", "ps/-1", "ps/+1", "ps/01", "ps/2147483648", "worker/1/2",
                          "root", "ps/1 ", "Scheduler", "ps/99999999999"}) {
    EXPECT_EQ(ValidateIdentity(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(NodeIdentity("worker", 3), "worker/3");
}

TEST(CurveKeysTest, Z85Keys) {
  EXPECT_TRUE(ValidateZ85Key(kKeyA).ok());
  EXPECT_FALSE(ValidateZ85Key("short").ok());
  EXPECT_FALSE(ValidateZ85Key(std::string(40, ' ')).ok());  // not the Z85 alphabet
  EXPECT_FALSE(ValidateZ85Key(std::string(40, '~')).ok());
}

TEST(CurveKeysTest, ParsesAllowList) {
  auto allowed = ParseAllowList(
      absl::StrCat("# comment\n\nscheduler ", kKeyA, "\n  worker/0\t", kKeyB, "  \n"), "f");
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(allowed->size(), 2u);
  EXPECT_EQ(allowed->at(kKeyA), "scheduler");
  EXPECT_EQ(allowed->at(kKeyB), "worker/0");
}

TEST(CurveKeysTest, RefusesBadAllowListsWithFileAndLine) {
  const struct {
    std::string text;
    std::string where;
  } cases[] = {
      {absl::StrCat("scheduler\n"), "f:1:"},
      {absl::StrCat("# ok\nscheduler ", kKeyA, " extra\n"), "f:2:"},
      {absl::StrCat("root ", kKeyA, "\n"), "f:1:"},
      {absl::StrCat("scheduler ", std::string(kKeyA).substr(1), "\n"), "f:1:"},
      {absl::StrCat("scheduler ", kKeyA, "\nscheduler ", kKeyB, "\n"), "f:2:"},
      {absl::StrCat("scheduler ", kKeyA, "\noperator ", kKeyA, "\n"), "f:2:"},
      {std::string("ps/0 \0\0\0", 8), "f:1:"},
  };
  for (const auto& c : cases) {
    auto allowed = ParseAllowList(c.text, "f");
    EXPECT_EQ(allowed.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_EQ(allowed.status().message().substr(0, c.where.size()), c.where) << allowed.status();
  }
  EXPECT_FALSE(ParseKeyFile("", "k").ok());
  EXPECT_FALSE(ParseKeyFile(absl::StrCat(kKeyA, "\n\n"), "k").ok());
  EXPECT_TRUE(ParseKeyFile(absl::StrCat(kKeyA, "\n"), "k").ok());
}

class KeygenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/curve_keys_test_", ::getpid());
    ASSERT_TRUE(RemoveAll(dir_).ok());
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string dir_;
};

TEST_F(KeygenTest, WritesLoadableKeysWithPrivateSecrets) {
  KeygenOptions options;
  options.output_dir = dir_;
  options.num_servers = 2;
  options.num_workers = 1;
  auto identities = GenerateJobKeys(options);
  if (identities.status().code() == absl::StatusCode::kUnimplemented) GTEST_SKIP();
  ASSERT_TRUE(identities.ok()) << identities.status();
  EXPECT_EQ(*identities, (std::vector<std::string>{"scheduler", "ps/0", "ps/1", "worker/0",
                                                   "operator", "serve"}));
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/ps-1.secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto keys = LoadJobKeys(dir_, "worker/0");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->enabled());
  EXPECT_EQ(keys->allowed.size(), 6u);
  auto client = keys->ClientCurve("ps/1");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->server_public_key, *LoadJobKeys(dir_, "ps/1")->PublicKeyOf("ps/1"));
  EXPECT_EQ(keys->ClientCurve("ps/7").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadJobKeys(dir_, "worker/1").status().code(), absl::StatusCode::kNotFound);
  // Never replaces a job's keys.
  EXPECT_EQ(GenerateJobKeys(options).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(KeygenTest, RefusesTamperedKeyFiles) {
  KeygenOptions options;
  options.output_dir = dir_;
  auto identities = GenerateJobKeys(options);
  if (identities.status().code() == absl::StatusCode::kUnimplemented) GTEST_SKIP();
  ASSERT_TRUE(identities.ok()) << identities.status();
  // A secret readable by others.
  ASSERT_EQ(::chmod((dir_ + "/operator.secret").c_str(), 0644), 0);
  EXPECT_EQ(LoadJobKeys(dir_, "operator").status().code(), absl::StatusCode::kFailedPrecondition);
  // A public key that is not the one listed for the identity.
  auto serve_public = ReadFileToString(dir_ + "/serve.public");
  ASSERT_TRUE(serve_public.ok());
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/scheduler.public", *serve_public).ok());
  EXPECT_EQ(LoadJobKeys(dir_, "scheduler").status().code(), absl::StatusCode::kFailedPrecondition);
  // A garbled secret.
  ASSERT_TRUE(WriteFileAtomically(dir_ + "/worker-0.secret", "garbage\n", 0600).ok());
  auto garbled = LoadJobKeys(dir_, "worker/0");
  EXPECT_EQ(garbled.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(garbled.status().message().find("worker-0.secret:1:"), std::string::npos)
      << garbled.status();
  // A bad identity is refused before any file is read.
  EXPECT_EQ(LoadJobKeys(dir_, "../etc").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace towerps::net
