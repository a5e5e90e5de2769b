#include "proxy/service/stack.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "runtime/runtime.h"

namespace monolake::proxy {
namespace {

using IntService = Service<int, int>;

// A layer that adds `step` to what its inner service answers (or to the request, innermost)
// and counts its calls; the count is the state a reload must carry over.
class Adder final : public IntService {
 public:
  Adder(int step, std::shared_ptr<IntService> inner, int calls_before)
      : step_(step), inner_(std::move(inner)), calls_(calls_before) {}
  Task<Result<int>> call(int request) override {
    ++calls_;
    if (!inner_) co_return request + step_;
    Result<int> r = co_await inner_->call(request);
    if (!r) co_return r;
    co_return *r + step_;
  }
  int calls() const { return calls_; }

 private:
  int step_;
  std::shared_ptr<IntService> inner_;
  int calls_;
};

class AdderFactory final : public FactoryLayer<Adder> {
 public:
  explicit AdderFactory(int step) : step_(step) {}
  Result<std::shared_ptr<Adder>> make_via_ref(const Adder* previous,
                                              std::shared_ptr<IntService> inner,
                                              const Build&) const override {
    return std::make_shared<Adder>(step_, std::move(inner), previous ? previous->calls() : 0);
  }

 private:
  int step_;
};

// A layer of another type under a name an Adder had: it must not be handed the Adder.
class Negate final : public IntService {
 public:
  explicit Negate(std::shared_ptr<IntService> inner) : inner_(std::move(inner)) {}
  Task<Result<int>> call(int request) override {
    Result<int> r = co_await inner_->call(request);
    if (!r) co_return r;
    co_return -*r;
  }

 private:
  std::shared_ptr<IntService> inner_;
};

class NegateFactory final : public FactoryLayer<Negate> {
 public:
  mutable bool saw_previous = false;
  Result<std::shared_ptr<Negate>> make_via_ref(const Negate* previous,
                                               std::shared_ptr<IntService> inner,
                                               const Build&) const override {
    saw_previous = previous != nullptr;
    return std::make_shared<Negate>(std::move(inner));
  }
};

class FailingFactory final : public FactoryLayer<Negate> {
 public:
  Result<std::shared_ptr<Negate>> make_via_ref(const Negate*, std::shared_ptr<IntService>,
                                               const Build& build) const override {
    return Error(ErrorCode::kInvalidArgument, build.scope() + ": no");
  }
};

int call(IntService& service, int request) {
  auto rt = std::move(*runtime::Runtime::create({}));
  return rt->block_on([](IntService& s, int r) -> Task<int> {
    Result<int> out = co_await s.call(r);
    co_return out.value_or(-1000);
  }(service, request));
}

const Adder& adder_at(const Generation& generation, const std::string& id) {
  std::shared_ptr<Adder> a = generation.find<Adder>(id);
  EXPECT_NE(a, nullptr) << id;
  static const Adder none(0, nullptr, -1);
  return a ? *a : none;
}

TEST(Stack, BuildsOutermostFirstAndNamesLayersByOccurrence) {
  Stack<int, int> stack;
  stack.push("add", std::make_shared<AdderFactory>(1))
      .push("add", std::make_shared<AdderFactory>(10))
      .push("leaf", std::make_shared<AdderFactory>(100), "the-leaf");
  EXPECT_EQ(stack.ids(), (std::vector<std::string>{"add", "add#2", "the-leaf"}));
  Generation g;
  auto chain = stack.make(Build(nullptr, g, "servers.a"));
  ASSERT_TRUE(chain.has_value());
  EXPECT_EQ(call(**chain, 0), 111);
  EXPECT_TRUE(g.contains("servers.a/add"));
  EXPECT_TRUE(g.contains("servers.a/add#2"));
  EXPECT_TRUE(g.contains("servers.a/the-leaf"));
}

TEST(Stack, EachLayerTakesOverItsOwnPreviousGeneration) {
  Stack<int, int> first;
  first.push("outer", std::make_shared<AdderFactory>(1))
      .push("inner", std::make_shared<AdderFactory>(2));
  Generation g1;
  auto chain1 = first.make(Build(nullptr, g1, "s"));
  ASSERT_TRUE(chain1.has_value());
  for (int i = 0; i < 3; ++i) call(**chain1, 0);

  // A layer is inserted between them: neither keeps the other's state, the new one starts at 0.
  Stack<int, int> second;
  second.push("outer", std::make_shared<AdderFactory>(1))
      .push("middle", std::make_shared<AdderFactory>(5))
      .push("inner", std::make_shared<AdderFactory>(2));
  Generation g2;
  auto chain2 = second.make(Build(&g1, g2, "s"));
  ASSERT_TRUE(chain2.has_value());
  call(**chain2, 0);
  EXPECT_EQ(adder_at(g2, "s/outer").calls(), 4);
  EXPECT_EQ(adder_at(g2, "s/middle").calls(), 1);
  EXPECT_EQ(adder_at(g2, "s/inner").calls(), 4);
  // Another server's scope shares nothing with this one.
  Generation g3;
  ASSERT_TRUE(first.make(Build(&g2, g3, "t")).has_value());
  EXPECT_EQ(adder_at(g3, "t/outer").calls(), 0);
}

TEST(Stack, ALayerOfAnotherTypeUnderTheSameIdentityStartsFresh) {
  Stack<int, int> first;
  first.push("x", std::make_shared<AdderFactory>(1));
  Generation g1;
  ASSERT_TRUE(first.make(Build(nullptr, g1, "s")).has_value());
  auto negate = std::make_shared<NegateFactory>();
  Stack<int, int> second;
  second.push("x", negate).push("leaf", std::make_shared<AdderFactory>(3));
  Generation g2;
  auto chain = second.make(Build(&g1, g2, "s"));
  ASSERT_TRUE(chain.has_value());
  EXPECT_FALSE(negate->saw_previous);
  EXPECT_EQ(call(**chain, 1), -4);
  EXPECT_EQ(g2.find<Adder>("s/x"), nullptr);
  EXPECT_NE(g2.find<Negate>("s/x"), nullptr);
}

TEST(Stack, TheFirstFailureIsReturnedAndNamesTheLayer) {
  Stack<int, int> stack;
  stack.push("ok", std::make_shared<AdderFactory>(1))
      .push("bad", std::make_shared<FailingFactory>());
  Generation g;
  auto chain = stack.make(Build(nullptr, g, "servers.web"));
  ASSERT_FALSE(chain.has_value());
  EXPECT_EQ(chain.error().message(), "servers.web/bad: no");
  Stack<int, int> empty;
  EXPECT_FALSE(empty.make(Build(nullptr, g, "e")).has_value());
}

TEST(Stack, TwoLayersWithOneExplicitIdAreRefused) {
  Stack<int, int> stack;
  stack.push("a", std::make_shared<AdderFactory>(1), "same")
      .push("b", std::make_shared<AdderFactory>(2), "same");
  Generation g;
  auto chain = stack.make(Build(nullptr, g, "s"));
  ASSERT_FALSE(chain.has_value());
  EXPECT_NE(chain.error().message().find("s/same"), std::string::npos);
}

struct Pool {
  int connections = 0;
};

TEST(Build, SharedObjectsAreOnePerRootAndCarriedOver) {
  Generation g1;
  Build root(nullptr, g1, "servers.web");
  std::shared_ptr<Pool> a = root.shared<Pool>("pool", [] { return std::make_shared<Pool>(); });
  std::shared_ptr<Pool> b =
      root.scoped("route[/x]").scoped("forward").shared<Pool>("pool", [] {
        return std::make_shared<Pool>();
      });
  EXPECT_EQ(a, b);  // every layer of the server sees one pool
  a->connections = 7;
  Generation g2;
  std::shared_ptr<Pool> again =
      Build(&g1, g2, "servers.web").shared<Pool>("pool", [] { return std::make_shared<Pool>(); });
  EXPECT_EQ(again, a);
  Generation g3;
  std::shared_ptr<Pool> other =
      Build(&g2, g3, "servers.api").shared<Pool>("pool", [] { return std::make_shared<Pool>(); });
  EXPECT_NE(other, a);
  EXPECT_EQ(other->connections, 0);
}

}  // namespace
}  // namespace monolake::proxy
