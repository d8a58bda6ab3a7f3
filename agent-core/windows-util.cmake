# signum-util.exe: the shared command code (main.c, report.c, admin.c, enroll.c) with the
# Windows parts: the console and doctor's checks (os_win.c), enrollment with mbedTLS and a
# private DACL (enroll_win.c), `certstore` (CryptoAPI) and `providers` (the KSP's and CSP's
# own registration code). HTTPS is the agent's transport (signum-agent-base).
add_executable(signum-util
  src/util/main.c src/util/admin.c src/util/admin_api.c src/util/admin_identities.c src/util/admin_keys.c src/util/admin_audit.c src/util/admin_projects.c src/util/enroll.c src/util/os_win.c
  src/util/enroll_win.c src/util/certstore_win.c src/util/providers_win.c src/util/report.c src/util/sign_job.c
  src/util/provenance.c
  src/util/keychain_none.c)
target_include_directories(signum-util PRIVATE src ${MINGW_DEPS_INC})
target_compile_definitions(signum-util PRIVATE SIGNUM_VERSION="${PROJECT_VERSION}")
target_link_libraries(signum-util PRIVATE signum-agent-base signum-client ${MINGW_DEPS_LIB}/libcjson.a
                      ${MINGW_DEPS_LIB}/libmbedx509.a ${MINGW_DEPS_LIB}/libmbedcrypto.a
                      winhttp crypt32 ws2_32 advapi32 bcrypt)
