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

# What signum-agent.exe and signum-util.exe share (signum/agent_config.h, signum/https.h): the
# configuration, the log, the one HTTPS transport (WinHTTP, with our own CA check and the
# machine's client certificate) and the one map of server errors to sg_status.
add_library(signum-agent-base STATIC
  src/agent/config.c src/agent/log.c src/agent/errmap.c src/agent/transport.c src/agent/nodes.c
  src/agent/transport_winhttp.c src/agent/response.c src/common/win_trust.c
  src/common/win_clientcert.c)
target_include_directories(signum-agent-base PUBLIC include ${MINGW_DEPS_INC} PRIVATE src)
target_compile_definitions(signum-agent-base PRIVATE _WIN32_WINNT=0x0A00 UNICODE _UNICODE
                                                    _POSIX_THREAD_SAFE_FUNCTIONS=200112L)
target_link_libraries(signum-agent-base PUBLIC signum-client ${MINGW_DEPS_LIB}/libcjson.a
                      winhttp crypt32 advapi32)

# signum-agent.exe and signum-util.exe: x64 only. The x86 build (cmake/mingw-w64-i686.cmake)
# exists for the providers a 32-bit host loads; they talk to the one 64-bit agent.
if(CMAKE_SIZEOF_VOID_P EQUAL 8)
  include(${CMAKE_CURRENT_LIST_DIR}/windows-agent.cmake)
  include(${CMAKE_CURRENT_LIST_DIR}/windows-util.cmake)
endif()
