/* ctk-objc-drive: the token extension's and host app's Objective-C classes, linked against the
 * CryptoTokenKit stand-in (macos-ctk/standin), played through as the system would, against a
 * real agent and server (test_ctk_objc.py). Steps, separated by "--":
 *   host ARGS...             SignumHostMain("Signum", ARGS...); prints "host-exit N"
 *   token                    the system's side: SignumTokenDriver's delegate makes the token of
 *                            the published configuration, its delegate a session; prints the
 *                            token's keychain items as "item CLASS LABEL OBJECTID CONSTRAINT"
 *   supports LABEL ALG       yes | no (the key item with that label)
 *   sign LABEL ALG HEX       the signature in hex, or "error CODE DOMAIN REASON" */
#import "CTKStandin.h"
#import "SignumHost.h"
#import "SignumToken.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const SecKeyAlgorithm *alg;
} algorithms[] = {
#define A(n)                                                                                       \
    {                                                                                              \
#n, &kSecKeyAlgorithm##n                                                                   \
    }
    A(RSASignatureDigestPKCS1v15Raw),    A(RSASignatureDigestPKCS1v15SHA256),
    A(RSASignatureDigestPKCS1v15SHA384), A(RSASignatureDigestPKCS1v15SHA512),
    A(RSASignatureDigestPSSSHA256),      A(RSASignatureDigestPSSSHA384),
    A(RSASignatureDigestPSSSHA512),      A(ECDSASignatureDigestX962),
    A(ECDSASignatureDigestX962SHA256),   A(ECDSASignatureDigestX962SHA384),
    A(ECDSASignatureDigestX962SHA512),
#undef A
};

static TKTokenKeyAlgorithm *algorithm_named(const char *name)
{
    for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (!strcmp(algorithms[i].name, name))
            return [[[TKTokenKeyAlgorithm alloc] initWithStandinAlgorithm:*algorithms[i].alg]
                autorelease];
    return nil;
}

static TKToken *token;
static TKTokenSession *session;

static id key_object_id(const char *label)
{
    for (TKTokenKeychainItem *item in token.keychainContents.standinItems)
        if ([item isKindOfClass:[TKTokenKeychainKey class]] &&
            !strcmp(item.label.UTF8String, label))
            return item.objectID;
    return @"no-such-item";
}

static int step(int argc, char **argv)
{
    if (!strcmp(argv[0], "host")) {
        const char *args[8] = {"Signum"};
        for (int i = 1; i < argc && i < 8; i++)
            args[i] = argv[i];
        fflush(stdout);
        printf("host-exit %d\n", SignumHostMain(argc < 8 ? argc : 8, args));
        return 0;
    }
    if (!strcmp(argv[0], "token")) {
        TKTokenDriverConfiguration *d =
            [TKTokenDriverConfiguration.driverConfigurations objectForKey:SIGNUM_TOKEN_CLASS_ID];
        TKTokenConfiguration *c = [d.tokenConfigurations objectForKey:SIGNUM_TOKEN_INSTANCE_ID];
        SignumTokenDriver *driver = [[SignumTokenDriver alloc] init];
        NSError *err = nil;
        [token release];
        [session release];
        token = [[driver.delegate tokenDriver:driver tokenForConfiguration:c error:&err] retain];
        session = [[token.delegate token:token createSessionWithError:&err] retain];
        if (!token || !session) {
            printf("token-error %s\n", err.localizedDescription.UTF8String);
            return 1;
        }
        for (TKTokenKeychainItem *item in token.keychainContents.standinItems)
            printf("item %s %s %s %s\n",
                   [item isKindOfClass:[TKTokenKeychainKey class]] ? "key" : "certificate",
                   item.label.UTF8String, [item.objectID UTF8String],
                   [[item.constraints objectForKey:@(TKTokenOperationSignData)] boolValue]
                       ? "sign-allowed"
                       : "-");
        return 0;
    }
    if (!strcmp(argv[0], "supports") && argc == 3 && session && algorithm_named(argv[2])) {
        printf("%s\n", [session.delegate tokenSession:session
                                    supportsOperation:TKTokenOperationSignData
                                             usingKey:key_object_id(argv[1])
                                            algorithm:algorithm_named(argv[2])]
                           ? "yes"
                           : "no");
        return 0;
    }
    if (!strcmp(argv[0], "sign") && argc == 4 && session && algorithm_named(argv[2])) {
        NSMutableData *data = [NSMutableData data];
        NSError *err = nil;
        NSData *sig;
        for (const char *h = argv[3]; h[0] && h[1]; h += 2) {
            unsigned v;
            uint8_t b;
            sscanf(h, "%2x", &v);
            b = (uint8_t)v;
            [data appendBytes:&b length:1];
        }
        sig = [session.delegate tokenSession:session
                                    signData:data
                                    usingKey:key_object_id(argv[1])
                                   algorithm:algorithm_named(argv[2])
                                       error:&err];
        if (!sig) {
            printf("error %ld %s %s\n", (long)err.code, err.domain.UTF8String,
                   err.localizedDescription.UTF8String);
            return 0;
        }
        for (NSUInteger i = 0; i < sig.length; i++)
            printf("%02x", ((const uint8_t *)sig.bytes)[i]);
        printf("\n");
        return 0;
    }
    fprintf(stderr, "ctk-objc-drive: bad step '%s'\n", argv[0]);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = 0;
    @autoreleasepool {
        [TKTokenDriverConfiguration standinRegisterClassID:SIGNUM_TOKEN_CLASS_ID];
        for (int i = 1; i < argc && rc == 0;) {
            int j = i;
            while (j < argc && strcmp(argv[j], "--"))
                j++;
            rc = step(j - i, argv + i);
            fflush(stdout);
            i = j + 1;
        }
    }
    return rc;
}
