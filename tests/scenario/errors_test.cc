// Every diagnostic the parser can give, each from a minimal file, with its
// exact position and wording (`FILE:LINE:COL: error: message`).
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "scn_test_util.h"

namespace hmmsim::scenario {
namespace {

// A prefix that declares what most error cases need.
constexpr std::string_view kWorld =
    "device d0 private\n"
    "process p\n"
    "mmap p buf 2M\n";  // lines 1-3

struct ErrorCase {
  const char* name;
  std::string text;
  std::string expected;  // the whole first diagnostic
};

// Names the case in ctest and gtest output instead of dumping its bytes.
void PrintTo(const ErrorCase& c, std::ostream* os) { *os << c.name; }

std::string w(std::string_view rest) {
  return std::string(kWorld) + std::string(rest);
}

const ErrorCase kCases[] = {
    // ---- vary and substitution
    {"vary_no_name", "vary\n", "t.scn:1:5: error: expected a variable name after 'vary'"},
    {"vary_bad_name", "vary 1x = 2\n",
     "t.scn:1:6: error: expected a variable name after 'vary', got '1x'"},
    {"vary_no_eq", "vary x 1 | 2\n", "t.scn:1:8: error: expected '=' after 'vary x', got '1'"},
    {"vary_arrow", "vary x = 1 => ret=0\n", "t.scn:1:12: error: 'vary' takes no expectations"},
    {"vary_leading_bar", "vary x = | 1\n",
     "t.scn:1:10: error: expected a value before '|' in 'vary x'"},
    {"vary_trailing_bar", "vary x = 1 |\n",
     "t.scn:1:13: error: expected a value after '|' in 'vary x'"},
    {"vary_no_values", "vary x =\n", "t.scn:1:9: error: expected a value after 'vary x ='"},
    {"vary_twice", "vary x = 1\nvary x = 2\n",
     "t.scn:2:6: error: 'vary x' is already declared at line 1"},
    {"vary_circular", "vary x = ${x}+1\n",
     "t.scn:1:10: error: circular '${x}': the 'vary x' line uses itself"},
    {"vary_used_early", w("mmap p b2 ${n}\nvary n = 4K\n"),
     "t.scn:4:11: error: '${n}' is used before its 'vary' line (line 5)"},
    {"vary_undefined", w("mmap p b2 ${zz}\n"),
     "t.scn:4:11: error: undefined variable '${zz}' (no 'vary zz = ...' line)"},
    {"vary_unterminated", w("vary s = 4K\nmmap p b2 ${s\n"),
     "t.scn:5:11: error: unterminated '${' in '${s'"},
    {"vary_bad_ref", w("mmap p b2 x${1}\n"),
     "t.scn:4:12: error: expected a variable name in '${...}', got '${1}'"},
    {"vary_made_by_subst", "vary v = vary\n${v} x = 1\n",
     "t.scn:2:1: error: 'vary' must be written in the file, not produced by a '${...}' "
     "(in the case v=vary)"},
    // ---- lines and blocks
    {"arrow_first", "=> ret=0\n", "t.scn:1:1: error: expected a step before '=>'"},
    {"block_expect", "concurrent => ret=0\n",
     "t.scn:1:12: error: 'concurrent' takes no expectations"},
    {"step_expect", w("region r = buf => ret=0\n"),
     "t.scn:4:16: error: 'region' takes no expectations"},
    {"unknown_step", "frobnicate p\n", "t.scn:1:1: error: unknown step 'frobnicate'"},
    {"decl_in_block", "repeat 2\ndevice d0 private\nend\n",
     "t.scn:2:1: error: 'device' must be at the top level, not inside 'repeat' (line 1)"},
    {"step_before_thread", w("concurrent\nmunmap p buf\nend\n"),
     "t.scn:5:1: error: expected 'thread NAME' after 'concurrent' (line 4), got 'munmap'"},
    {"extra_token", w("munmap p buf now\n"),
     "t.scn:4:14: error: unexpected 'now' after 'munmap p buf'"},
    {"nested_concurrent", "concurrent\nthread A\nconcurrent\n",
     "t.scn:3:1: error: 'concurrent' cannot be nested inside thread 'A' (line 2)"},
    {"thread_in_repeat", "concurrent\nthread A\nrepeat 2\nthread B\n",
     "t.scn:4:1: error: 'thread' inside 'repeat' (line 3) of thread 'A': close it with 'end' "
     "first"},
    {"repeat_before_thread", "concurrent\nrepeat 2\n",
     "t.scn:2:1: error: expected 'thread NAME' after 'concurrent' (line 1), got 'repeat'"},
    {"concurrent_before_thread", "concurrent\nconcurrent\n",
     "t.scn:2:1: error: expected 'thread NAME' after 'concurrent' (line 1), got 'concurrent'"},
    {"thread_no_name", "concurrent\nthread\n",
     "t.scn:2:7: error: expected a thread name after 'thread'"},
    {"thread_extra", "concurrent\nthread A B\n",
     "t.scn:2:10: error: unexpected 'B' after 'thread A'"},
    {"thread_outside", "thread A\n", "t.scn:1:1: error: 'thread' outside 'concurrent'"},
    {"thread_twice", "concurrent\nthread A\nthread A\nend\n",
     "t.scn:3:8: error: thread 'A' is already declared at line 2"},
    {"end_alone", "end\n", "t.scn:1:1: error: 'end' without 'concurrent' or 'repeat'"},
    {"concurrent_empty", "concurrent\nend\n",
     "t.scn:2:1: error: 'concurrent' (line 1) has no 'thread'"},
    {"repeat_open", "repeat 2\ncheck\n",
     "t.scn:1:1: error: 'repeat' at line 1 is not closed by 'end'"},
    {"repeat_no_count", "repeat\nend\n",
     "t.scn:1:7: error: expected a repeat count after 'repeat'"},
    // ---- names
    {"process_missing", w("munmap\n"), "t.scn:4:7: error: expected a process name after 'munmap'"},
    {"process_bad", w("munmap 1p buf\n"),
     "t.scn:4:8: error: expected a process name after 'munmap', got '1p'"},
    {"process_unknown", w("munmap q buf\n"),
     "t.scn:4:8: error: unknown process 'q' (declare it with 'process q' or 'fork')"},
    {"process_twice", w("fork p p\n"),
     "t.scn:4:8: error: process 'p' is already declared at line 2"},
    {"device_unknown", w("release d1\n"),
     "t.scn:4:9: error: unknown device 'd1' (declare it with 'device d1 private')"},
    {"device_twice", w("device d0 coherent\n"),
     "t.scn:4:8: error: device 'd0' is already declared at line 1"},
    {"device_option", w("device d1 private x=1\n"),
     "t.scn:4:19: error: unexpected 'x=1' after 'device d1 private' (options: mem=SIZE)"},
    // ---- sizes
    {"size_not", w("mmap p b2 x2\n"),
     "t.scn:4:11: error: expected a size after 'mmap p b2', got 'x2'"},
    {"size_bad", w("mmap p b2 4M+\n"),
     "t.scn:4:14: error: invalid '4M+' after 'mmap p b2': expected a number after '+', got the "
     "end"},
    {"size_negative", w("mmap p b2 4K-8K\n"),
     "t.scn:4:11: error: '4K-8K' after 'mmap p b2' is negative (-4096)"},
    {"memory_size", "config sysmem=5000\n",
     "t.scn:1:15: error: sysmem=5000 must be a positive multiple of the page size (4K)"},
    {"align_pow2", w("mmap p b2 4M align=3K\n"),
     "t.scn:4:20: error: align=3K is not a power of two"},
    // ---- region specs
    {"spec_missing", w("munmap p\n"), "t.scn:4:9: error: expected a region spec after 'munmap p'"},
    {"spec_bad", w("munmap p +4K\n"),
     "t.scn:4:10: error: expected a region spec after 'munmap p', got '+4K'"},
    {"spec_unknown", w("munmap p bof\n"),
     "t.scn:4:10: error: unknown region 'bof' (define it with 'mmap', 'region' or 'mremap')"},
    {"spec_offset_missing", w("munmap p buf+\n"),
     "t.scn:4:14: error: expected an offset after '+' in region spec 'buf+'"},
    {"spec_length_bad", w("munmap p buf+4K:y\n"),
     "t.scn:4:17: error: expected a length after ':' in region spec 'buf+4K:y', got 'y'"},
    {"spec_separator", w("munmap p buf-4K\n"),
     "t.scn:4:13: error: expected '+' or ':' after region name 'buf' in region spec 'buf-4K'"},
    {"spec_start_out", w("munmap p buf+3M\n"),
     "t.scn:4:10: error: region spec 'buf+3M' starts at 3M, past the end of region 'buf' (2M)"},
    {"spec_end_out", w("munmap p buf+1M:2M\n"),
     "t.scn:4:10: error: region spec 'buf+1M:2M' ends at 3M, past the end of region 'buf' (2M)"},
    // ---- patterns
    {"pattern_missing", w("write p buf\n"),
     "t.scn:4:12: error: expected a pattern after 'write p buf'"},
    {"pattern_unknown", w("write p buf ones\n"),
     "t.scn:4:13: error: expected a pattern after 'write p buf', got 'ones' (patterns: zero, "
     "index, index+C, index-C, negindex, const(V), rand(S))"},
    {"pattern_bad", w("write p buf const(1/0)\n"),
     "t.scn:4:20: error: invalid pattern 'const(1/0)' after 'write p buf': division by zero"},
    {"pattern_wide", w("write p buf index+4G\n"),
     "t.scn:4:18: error: invalid pattern 'index+4G' after 'write p buf': 4294967296 does not fit "
     "in a 32-bit word"},
    {"pattern_seed", w("write p buf rand(1-2)\n"),
     "t.scn:4:18: error: invalid pattern 'rand(1-2)' after 'write p buf': seed -1 is negative"},
    // ---- keywords and options
    {"keyword_wrong", w("mprotect p buf rwx\n"),
     "t.scn:4:16: error: expected rw, r or none after 'mprotect p buf', got 'rwx'"},
    {"keyword_missing", w("madvise p buf\n"),
     "t.scn:4:14: error: expected hugepage, nohugepage, dontneed, free or collapse after "
     "'madvise p buf'"},
    {"option_twice", w("mmap p b2 4M shared shared\n"),
     "t.scn:4:21: error: option 'shared' is given twice"},
    {"mmap_option", w("mmap p b2 4M huge\n"),
     "t.scn:4:14: error: unexpected 'huge' after 'mmap p b2 4M' (options: prot=rw|r|none shared "
     "align=SIZE hugepage nohugepage)"},
    {"thp_conflict", w("mmap p b2 4M hugepage nohugepage\n"),
     "t.scn:4:23: error: 'nohugepage' conflicts with 'hugepage'"},
    {"mremap_option", w("mremap p buf nb fixed\n"),
     "t.scn:4:17: error: unexpected 'fixed' after 'mremap p buf nb' (options: size=SIZE to=SPEC "
     "dontunmap)"},
    {"region_eq", w("region r buf\n"),
     "t.scn:4:10: error: expected '=' after 'region r', got 'buf'"},
    // ---- config and expect_folio
    {"config_empty", "config\n", "t.scn:1:7: error: expected KEY=VALUE after 'config'"},
    {"config_no_eq", "config thp\n",
     "t.scn:1:8: error: expected KEY=VALUE after 'config', got 'thp'"},
    {"config_unknown", "config thp_mode=never\n",
     "t.scn:1:8: error: unknown config key 'thp_mode' (keys: sysmem, thp, seed, check)"},
    {"config_twice", "config thp=never\nconfig seed=2 thp=always\n",
     "t.scn:2:15: error: config key 'thp' is already set at line 1"},
    {"folio_no_eq", w("expect_folio p buf order\n"),
     "t.scn:4:20: error: expected key=value after 'expect_folio p buf', got 'order' (keys: order= "
     "where= mapped= mapcount= refcount=)"},
    {"folio_unknown", w("expect_folio p buf size=2M\n"),
     "t.scn:4:20: error: unknown key 'size' for 'expect_folio' (keys: order= where= mapped= "
     "mapcount= refcount=)"},
    {"folio_twice", w("expect_folio p buf order=0 order=9\n"),
     "t.scn:4:28: error: key 'order' is given twice"},
    {"folio_where", w("expect_folio p buf where=host\n"),
     "t.scn:4:26: error: expected system or device:NAME for 'where=', got 'host'"},
    {"folio_where_name", w("expect_folio p buf where=device:9\n"),
     "t.scn:4:33: error: expected a device name after 'where=device:', got '9'"},
    {"folio_order", w("expect_folio p buf order=11\n"),
     "t.scn:4:26: error: order=11 is above the largest folio order (10)"},
    // ---- expectations
    {"expect_empty", w("munmap p buf =>\n"), "t.scn:4:16: error: expected key=value after '=>'"},
    {"expect_no_eq", w("munmap p buf => ok\n"),
     "t.scn:4:17: error: expected key=value after '=>', got 'ok'"},
    {"expect_unknown", w("munmap p buf => pages=1\n"),
     "t.scn:4:17: error: unknown expectation 'pages' (keys: ret, cpages, faults, data, prot)"},
    {"expect_not_for_step", w("munmap p buf => data=index\n"),
     "t.scn:4:17: error: 'munmap' has no 'data' to compare (it gives: ret)"},
    {"expect_twice", w("munmap p buf => ret=0 ret=-EINVAL\n"),
     "t.scn:4:23: error: expectation 'ret' is given twice"},
    {"ret_errno", w("munmap p buf => ret=-EWHAT\n"),
     "t.scn:4:21: error: unknown errno 'EWHAT' for 'ret=' (errnos: -EINVAL -EFAULT -EPERM -ENOENT "
     "-EBUSY -ENOMEM -EAGAIN)"},
    {"ret_value", w("munmap p buf => ret=ok\n"),
     "t.scn:4:21: error: expected 0, -ERRNO, segv, any or a set like (0,-EBUSY) for 'ret=', got "
     "'ok'"},
    {"ret_set_open", w("munmap p buf => ret=(0,-EBUSY\n"),
     "t.scn:4:30: error: expected ')' to close the set '(0,-EBUSY' for 'ret='"},
    {"ret_set_value", w("munmap p buf => ret=(0,any)\n"),
     "t.scn:4:24: error: expected 0, -ERRNO or segv for 'ret=', got 'any'"},
    {"count_bad", w("migrate_to_sys d0 p buf => cpages=many\n"),
     "t.scn:4:35: error: expected a count for 'cpages=', got 'many'"},
    {"prot_name", w("snapshot d0 p buf => prot=read|exec\n"),
     "t.scn:4:32: error: unknown protection 'exec' for 'prot=' (names: error none read write pmd "
     "pud zero dev_private_local dev_private_remote dev_coherent_local dev_coherent_remote, or a "
     "hex byte like 0x05)"},
    {"prot_byte", w("snapshot d0 p buf => prot=0x100\n"),
     "t.scn:4:27: error: '0x100' is not a byte"},
    {"prot_bracket", w("snapshot d0 p buf => prot[1=read\n"),
     "t.scn:4:28: error: expected ']' to close 'prot[1'"},
    {"prot_empty_range", w("snapshot d0 p buf => prot[4..2]=read\n"),
     "t.scn:4:22: error: 'prot[4..2]' is an empty page range"},
    {"prot_outside", w("snapshot d0 p buf => prot[512]=read\n"),
     "t.scn:4:22: error: 'prot[512]' is outside the 512 pages of the spec"},
    {"prot_index", w("snapshot d0 p buf => prot[..4]=read\n"),
     "t.scn:4:27: error: expected a page index in 'prot[..4]'"},
};

class ParseErrors : public ::testing::TestWithParam<ErrorCase> {};

// The file is rejected with exactly the expected first diagnostic.
TEST_P(ParseErrors, ExactDiagnostic) {
  const ErrorCase& c = GetParam();
  EXPECT_EQ(testing::parse_error(c.text), c.expected) << c.text;
}

INSTANTIATE_TEST_SUITE_P(Scenario, ParseErrors, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& param) {
                           return std::string(param.param.name);
                         });

// More cases than kMaxCases is refused at the vary line that crosses the limit.
TEST(ParseErrorsVary, TooManyCases) {
  std::string text;
  for (int i = 0; i < 11; ++i) text += "vary v" + std::to_string(i) + " = 1 | 2\n";
  EXPECT_EQ(testing::parse_error(text),
            "t.scn:11:1: error: the 'vary' lines give more than 1024 cases");
}

// parse_scenario wants exactly one case.
TEST(ParseErrorsVary, OneCaseWanted) {
  ParseResult<Scenario> r = parse_scenario("t.scn", "config seed=1\nvary s = 1 | 2\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.errors()[0].format(),
            "t.scn:2:1: error: the 'vary' lines give 2 cases where one was expected");
}

// An error that appears only in one case names the case.
TEST(ParseErrorsVary, ErrorNamesTheCase) {
  EXPECT_EQ(testing::parse_error("vary s = 2M | 3M\nprocess p\nmmap p buf 2M\nmunmap p buf:${s}\n"),
            "t.scn:4:10: error: region spec 'buf:3M' ends at 3M, past the end of region 'buf' "
            "(2M) (in the case s=3M)");
}

// An unclosed concurrent block is reported at its `concurrent` line, even
// while a thread is open.
TEST(ParseErrorsBlocks, UnclosedConcurrent) {
  EXPECT_EQ(testing::parse_error("concurrent\nthread A\ncheck\n"),
            "t.scn:1:1: error: 'concurrent' at line 1 is not closed by 'end'");
}

// Blocks nest at most kMaxBlockDepth deep.
TEST(ParseErrorsBlocks, DepthLimit) {
  std::string ok;
  for (size_t i = 0; i < kMaxBlockDepth; ++i) ok += "repeat 1\n";
  for (size_t i = 0; i < kMaxBlockDepth; ++i) ok += "end\n";
  testing::parse_ok(ok);
  std::string deep;
  for (size_t i = 0; i <= kMaxBlockDepth; ++i) deep += "repeat 1\n";
  EXPECT_EQ(testing::parse_error(deep), "t.scn:65:1: error: blocks nested deeper than 64");
}

}  // namespace
}  // namespace hmmsim::scenario
