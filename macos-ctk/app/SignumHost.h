/* The host app: the container of the token extension (Apple requires one) and what
 * `signum-util keychain --add KEY | --remove KEY | --list | --sync` runs. It publishes, through
 * TKTokenDriverConfiguration, one TKTokenKeychainCertificate and one TKTokenKeychainKey per
 * configured key; the configuration's data is the list of key names. */
#import <CryptoTokenKit/CryptoTokenKit.h>

/* The extension's class id (its bundle identifier, Info.plist com.apple.ctk.class-id) and the
 * one token instance per user. */
#define SIGNUM_TOKEN_CLASS_ID    @"com.signum.Signum.Token"
#define SIGNUM_TOKEN_INSTANCE_ID @"signum"

/* argv: --add KEY | --remove KEY | --list | --sync; no argument (a launch from Finder or
 * launchd) is --sync. Clears and republishes every time: the system's token daemon may have
 * restarted and dropped a configuration it had. Returns the exit code (0 ok, 1 failed,
 * 2 usage). */
int SignumHostMain(int argc, const char *const *argv);
