/* The Security framework and CoreFoundation API the token and the host app use, declared from
 * Apple's public documentation (developer.apple.com/documentation/security) for the Linux CI
 * build only; on a Mac the SDK's own <Security/Security.h> is used. Nothing else is declared:
 * a new call in token/ or app/ must be added here, which keeps this list exact. */
#ifndef SIGNUM_SDK_SECURITY_H
#define SIGNUM_SDK_SECURITY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CoreFoundation: opaque references, released with CFRelease. */
typedef const void *CFTypeRef;
typedef const struct __CFAllocator *CFAllocatorRef;
typedef const struct __CFData *CFDataRef;
typedef const struct __CFString *CFStringRef;
void CFRelease(CFTypeRef cf);

/* SecCertificate: an X.509 certificate from its DER bytes (NULL if they are not one). */
typedef struct __SecCertificate *SecCertificateRef;
SecCertificateRef SecCertificateCreateWithData(CFAllocatorRef allocator, CFDataRef data);

/* SecKeyAlgorithm: the signature algorithms a token may be asked for (SecKey.h). */
typedef CFStringRef SecKeyAlgorithm;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPKCS1v15Raw;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA256;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA384;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPKCS1v15SHA512;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPSSSHA256;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPSSSHA384;
extern const SecKeyAlgorithm kSecKeyAlgorithmRSASignatureDigestPSSSHA512;
extern const SecKeyAlgorithm kSecKeyAlgorithmECDSASignatureDigestX962;
extern const SecKeyAlgorithm kSecKeyAlgorithmECDSASignatureDigestX962SHA256;
extern const SecKeyAlgorithm kSecKeyAlgorithmECDSASignatureDigestX962SHA384;
extern const SecKeyAlgorithm kSecKeyAlgorithmECDSASignatureDigestX962SHA512;

#ifdef __cplusplus
}
#endif

#endif
