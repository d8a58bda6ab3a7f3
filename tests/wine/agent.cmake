# wine.agent: signum-agent.exe end to end under wine64 against a real signum-server
# (tests/wine/test_agent_wine.py; the shared harness is tests/wine/wine_harness.py).
add_test(NAME wine.agent COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_agent_wine.py)
set_tests_properties(wine.agent PROPERTIES
  FIXTURES_REQUIRED wine TIMEOUT 600
  ENVIRONMENT "${WINE_ENV};SIGNUM_SERVER_BIN=$<TARGET_FILE:signum-server>;PYTHONDONTWRITEBYTECODE=1")
