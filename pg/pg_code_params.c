/*
 * pg_code_params.c - the Postgres parameters only a node's own file may set
 * (pg_conf.h: pg_conf_param_runs_code): a list of the server's own, and
 * every custom parameter (a name with a '.'). A file of its own, without
 * dependencies, so that the config loader and its fuzz target can link it
 * alone.
 */
#include "pg/pg_conf.h"

#include <string.h>
#include <strings.h>

/*
 * The parameters of PostgreSQL 15 that make it run or load code, point it
 * at files it trusts, or steer recovery and promotion (see pg_conf.h). Gathered from the server's
 * list of GUCs (postgres --describe-config) by what each value is used for:
 *
 * shell commands the server runs through /bin/sh:
 *   archive_command, archive_cleanup_command, restore_command,
 *   recovery_end_command, ssl_passphrase_command
 * shared libraries it dlopen()s (their _PG_init runs in the server):
 *   shared_preload_libraries, session_preload_libraries,
 *   local_preload_libraries, archive_library (15: an archive module),
 *   jit_provider (the JIT library), dynamic_library_path (where
 *   "$libdir"-less names and CREATE FUNCTION ... LANGUAGE C look)
 * files it reads and trusts (configuration, keys: pointing them at a file
 * an attacker wrote, e.g. through COPY TO, hands over authentication or TLS):
 *   config_file, hba_file, ident_file, data_directory, ssl_cert_file,
 *   ssl_key_file, ssl_ca_file, ssl_crl_file, ssl_crl_dir,
 *   ssl_dh_params_file, krb_server_keyfile
 * places it writes files to, under names an attacker could choose (a log
 * file named ~/.bashrc or ~/.psqlrc is code the next login runs; a socket
 * directory or pid file anywhere the Postgres user can write):
 *   log_directory, log_filename, external_pid_file,
 *   unix_socket_directories, unix_socket_group, unix_socket_permissions
 * where a replica streams from: a primary_conninfo pointing at a server of
 * the attacker's makes the replica replay whatever WAL it is sent (catalog
 * rows included), and the agent manages it itself:
 *   primary_conninfo, primary_slot_name
 * other configuration files pulled in by name (any parameter above could
 * then come from a file an attacker wrote, e.g. in /tmp):
 *   include, include_if_exists, include_dir
 * recovery and promotion, which only the agent may steer: a
 * promote_trigger_file that exists (/etc/passwd) promotes every replica at
 * once, a second writer behind the agent's back; a recovery target stops
 * or pauses replay, or promotes, at a point the agent did not choose:
 *   promote_trigger_file, recovery_target, recovery_target_action,
 *   recovery_target_inclusive, recovery_target_lsn, recovery_target_name,
 *   recovery_target_time, recovery_target_timeline, recovery_target_xid
 * the schemas the server looks in for unqualified functions and operators:
 * a search_path naming a schema some role can create in makes every
 * superuser session that calls an unqualified function (maintenance
 * scripts, extensions; the agent's own sessions pin search_path) run that
 * role's code as the superuser:
 *   search_path
 * the WAL kept for replication slots: a permanent slot written into etcd
 * and never used, with no bound (-1), keeps WAL until the disk is full:
 *   max_slot_wal_keep_size (the agent's default bounds it)
 * checks on who may do what, turned off for every session at once:
 * lo_compat_privileges skips the permission checks on large objects (any
 * role reads and overwrites every one); krb_caseins_users lets a GSSAPI
 * principal that differs only in case log in as a role (Postgres@REALM as
 * postgres); session_replication_role = replica stops every ordinary
 * trigger, rule and foreign-key check, which applications use to enforce
 * their own permissions and audit trails:
 *   lo_compat_privileges, krb_caseins_users, session_replication_role
 * Custom parameters (a name with a '.': an extension's, or a placeholder
 * for one loaded later) are not listed: they are all local-only, since some
 * run code (plperl.on_init, plperl.on_plperlu_init, pltcl.start_proc,
 * pltclu.start_proc, plv8.start_proc) and no list of every extension's
 * parameters can be complete (pg_conf_param_is_custom).
 * Settings that are dangerous but not code (fsync = off, wal_level) stay
 * cluster-wide: losing them is a durability question, not code execution;
 * so do those that only weaken what is stored or sent from then on
 * (password_encryption, ssl_ciphers; the agent sets ssl itself when it
 * manages TLS), which grant no role anything it did not have.
 */
static const char *const code_params[] = {
	"archive_command",
	"archive_cleanup_command",
	"restore_command",
	"recovery_end_command",
	"ssl_passphrase_command",
	"shared_preload_libraries",
	"session_preload_libraries",
	"local_preload_libraries",
	"archive_library",
	"jit_provider",
	"dynamic_library_path",
	"config_file",
	"hba_file",
	"ident_file",
	"data_directory",
	"ssl_cert_file",
	"ssl_key_file",
	"ssl_ca_file",
	"ssl_crl_file",
	"ssl_crl_dir",
	"ssl_dh_params_file",
	"krb_server_keyfile",
	"log_directory",
	"log_filename",
	"external_pid_file",
	"unix_socket_directories",
	"unix_socket_group",
	"unix_socket_permissions",
	"primary_conninfo",
	"primary_slot_name",
	"include",
	"include_if_exists",
	"include_dir",
	"promote_trigger_file",
	"recovery_target",
	"recovery_target_action",
	"recovery_target_inclusive",
	"recovery_target_lsn",
	"recovery_target_name",
	"recovery_target_time",
	"recovery_target_timeline",
	"recovery_target_xid",
	"search_path",
	"max_slot_wal_keep_size",
	"lo_compat_privileges",
	"krb_caseins_users",
	"session_replication_role",
};

const char *pg_conf_code_param_at(size_t i)
{
	return i < sizeof(code_params) / sizeof(code_params[0]) ? code_params[i] : NULL;
}

bool pg_conf_param_is_custom(const char *name)
{
	return name != NULL && strchr(name, '.') != NULL;
}

bool pg_conf_param_runs_code(const char *name)
{
	if (name == NULL)
		return false;
	if (pg_conf_param_is_custom(name))
		return true;
	for (size_t i = 0; i < sizeof(code_params) / sizeof(code_params[0]); i++)
		if (strcasecmp(name, code_params[i]) == 0)
			return true;
	return false;
}

const char *pg_conf_local_only_why(const char *name)
{
	if (name != NULL && strcasecmp(name, "search_path") == 0)
		return "it chooses whose functions and operators superuser sessions call";
	if (name != NULL && strcasecmp(name, "max_slot_wal_keep_size") == 0)
		return "it bounds the WAL replication slots keep (a forged slot could fill the disk)";
	if (pg_conf_param_is_custom(name))
		return "it is an extension's custom parameter (a name with a '.'), and some of those run code "
		       "(plperl.on_init, pltcl.start_proc, ...)";
	if (name != NULL && strcasecmp(name, "lo_compat_privileges") == 0)
		return "it turns off the permission checks on large objects";
	if (name != NULL && strcasecmp(name, "krb_caseins_users") == 0)
		return "it lets a GSSAPI principal that differs only in case log in as a role";
	if (name != NULL && strcasecmp(name, "session_replication_role") == 0)
		return "it turns off the triggers, rules and foreign-key checks of every session";
	return "it runs or loads code";
}
