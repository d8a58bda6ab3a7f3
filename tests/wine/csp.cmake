# wine.csp: signumcsp.dll registered by regsvr32 in the run's prefix and driven through Wine's
# own CryptoAPI by test_csp.exe, against a real server and signum-agent.exe (test_csp_wine.py).
add_test(NAME wine.csp COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_csp_wine.py)
# RESOURCE_LOCK wine_csp: wine32.csp registers and unregisters the x86 CSP in the same prefix.
set_tests_properties(wine.csp PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 600 RESOURCE_LOCK wine_csp
  ENVIRONMENT
  "${WINE_ENV};SIGNUM_SERVER_BIN=$<TARGET_FILE:signum-server>;PYTHONDONTWRITEBYTECODE=1")
