/* The host app's work: read the configured names, change them, and republish every item from
 * a fresh key listing (a rotated certificate is a new identity with a new object id). */
#import "SignumHost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgtk.h"

static NSArray *items_for(sgtk_token *shim, const char *name, FILE *err)
{
    sgtk_entry en;
    char why[512];
    SecCertificateRef cert;
    sgtk_error e = sgtk_entry_of(shim, name, &en, why, sizeof(why));
    NSData *der;
    TKTokenKeychainCertificate *c;
    TKTokenKeychainKey *k;

    if (e != SGTK_OK) {
        fprintf(err, "signum keychain: %s: %s (%s)\n", name, why, sgtk_error_name(e));
        return nil;
    }
    der = [NSData dataWithBytes:en.cert length:en.cert_len];
    cert = SecCertificateCreateWithData(NULL, (__bridge CFDataRef)der);
    if (!cert) {
        fprintf(err, "signum keychain: %s: the server's certificate does not parse\n", name);
        return nil;
    }
    c = [[TKTokenKeychainCertificate alloc] initWithCertificate:cert objectID:@(en.cert_id)];
    k = [[TKTokenKeychainKey alloc] initWithCertificate:cert objectID:@(en.key_id)];
    CFRelease(cert);
    if (!c || !k)
        return nil;
    c.label = @(en.name);
    k.label = @(en.name);
    /* A signing key only; the server decides every signature, so no local PIN prompt. */
    k.canSign = YES;
    k.canDecrypt = NO;
    k.canPerformKeyExchange = NO;
    k.suitableForLogin = NO;
    k.constraints = @{@(TKTokenOperationSignData) : @(YES)};
    return @[ c, k ];
}

/* Clears the configuration and publishes the names' items anew. Names whose key is gone stay
 * configured (a grant may come back) but publish nothing; returns how many failed. */
static int republish(TKTokenDriverConfiguration *driver, sgtk_token *shim, const char *names_text,
                     FILE *out, FILE *err)
{
    char names[SGTK_NAMES_MAX][65];
    size_t count = sgtk_names_split(names_text, names, SGTK_NAMES_MAX);
    NSMutableArray *items = [NSMutableArray array];
    TKTokenConfiguration *config;
    int failed = 0;

    [driver removeTokenConfigurationForTokenInstanceID:SIGNUM_TOKEN_INSTANCE_ID];
    config = [driver addTokenConfigurationForTokenInstanceID:SIGNUM_TOKEN_INSTANCE_ID];
    config.configurationData = [NSData dataWithBytes:names_text length:strlen(names_text)];
    for (size_t i = 0; i < count; i++) {
        NSArray *pair = items_for(shim, names[i], err);
        if (pair) {
            [items addObjectsFromArray:pair];
            fprintf(out, "published %s\n", names[i]);
        } else {
            failed++;
        }
    }
    config.keychainItems = items;
    return failed;
}

static int list(TKTokenDriverConfiguration *driver, FILE *out)
{
    TKTokenConfiguration *config =
        [driver.tokenConfigurations objectForKey:SIGNUM_TOKEN_INSTANCE_ID];
    for (TKTokenKeychainItem *item in config.keychainItems) {
        if ([item isKindOfClass:[TKTokenKeychainKey class]])
            fprintf(out, "%s %s\n", item.label.UTF8String, [(NSString *)item.objectID UTF8String]);
    }
    return 0;
}

int SignumHostMain(int argc, const char *const *argv)
{
    @autoreleasepool {
        TKTokenDriverConfiguration *driver =
            [TKTokenDriverConfiguration.driverConfigurations objectForKey:SIGNUM_TOKEN_CLASS_ID];
        TKTokenConfiguration *config;
        const char *action = argc > 1 ? argv[1] : "--sync";
        const char *name = argc > 2 ? argv[2] : NULL;
        char *current = NULL, *next = NULL, why[512];
        sgtk_token *shim = NULL;
        sgtk_error e;
        int rc = 1, needs_name = !strcmp(action, "--add") || !strcmp(action, "--remove");

        if ((needs_name && argc != 3) ||
            (!needs_name && (argc > 2 || (strcmp(action, "--list") && strcmp(action, "--sync"))))) {
            fprintf(stderr, "usage: Signum --add KEY | --remove KEY | --list | --sync\n");
            return 2;
        }
        if (!driver) {
            fprintf(stderr,
                    "signum keychain: the token extension %s is not registered (is "
                    "Signum.app in /Applications and launched once?)\n",
                    SIGNUM_TOKEN_CLASS_ID.UTF8String);
            return 1;
        }
        if (!strcmp(action, "--list"))
            return list(driver, stdout);
        config = [driver.tokenConfigurations objectForKey:SIGNUM_TOKEN_INSTANCE_ID];
        if (config.configurationData.length) {
            current = strndup(config.configurationData.bytes, config.configurationData.length);
            if (!current)
                return 1;
        }
        e = sgtk_token_new(NULL, &shim);
        if (e != SGTK_OK) {
            fprintf(stderr, "signum keychain: cannot create the client (%s)\n", sgtk_error_name(e));
            goto out;
        }
        if (needs_name) {
            sgtk_entry en;
            /* Check the key first: adding a name that publishes nothing helps nobody. */
            if (!strcmp(action, "--add") &&
                (e = sgtk_entry_of(shim, name, &en, why, sizeof(why))) != SGTK_OK) {
                fprintf(stderr, "signum keychain: %s (%s)\n", why, sgtk_error_name(e));
                goto out;
            }
            e = sgtk_names_apply(current,
                                 !strcmp(action, "--add") ? SGTK_NAMES_ADD : SGTK_NAMES_REMOVE,
                                 name, &next, why, sizeof(why));
            if (e != SGTK_OK) {
                fprintf(stderr, "signum keychain: %s (%s)\n", why, sgtk_error_name(e));
                goto out;
            }
            free(current);
            current = next;
        }
        rc = republish(driver, shim, current ? current : "", stdout, stderr) ? 1 : 0;
    out:
        sgtk_token_free(shim);
        free(current);
        return rc;
    }
}
