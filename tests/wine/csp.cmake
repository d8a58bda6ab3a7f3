# wine.csp: signumcsp.dll registered by regsvr32 in the run's prefix and driven through Wine's
# own CryptoAPI by test_csp.exe, against a real server and signum-agent.exe (test_csp_wine.py).
add_test(NAME wine.csp COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_csp_wine.py)
set_tests_properties(wine.csp PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 600
  ENVIRONMENT
  "${WINE_ENV};SIGNUM_SERVER_BIN=$<TARGET_FILE:signum-server>;PYTHONDONTWRITEBYTECODE=1")
