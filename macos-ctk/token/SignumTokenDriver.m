/* The token driver: CryptoTokenKit asks it for the token of each published configuration. */
#import "SignumToken.h"

NSError *SignumTokenError(sgtk_error code, const char *why)
{
    NSString *text = [NSString stringWithUTF8String:why && *why ? why : sgtk_error_name(code)];
    return [NSError errorWithDomain:TKErrorDomain
                               code:(NSInteger)code
                           userInfo:@{NSLocalizedDescriptionKey : text ? text : @"Signum token"}];
}

@implementation SignumTokenDriver

- (instancetype)init
{
    self = [super init];
    if (self)
        self.delegate = self;
    return self;
}

- (nullable TKToken *)tokenDriver:(TKTokenDriver *)driver
            tokenForConfiguration:(TKTokenConfiguration *)configuration
                            error:(NSError **)error
{
    (void)driver;
    return [[SignumToken alloc] initWithTokenDriver:self configuration:configuration error:error];
}

@end
