/* A token session: which operations the token takes and the signature, both from the shim. */
#import "SignumToken.h"

/* The Security framework's constant for each shim algorithm, in the shim's order. */
static const SecKeyAlgorithm *const algorithm_constants[SGTK_ALG_COUNT] = {
    [SGTK_ALG_RSA_PKCS1_DIGESTINFO] = &kSecKeyAlgorithmRSASignatureDigestPKCS1v15Raw,
    [SGTK_ALG_RSA_PKCS1_SHA256] = &kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA256,
    [SGTK_ALG_RSA_PKCS1_SHA384] = &kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA384,
    [SGTK_ALG_RSA_PKCS1_SHA512] = &kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA512,
    [SGTK_ALG_RSA_PSS_SHA256] = &kSecKeyAlgorithmRSASignatureDigestPSSSHA256,
    [SGTK_ALG_RSA_PSS_SHA384] = &kSecKeyAlgorithmRSASignatureDigestPSSSHA384,
    [SGTK_ALG_RSA_PSS_SHA512] = &kSecKeyAlgorithmRSASignatureDigestPSSSHA512,
    [SGTK_ALG_ECDSA_X962] = &kSecKeyAlgorithmECDSASignatureDigestX962,
    [SGTK_ALG_ECDSA_X962_SHA256] = &kSecKeyAlgorithmECDSASignatureDigestX962SHA256,
    [SGTK_ALG_ECDSA_X962_SHA384] = &kSecKeyAlgorithmECDSASignatureDigestX962SHA384,
    [SGTK_ALG_ECDSA_X962_SHA512] = &kSecKeyAlgorithmECDSASignatureDigestX962SHA512,
};

/* The one exact algorithm asked for (isAlgorithm:, not supportsAlgorithm:): the framework
 * hashes and wraps first and then asks for the digest form we announce. */
static int shim_algorithm(TKTokenKeyAlgorithm *algorithm, sgtk_alg *out)
{
    for (int a = 0; a < SGTK_ALG_COUNT; a++) {
        if ([algorithm isAlgorithm:*algorithm_constants[a]]) {
            *out = (sgtk_alg)a;
            return 1;
        }
    }
    return 0;
}

/* Object ids are the ASCII strings the host app published (shim/sgtk.h). */
static const char *object_id(TKTokenObjectID objectID, size_t *len)
{
    const char *s;
    if (![objectID isKindOfClass:[NSString class]])
        return NULL;
    s = [(NSString *)objectID UTF8String];
    *len = s ? strlen(s) : 0;
    return s;
}

@implementation SignumTokenSession

- (instancetype)initWithToken:(TKToken *)token
{
    self = [super initWithToken:token];
    if (self)
        self.delegate = self;
    return self;
}

- (BOOL)tokenSession:(TKTokenSession *)session
    supportsOperation:(TKTokenOperation)operation
             usingKey:(TKTokenObjectID)keyObjectID
            algorithm:(TKTokenKeyAlgorithm *)algorithm
{
    sgtk_alg alg;
    size_t len = 0;
    const char *kid = object_id(keyObjectID, &len);
    (void)session;
    if (operation != TKTokenOperationSignData || !kid || !shim_algorithm(algorithm, &alg))
        return NO;
    return sgtk_supports(((SignumToken *)self.token).shim, kid, len, alg) ? YES : NO;
}

- (nullable NSData *)tokenSession:(TKTokenSession *)session
                         signData:(NSData *)dataToSign
                         usingKey:(TKTokenObjectID)keyObjectID
                        algorithm:(TKTokenKeyAlgorithm *)algorithm
                            error:(NSError **)error
{
    uint8_t sig[SGTK_SIG_MAX];
    size_t sig_len = sizeof(sig), len = 0;
    char why[512] = "";
    const char *kid = object_id(keyObjectID, &len);
    sgtk_alg alg;
    sgtk_error e;
    (void)session;

    if (!kid) {
        e = SGTK_E_OBJECT_NOT_FOUND;
        snprintf(why, sizeof(why), "not a Signum key object id");
    } else if (!shim_algorithm(algorithm, &alg)) {
        e = SGTK_E_NOT_IMPLEMENTED;
        snprintf(why, sizeof(why), "an algorithm the Signum token does not sign with");
    } else {
        e = sgtk_sign(((SignumToken *)self.token).shim, kid, len, alg, dataToSign.bytes,
                      dataToSign.length, sig, &sig_len, why, sizeof(why));
    }
    if (e != SGTK_OK) {
        if (error)
            *error = SignumTokenError(e, why);
        return nil;
    }
    return [NSData dataWithBytes:sig length:sig_len];
}

@end
