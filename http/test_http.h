// For tests of the HTTP API (http/, tests/integration/serve_http_test.cc): checks of
// a cpp-httplib reply.
#ifndef TOWERPS_HTTP_TEST_HTTP_H_
#define TOWERPS_HTTP_TEST_HTTP_H_

#include <string>

#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace towerps::http {

// `res` is an answer with `status` and a JSON error body {"error":{"code","message"}}
// whose code is `code`.
inline void ExpectJsonError(const httplib::Result& res, int status, const std::string& code,
                            const std::string& what = "") {
  SCOPED_TRACE(what);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, status) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  nlohmann::json doc = nlohmann::json::parse(res->body, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << res->body;
  EXPECT_EQ(doc["error"]["code"], code) << res->body;
  EXPECT_TRUE(doc["error"]["message"].is_string()) << res->body;
}

}  // namespace towerps::http

#endif  // TOWERPS_HTTP_TEST_HTTP_H_
