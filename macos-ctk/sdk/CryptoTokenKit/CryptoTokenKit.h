/* The CryptoTokenKit API the token extension and the host app use, declared from Apple's public
 * documentation (developer.apple.com/documentation/cryptotokenkit: TKTokenDriver, TKToken,
 * TKTokenSession, TKTokenKeyAlgorithm, TKTokenKeychainContents, TKTokenKeychainItem/Key/
 * Certificate, TKTokenConfiguration, TKTokenDriverConfiguration, TKError) for the Linux CI build
 * only; on a Mac the SDK's framework is used. Exactly what token/ and app/ call, nothing more,
 * except one private instance variable per root class (SIGNUM_SDK_STATE): GNUstep's gcc
 * runtime has the fragile ABI, where instance variables must be in the @interface, and the
 * Linux stand-in (standin/) keeps its state there. The token never touches it. */
#ifndef SIGNUM_SDK_CRYPTOTOKENKIT_H
#define SIGNUM_SDK_CRYPTOTOKENKIT_H

#import <Foundation/Foundation.h>
#import <Security/Security.h>

NS_ASSUME_NONNULL_BEGIN

extern NSString *const TKErrorDomain;
typedef NS_ENUM(NSInteger, TKErrorCode) {
    TKErrorCodeNotImplemented = -1,
    TKErrorCodeCommunicationError = -2,
    TKErrorCodeCorruptedData = -3,
    TKErrorCodeCanceledByUser = -4,
    TKErrorCodeAuthenticationFailed = -5,
    TKErrorCodeObjectNotFound = -6,
    TKErrorCodeTokenNotFound = -7,
    TKErrorCodeBadParameter = -8,
    TKErrorCodeAuthenticationNeeded = -9,
};

typedef id TKTokenObjectID;
typedef NSString *TKTokenInstanceID;
typedef NSString *TKTokenDriverClassID;
typedef id TKTokenOperationConstraint;

typedef NS_ENUM(NSInteger, TKTokenOperation) {
    TKTokenOperationNone = 0,
    TKTokenOperationReadData = 1,
    TKTokenOperationSignData = 2,
    TKTokenOperationDecryptData = 3,
    TKTokenOperationPerformKeyExchange = 4,
};

@class TKToken, TKTokenDriver, TKTokenSession, TKTokenConfiguration;

#define SIGNUM_SDK_STATE                                                                           \
    {                                                                                              \
      @protected                                                                                   \
        NSMutableDictionary *_sdkState;                                                            \
    }

@interface TKTokenKeyAlgorithm : NSObject
SIGNUM_SDK_STATE
- (BOOL)isAlgorithm:(SecKeyAlgorithm)algorithm;
@end

@interface TKTokenKeychainItem : NSObject
SIGNUM_SDK_STATE
@property(copy, nullable) NSString *label;
@property(copy, nullable) NSDictionary<NSNumber *, TKTokenOperationConstraint> *constraints;
@property(readonly, copy) TKTokenObjectID objectID;
@end

@interface TKTokenKeychainCertificate : TKTokenKeychainItem
- (nullable instancetype)initWithCertificate:(SecCertificateRef)certificateRef
                                    objectID:(TKTokenObjectID)objectID;
@end

@interface TKTokenKeychainKey : TKTokenKeychainItem
- (nullable instancetype)initWithCertificate:(nullable SecCertificateRef)certificateRef
                                    objectID:(TKTokenObjectID)objectID;
@property BOOL canSign;
@property BOOL canDecrypt;
@property BOOL canPerformKeyExchange;
@property(getter=isSuitableForLogin) BOOL suitableForLogin;
@end

@interface TKTokenKeychainContents : NSObject
SIGNUM_SDK_STATE
- (void)fillWithItems:(NSArray<TKTokenKeychainItem *> *)items;
@end

@interface TKTokenConfiguration : NSObject
SIGNUM_SDK_STATE
@property(readonly) TKTokenInstanceID instanceID;
@property(copy, nullable) NSData *configurationData;
@property(copy) NSArray<TKTokenKeychainItem *> *keychainItems;
@end

@interface TKTokenDriverConfiguration : NSObject
SIGNUM_SDK_STATE
@property(class, readonly)
    NSDictionary<TKTokenDriverClassID, TKTokenDriverConfiguration *> *driverConfigurations;
@property(readonly) NSDictionary<TKTokenInstanceID, TKTokenConfiguration *> *tokenConfigurations;
- (TKTokenConfiguration *)addTokenConfigurationForTokenInstanceID:(TKTokenInstanceID)instanceID;
- (void)removeTokenConfigurationForTokenInstanceID:(TKTokenInstanceID)instanceID;
@end

@protocol TKTokenDriverDelegate <NSObject>
@optional
- (nullable TKToken *)tokenDriver:(TKTokenDriver *)driver
            tokenForConfiguration:(TKTokenConfiguration *)configuration
                            error:(NSError **)error;
@end

@interface TKTokenDriver : NSObject
SIGNUM_SDK_STATE
@property(weak, nullable) id<TKTokenDriverDelegate> delegate;
@end

@protocol TKTokenDelegate <NSObject>
@required
- (nullable TKTokenSession *)token:(TKToken *)token createSessionWithError:(NSError **)error;
@end

@interface TKToken : NSObject
SIGNUM_SDK_STATE
- (instancetype)initWithTokenDriver:(TKTokenDriver *)tokenDriver
                         instanceID:(TKTokenInstanceID)instanceID;
@property(weak, nullable) id<TKTokenDelegate> delegate;
@property(readonly, nullable) TKTokenKeychainContents *keychainContents;
@end

@protocol TKTokenSessionDelegate <NSObject>
@optional
- (BOOL)tokenSession:(TKTokenSession *)session
    supportsOperation:(TKTokenOperation)operation
             usingKey:(TKTokenObjectID)keyObjectID
            algorithm:(TKTokenKeyAlgorithm *)algorithm;
- (nullable NSData *)tokenSession:(TKTokenSession *)session
                         signData:(NSData *)dataToSign
                         usingKey:(TKTokenObjectID)keyObjectID
                        algorithm:(TKTokenKeyAlgorithm *)algorithm
                            error:(NSError **)error;
@end

@interface TKTokenSession : NSObject
SIGNUM_SDK_STATE
- (instancetype)initWithToken:(TKToken *)token;
@property(readonly) TKToken *token;
@property(weak, nullable) id<TKTokenSessionDelegate> delegate;
@end

NS_ASSUME_NONNULL_END

#endif
