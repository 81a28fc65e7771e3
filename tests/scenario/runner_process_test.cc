// The runner's process steps: syscalls, CPU access, fork and exit, with the
// exact values and failure messages a scenario sees.
#include <gtest/gtest.h>

#include "runner_test_util.h"

namespace hmmsim::scenario {
namespace {

using testing::expect_pass;
using testing::failure_of;
using testing::run_text;

// Small worlds keep each case fast.
constexpr std::string_view kHead = "config sysmem=64M\nprocess p\n";

std::string scn(std::string_view body) {
  return std::string(kHead) + std::string(body);
}

TEST(RunnerProcess, WriteThenReadBack) {
  expect_pass(scn("mmap p buf 64K\nwrite p buf index\nread p buf => data=index\n"));
}

TEST(RunnerProcess, RetMismatchNamesExpectedAndActual) {
  // munmap needs a page-aligned start: -EINVAL, where 0 was expected.
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nmunmap p buf+1:4K\n")),
            "t.scn:4: ret: expected 0, got -EINVAL");
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nmunmap p buf+1:4K => ret=(0,-EBUSY)\n")),
            "t.scn:4: ret: expected (0,-EBUSY), got -EINVAL");
  expect_pass(scn("mmap p buf 8K\nmunmap p buf+1:4K => ret=-EINVAL\n"));
  expect_pass(scn("mmap p buf 8K\nmunmap p buf+1:4K => ret=any\n"));
  expect_pass(scn("mmap p buf 8K\nmunmap p buf+1:4K => ret=(0,-EINVAL)\n"));
}

TEST(RunnerProcess, AccessToProtNoneIsSegv) {
  expect_pass(
      scn("mmap p buf 8K prot=none\nwrite p buf zero => ret=segv\n"
          "read p buf => ret=segv\ninc p buf => ret=segv\n"));
  EXPECT_EQ(failure_of(scn("mmap p buf 8K prot=none\nwrite p buf zero\n")),
            "t.scn:4: ret: expected 0, got segv");
}

// The step stops at the first word that cannot be stored: pages before the
// hole hold the pattern, pages after it were never touched.
TEST(RunnerProcess, WriteStopsAtTheFirstFaultingWord) {
  expect_pass(
      scn("mmap p buf 12K\n"
          "munmap p buf+4K:4K\n"
          "write p buf index => ret=segv\n"
          "read p buf:4K => data=index\n"
          "read p buf+8K:4K => data=zero\n"
          "read p buf:8K => ret=segv\n"));
}

TEST(RunnerProcess, ReadOnlyMemoryReadsButDoesNotWrite) {
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf const(5)\nmprotect p buf r\n"
          "read p buf => data=const(5)\nwrite p buf zero => ret=segv\n"
          "inc p buf => ret=segv\nread p buf => data=const(5)\n"));
}

TEST(RunnerProcess, IncAddsOneToEveryWord) {
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf index\ninc p buf\ninc p buf:4K\n"
          "read p buf:4K => data=index+2\nread p buf+4K => data=index+1\n"));
}

// A data mismatch names the first differing word (counted from the region's
// base), where it is, and both values.
TEST(RunnerProcess, DataMismatchNamesTheFirstDifferingWord) {
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nwrite p buf const(5)\nwrite p buf+8:4 const(7)\n"
                           "read p buf => data=const(5)\n")),
            "t.scn:6: data: word 2 (buf+0x8): expected 0x5, got 0x7");
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nwrite p buf index\nread p buf+4K => data=index+1\n")),
            "t.scn:5: data: word 1024 (buf+0x1000): expected 0x401, got 0x400");
}

// Patterns are anchored at the base of the named region; a `region` has its
// own base.
TEST(RunnerProcess, PatternsAreAnchoredAtTheRegionBase) {
  expect_pass(
      scn("mmap p buf 16K\nwrite p buf index\nread p buf+8K:4K => data=index\n"
          "region r = buf+8K:4K\nread p r => data=index+2048\n"));
  EXPECT_EQ(failure_of(scn("mmap p buf 16K\nwrite p buf index\nregion r = buf+8K:4K\n"
                           "read p r => data=index\n")),
            "t.scn:6: data: word 0 (r+0x0): expected 0x0, got 0x800");
}

// Unaligned specs move bytes, not words: word 1 of `buf` is split over the
// two writes.
TEST(RunnerProcess, UnalignedAccess) {
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf+2:6 const(0x11223344)\n"
          "write p buf:2 const(0x11223344)\nread p buf:8 => data=const(0x11223344)\n"
          "write p buf+4094:4 const(0xaabbccdd)\n"
          "read p buf+4094:4 => data=const(0xaabbccdd)\n"));
  // Bytes 4092 and 4093 of word 1023 were never written.
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nwrite p buf+4094:4 const(0xaabbccdd)\n"
                           "read p buf+4092:8 => data=const(0xaabbccdd)\n")),
            "t.scn:5: data: word 1023 (buf+0xffc): expected 0xaabbccdd, got 0xaabb0000");
}

TEST(RunnerProcess, MadviseDontneedDropsTheData) {
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf index\nmadvise p buf dontneed\n"
          "read p buf => data=zero\n"));
}

TEST(RunnerProcess, MremapMovesTheRegion) {
  // Same size and no target: Linux leaves the mapping where it is.
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf index\nmremap p buf nb\n"
          "read p nb => data=index\nread p buf => data=index\n"));
  // to= moves onto a given place (MREMAP_FIXED); size= grows the mapping
  // with fresh memory.
  expect_pass(
      scn("mmap p buf 8K\nmmap p dst 64K\nwrite p buf index\n"
          "mremap p buf nb size=16K to=dst+16K\nread p nb:8K => data=index\n"
          "read p nb+8K => data=zero\nread p dst+16K:8K => data=index-4096\n"
          "read p buf => ret=segv\n"));
}

TEST(RunnerProcess, FailedMmapLeavesTheRegionWithoutAnAddress) {
  EXPECT_EQ(failure_of(scn("mmap p big 200000G => ret=-ENOMEM\nwrite p big:4K zero\n")),
            "t.scn:4: region 'big' has no address: its mmap failed with -ENOMEM");
}

TEST(RunnerProcess, FailedMremapLeavesTheNewRegionWithoutAnAddress) {
  // An overlapping MREMAP_FIXED target is -EINVAL.
  EXPECT_EQ(failure_of(scn("mmap p buf 16K\nmremap p buf:8K nb to=buf+4K => ret=-EINVAL\n"
                           "read p nb\n")),
            "t.scn:5: region 'nb' has no address: its mremap failed with -EINVAL");
}

TEST(RunnerProcess, ForkCopiesAndCowSeparates) {
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf index\nfork p c\n"
          "read c buf => data=index\nwrite c buf const(9)\n"
          "read p buf => data=index\nread c buf => data=const(9)\n"));
}

TEST(RunnerProcess, ExitedProcessCannotBeUsed) {
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nfork p c\nexit c\nwrite c buf zero\n")),
            "t.scn:6: process 'c' has exited (line 5)");
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf index\nfork p c\nexit c\n"
          "read p buf => data=index\n"));
}

TEST(RunnerProcess, MmapHugepageGivesAPmdMappedThp) {
  expect_pass(
      scn("mmap p buf 2M align=2M hugepage\nwrite p buf index\n"
          "expect_folio p buf order=9 mapped=pmd mapcount=1 refcount=1 where=system\n"));
  // nohugepage keeps 4 KiB pages even with thp=always.
  expect_pass(
      "config sysmem=64M thp=always\nprocess p\n"
      "mmap p buf 2M align=2M nohugepage\nwrite p buf index\n"
      "expect_folio p buf order=0 mapped=pte mapcount=1 refcount=1\n");
}

TEST(RunnerProcess, SharedMappingsAreUnsupported) {
  testing::Run run = run_text(scn("mmap p buf 8K shared\n"));
  EXPECT_FALSE(run.result.passed);
  EXPECT_TRUE(run.result.unsupported);
  EXPECT_EQ(run.failure, "t.scn:3: unsupported: mmap shared");
}

// Memory sizes the model cannot build are parse errors, not crashes.
TEST(RunnerConfig, MemorySizesOutsideTheModelAreParseErrors) {
  EXPECT_EQ(testing::parse_error("config sysmem=2M\n"),
            "t.scn:1:15: error: sysmem=2M is outside what the model supports (4M to 16G)");
  EXPECT_EQ(testing::parse_error("config sysmem=32G\n"),
            "t.scn:1:15: error: sysmem=32G is outside what the model supports (4M to 16G)");
  EXPECT_EQ(testing::parse_error("device d private mem=64M\n"),
            "t.scn:1:22: error: mem=64M is outside what the model supports (256M to 64G)");
  expect_pass(
      "config sysmem=4M\ndevice d private mem=256M\nprocess p\nmmap p b 4K\n"
      "write p b index\nmigrate_to_dev d p b => cpages=1 data=index\n");
}

// A fork in a repeat body reuses the child's name: only after it exited.
TEST(RunnerProcess, ForkAgainNeedsTheChildGone) {
  expect_pass(
      scn("mmap p buf 8K\nwrite p buf index\nrepeat 3\nfork p c\n"
          "read c buf => data=index\nexit c\nend\n"));
  EXPECT_EQ(failure_of(scn("mmap p buf 8K\nrepeat 2\nfork p c\nend\n")),
            "t.scn:5: process 'c' already exists (exit it before forking it again) (iteration 2 "
            "of 2 of the repeat at line 4)");
}

}  // namespace
}  // namespace hmmsim::scenario
