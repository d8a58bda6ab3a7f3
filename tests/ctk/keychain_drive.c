/* signum-util keychain's macOS code (agent-core/src/util/keychain_macos.c) on Linux: the same
 * file, linked into this small program in place of signum-util, runs the host app named by
 * SIGNUM_HOST_APP (a stub script in test_ctk_keychain.py). argv is what follows
 * "signum-util keychain". */
#include "platform.h"

int main(int argc, char **argv)
{
    return util_cmd_keychain(argc, argv);
}
