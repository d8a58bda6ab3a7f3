# The Objective-C on Linux, with clang against GNUstep's Foundation (Debian libgnustep-base-dev)
# and the CryptoTokenKit/Security declarations in sdk/:
#  1. ctk-objc-arc: every .m of token/ and app/ checked as on a Mac, -fobjc-arc -Werror (syntax
#     and semantics; the GNUstep-2 runtime ABI, since GNUstep's gcc runtime has no ARC);
#  2. ctk-objc-drive: the same files compiled without ARC for the gcc runtime, linked with the
#     stand-in of the CryptoTokenKit base classes (standin/) and the shim, and driven against a
#     real server by tests/ctk/test_ctk_objc.py.
# Skipped (with a message) where clang or GNUstep's headers are missing.
find_program(SIGNUM_OBJC_CLANG NAMES clang)
find_path(SIGNUM_GNUSTEP_INCLUDE Foundation/Foundation.h PATHS /usr/include/GNUstep NO_DEFAULT_PATH)
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
                OUTPUT_VARIABLE SIGNUM_GCC_INCLUDE OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT SIGNUM_OBJC_CLANG OR NOT SIGNUM_GNUSTEP_INCLUDE OR NOT EXISTS "${SIGNUM_GCC_INCLUDE}/objc/runtime.h")
  message(STATUS "macos-ctk: no clang or GNUstep headers; the Objective-C is not compiled")
  return()
endif()

# gcc's <objc/runtime.h> defines object_getClass() inline by dereferencing an id, which clang
# refuses for the GNUstep runtimes; the ARC pass reads a copy made here at configure time with
# that one body replaced (and its quoted includes made system ones). Nothing of it is committed.
set(ctk_overlay ${CMAKE_CURRENT_BINARY_DIR}/objc-overlay)
file(READ "${SIGNUM_GCC_INCLUDE}/objc/runtime.h" ctk_runtime_h)
string(REPLACE "return object->class_pointer;" "return Nil;" ctk_runtime_h "${ctk_runtime_h}")
string(REGEX REPLACE "#include \"([a-z-]+\\.h)\"" "#include <objc/\\1>" ctk_runtime_h "${ctk_runtime_h}")
file(WRITE ${ctk_overlay}/objc/runtime.h "${ctk_runtime_h}")

set(ctk_objc_sources token/SignumTokenDriver.m token/SignumToken.m token/SignumTokenSession.m
                     app/SignumHost.m app/main.m)
set(ctk_flags -DGNUSTEP -DGNUSTEP_BASE_LIBRARY=1 -DGNU_RUNTIME=1 -fexceptions -fobjc-exceptions
    -D_NATIVE_OBJC_EXCEPTIONS -fconstant-string-class=NSConstantString
    -isystem ${SIGNUM_GNUSTEP_INCLUDE} -isystem ${SIGNUM_GCC_INCLUDE}
    -I${CMAKE_CURRENT_SOURCE_DIR}/sdk -I${CMAKE_CURRENT_SOURCE_DIR}/shim
    -I${CMAKE_CURRENT_SOURCE_DIR}/token -I${CMAKE_CURRENT_SOURCE_DIR}/app
    -I${CMAKE_CURRENT_SOURCE_DIR}/standin -I${PROJECT_SOURCE_DIR}/agent-core/include
    -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wimplicit-fallthrough -Wformat=2)

set(ctk_arc_stamps)
foreach(src ${ctk_objc_sources})
  get_filename_component(base ${src} NAME_WE)
  set(stamp ${CMAKE_CURRENT_BINARY_DIR}/arc-${base}.checked)
  add_custom_command(OUTPUT ${stamp}
    COMMAND ${SIGNUM_OBJC_CLANG} -fobjc-arc -fobjc-runtime=gnustep-2.0 -fsyntax-only
            -isystem ${ctk_overlay} ${ctk_flags} ${CMAKE_CURRENT_SOURCE_DIR}/${src}
    COMMAND ${CMAKE_COMMAND} -E touch ${stamp}
    DEPENDS ${src} shim/sgtk.h token/SignumToken.h app/SignumHost.h
            sdk/CryptoTokenKit/CryptoTokenKit.h sdk/Security/Security.h
    COMMENT "clang -fobjc-arc -Werror ${src}" VERBATIM)
  list(APPEND ctk_arc_stamps ${stamp})
endforeach()
add_custom_target(ctk-objc-arc ALL DEPENDS ${ctk_arc_stamps})

if(NOT SIGNUM_BUILD_TESTS)
  return()
endif()
# The stand-in build: main.m is left out (the driver calls SignumHostMain itself).
set(ctk_mrc_objects)
foreach(src token/SignumTokenDriver.m token/SignumToken.m token/SignumTokenSession.m
            app/SignumHost.m standin/CTKStandin.m ../tests/ctk/ctk_objc_drive.m)
  get_filename_component(base ${src} NAME_WE)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/mrc-${base}.o)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${SIGNUM_OBJC_CLANG} -fno-objc-arc -fobjc-runtime=gcc -g -c ${ctk_flags}
            ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${src} shim/sgtk.h token/SignumToken.h app/SignumHost.h standin/CTKStandin.h
            sdk/CryptoTokenKit/CryptoTokenKit.h sdk/Security/Security.h
    COMMENT "clang (gcc runtime, stand-in) ${src}" VERBATIM)
  list(APPEND ctk_mrc_objects ${obj})
endforeach()
set(ctk_drive ${CMAKE_CURRENT_BINARY_DIR}/ctk-objc-drive)
add_custom_command(OUTPUT ${ctk_drive}
  COMMAND ${SIGNUM_OBJC_CLANG} ${ctk_mrc_objects} $<TARGET_FILE:signum-ctk-shim>
          $<TARGET_FILE:signum-client> $<TARGET_FILE:signum_common> ${MBEDX509_STATIC}
          ${MBEDCRYPTO_STATIC} -lgnustep-base -lobjc -lpthread -o ${ctk_drive}
  DEPENDS ${ctk_mrc_objects} signum-ctk-shim signum-client signum_common
  COMMENT "linking ctk-objc-drive (the token's classes over the CryptoTokenKit stand-in)" VERBATIM)
add_custom_target(ctk-objc-drive ALL DEPENDS ${ctk_drive})
set(SIGNUM_CTK_OBJC_DRIVE ${ctk_drive} PARENT_SCOPE)
