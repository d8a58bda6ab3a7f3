# test_csp.exe: signumcsp.dll through Wine's own CryptoAPI (advapi32 only; tests/wine/csp.cmake).
add_executable(test_csp ${CMAKE_CURRENT_LIST_DIR}/test_csp.c)
target_link_libraries(test_csp PRIVATE advapi32)
target_link_options(test_csp PRIVATE -static)
add_dependencies(test_csp signumcsp)
