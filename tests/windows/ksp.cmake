# test_ksp.exe: drives signumksp.dll through LoadLibrary + GetKeyStorageInterface (run by
# tests/wine/test_ksp_wine.py). It links the client library only for local hashing and
# DigestInfo; every KSP call goes through the DLL's function table.
add_executable(test_ksp ${CMAKE_CURRENT_LIST_DIR}/test_ksp.c)
target_include_directories(test_ksp PRIVATE ${CMAKE_SOURCE_DIR}/windows-ksp/src)
target_link_libraries(test_ksp PRIVATE signum-client bcrypt)
target_link_options(test_ksp PRIVATE -static)
add_dependencies(test_ksp signumksp)
