// The parser on whole files: the contract's example, the exploration
// benchmark, the seed corpus, and the shape of the AST for every step kind.
#include "scenario/parser.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "scn_test_util.h"

namespace hmmsim::scenario {
namespace {

using testing::canonical;
using testing::parse_ok;
using testing::read_file;

constexpr uint64_t kM = 1 << 20;

// The example at the end of scenario-format.md, verbatim.
constexpr std::string_view kContractExample =
    "# migrate a THP to the device, unmap the middle, fault the rest back\n"
    "config thp=madvise\n"
    "device d0 private\n"
    "process p\n"
    "mmap p buf 2M align=2M hugepage\n"
    "write p buf index\n"
    "expect_folio p buf order=9 mapped=pmd\n"
    "migrate_to_dev d0 p buf => cpages=512 data=index\n"
    "snapshot d0 p buf => prot=dev_private_local|write|pmd\n"
    "munmap p buf+H/4:H/2\n"
    "read p buf:H/4 => data=index\n"
    "read p buf+3*H/4 => data=index\n";

void expect_loc(SourceLoc loc, int line, int column) {
  EXPECT_EQ(loc.line, line);
  EXPECT_EQ(loc.column, column);
}

// The contract's example parses into the expected steps, values and places.
TEST(Parser, ContractExample) {
  Scenario s = parse_ok(kContractExample);
  EXPECT_EQ(s.file, "t.scn");
  EXPECT_EQ(s.config.thp, ThpMode::kMadvise);
  EXPECT_EQ(s.config.sysmem, 1024 * kM);
  ASSERT_EQ(s.steps.size(), 10u);
  const auto& mmap = std::get<MmapStep>(s.steps[2].kind);
  EXPECT_EQ(mmap.size, 2 * kM);
  EXPECT_EQ(mmap.align, 2 * kM);
  EXPECT_EQ(mmap.thp, ThpHint::kHugepage);
  EXPECT_EQ(mmap.sharing, Sharing::kPrivate);
  const auto& folio = std::get<ExpectFolioStep>(s.steps[4].kind);
  EXPECT_EQ(folio.order, 9u);
  EXPECT_EQ(folio.mapped, MappedAs::kPmd);
  EXPECT_FALSE(folio.where.has_value());
  const Step& migrate = s.steps[5];
  EXPECT_EQ(std::get<MigrateToDevStep>(migrate.kind).device, "d0");
  EXPECT_EQ(migrate.expect.cpages->value, 512u);
  EXPECT_EQ(migrate.expect.data->pattern.kind, Pattern::Kind::kIndex);
  EXPECT_FALSE(migrate.expect.ret.has_value());  // ret=0 implied
  expect_loc(migrate.loc, 8, 1);
  expect_loc(migrate.expect.cpages->loc, 8, 28);
  expect_loc(migrate.expect.data->loc, 8, 39);
  const Step& snapshot = s.steps[6];
  ASSERT_EQ(snapshot.expect.prot.size(), 1u);
  EXPECT_EQ(snapshot.expect.prot[0].value, kProtDevPrivateLocal | kProtWrite | kProtPmd);
  EXPECT_FALSE(snapshot.expect.prot[0].end.has_value());
  const auto& munmap = std::get<MunmapStep>(s.steps[7].kind);
  EXPECT_EQ(munmap.spec.offset, kM / 2);
  EXPECT_EQ(munmap.spec.length, kM);
  EXPECT_EQ(munmap.spec.text, "buf+H/4:H/2");
  expect_loc(munmap.spec.loc, 10, 10);
  const auto& tail = std::get<ReadStep>(s.steps[9].kind);
  EXPECT_EQ(tail.spec.offset, 3 * kM / 2);
  EXPECT_EQ(tail.spec.length, kM / 2);
}

// The whole example, in canonical form.
TEST(Parser, ContractExampleCanonical) {
  EXPECT_EQ(canonical(kContractExample),
            "config sysmem=1073741824 thp=madvise seed=1 check=step\n"
            "device d0 private mem=1073741824\n"
            "process p\n"
            "mmap p buf 2097152 prot=rw align=2097152 hugepage\n"
            "write p buf+0:2097152 index\n"
            "expect_folio p buf+0:2097152 order=9 mapped=pmd\n"
            "migrate_to_dev d0 p buf+0:2097152 => cpages=512 data=index\n"
            "snapshot d0 p buf+0:2097152 => prot=0x26\n"
            "munmap p buf+524288:1048576\n"
            "read p buf+0:524288 => data=index\n"
            "read p buf+1572864:524288 => data=index\n");
}

// bench/explore-race.scn: a concurrent block of three threads, then a join.
TEST(Parser, ExploreRace) {
  Scenario s = parse_ok(read_file(std::string(HMMSIM_SOURCE_DIR) + "/bench/explore-race.scn"));
  ASSERT_EQ(s.steps.size(), 9u);
  const Step& block = s.steps[5];
  expect_loc(block.loc, 10, 1);
  const auto& c = std::get<ConcurrentStep>(block.kind);
  expect_loc(c.end_loc, 17, 1);
  ASSERT_EQ(c.threads.size(), 3u);
  EXPECT_EQ(c.threads[0].name, "A");
  EXPECT_EQ(c.threads[1].name, "B");
  EXPECT_EQ(c.threads[2].name, "C");
  expect_loc(c.threads[1].loc, 13, 1);
  ASSERT_EQ(c.threads[0].steps.size(), 1u);
  const Step& a = c.threads[0].steps[0];
  expect_loc(a.loc, 12, 3);
  EXPECT_TRUE(a.expect.ret->any);
  expect_loc(a.expect.ret->loc, 12, 30);
  const auto& b = std::get<MunmapStep>(c.threads[1].steps[0].kind);
  EXPECT_EQ(b.spec.offset, kM);
  EXPECT_EQ(b.spec.length, kM / 2);
  EXPECT_TRUE(std::holds_alternative<CheckStep>(s.steps[8].kind));
  EXPECT_EQ(canonical(read_file(std::string(HMMSIM_SOURCE_DIR) + "/bench/explore-race.scn")),
            "config sysmem=1073741824 thp=madvise seed=1 check=step\n"
            "device d0 private mem=1073741824\n"
            "process p\n"
            "mmap p buf 2097152 prot=rw align=2097152 hugepage\n"
            "write p buf+0:2097152 index\n"
            "migrate_to_dev d0 p buf+0:2097152 => cpages=512 data=index\n"
            "concurrent\n"
            "thread A\n"
            "  migrate_to_sys d0 p buf+0:2097152 => ret=any\n"
            "thread B\n"
            "  munmap p buf+1048576:524288\n"
            "thread C\n"
            "  read p buf+0:524288 => data=index\n"
            "end\n"
            "read p buf+0:1048576 => data=index\n"
            "read p buf+1572864:524288 => data=index\n"
            "check\n");
}

// Every file of the fuzz seed corpus parses, and its canonical text is a
// fixed point of parse + format.
TEST(Parser, CorpusRoundTrips) {
  const std::filesystem::path dir = std::string(HMMSIM_SOURCE_DIR) + "/tests/scenario/corpus";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ParseResult<std::vector<Scenario>> cases = parse_cases("c.scn", read_file(entry.path()));
    ASSERT_TRUE(cases.ok()) << cases.errors()[0].format() << " in " << entry.path();
    for (Scenario c : cases.value()) {
      c.vary.clear();
      const std::string text = format_scenario(c);
      EXPECT_EQ(canonical(text), text) << entry.path();
    }
    ++files;
  }
  EXPECT_GE(files, 4);
}

// Declarations: defaults, every config key, devices of both kinds.
TEST(Parser, Declarations) {
  Scenario s = parse_ok(
      "config sysmem=256M thp=never\nconfig seed=0x2a check=off\n"
      "device gpu coherent mem=512M\ndevice d0 private\nprocess a\nprocess b\n");
  EXPECT_EQ(s.config.sysmem, 256 * kM);
  EXPECT_EQ(s.config.thp, ThpMode::kNever);
  EXPECT_EQ(s.config.seed, 42u);
  EXPECT_EQ(s.config.check, CheckMode::kOff);
  ASSERT_EQ(s.steps.size(), 4u);
  const auto& gpu = std::get<DeviceStep>(s.steps[0].kind);
  EXPECT_EQ(gpu.kind, DeviceKind::kCoherent);
  EXPECT_EQ(gpu.mem, 512 * kM);
  EXPECT_EQ(std::get<DeviceStep>(s.steps[1].kind).mem, 1024 * kM);
  EXPECT_EQ(std::get<ProcessStep>(s.steps[3].kind).name, "b");
  Scenario d = parse_ok("");
  EXPECT_EQ(d.config.sysmem, 1024 * kM);
  EXPECT_EQ(d.config.thp, ThpMode::kMadvise);
  EXPECT_EQ(d.config.seed, 1u);
  EXPECT_EQ(d.config.check, CheckMode::kStep);
  EXPECT_TRUE(d.steps.empty());
}

// Every process step with every option.
TEST(Parser, ProcessSteps) {
  EXPECT_EQ(canonical("process p\n"
                      "mmap p a 4M prot=none shared align=64K nohugepage => ret=-ENOMEM\n"
                      "mmap p b 8K prot=r\n"
                      "munmap p a+4K:4K\n"
                      "mprotect p a none\n"
                      "madvise p a:H free\n"
                      "madvise p a dontneed\n"
                      "mremap p a+H ahi\n"
                      "mremap p b bb size=2*8K to=a:H dontunmap => ret=(0,-EINVAL,-EFAULT)\n"
                      "region r = bb+4K:4K\n"
                      "fork p q\n"
                      "write q r negindex => ret=segv\n"
                      "read q r\n"
                      "inc q r => ret=(segv,0)\n"
                      "exit q\n"),
            "config sysmem=1073741824 thp=madvise seed=1 check=step\n"
            "process p\n"
            "mmap p a 4194304 prot=none align=65536 shared nohugepage => ret=-ENOMEM\n"
            "mmap p b 8192 prot=r align=4096\n"
            "munmap p a+4096:4096\n"
            "mprotect p a+0:4194304 none\n"
            "madvise p a+0:2097152 free\n"
            "madvise p a+0:4194304 dontneed\n"
            "mremap p a+2097152:2097152 ahi size=2097152\n"
            "mremap p b+0:8192 bb size=16384 to=a+0:2097152 dontunmap => "
            "ret=(0,-EINVAL,-EFAULT)\n"
            "region r = bb+4096:4096\n"
            "fork p q\n"
            "write q r+0:4096 negindex => ret=segv\n"
            "read q r+0:4096\n"
            "inc q r+0:4096 => ret=(segv,0)\n"
            "exit q\n");
}

// Every device and inspection step.
TEST(Parser, DeviceAndInspectionSteps) {
  EXPECT_EQ(canonical("device d private\nprocess p\nmmap p m 1M\n"
                      "dev_read d p m => ret=-EPERM cpages=256 faults=H/P/2 data=zero\n"
                      "dev_write d p m:8K const(7) => cpages=2 faults=0\n"
                      "migrate_to_dev d p m => ret=-ENOENT cpages=0 data=rand(9)\n"
                      "migrate_to_sys d p m => ret=-EAGAIN cpages=1\n"
                      "snapshot d p m:16K => prot[0]=0xff prot[1..3]=zero|read prot=none\n"
                      "exclusive d p m => cpages=256 data=index+3\n"
                      "check_exclusive d p m => ret=-EBUSY\n"
                      "release d => ret=any\n"
                      "fail_alloc d p\nopen d p\nclose d p => ret=0\n"
                      "check\nshrink\n"
                      "expect_folio p m+4K order=0 where=device:d mapped=none mapcount=0 "
                      "refcount=1\n"
                      "expect_folio p m where=system\n"),
            "config sysmem=1073741824 thp=madvise seed=1 check=step\n"
            "device d private mem=1073741824\nprocess p\nmmap p m 1048576 prot=rw align=4096\n"
            "dev_read d p m+0:1048576 => ret=-EPERM cpages=256 faults=256 data=zero\n"
            "dev_write d p m+0:8192 const(0x7) => cpages=2 faults=0\n"
            "migrate_to_dev d p m+0:1048576 => ret=-ENOENT cpages=0 data=rand(9)\n"
            "migrate_to_sys d p m+0:1048576 => ret=-EAGAIN cpages=1\n"
            "snapshot d p m+0:16384 => prot[0..1]=0xff prot[1..3]=0x11 prot=0x00\n"
            "exclusive d p m+0:1048576 => cpages=256 data=index+3\n"
            "check_exclusive d p m+0:1048576 => ret=-EBUSY\n"
            "release d => ret=any\n"
            "fail_alloc d p\nopen d p\nclose d p => ret=0\n"
            "check\nshrink\n"
            "expect_folio p m+4096:1044480 order=0 where=device:d mapped=none mapcount=0 "
            "refcount=1\n"
            "expect_folio p m+0:1048576 where=system\n");
}

// Region sizes follow mmap, region and mremap through the file, so specs are
// checked against the size the region has at that line.
TEST(Parser, RegionSizesAreTracked) {
  Scenario s = parse_ok(
      "process p\nmmap p buf 2M\nregion mid = buf+H/4:H/2\nmunmap p mid+1M-4K\n"
      "mremap p buf big size=8M\nread p big+6M\nmremap p big big size=4K\nread p big\n"
      "mmap p buf 16K\nread p buf+12K\n");
  EXPECT_EQ(std::get<MunmapStep>(s.steps[3].kind).spec.length, 4096u);
  EXPECT_EQ(std::get<MremapStep>(s.steps[4].kind).new_size, 8 * kM);
  EXPECT_EQ(std::get<ReadStep>(s.steps[5].kind).spec.length, 2 * kM);
  EXPECT_EQ(std::get<MremapStep>(s.steps[6].kind).spec.length, 8 * kM);
  EXPECT_EQ(std::get<ReadStep>(s.steps[7].kind).spec.length, 4096u);
  EXPECT_EQ(std::get<ReadStep>(s.steps[9].kind).spec.length, 4096u);
  EXPECT_EQ(
      testing::parse_error("process p\nmmap p buf 2M\nregion mid = buf+1M\nread p mid+1M:1\n"),
      "t.scn:4:8: error: region spec 'mid+1M:1' ends at 1048577, past the end of region "
      "'mid' (1M)");
  EXPECT_EQ(testing::parse_error("process p\nmmap p buf 2M\nmremap p buf buf size=1M\n"
                                 "read p buf+1M:4K\n"),
            "t.scn:4:8: error: region spec 'buf+1M:4K' ends at 1028K, past the end of region "
            "'buf' (1M)");
}

// A spec may be empty at the very end of its region, and may start anywhere
// (alignment is the runner's business: Linux returns -EINVAL).
TEST(Parser, SpecEdges) {
  Scenario s = parse_ok("process p\nmmap p buf 8K\nread p buf+8K\nread p buf+1:3\nread p buf:0\n");
  EXPECT_EQ(std::get<ReadStep>(s.steps[2].kind).spec.length, 0u);
  EXPECT_EQ(std::get<ReadStep>(s.steps[3].kind).spec.offset, 1u);
  EXPECT_EQ(std::get<ReadStep>(s.steps[3].kind).spec.length, 3u);
}

// Blocks nest as written; repeat counts and end lines are kept.
TEST(Parser, Blocks) {
  Scenario s = parse_ok(
      "process p\nmmap p a 8K\n"
      "repeat 2*3\n  concurrent\n  thread x\n    repeat 0\n    end\n  thread y\n"
      "    inc p a\n  end\nend\n");
  ASSERT_EQ(s.steps.size(), 3u);
  const auto& outer = std::get<RepeatStep>(s.steps[2].kind);
  EXPECT_EQ(outer.count, 6u);
  expect_loc(s.steps[2].loc, 3, 1);
  expect_loc(outer.end_loc, 11, 1);
  ASSERT_EQ(outer.body.size(), 1u);
  const auto& c = std::get<ConcurrentStep>(outer.body[0].kind);
  expect_loc(outer.body[0].loc, 4, 3);
  ASSERT_EQ(c.threads.size(), 2u);
  const auto& inner = std::get<RepeatStep>(c.threads[0].steps[0].kind);
  EXPECT_EQ(inner.count, 0u);
  EXPECT_TRUE(inner.body.empty());
  expect_loc(c.threads[1].steps[0].loc, 9, 5);
}

// Comments, blank lines, tabs and CRLF line ends are only layout.
TEST(Parser, Layout) {
  Scenario s = parse_ok(
      "\r\n  # comment\n\tprocess\tp # trailing\r\n\n"
      "mmap p a 4K#glued comment\r\nread p a\t=>\tdata=zero\r\n");
  ASSERT_EQ(s.steps.size(), 3u);
  expect_loc(s.steps[0].loc, 3, 2);
  expect_loc(s.steps[2].expect.data->loc, 6, 13);
  EXPECT_EQ(std::get<MmapStep>(s.steps[1].kind).size, 4096u);
}

// step_verb names every kind of step.
TEST(Parser, StepVerb) {
  EXPECT_EQ(step_verb(StepKind{MmapStep{}}), "mmap");
  EXPECT_EQ(step_verb(StepKind{ExpectFolioStep{}}), "expect_folio");
  EXPECT_EQ(step_verb(StepKind{RepeatStep{}}), "repeat");
  EXPECT_EQ(step_verb(StepKind{FailAllocStep{}}), "fail_alloc");
}

}  // namespace
}  // namespace hmmsim::scenario
