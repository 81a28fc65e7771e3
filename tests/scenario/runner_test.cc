// The runner as a whole: inspection steps, the checker modes and its
// failure message, repeat and concurrent blocks, and determinism.
#include <gtest/gtest.h>

#include "check/corruption.h"
#include "runner_test_util.h"
#include "scenario/runner_internal.h"

namespace hmmsim::scenario {
namespace {

using testing::expect_pass;
using testing::failure_of;
using testing::lines_starting;
using testing::run_text;

constexpr std::string_view kThp =
    "config sysmem=64M\nprocess p\nmmap p buf 2M align=2M hugepage\nwrite p buf index\n";

std::string thp(std::string_view body) {
  return std::string(kThp) + std::string(body);
}

TEST(RunnerInspect, ExpectFolioMismatchNamesTheKey) {
  EXPECT_EQ(failure_of(thp("expect_folio p buf order=0\n")),
            "t.scn:5: expect_folio: order: expected 0, got 9");
  EXPECT_EQ(failure_of(thp("expect_folio p buf mapped=pte\n")),
            "t.scn:5: expect_folio: mapped: expected pte, got pmd");
  EXPECT_EQ(failure_of(thp("expect_folio p buf mapcount=512\n")),
            "t.scn:5: expect_folio: mapcount: expected 512, got 1");
  EXPECT_EQ(failure_of(thp("expect_folio p buf refcount=2\n")),
            "t.scn:5: expect_folio: refcount: expected 2, got 1");
}

// Splitting the PMD (mprotect of one page) leaves the order-9 folio mapped
// by 512 PTEs: 512 mappings, 512 references.
TEST(RunnerInspect, ExpectFolioAfterAPmdSplit) {
  expect_pass(
      thp("mprotect p buf:4K r\n"
          "expect_folio p buf+1M order=9 mapped=pte mapcount=512 refcount=512\n"));
}

TEST(RunnerInspect, ExpectFolioOnNothingAndOnTheZeroPage) {
  const std::string head = "config sysmem=64M\nprocess p\nmmap p buf 8K\n";
  expect_pass(head + "expect_folio p buf mapped=none\n");
  EXPECT_EQ(failure_of(head + "expect_folio p buf order=0\n"),
            "t.scn:4: expect_folio: no folio maps buf");
  expect_pass(head + "read p buf:4\nexpect_folio p buf mapped=pte order=0 where=system\n");
  EXPECT_EQ(failure_of(head + "read p buf:4\nexpect_folio p buf mapcount=1\n"),
            "t.scn:5: expect_folio: buf maps the zero page, which has no mapcount");
}

// A partial munmap queues the THP; only the shrinker splits it.
TEST(RunnerInspect, ShrinkSplitsQueuedFolios) {
  expect_pass(
      thp("munmap p buf+1M\nexpect_folio p buf order=9 mapped=pte mapcount=256\n"
          "shrink\nexpect_folio p buf order=0 mapped=pte mapcount=1 refcount=1\n"
          "read p buf:1M => data=index\n"));
}

// `check=step` runs the checker after every step, `end` once, `off` never
// (the step log says "check: clean" each time it ran).
TEST(RunnerCheck, Modes) {
  const std::string body = "process p\nmmap p buf 8K\nwrite p buf index\nread p buf\n";
  auto checks = [&](std::string_view mode) {
    return lines_starting(run_text("config sysmem=64M check=" + std::string(mode) + "\n" + body),
                          "    check: clean")
        .size();
  };
  EXPECT_EQ(checks("step"), 4u);
  EXPECT_EQ(checks("end"), 1u);
  EXPECT_EQ(checks("off"), 0u);
  expect_pass("config sysmem=64M check=off\nprocess p\ncheck\n");
}

// A violation names the invariant: here a present PTE is dropped behind the
// model's back, so the folio keeps a mapcount nothing accounts for.
TEST(RunnerCheck, ViolationNamesTheInvariant) {
  const Scenario s =
      testing::parse_ok("config sysmem=64M\nprocess p\nmmap p buf 8K\nwrite p buf index\n");
  RunOptions options;
  run::RunState st(s, options);
  ASSERT_FALSE(run::execute(st, std::get<ProcessStep>(s.steps[0].kind)).failure);
  ASSERT_FALSE(run::execute(st, std::get<MmapStep>(s.steps[1].kind)).failure);
  ASSERT_FALSE(run::execute(st, std::get<WriteStep>(s.steps[2].kind)).failure);
  EXPECT_EQ(run::check_now(st), std::nullopt);
  MmStruct& mm = **st.process("p");
  const Vaddr buf = st.range(std::get<WriteStep>(s.steps[2].kind).spec)->addr;
  const Pte old = hmmsim::testing::set_pte(mm, buf, Pte::none());
  const std::optional<std::string> bad = run::check_now(st);
  hmmsim::testing::set_pte(mm, buf, old);
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->rfind("check: invariant I", 0), 0u) << *bad;
  EXPECT_NE(bad->find(" violated (check_"), std::string::npos) << *bad;
  EXPECT_EQ(run::check_now(st), std::nullopt);
}

// Every case ends with a teardown after which the world must hold nothing:
// a frame nobody frees is reported as a leak, with the count.
TEST(RunnerCheck, TeardownFindsLeaks) {
  const Scenario s = testing::parse_ok("config sysmem=64M\nprocess p\nmmap p buf 8K\n");
  RunOptions options;
  run::RunState st(s, options);
  std::optional<Folio> stray = folio_alloc(st.world().mem(), Order{0});
  ASSERT_TRUE(stray.has_value());
  st.teardown();
  EXPECT_EQ(st.leaks(), "leak after teardown: 1 RAM frames still allocated");
  folio_put(*stray);
  EXPECT_EQ(st.leaks(), std::nullopt);
}

// A passing case says so in its log after the last step.
TEST(RunnerCheck, TeardownIsLogged) {
  testing::Run run = run_text("config sysmem=64M\nprocess p\nmmap p buf 2M\nwrite p buf index\n");
  EXPECT_TRUE(run.result.passed) << run.failure;
  ASSERT_FALSE(run.log.empty());
  EXPECT_EQ(run.log.back(), "    teardown: clean");
}

TEST(RunnerBlocks, RepeatRunsItsBodyNTimes) {
  expect_pass(
      "config sysmem=64M\nprocess p\nmmap p buf 8K\nrepeat 3\ninc p buf\nend\n"
      "read p buf => data=const(3)\n");
  expect_pass(
      "config sysmem=64M\nprocess p\nmmap p buf 8K\nrepeat 0\ninc p buf\nend\n"
      "read p buf => data=zero\n");
}

TEST(RunnerBlocks, RepeatFailureNamesTheIteration) {
  EXPECT_EQ(failure_of("config sysmem=64M\nprocess p\nmmap p buf 8K\nwrite p buf const(1)\n"
                       "repeat 3\nread p buf => data=const(1)\ninc p buf\nend\n"),
            "t.scn:6: data: word 0 (buf+0x0): expected 0x1, got 0x2 (iteration 2 of 3 of the "
            "repeat at line 5)");
}

constexpr std::string_view kRoundRobin =
    "config sysmem=64M\n"            // 1
    "process p\n"                    // 2
    "mmap p a 4K\n"                  // 3
    "concurrent\n"                   // 4
    "thread A\n"                     // 5
    "  write p a const(1)\n"         // 6
    "  read p a => data=const(2)\n"  // 7
    "  repeat 2\n"                   // 8
    "    inc p a\n"                  // 9
    "  end\n"                        // 10
    "thread B\n"                     // 11
    "  write p a const(2)\n"         // 12
    "end\n"                          // 13
    "read p a => data=const(4)\n";   // 14

// Round-robin: A's first step, B's first, A's second, ... then the join.
// A reads B's value only in this order.
TEST(RunnerBlocks, ConcurrentRunsRoundRobin) {
  testing::Run run = run_text(kRoundRobin);
  ASSERT_TRUE(run.result.passed) << run.failure;
  std::vector<std::string> order;
  for (const std::string& l : run.log) {
    if (l.find(": [") != std::string::npos || l.find("end (join)") != std::string::npos) {
      order.push_back(l.substr(0, l.find(' ')));
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"6:", "12:", "7:", "9:", "9:", "13:"}));
}

TEST(RunnerBlocks, ConcurrentFailureNamesTheThread) {
  std::string text(kRoundRobin);
  text.replace(text.find("write p a const(2)"), 18, "write p a const(5)");
  EXPECT_EQ(failure_of(text), "t.scn:7: thread A: data: word 0 (a+0x0): expected 0x2, got 0x5");
}

// A repeat around the whole block: failures name the thread and the
// iteration of the outer repeat.
TEST(RunnerBlocks, ConcurrentInsideRepeat) {
  EXPECT_EQ(failure_of("config sysmem=64M\nprocess p\nmmap p a 4K\nrepeat 3\nconcurrent\n"
                       "thread A\n  inc p a\nthread B\n  read p a => data=const(1)\nend\nend\n"),
            "t.scn:9: thread B: data: word 0 (a+0x0): expected 0x1, got 0x2 (iteration 2 of 3 of "
            "the repeat at line 4)");
}

TEST(RunnerBlocks, CheckerRunsAfterTheJoin) {
  testing::Run run = run_text(kRoundRobin);
  ASSERT_TRUE(run.result.passed) << run.failure;
  const auto join = std::find_if(run.log.begin(), run.log.end(), [](const std::string& l) {
    return l.find("end (join)") != std::string::npos;
  });
  ASSERT_NE(join, run.log.end());
  ASSERT_NE(join + 1, run.log.end());
  EXPECT_EQ(*(join + 1), "    check: clean");
}

// The same case and seed give the same log, byte for byte.
TEST(RunnerDeterminism, SameCaseSameLog) {
  const std::string text =
      thp("device d private\nmigrate_to_dev d p buf\nmunmap p buf+1M:4K\n"
          "read p buf:1M => data=index\nshrink\n");
  testing::Run a = run_text(text);
  testing::Run b = run_text(text);
  ASSERT_TRUE(a.result.passed) << a.failure;
  EXPECT_GT(a.log.size(), 10u);
  EXPECT_EQ(a.log, b.log);
}

}  // namespace
}  // namespace hmmsim::scenario
