# Windows test executables for signum-util: certstore_dump.exe reads back what
# `signum-util certstore` put into CurrentUser\My (tests/wine/test_util_wine.py).
add_executable(certstore_dump ${CMAKE_CURRENT_LIST_DIR}/certstore_dump.c)
target_link_libraries(certstore_dump PRIVATE crypt32)
