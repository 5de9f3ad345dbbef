# pg/: everything that touches Postgres (owned by the pg module).
noinst_LIBRARIES += pg/libpg.a
pg_libpg_a_SOURCES = pg/pg_err.h pg/pg_ctl.h pg/pg_data.h pg/pg_conf.h pg/pg_query.h
