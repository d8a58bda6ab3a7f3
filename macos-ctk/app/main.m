/* Signum.app: runs once and exits (no window); launched at login by launchd and by
 * `signum-util keychain`. */
#import "SignumHost.h"

int main(int argc, const char *argv[])
{
    return SignumHostMain(argc, argv);
}
