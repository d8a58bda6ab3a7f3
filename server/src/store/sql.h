/* One statement interface over the two database engines (SQLite and PostgreSQL): the store's
 * entity files bind, step and read columns through it and never see the engine. SQL is
 * written once, in the SQLite dialect the two share (?N parameters, ON CONFLICT upserts,
 * RETURNING); sql_pg.c translates the few spellings PostgreSQL writes differently. */
#ifndef SRV_SQL_H
#define SRV_SQL_H

#include <stdint.h>

typedef struct srv_stmt srv_stmt;

/* What srv_step returns. */
enum {
    SRV_DB_DONE = 0,        /* no (more) rows; a write ran */
    SRV_DB_ROW = 1,         /* a row is ready for srv_col_* */
    SRV_DB_ERROR = -1,      /* srv_db_fail has the message */
    SRV_DB_CONSTRAINT = -2, /* a unique, check or foreign-key constraint refused a write */
};

/* Parameters are numbered from 1, as in the SQL's ?N. Text and blobs are not copied: they
 * must stay valid until the statement is stepped. len -1: text up to its NUL. */
void srv_bind_int64(srv_stmt *s, int i, int64_t v);
void srv_bind_int(srv_stmt *s, int i, int v);
void srv_bind_text(srv_stmt *s, int i, const char *text, int len);
void srv_bind_blob(srv_stmt *s, int i, const void *data, int len);
void srv_bind_null(srv_stmt *s, int i);

/* How many parameters the SQL has (the highest ?N). */
int srv_stmt_param_count(srv_stmt *s);

int srv_step(srv_stmt *s);
/* Ends the statement's current run (rows not read are dropped); bindings stay. */
void srv_reset(srv_stmt *s);

/* Columns of the current row, numbered from 0. NULL reads as 0 or as a NULL pointer; what a
 * text or blob column returns is valid until the next step or reset. */
int64_t srv_col_int64(srv_stmt *s, int i);
int srv_col_int(srv_stmt *s, int i);
const unsigned char *srv_col_text(srv_stmt *s, int i);
const void *srv_col_blob(srv_stmt *s, int i);
int srv_col_bytes(srv_stmt *s, int i);

#endif
