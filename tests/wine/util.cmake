# wine.util: signum-util.exe under wine64 against a real signum-server and signum-agent.exe:
# status, keys, sign (verified with openssl), doctor, service-account enrollment then signing
# with it, and certstore (read back by certstore_dump.exe). `certstore --remove` without a key
# removes every Signum certificate in the prefix's CurrentUser\My: a Wine test that puts
# Signum certificates there takes the same RESOURCE_LOCK.
add_test(NAME wine.util
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_util_wine.py)
set_tests_properties(wine.util PROPERTIES
  FIXTURES_REQUIRED wine TIMEOUT 600 RESOURCE_LOCK wine_certstore
  ENVIRONMENT
  "${WINE_ENV};SIGNUM_SERVER_BIN=$<TARGET_FILE:signum-server>;PYTHONDONTWRITEBYTECODE=1")

# wine.installer: signum-setup.exe /S and its uninstaller, in a prefix of their own.
add_test(NAME wine.installer COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_installer_wine.sh)
# It takes the x86 path (SysWOW64's emulated regsvr32) where wine32 runs under qemu-i386, so it
# takes turns with the wine32.* tests (wine32.cmake).
set_tests_properties(wine.installer PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 600
                     RESOURCE_LOCK wine32_emulated ENVIRONMENT "${WINE_ENV}")
