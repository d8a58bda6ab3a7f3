/* signum-util keychain where there is no CryptoTokenKit (Linux, Windows): it says so. */
#include <stdio.h>

#include "platform.h"
#include "util.h"

int util_cmd_keychain(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "signum-util keychain: macOS only (it shows a key's certificate and private\n"
                    "key in the macOS Keychain through the Signum token extension, for codesign,\n"
                    "productsign and Xcode); on Linux the PKCS#11 module shows the keys to every\n"
                    "tool, on Windows 'signum-util certstore'\n");
    return EXIT_USAGE;
}
