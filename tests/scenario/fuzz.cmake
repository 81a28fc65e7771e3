# libFuzzer target for the scenario parser (clang only, option HMMSIM_FUZZ).
#
# parser_fuzz feeds arbitrary bytes to parse_cases and checks that every
# accepted case prints (format_scenario) to text that parses back to the same
# case. The ctest test scenario_parser_fuzz_smoke runs it for a bounded time
# from the seed corpus in corpus/; new inputs go to the build tree, never to
# the source tree. Long campaigns are run by hand:
#   build-clang/tests/parser_fuzz -dict=tests/scenario/scn.dict NEWDIR tests/scenario/corpus
if(NOT HMMSIM_FUZZ)
  return()
endif()

set(HMMSIM_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined)
add_executable(parser_fuzz ${CMAKE_CURRENT_SOURCE_DIR}/scenario/parser_fuzz.cc)
target_compile_options(parser_fuzz PRIVATE -O1 ${HMMSIM_FUZZ_FLAGS})
target_link_options(parser_fuzz PRIVATE ${HMMSIM_FUZZ_FLAGS})
target_link_libraries(parser_fuzz PRIVATE hmmsim_scenario_fuzz)

set(HMMSIM_FUZZ_WORK ${CMAKE_CURRENT_BINARY_DIR}/parser_fuzz.work)
file(MAKE_DIRECTORY ${HMMSIM_FUZZ_WORK}/corpus ${HMMSIM_FUZZ_WORK}/artifacts)
add_test(NAME scenario_parser_fuzz_smoke
         COMMAND parser_fuzz -max_total_time=20 -timeout=10 -rss_limit_mb=2048
                 -dict=${CMAKE_CURRENT_SOURCE_DIR}/scenario/scn.dict
                 -artifact_prefix=${HMMSIM_FUZZ_WORK}/artifacts/
                 ${HMMSIM_FUZZ_WORK}/corpus ${CMAKE_CURRENT_SOURCE_DIR}/scenario/corpus
         WORKING_DIRECTORY ${HMMSIM_FUZZ_WORK})
set_tests_properties(scenario_parser_fuzz_smoke PROPERTIES LABELS fuzz TIMEOUT 120)
