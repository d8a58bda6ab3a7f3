/* The Signum token extension: a persistent CryptoTokenKit token (no smart card, no token-type)
 * whose keys are the Signum keys the host app published. Thin: every decision is in the C shim
 * (shim/sgtk.h); these classes translate between CryptoTokenKit and it. */
#import <CryptoTokenKit/CryptoTokenKit.h>

#include "sgtk.h"

NS_ASSUME_NONNULL_BEGIN

/* The extension's principal class (Info.plist NSExtensionPrincipalClass); its own delegate. */
@interface SignumTokenDriver : TKTokenDriver <TKTokenDriverDelegate>
@end

/* One token per configuration the host app published; holds the shim's client. */
@interface SignumToken : TKToken <TKTokenDelegate> {
    sgtk_token *_shim;
}
- (nullable instancetype)initWithTokenDriver:(SignumTokenDriver *)driver
                               configuration:(TKTokenConfiguration *)configuration
                                       error:(NSError **)error;
@property(readonly) sgtk_token *shim;
@end

@interface SignumTokenSession : TKTokenSession <TKTokenSessionDelegate>
@end

/* An NSError in TKErrorDomain with the shim's code and reason. */
NSError *SignumTokenError(sgtk_error code, const char *why);

NS_ASSUME_NONNULL_END
