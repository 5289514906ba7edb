# One helper per kind of target, so every folder's CMakeLists.txt is a few calls.

set(TOWERPS_WARNINGS -Wall -Wextra)
if(TOWERPS_WERROR)
  list(APPEND TOWERPS_WARNINGS -Werror)
endif()

if(TOWERPS_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Fuzzing: every project target gets coverage instrumentation and ASan + UBSan (a
# UBSan report aborts, so libFuzzer sees it); fuzz/ links its targets with libFuzzer.
# The Debian libraries stay as they are (gcc-built, uninstrumented).
if(TOWERPS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TOWERPS_FUZZ needs clang: configure with CC=clang CXX=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Applies the project's compile settings to one of its own targets.
function(towerps_target_defaults target)
  target_compile_options(${target} PRIVATE ${TOWERPS_WARNINGS})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
endfunction()

# towerps_library(NAME SRCS a.cc b.cc DEPS towerps::common ...)
# Builds the folder's one library as towerps_NAME with alias towerps::NAME.
function(towerps_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(towerps_${name} STATIC ${ARG_SRCS})
  add_library(towerps::${name} ALIAS towerps_${name})
  towerps_target_defaults(towerps_${name})
  target_link_libraries(towerps_${name} PUBLIC ${ARG_DEPS})
endfunction()

# towerps_test(NAME SRCS a_test.cc DEPS towerps::common LABELS unit [TIMEOUT s])
# One GoogleTest binary per folder, registered with ctest.
function(towerps_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  towerps_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "TOWERPS_SOURCE_DIR=${PROJECT_SOURCE_DIR};TOWERPS_BINARY_DIR=${PROJECT_BINARY_DIR};TOWERPS_SHARED_DATA=${PROJECT_SOURCE_DIR}/../shared/data")
endfunction()

# towerps_bench(NAME SRCS a_bench.cc DEPS ...): a bench/ program run by bench/run.sh.
function(towerps_bench name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  towerps_target_defaults(${name})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
