#include "proxy/metrics/metrics.h"

#include <gtest/gtest.h>

namespace monolake::proxy::metrics {
namespace {

TEST(UserMetrics, PerWorkerObjectsAreSummedByNameAndLabelsWhileHeld) {
  Registry registry;
  auto worker0 = registry.user("myproxy_refused_total", "Requests refused.", {{"server", "web"}});
  auto worker1 = registry.user("myproxy_refused_total", "Requests refused.", {{"server", "web"}});
  auto other = registry.user("myproxy_refused_total", "Requests refused.", {{"server", "a\"b"}});
  auto gauge = registry.user("myproxy_keys", "Keys loaded.", {}, UserMetric::Kind::kGauge);
  worker0->value.add(2);
  worker1->value.add(3);
  other->value.add(1);
  gauge->value.add(7);
  std::string text = registry.prometheus_text();
  EXPECT_NE(text.find("# HELP myproxy_refused_total Requests refused.\n"
                      "# TYPE myproxy_refused_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("myproxy_refused_total{server=\"web\"} 5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("myproxy_refused_total{server=\"a\\\"b\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE myproxy_keys gauge\nmyproxy_keys 7\n"), std::string::npos) << text;
  worker1.reset();  // that layer is gone: its share leaves the sum
  text = registry.prometheus_text();
  EXPECT_NE(text.find("myproxy_refused_total{server=\"web\"} 2\n"), std::string::npos) << text;
}

TEST(UserMetrics, BadNamesAreCountedButNeverListed) {
  Registry registry;
  auto bad = registry.user("9lives", "x", {});
  auto ours = registry.user("monolake_http_responses_total", "x", {});
  auto bad_label = registry.user("fine_total", "x", {{"bad-label", "v"}});
  bad->value.add();
  ours->value.add();
  bad_label->value.add();
  const std::string text = registry.prometheus_text();
  EXPECT_EQ(text.find("9lives"), std::string::npos);
  EXPECT_EQ(text.find("fine_total"), std::string::npos);
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_TRUE(valid_metric_name("a:b_c1"));
}

}  // namespace
}  // namespace monolake::proxy::metrics
