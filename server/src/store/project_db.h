/* Storage of projects: a project groups keys (a key belongs to at most one) and the members
 * that hold a role in it: project admin, signer or approver. A member is a user, a service
 * account (both rows of users) or a user group (by name: its membership is the group's, read
 * when a role is checked). Writes run on the writer thread. */
#ifndef SRV_PROJECT_DB_H
#define SRV_PROJECT_DB_H

#include "db.h"

#define SRV_PROJECT_DESCRIPTION_MAX 1024

typedef enum { SRV_PROJECT_ADMIN, SRV_PROJECT_SIGNER, SRV_PROJECT_APPROVER } srv_project_role;

typedef struct {
    int64_t id;
    char name[SRV_NAME_MAX + 1];
    char description[SRV_PROJECT_DESCRIPTION_MAX + 1];
    int64_t created_at;
    long long keys; /* keys in it */
} srv_project;

/* A member's role: user_id for a user or service account (name, kind), else a user group. */
typedef struct {
    srv_project_role role;
    int64_t user_id; /* 0 for a group */
    char name[SRV_NAME_MAX + 1];
    const char *kind; /* "user", "service_account" or "group" */
    int64_t created_at;
} srv_project_member;

const char *srv_project_role_name(srv_project_role role);
int srv_project_role_parse(const char *name, srv_project_role *out);

srv_status srv_db_project_insert(srv_db *db, const char *name, const char *description, int64_t *id,
                                 srv_error *err);
/* SRV_E_PROJECT_NOT_FOUND if there is none of that name. */
srv_status srv_db_project_get(srv_db *db, const char *name, srv_project *out, srv_error *err);
typedef void (*srv_project_cb)(const srv_project *p, void *ctx);
/* Every project in name order; with member_id > 0 only those where that user holds some role
 * (directly or through one of its groups, member_name). */
srv_status srv_db_projects_list(srv_db *db, int64_t member_id, const char *member_name,
                                srv_project_cb cb, void *ctx, srv_error *err);
/* Deletes an empty project and its memberships; SRV_E_PROJECT_NOT_EMPTY while it holds keys. */
srv_status srv_db_project_delete(srv_db *db, int64_t id, srv_error *err);

/* Adds a role (user_id > 0, or group non-NULL); SRV_E_EXISTS if it is held already. */
srv_status srv_db_project_member_add(srv_db *db, int64_t project_id, srv_project_role role,
                                     int64_t user_id, const char *group, srv_error *err);
/* Removes a role; SRV_E_NOT_FOUND if it was not held. */
srv_status srv_db_project_member_remove(srv_db *db, int64_t project_id, srv_project_role role,
                                        int64_t user_id, const char *group, srv_error *err);
typedef void (*srv_project_member_cb)(const srv_project_member *m, void *ctx);
/* Members by role, then kind and name. */
srv_status srv_db_project_members_list(srv_db *db, int64_t project_id, srv_project_member_cb cb,
                                       void *ctx, srv_error *err);
/* Drops every role a user holds in any project; *count receives how many. */
srv_status srv_db_project_roles_drop_user(srv_db *db, int64_t user_id, int64_t *count,
                                          srv_error *err);

/* Whether the user (id and name, for its groups) holds role in the project: 1, 0, or -1 on a
 * database error. */
int srv_db_project_has_role(srv_db *db, int64_t project_id, srv_project_role role, int64_t user_id,
                            const char *user_name);
typedef void (*srv_project_id_cb)(int64_t project_id, void *ctx);
/* The projects in which the user holds role, directly or through a group. */
srv_status srv_db_projects_with_role(srv_db *db, srv_project_role role, int64_t user_id,
                                     const char *user_name, srv_project_id_cb cb, void *ctx,
                                     srv_error *err);
/* Moves a key into a project (project_id > 0) or out of any (0). */
srv_status srv_db_key_set_project(srv_db *db, int64_t key_id, int64_t project_id, srv_error *err);

/* Direct grants, the per-key way to let one identity sign, beside projects. */
typedef void (*srv_grant_cb)(const char *user, const char *kind, int64_t created_at, void *ctx);
/* The identities granted the key, by name; kind is "user" or "service_account". */
srv_status srv_db_grants_list(srv_db *db, int64_t key_id, srv_grant_cb cb, void *ctx,
                              srv_error *err);
/* Removes a grant; SRV_E_NOT_FOUND if there was none. */
srv_status srv_db_grant_delete(srv_db *db, int64_t key_id, int64_t user_id, srv_error *err);

#endif
