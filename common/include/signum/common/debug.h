/* SIGNUM_DEBUG: one rule for the server, the agent, the PKCS#11 module, the KSP and the CSP.
 * The value is a list of subsystem names separated by commas and/or white space
 * ("http,hsm", "p11 ksp", "agent, cache"); "all" turns every subsystem on. Names match
 * exactly (case matters); an empty or NULL value turns everything off. Each component reads
 * the variable its own way (secure_getenv, GetEnvironmentVariable) and asks here. */
#ifndef SGC_DEBUG_H
#define SGC_DEBUG_H

/* 1 if the list names `name` or "all", else 0. */
int sgc_debug_has(const char *list, const char *name);

#endif
