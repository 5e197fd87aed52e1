// Leader election against real etcd 3.4 servers: one leader at a time, hand-over on Resign,
// take-over only after the lease TTL, nobody leads without etcd.
#include "quorum/etcd_election.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "etcd_env.h"
#include "harness.h"
#include "pg_env.h"

namespace reprise::quorum {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::EtcdServer;

ElectionOptions Options(std::vector<std::string> endpoints, std::string candidate) {
  return ElectionOptions{.endpoints = std::move(endpoints),
                         .key = "/reprise/test/leader",
                         .candidate = std::move(candidate),
                         .ttl = 2s,
                         .request_timeout = 1000ms};
}

// Polls `done` every 50 ms until it holds or `limit` passes; returns whether it held.
bool WaitFor(std::chrono::milliseconds limit, const std::function<bool()>& done) {
  auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

class EtcdElectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::EtcdAvailable()) GTEST_SKIP() << testing::kEtcdSkipReason;
    etcd_ = EtcdServer::Create(dir_.path());
    ASSERT_NE(etcd_, nullptr);
  }

  testing::TempDir dir_;
  std::unique_ptr<EtcdServer> etcd_;
};

TEST_F(EtcdElectionTest, ExactlyOneLeader) {
  Election a(Options({etcd_->endpoint()}, "a"));
  Election b(Options({etcd_->endpoint()}, "b"));
  EXPECT_FALSE(a.IsLeader());
  auto leader_b = b.Leader();
  ASSERT_TRUE(leader_b.ok()) << leader_b.status().ToString();
  EXPECT_EQ(*leader_b, "");

  for (int round = 0; round < 3; ++round) {  // round 0 grants leases, later ones keep alive
    auto ra = a.Campaign();
    auto rb = b.Campaign();
    ASSERT_TRUE(ra.ok()) << ra.status().ToString();
    ASSERT_TRUE(rb.ok()) << rb.status().ToString();
    EXPECT_TRUE(*ra) << "round " << round;
    EXPECT_FALSE(*rb) << "round " << round;
    EXPECT_TRUE(a.IsLeader());
    EXPECT_FALSE(b.IsLeader());
  }
  leader_b = b.Leader();
  ASSERT_TRUE(leader_b.ok());
  EXPECT_EQ(*leader_b, "a");

  // Resigning without holding the key must not take it from the holder.
  ASSERT_TRUE(b.Resign().ok());
  auto leader_a = a.Leader();
  ASSERT_TRUE(leader_a.ok());
  EXPECT_EQ(*leader_a, "a");
  auto ra = a.Campaign();
  ASSERT_TRUE(ra.ok());
  EXPECT_TRUE(*ra);
}

TEST_F(EtcdElectionTest, ResignHandsOver) {
  Election a(Options({etcd_->endpoint()}, "a"));
  Election b(Options({etcd_->endpoint()}, "b"));
  ASSERT_TRUE(*a.Campaign());
  ASSERT_FALSE(*b.Campaign());

  Status st = a.Resign();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(a.IsLeader());
  auto who = b.Leader();
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(*who, "");

  auto rb = b.Campaign();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_TRUE(*rb);
  EXPECT_TRUE(b.IsLeader());
  auto ra = a.Campaign();  // a new lease for a, but the key is b's
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  EXPECT_FALSE(*ra);
  EXPECT_FALSE(a.IsLeader());
  who = a.Leader();
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(*who, "b");
}

TEST_F(EtcdElectionTest, DeadLeaderLosesOnlyAfterTtl) {
  Election b(Options({etcd_->endpoint()}, "b"));
  Clock::time_point last_keepalive;
  {
    Election a(Options({etcd_->endpoint()}, "a"));
    ASSERT_TRUE(*a.Campaign());
    last_keepalive = Clock::now();
    // a stops campaigning (a crashed monitor): destroyed without resigning.
  }
  auto rb = b.Campaign();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_FALSE(*rb) << "b took over while a's lease was still alive";

  Clock::time_point won;
  ASSERT_TRUE(WaitFor(8s, [&] {
    auto r = b.Campaign();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    won = Clock::now();
    return r.ok() && *r;
  })) << "b never became leader after a's lease expired";
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(won - last_keepalive);
  // The lease lives 2 s after a's last keepalive (which ended before last_keepalive).
  EXPECT_GE(waited.count(), 1500) << "b became leader before a's lease TTL passed";
  EXPECT_TRUE(b.IsLeader());
  auto who = b.Leader();
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(*who, "b");
}

TEST_F(EtcdElectionTest, RestartedMonitorWaitsForItsOldLease) {
  // The same candidate id from a new process: the key holds "a", but bound to the old lease,
  // which the new instance cannot keep alive. It must not lead until that lease is gone.
  auto old_a = std::make_unique<Election>(Options({etcd_->endpoint()}, "a"));
  ASSERT_TRUE(*old_a->Campaign());
  old_a.reset();
  Election new_a(Options({etcd_->endpoint()}, "a"));
  auto r = new_a.Campaign();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(*r);
  EXPECT_FALSE(new_a.IsLeader());
  ASSERT_TRUE(WaitFor(8s, [&] {
    auto again = new_a.Campaign();
    return again.ok() && *again;
  }));
  EXPECT_TRUE(new_a.IsLeader());
}

TEST_F(EtcdElectionTest, NoLeaderWithoutEtcd) {
  Election a(Options({etcd_->endpoint()}, "a"));
  Election b(Options({etcd_->endpoint()}, "b"));
  ASSERT_TRUE(*a.Campaign());
  Clock::time_point confirmed = Clock::now();
  ASSERT_FALSE(*b.Campaign());

  etcd_->Stop();
  ASSERT_FALSE(etcd_->running());
  // Without another Campaign, leadership runs out on the local clock within the TTL.
  ASSERT_TRUE(WaitFor(3s, [&] { return !a.IsLeader(); }));
  EXPECT_LT(Clock::now() - confirmed, 2s) << "a still thought it led after the lease TTL";

  auto ra = a.Campaign();
  auto rb = b.Campaign();
  ASSERT_FALSE(ra.ok());
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(ra.status().code(), Code::kUnavailable) << ra.status().ToString();
  EXPECT_EQ(rb.status().code(), Code::kUnavailable) << rb.status().ToString();
  EXPECT_FALSE(a.IsLeader());
  EXPECT_FALSE(b.IsLeader());
  EXPECT_EQ(a.Leader().status().code(), Code::kUnavailable);

  ASSERT_TRUE(etcd_->Start());
  // Same data: the key and both leases survived the restart. Exactly one leader again.
  int leaders = 0;
  ASSERT_TRUE(WaitFor(10s, [&] {
    auto r1 = a.Campaign();
    auto r2 = b.Campaign();
    if (!r1.ok() || !r2.ok()) return false;
    leaders = int(*r1) + int(*r2);
    return leaders > 0;
  }));
  EXPECT_EQ(leaders, 1);
  EXPECT_NE(a.IsLeader(), b.IsLeader());
  auto who = a.Leader();
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(*who, a.IsLeader() ? "a" : "b");
}

TEST_F(EtcdElectionTest, ErrorMeansNotLeaderAfterLeading) {
  Election a(Options({etcd_->endpoint()}, "a"));
  ASSERT_TRUE(*a.Campaign());
  ASSERT_TRUE(a.IsLeader());
  etcd_->Kill();
  auto ra = a.Campaign();
  ASSERT_FALSE(ra.ok());
  EXPECT_EQ(ra.status().code(), Code::kUnavailable);
  EXPECT_FALSE(a.IsLeader()) << "a failed round must end leadership at once";
}

TEST(EtcdElectionNoServer, Unreachable) {
  // A port nobody listens on: refused at once.
  int port = testing::FreePort();
  ASSERT_NE(port, 0);
  Election a(Options({"http://127.0.0.1:" + std::to_string(port)}, "a"));
  auto r = a.Campaign();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("HINT:"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(a.IsLeader());
  EXPECT_EQ(a.Resign().code(), Code::kUnavailable);

  Election none(Options({}, "a"));
  EXPECT_EQ(none.Campaign().status().code(), Code::kInvalidArgument);
}

TEST(EtcdElectionCluster, EndpointFailoverAndQuorumLoss) {
  if (!testing::EtcdAvailable()) GTEST_SKIP() << testing::kEtcdSkipReason;
  testing::TempDir dir;
  auto members = EtcdServer::CreateCluster(dir.path(), 3);
  ASSERT_EQ(members.size(), 3u);
  std::vector<std::string> endpoints;
  for (auto& m : members) endpoints.push_back(m->endpoint());
  Election a(Options(endpoints, "a"));
  Election b(Options(endpoints, "b"));
  ASSERT_TRUE(*a.Campaign());
  ASSERT_FALSE(*b.Campaign());

  // One member of three down: the others still have a quorum, the clients move on.
  members[0]->Kill();
  auto ra = a.Campaign();
  auto rb = b.Campaign();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_TRUE(*ra);
  EXPECT_FALSE(*rb);
  auto who = b.Leader();
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(*who, "a");

  // Two of three down: the last member answers but cannot commit. Nobody leads.
  members[1]->Kill();
  ra = a.Campaign();
  rb = b.Campaign();
  ASSERT_FALSE(ra.ok());
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(ra.status().code(), Code::kUnavailable) << ra.status().ToString();
  EXPECT_EQ(rb.status().code(), Code::kUnavailable) << rb.status().ToString();
  EXPECT_FALSE(a.IsLeader());
  EXPECT_FALSE(b.IsLeader());

  // Quorum back: exactly one leader.
  ASSERT_TRUE(members[1]->Start());
  int leaders = 0;
  ASSERT_TRUE(WaitFor(10s, [&] {
    auto r1 = a.Campaign();
    auto r2 = b.Campaign();
    if (!r1.ok() || !r2.ok()) return false;
    leaders = int(*r1) + int(*r2);
    return leaders > 0;
  }));
  EXPECT_EQ(leaders, 1);
  EXPECT_NE(a.IsLeader(), b.IsLeader());
}

}  // namespace
}  // namespace reprise::quorum
