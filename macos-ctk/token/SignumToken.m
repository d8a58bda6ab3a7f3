/* The token: the keychain items the host app published, and a shim client for its sessions. */
#import "SignumToken.h"

@implementation SignumToken

- (nullable instancetype)initWithTokenDriver:(SignumTokenDriver *)driver
                               configuration:(TKTokenConfiguration *)configuration
                                       error:(NSError **)error
{
    sgtk_token *shim = NULL;
    /* The agent is reached lazily: a token whose agent is down still shows its identities,
     * and its signatures fail with TKErrorCodeCommunicationError until the agent is back. */
    sgtk_error e = sgtk_token_new(NULL, &shim);
    if (e != SGTK_OK) {
        if (error)
            *error = SignumTokenError(e, "cannot create the Signum client");
        return nil;
    }
    self = [super initWithTokenDriver:driver instanceID:configuration.instanceID];
    if (!self) {
        sgtk_token_free(shim);
        return nil;
    }
    _shim = shim;
    self.delegate = self;
    [self.keychainContents fillWithItems:configuration.keychainItems];
    return self;
}

- (sgtk_token *)shim
{
    return _shim;
}

- (void)dealloc
{
    sgtk_token_free(_shim);
#if !__has_feature(objc_arc)
    /* Only the Linux stand-in test builds without ARC (GNUstep's gcc runtime has none). */
    [super dealloc];
#endif
}

- (nullable TKTokenSession *)token:(TKToken *)token createSessionWithError:(NSError **)error
{
    (void)token;
    (void)error;
    return [[SignumTokenSession alloc] initWithToken:self];
}

@end
