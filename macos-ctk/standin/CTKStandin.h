/* Linux test only: what the stand-in of CryptoTokenKit offers beyond Apple's API, so a test can
 * play the system's part (register the extension's class, ask for an algorithm, read what a
 * token holds). */
#import <CryptoTokenKit/CryptoTokenKit.h>

@interface TKTokenKeyAlgorithm (Standin)
- (instancetype)initWithStandinAlgorithm:(SecKeyAlgorithm)algorithm;
@end

@interface TKTokenKeychainContents (Standin)
@property(readonly) NSArray *standinItems;
@end

@interface TKTokenDriverConfiguration (Standin)
+ (void)standinRegisterClassID:(NSString *)classID;
@end
