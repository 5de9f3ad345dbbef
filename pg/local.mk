# pg/: everything that touches Postgres (owned by the pg module).
noinst_LIBRARIES += pg/libpg.a
pg_libpg_a_SOURCES = pg/pg_err.h pg/pg_ctl.h pg/pg_data.h pg/pg_conf.h pg/pg_query.h \
	pg/pg_spawn.h pg/pg_spawn.c \
	pg/pg_err.c pg/pg_ctl.c pg/pg_data.c pg/pg_conf.c pg/pg_query.c \
	pg/pg_code_params.c
# replica creation: pg_basebackup with options, restore commands (pgBackRest)
pg_libpg_a_SOURCES += pg/pg_replica.h pg/pg_replica.c
