# wine.ksp: signumksp.dll loaded by test_ksp.exe and driven through GetKeyStorageInterface's
# table (Wine's ncrypt.dll does not route to third-party KSPs), offline and against a real
# server and signum-agent.exe; signatures checked with openssl (test_ksp_wine.py).
add_test(NAME wine.ksp COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_ksp_wine.py)
set_tests_properties(wine.ksp PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 600
  ENVIRONMENT "${WINE_ENV};SIGNUM_SERVER_BIN=$<TARGET_FILE:signum-server>;PYTHONDONTWRITEBYTECODE=1")
