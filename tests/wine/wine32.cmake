# wine32.*: the x86 build (build-mingw32/: the client library, signumksp.dll, signumcsp.dll and
# their test programs) run by Debian's 32-bit loader (wine32) in the run's prefix, with the one
# x64 agent: the 32-bit hosts of issue 20 (Office's VBA signing through a 32-bit signtool.exe).
# Where the kernel runs no 32-bit programs, wine32 runs under qemu-i386 (tests/wine/loaders.sh):
# the same binaries, an emulated CPU, minutes instead of seconds (hence the time limits). Only a
# machine with neither makes them exit 77: skipped, never passed.
set(WINE32_ENV ${WINE_ENV} "SIGNUM_WINE_ARCH=x86")
set(WINE32_PY_ENV ${WINE32_ENV} "SIGNUM_SERVER_BIN=$<TARGET_FILE:signum-server>"
                  "PYTHONDONTWRITEBYTECODE=1")

add_test(NAME wine32.unit.ipc COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/run.sh
                                      tests/windows/test_ipc.exe)
add_test(NAME wine32.unit.client_crypto COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/run.sh
                                                tests/windows/test_client_crypto.exe)
set_tests_properties(wine32.unit.ipc wine32.unit.client_crypto PROPERTIES
                     FIXTURES_REQUIRED wine TIMEOUT 600 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${WINE32_ENV}")
# wine32.ksp, wine32.csp: test_ksp_wine.py and test_csp_wine.py as they are, for x86.
add_test(NAME wine32.ksp COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_ksp_wine.py)
add_test(NAME wine32.csp COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_csp_wine.py)
# wine32.mixed_arch: an x86 and an x64 host sign through one agent.
add_test(NAME wine32.mixed_arch
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/test_mixed_arch_wine.py)
set_tests_properties(wine32.ksp wine32.csp wine32.mixed_arch PROPERTIES
                     FIXTURES_REQUIRED wine TIMEOUT 1500 SKIP_RETURN_CODE 77
                     ENVIRONMENT "${WINE32_PY_ENV}")
# Under qemu-i386 an emulated x86 program that waits on a busy CPU beside another one has been
# seen to fail (wine.installer: the emulated regsvr32 of the x86 CSP exited non-zero once while
# wine32.ksp ran beside it): the emulated tests take turns (lock wine32_emulated).
set_tests_properties(wine32.ksp wine32.mixed_arch PROPERTIES RESOURCE_LOCK wine32_emulated)
set_tests_properties(wine32.csp PROPERTIES RESOURCE_LOCK "wine_csp;wine32_emulated")
# The x86 DLLs without Wine: 32-bit PE images, the exports under the undecorated names Windows
# looks up (a WINAPI function is _Name@N in the objects), no DLL beyond Windows' own.
add_test(NAME wine32.dll_exports
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/check_x86_dlls.py)
set_tests_properties(wine32.dll_exports PROPERTIES FIXTURES_REQUIRED wine TIMEOUT 60
                     ENVIRONMENT "${WINE32_ENV}")
