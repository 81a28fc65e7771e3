// The runner's device steps: the dmirror commands with their exact cpages
// and read-back data, open/close and exit, and the verbs the model lacks.
#include <gtest/gtest.h>

#include "runner_test_util.h"

namespace hmmsim::scenario {
namespace {

using testing::expect_pass;
using testing::failure_of;
using testing::run_text;

constexpr std::string_view kHead =
    "config sysmem=64M\ndevice d private\nprocess p\nmmap p buf 64K\nwrite p buf index\n";

std::string scn(std::string_view body) {
  return std::string(kHead) + std::string(body);
}

TEST(RunnerDevice, MigrateToDevAndBack) {
  expect_pass(
      scn("migrate_to_dev d p buf => cpages=16 data=index\n"
          "expect_folio p buf+4K where=device:d order=0 mapped=pte mapcount=1 refcount=1\n"
          "migrate_to_sys d p buf => cpages=16\n"
          "expect_folio p buf+4K where=system order=0 mapped=pte mapcount=1 refcount=1\n"
          "read p buf => data=index\n"));
}

TEST(RunnerDevice, ThpMigratesWholeAndComesBackAsOneEntry) {
  expect_pass(
      "config sysmem=64M\ndevice d private\nprocess p\n"
      "mmap p h 2M align=2M hugepage\nwrite p h index\n"
      "migrate_to_dev d p h => cpages=512 data=index\n"
      "expect_folio p h where=device:d order=9 mapped=pmd mapcount=1 refcount=1\n"
      "migrate_to_sys d p h => cpages=1\n"
      "expect_folio p h where=system order=9 mapped=pmd\n");
}

// FAIL_ALLOC makes the device's large allocation fail once: 512 small
// device pages instead, the source THP split.
TEST(RunnerDevice, FailAllocSplitsTheThp) {
  expect_pass(
      "config sysmem=64M\ndevice d private\nprocess p\n"
      "mmap p h 2M align=2M hugepage\nwrite p h index\nfail_alloc d p\n"
      "migrate_to_dev d p h => cpages=512 data=index\n"
      "expect_folio p h+1M where=device:d order=0 mapped=pte\n");
}

TEST(RunnerDevice, CpagesMismatch) {
  EXPECT_EQ(failure_of(scn("migrate_to_dev d p buf => cpages=1\n")),
            "t.scn:6: cpages: expected 1, got 16");
}

TEST(RunnerDevice, ReadBackDataMismatch) {
  EXPECT_EQ(failure_of(scn("migrate_to_dev d p buf => data=zero\n")),
            "t.scn:6: data: word 1 (buf+0x4): expected 0x0, got 0x1");
}

TEST(RunnerDevice, MisalignedRangeIsEinvalWithNoData) {
  expect_pass(scn("migrate_to_dev d p buf+1:4K => ret=-EINVAL\n"));
  EXPECT_EQ(failure_of(scn("migrate_to_dev d p buf+1:4K => ret=-EINVAL data=index\n")),
            "t.scn:6: data: nothing to compare, 'migrate_to_dev' returned -EINVAL");
}

TEST(RunnerDevice, ReleaseEvictsToSystemMemory) {
  expect_pass(
      scn("migrate_to_dev d p buf\nrelease d\n"
          "expect_folio p buf where=system\nread p buf => data=index\n"));
}

TEST(RunnerDevice, CloseEvictsAndReopens) {
  expect_pass(
      scn("open d p\nmigrate_to_dev d p buf\nclose d p\n"
          "expect_folio p buf where=system\n"
          "migrate_to_dev d p buf => cpages=16 data=index\n"));
}

TEST(RunnerDevice, CloseOfADeviceNotOpen) {
  EXPECT_EQ(failure_of(scn("close d p\n")),
            "t.scn:6: close: device 'd' is not open for process 'p'");
}

// exit closes the process's mirrors, and closing evicts the whole device:
// the other process's pages come back to system memory too.
TEST(RunnerDevice, ExitClosesTheMirrors) {
  expect_pass(
      scn("process q\nmmap q qb 64K\nwrite q qb index\n"
          "migrate_to_dev d p buf\nmigrate_to_dev d q qb\n"
          "expect_folio q qb where=device:d\nexit p\n"
          "expect_folio q qb where=system\nread q qb => data=index\n"));
}

// Another device's pages are not selected: the read-back misses them.
TEST(RunnerDevice, PagesOnAnotherDevice) {
  expect_pass(
      scn("device e private\nmigrate_to_dev e p buf\n"
          "migrate_to_dev d p buf => ret=-ENOENT\n"
          "expect_folio p buf where=device:e\n"));
  EXPECT_EQ(failure_of(scn("device e private\nmigrate_to_dev e p buf\n"
                           "expect_folio p buf where=device:d\n")),
            "t.scn:8: expect_folio: where: expected device:d, got device:e");
}

// READ faults every missing page in one round (faults=1): written pages
// and, for the untouched ones, the zero page.
TEST(RunnerDevice, DevReadFaultsOnce) {
  expect_pass(
      scn("dev_read d p buf => cpages=16 faults=1 data=index\n"
          "dev_read d p buf => cpages=16 faults=0 data=index\n"));
  EXPECT_EQ(failure_of(scn("dev_read d p buf => faults=2\n")),
            "t.scn:6: faults: expected 2, got 1");
}

TEST(RunnerDevice, DevWriteReachesTheCpu) {
  expect_pass(
      scn("dev_write d p buf const(7) => cpages=16 faults=1\n"
          "read p buf => data=const(7)\n"));
}

// The errnos of the fault path: no read access is -EFAULT, a write to a
// read-only Vma is -EPERM; nothing is counted.
TEST(RunnerDevice, DevReadAndWriteErrors) {
  expect_pass(
      scn("mprotect p buf none\ndev_read d p buf => ret=-EFAULT cpages=0 faults=0\n"
          "mprotect p buf r\ndev_write d p buf zero => ret=-EPERM\n"
          "read p buf => data=index\n"));
}

// SNAPSHOT bytes: written pages are writable (0x02), pages a read fault
// left on the zero page read 0x11, migrated ones are this device's (0x22),
// a PMD-mapped THP adds the PMD bit.
TEST(RunnerDevice, SnapshotBytes) {
  expect_pass(
      "config sysmem=64M\ndevice d private\nprocess p\nmmap p buf 16K\n"
      "write p buf:8K index\nread p buf+8K:4K\n"
      "snapshot d p buf => cpages=4 prot[0..2]=write prot[2]=zero|read prot[3]=none\n"
      "migrate_to_dev d p buf:8K\nsnapshot d p buf:8K => prot=dev_private_local|write\n"
      "mmap p h 2M align=2M hugepage\nwrite p h index\nsnapshot d p h => prot=write|pmd\n"
      "migrate_to_dev d p h\nsnapshot d p h => prot=dev_private_local|write|pmd\n");
  EXPECT_EQ(failure_of(scn("snapshot d p buf => prot[1]=read\n")),
            "t.scn:6: prot[1]: expected 0x01, got 0x02");
}

// EXCLUSIVE reads the pages back; the CPU's next access revokes the
// device's exclusive access, which CHECK_EXCLUSIVE then no longer sees.
TEST(RunnerDevice, ExclusiveUntilTheCpuTouches) {
  expect_pass(
      scn("exclusive d p buf => cpages=16 data=index\n"
          "check_exclusive d p buf => ret=-EPERM\ninc p buf\n"
          "check_exclusive d p buf => ret=0\nread p buf => data=index+1\n"));
}

TEST(RunnerDevice, CoherentDevicesAreUnsupported) {
  testing::Run run = run_text(scn("device g coherent\n"));
  EXPECT_FALSE(run.result.passed);
  EXPECT_TRUE(run.result.unsupported);
  EXPECT_EQ(run.failure, "t.scn:6: unsupported: device coherent");
}

}  // namespace
}  // namespace hmmsim::scenario
