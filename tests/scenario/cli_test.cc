// The `hmmsim` binary: output lines and exit status of `run` and
// `selftest`, --json, -v, --seed, --help/--version and bad flags. Each test
// runs the built executable (HMMSIM_BIN) on files it writes to a fresh
// temporary directory.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace hmmsim {
namespace {

namespace fs = std::filesystem;

struct Output {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Cli : public ::testing::Test {
 protected:
  Cli() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // The pid keeps concurrent runs (two builds' ctest) apart.
    dir_ = fs::path(::testing::TempDir()) /
           ("hmmsim_cli_" + std::to_string(getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Cli() override { fs::remove_all(dir_); }

  // Writes `text` to `name` under the test's directory.
  void write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
  }

  // Runs `hmmsim ARGS` in the test's directory, with `env` before it.
  Output hmmsim(const std::string& args, const std::string& env = "") {
    const std::string cmd =
        "cd '" + dir_.string() + "' && " + env + " '" HMMSIM_BIN "' " + args + " >stdout 2>stderr";
    Output o;
    const int raw = std::system(cmd.c_str());
    o.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    o.out = slurp(dir_ / "stdout");
    o.err = slurp(dir_ / "stderr");
    return o;
  }

  fs::path dir_;
};

constexpr const char* kPass =
    "config sysmem=64M\nprocess p\nmmap p buf 8K\nwrite p buf index\nread p buf => data=index\n";
constexpr const char* kFail = "config sysmem=64M\nprocess p\nmmap p buf 8K\nmunmap p buf+1:4K\n";
constexpr const char* kVary =
    "config sysmem=64M\nvary n = 1 | 2\nprocess p\nmmap p buf 8K\nwrite p buf const(${n})\n"
    "read p buf => data=const(1)\n";

TEST_F(Cli, RunAllPassed) {
  write("a.scn", kPass);
  Output o = hmmsim("run a.scn");
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.out, "ok 1 - a.scn\n1 passed, 0 failed\n");
  EXPECT_EQ(o.err, "");
}

TEST_F(Cli, RunSomeFailed) {
  write("a.scn", kPass);
  write("b.scn", kFail);
  write("v.scn", kVary);
  Output o = hmmsim("run a.scn b.scn v.scn");
  EXPECT_EQ(o.status, 1);
  EXPECT_EQ(o.out,
            "ok 1 - a.scn\n"
            "not ok 2 - b.scn:4: ret: expected 0, got -EINVAL\n"
            "ok 3 - v.scn [n=1]\n"
            "not ok 4 - v.scn:6: data: word 0 (buf+0x0): expected 0x1, got 0x2 [n=2]\n"
            "2 passed, 2 failed\n");
}

// A file that does not parse prints the parser's message and runs nothing;
// the other files still run, and the status is 2.
TEST_F(Cli, RunParseErrorAndUnreadableFile) {
  write("a.scn", kPass);
  write("bad.scn", "process p\nmmap p buf\n");
  fs::create_directories(dir_ / "sub.scn");
  Output o = hmmsim("run bad.scn a.scn missing.scn sub.scn");
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.out, "ok 1 - a.scn\n1 passed, 0 failed\n");
  EXPECT_NE(o.err.find("bad.scn:2:"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(": error: "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("missing.scn: error: cannot read"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("sub.scn: error: cannot read: Is a directory"), std::string::npos) << o.err;
}

TEST_F(Cli, RunJson) {
  write("a.scn", kPass);
  write("v.scn", kVary);
  Output o = hmmsim("run --json a.scn v.scn");
  EXPECT_EQ(o.status, 1);
  const nlohmann::json doc = nlohmann::json::parse(o.out);
  ASSERT_EQ(doc["cases"].size(), 3u);
  EXPECT_EQ(doc["cases"][0]["file"], "a.scn");
  EXPECT_EQ(doc["cases"][0]["status"], "pass");
  EXPECT_EQ(doc["cases"][2]["vary"]["n"], "2");
  EXPECT_EQ(doc["cases"][2]["status"], "fail");
  EXPECT_EQ(doc["cases"][2]["line"], 6);
  EXPECT_EQ(doc["cases"][2]["message"], "data: word 0 (buf+0x0): expected 0x1, got 0x2");
  EXPECT_EQ(doc["totals"]["passed"], 2);
  EXPECT_EQ(doc["totals"]["failed"], 1);
}

TEST_F(Cli, RunVerboseAndSeed) {
  write("a.scn", kPass);
  Output o = hmmsim("run -v --seed 42 a.scn");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("# case 1: a.scn seed=42\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("# 5: read p buf+0:8192 => data=index\n#     = 0 data=8192 bytes\n"),
            std::string::npos)
      << o.out;
  Output again = hmmsim("run -v --seed 42 a.scn");
  EXPECT_EQ(o.out, again.out);
}

TEST_F(Cli, HelpVersionAndBadFlags) {
  Output help = hmmsim("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("selftest"), std::string::npos);
  Output version = hmmsim("--version");
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out, "hmmsim " HMMSIM_VERSION "\n");
  Output bad = hmmsim("run --bogus a.scn");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--bogus"), std::string::npos) << bad.err;
  EXPECT_EQ(hmmsim("run").status, 2);
  EXPECT_EQ(hmmsim("").status, 2);
}

// A selftest tree: one passing test, one failing, one that needs a verb the
// model lacks (skipped, as kselftest skips a test whose device is missing).
class Selftest : public Cli {
 protected:
  Selftest() {
    write("s/hmm-tests/hmm/open_close.scn", "device d0 private\nprocess p\nopen d0 p\n");
    write("s/hmm-tests/hmm/migrate.scn", kFail);
    write("s/hmm-tests/hmm2/snapshot.scn",
          "config sysmem=64M\ndevice d0 private\ndevice d1 coherent\n");
  }
  Output selftest(const std::string& args) {
    return hmmsim("selftest " + args, "HMMSIM_SCENARIOS='" + (dir_ / "s").string() + "'");
  }
};

TEST_F(Selftest, KselftestOutput) {
  Output o = selftest("");
  EXPECT_EQ(o.status, 1);
  EXPECT_EQ(o.out,
            "TAP version 13\n"
            "1..3\n"
            "# Starting 3 tests from 2 test cases.\n"
            "#  RUN           hmm.hmm_device_private.migrate ...\n"
            "# s/hmm-tests/hmm/migrate.scn:4: ret: expected 0, got -EINVAL\n"
            "#          FAIL  hmm.hmm_device_private.migrate\n"
            "not ok 1 hmm.hmm_device_private.migrate\n"
            "#  RUN           hmm.hmm_device_private.open_close ...\n"
            "#            OK  hmm.hmm_device_private.open_close\n"
            "ok 2 hmm.hmm_device_private.open_close\n"
            "#  RUN           hmm2.hmm2_device_private.snapshot ...\n"
            "# s/hmm-tests/hmm2/snapshot.scn:3: unsupported: device coherent\n"
            "#      SKIP      unsupported: device coherent\n"
            "#            OK  hmm2.hmm2_device_private.snapshot\n"
            "ok 3 hmm2.hmm2_device_private.snapshot # SKIP unsupported: device coherent\n"
            "# FAILED: 2 / 3 tests passed.\n"
            "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0\n");
}

TEST_F(Selftest, FilterAndJson) {
  Output o = selftest("open_close");
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("1..1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("# PASSED: 1 / 1 tests passed.\n"), std::string::npos) << o.out;
  Output j = selftest("--json hmm2");
  EXPECT_EQ(j.status, 0);
  const nlohmann::json doc = nlohmann::json::parse(j.out);
  ASSERT_EQ(doc["tests"].size(), 1u);
  EXPECT_EQ(doc["tests"][0]["name"], "hmm2.hmm2_device_private.snapshot");
  EXPECT_EQ(doc["tests"][0]["status"], "skip");
  EXPECT_EQ(doc["totals"]["skip"], 1);
}

}  // namespace
}  // namespace hmmsim
