# signum-agent.exe: the Windows agent. The protocol dispatch, session, retries and
# configuration are the shared sources; the OS parts are the *_win.c files (named-pipe
# listener, caller identity, WinHTTP, DACL-protected cache) and es256_mbedtls.c.
add_executable(signum-agent
  src/agent/main_win.c src/agent/cli.c src/agent/session.c src/agent/cache_win.c
  src/agent/caller_win.c src/agent/ctxtext.c src/agent/ipcserver.c src/agent/ipcserver_win.c
  src/agent/credentials.c src/agent/es256_mbedtls.c)
target_include_directories(signum-agent PRIVATE src ${MINGW_DEPS_INC})
target_compile_definitions(signum-agent PRIVATE SIGNUM_VERSION="${PROJECT_VERSION}"
                                               _WIN32_WINNT=0x0A00 UNICODE _UNICODE
                                               _POSIX_THREAD_SAFE_FUNCTIONS=200112L)
target_link_libraries(signum-agent PRIVATE signum-agent-base signum-client ${MINGW_DEPS_LIB}/libcjson.a
                      ${MINGW_DEPS_LIB}/libmbedcrypto.a winhttp crypt32 advapi32 bcrypt)
