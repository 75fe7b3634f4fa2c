# careseal_library(NAME SOURCES ... DEPS ...)
#   A layer of the system. Every layer includes from the repository root
#   ("services/common/status.h"); which layers may use which is expressed by
#   DEPS here and checked by the layering test (tests/layering_test.sh).
function(careseal_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${CARESEAL_WARNINGS})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

function(careseal_binary name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${CARESEAL_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()

# careseal_use_jemalloc(TARGET)
#   Serving processes allocate through Debian's jemalloc (libjemalloc-dev):
#   glibc malloc/free was a fifth of the server's CPU under load
#   (docs/PERFORMANCE.md). Its compiled-in options (decay of freed pages) are
#   in cmake/jemalloc_conf.cc. Without the package the target keeps glibc
#   malloc.
find_library(CARESEAL_JEMALLOC NAMES jemalloc)
function(careseal_use_jemalloc name)
  if(CARESEAL_JEMALLOC)
    target_link_libraries(${name} PRIVATE ${CARESEAL_JEMALLOC})
    target_sources(${name} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/jemalloc_conf.cc)
  else()
    message(WARNING "libjemalloc-dev not found: ${name} uses glibc malloc")
  endif()
endfunction()

# Where tests/postgres/cluster.sh writes the test cluster's connection string.
set(CARESEAL_TEST_POSTGRES_FILE ${CMAKE_BINARY_DIR}/postgres-test/conninfo)

# careseal_test(NAME SOURCES ... DEPS ... LABELS area... [TIMEOUT s] [POSTGRES])
#   One GoogleTest binary registered as one CTest test carrying its area labels
#   so that `ctest -L AREA` runs one area. POSTGRES: also run it against the
#   test PostgreSQL cluster, as NAME_postgres with the extra label `postgres`
#   (tests/postgres).
function(careseal_test name)
  cmake_parse_arguments(ARG "POSTGRES" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    message(FATAL_ERROR "careseal_test(${name}): every test needs an area LABELS")
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${CARESEAL_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
  if(ARG_POSTGRES)
    add_test(NAME ${name}_postgres COMMAND ${name})
    set_tests_properties(${name}_postgres PROPERTIES
      LABELS "${ARG_LABELS};postgres" TIMEOUT ${ARG_TIMEOUT}
      FIXTURES_REQUIRED postgres_cluster
      ENVIRONMENT "CARESEAL_TEST_STORE=postgres;CARESEAL_TEST_POSTGRES_FILE=${CARESEAL_TEST_POSTGRES_FILE}")
  endif()
endfunction()
