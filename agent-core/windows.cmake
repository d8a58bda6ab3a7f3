# agent-core on Windows (mingw-w64): the client library over a per-user named pipe,
# signum-agent.exe (WinHTTP, mbedTLS for ES256) and signum-util.exe. Third-party libraries come
# from SIGNUM_MINGW_DEPS (scripts/build-mingw-deps.sh); mbedTLS is linked statically as on
# Linux, and everything else links the static runtime, so the .exe files need no extra DLLs.
set(MINGW_DEPS_INC ${SIGNUM_MINGW_DEPS}/include)
set(MINGW_DEPS_LIB ${SIGNUM_MINGW_DEPS}/lib)
add_link_options(-static)

add_library(signum-client STATIC src/client/client.c src/client/client_win.c
                                  src/client/crypto.c src/common/ipc.c src/common/ipc_io_win.c)
target_include_directories(signum-client PUBLIC include ${MINGW_DEPS_INC} PRIVATE src)
target_link_libraries(signum-client PUBLIC signum_common ${MINGW_DEPS_LIB}/libmbedx509.a
                                           ${MINGW_DEPS_LIB}/libmbedcrypto.a
                                           Threads::Threads advapi32 bcrypt)

# signum-agent.exe and signum-util.exe
include(${CMAKE_CURRENT_LIST_DIR}/windows-agent.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/windows-util.cmake)
