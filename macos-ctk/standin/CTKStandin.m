/* A stand-in of the CryptoTokenKit and Security classes and functions that sdk/ declares, for
 * the Linux test that links the token's classes and drives them (tests/ctk/ctk_objc_drive.m).
 * Built without ARC for GNUstep's gcc runtime. It keeps state in memory and checks nothing the
 * real frameworks check (entitlements, sandbox, the token daemon, the keychain); see README.md
 * "What the Linux build proves". Not part of any product. */
#import "CTKStandin.h"

NSString *const TKErrorDomain = @"CryptoTokenKit";

#define ALG(name, text) const SecKeyAlgorithm kSecKeyAlgorithm##name = (SecKeyAlgorithm) @text
ALG(RSASignatureDigestPKCS1v15Raw, "algid:sign:RSA:digest-PKCS1v15");
ALG(RSASignatureDigestPKCS1v15SHA256, "algid:sign:RSA:digest-PKCS1v15:SHA256");
ALG(RSASignatureDigestPKCS1v15SHA384, "algid:sign:RSA:digest-PKCS1v15:SHA384");
ALG(RSASignatureDigestPKCS1v15SHA512, "algid:sign:RSA:digest-PKCS1v15:SHA512");
ALG(RSASignatureDigestPSSSHA256, "algid:sign:RSA:digest-PSS:SHA256:SHA256:32");
ALG(RSASignatureDigestPSSSHA384, "algid:sign:RSA:digest-PSS:SHA384:SHA384:48");
ALG(RSASignatureDigestPSSSHA512, "algid:sign:RSA:digest-PSS:SHA512:SHA512:64");
ALG(ECDSASignatureDigestX962, "algid:sign:ECDSA:digest-X962");
ALG(ECDSASignatureDigestX962SHA256, "algid:sign:ECDSA:digest-X962:SHA256");
ALG(ECDSASignatureDigestX962SHA384, "algid:sign:ECDSA:digest-X962:SHA384");
ALG(ECDSASignatureDigestX962SHA512, "algid:sign:ECDSA:digest-X962:SHA512");

void CFRelease(CFTypeRef cf)
{
    [(id)cf release];
}

/* The real one parses X.509; a DER SEQUENCE is enough to catch a wrong buffer here. */
SecCertificateRef SecCertificateCreateWithData(CFAllocatorRef allocator, CFDataRef data)
{
    NSData *der = (NSData *)data;
    (void)allocator;
    if (der.length < 2 || ((const uint8_t *)der.bytes)[0] != 0x30)
        return NULL;
    return (SecCertificateRef)[der copy];
}

/* Every stand-in object keeps its properties in its SIGNUM_SDK_STATE dictionary. */
#define STATE                                                                                      \
    -(NSMutableDictionary *)sdkState                                                               \
    {                                                                                              \
        if (!_sdkState)                                                                            \
            _sdkState = [[NSMutableDictionary alloc] init];                                        \
        return _sdkState;                                                                          \
    }                                                                                              \
    -(void)dealloc                                                                                 \
    {                                                                                              \
        [_sdkState release];                                                                       \
        [super dealloc];                                                                           \
    }
#define GET(key) [[self sdkState] objectForKey:key]
#define SET(key, obj)                                                                              \
    ((obj) ? [[self sdkState] setObject:(obj) forKey:key]                                          \
           : [[self sdkState] removeObjectForKey:key])
/* Weak references (delegates) are kept as non-retained values. */
#define GET_WEAK(key)      [GET(key) nonretainedObjectValue]
#define SET_WEAK(key, obj) SET(key, [NSValue valueWithNonretainedObject:obj])

@interface NSObject (StandinState)
- (NSMutableDictionary *)sdkState;
@end

@implementation TKTokenKeyAlgorithm
STATE
- (instancetype)initWithStandinAlgorithm:(SecKeyAlgorithm)algorithm
{
    self = [super init];
    SET(@"algorithm", (NSString *)algorithm);
    return self;
}
- (BOOL)isAlgorithm:(SecKeyAlgorithm)algorithm
{
    return [GET(@"algorithm") isEqual:(NSString *)algorithm];
}
@end

@implementation TKTokenKeychainItem
STATE
- (instancetype)initWithStandinObjectID:(id)objectID
{
    self = [super init];
    SET(@"objectID", objectID);
    return self;
}
- (id)objectID
{
    return GET(@"objectID");
}
- (NSString *)label
{
    return GET(@"label");
}
- (void)setLabel:(NSString *)label
{
    SET(@"label", [[label copy] autorelease]);
}
- (NSDictionary *)constraints
{
    return GET(@"constraints");
}
- (void)setConstraints:(NSDictionary *)constraints
{
    SET(@"constraints", [[constraints copy] autorelease]);
}
@end

@implementation TKTokenKeychainCertificate
- (instancetype)initWithCertificate:(SecCertificateRef)certificateRef objectID:(id)objectID
{
    if (!certificateRef) {
        [self release];
        return nil;
    }
    return [self initWithStandinObjectID:objectID];
}
@end

#define FLAG(getter, setter, key)                                                                  \
    -(BOOL)getter                                                                                  \
    {                                                                                              \
        return [GET(key) boolValue];                                                               \
    }                                                                                              \
    -(void)setter : (BOOL)v                                                                        \
    {                                                                                              \
        SET(key, [NSNumber numberWithBool:v]);                                                     \
    }

@implementation TKTokenKeychainKey
- (instancetype)initWithCertificate:(SecCertificateRef)certificateRef objectID:(id)objectID
{
    (void)certificateRef;
    return [self initWithStandinObjectID:objectID];
}
FLAG(canSign, setCanSign, @"canSign")
FLAG(canDecrypt, setCanDecrypt, @"canDecrypt")
FLAG(canPerformKeyExchange, setCanPerformKeyExchange, @"canPerformKeyExchange")
FLAG(isSuitableForLogin, setSuitableForLogin, @"suitableForLogin")
@end

@implementation TKTokenKeychainContents
STATE
- (void)fillWithItems:(NSArray *)items
{
    SET(@"items", [[items copy] autorelease]);
}
- (NSArray *)standinItems
{
    return GET(@"items");
}
@end

@implementation TKTokenConfiguration
STATE
- (NSString *)instanceID
{
    return GET(@"instanceID");
}
- (NSData *)configurationData
{
    return GET(@"configurationData");
}
- (void)setConfigurationData:(NSData *)data
{
    SET(@"configurationData", [[data copy] autorelease]);
}
- (NSArray *)keychainItems
{
    return GET(@"keychainItems") ? GET(@"keychainItems") : [NSArray array];
}
- (void)setKeychainItems:(NSArray *)items
{
    SET(@"keychainItems", [[items copy] autorelease]);
}
@end

static NSMutableDictionary *registered_drivers;

@implementation TKTokenDriverConfiguration
STATE
+ (void)standinRegisterClassID:(NSString *)classID
{
    TKTokenDriverConfiguration *c = [[TKTokenDriverConfiguration alloc] init];
    if (!registered_drivers)
        registered_drivers = [[NSMutableDictionary alloc] init];
    [registered_drivers setObject:c forKey:classID];
    [c release];
}
+ (NSDictionary *)driverConfigurations
{
    return registered_drivers ? registered_drivers : [NSDictionary dictionary];
}
- (NSMutableDictionary *)tokens
{
    if (!GET(@"tokens"))
        SET(@"tokens", [NSMutableDictionary dictionary]);
    return GET(@"tokens");
}
- (NSDictionary *)tokenConfigurations
{
    return [self tokens];
}
- (TKTokenConfiguration *)addTokenConfigurationForTokenInstanceID:(NSString *)instanceID
{
    TKTokenConfiguration *c = [[[TKTokenConfiguration alloc] init] autorelease];
    [[c sdkState] setObject:instanceID forKey:@"instanceID"];
    [[self tokens] setObject:c forKey:instanceID];
    return c;
}
- (void)removeTokenConfigurationForTokenInstanceID:(NSString *)instanceID
{
    [[self tokens] removeObjectForKey:instanceID];
}
@end

@implementation TKTokenDriver
STATE
- (id)delegate
{
    return GET_WEAK(@"delegate");
}
- (void)setDelegate:(id)delegate
{
    SET_WEAK(@"delegate", delegate);
}
@end

@implementation TKToken
STATE
- (instancetype)initWithTokenDriver:(TKTokenDriver *)tokenDriver instanceID:(NSString *)instanceID
{
    self = [super init];
    SET_WEAK(@"driver", tokenDriver);
    SET(@"instanceID", instanceID);
    SET(@"contents", [[[TKTokenKeychainContents alloc] init] autorelease]);
    return self;
}
- (id)delegate
{
    return GET_WEAK(@"delegate");
}
- (void)setDelegate:(id)delegate
{
    SET_WEAK(@"delegate", delegate);
}
- (TKTokenKeychainContents *)keychainContents
{
    return GET(@"contents");
}
@end

@implementation TKTokenSession
STATE
- (instancetype)initWithToken:(TKToken *)token
{
    self = [super init];
    SET(@"token", token);
    return self;
}
- (TKToken *)token
{
    return GET(@"token");
}
- (id)delegate
{
    return GET_WEAK(@"delegate");
}
- (void)setDelegate:(id)delegate
{
    SET_WEAK(@"delegate", delegate);
}
@end
