/*
 * pause.c - batonctl pause and resume: maintenance mode on and off, through
 * ops.c (the code the REST API's /pause uses too). While paused the agents
 * keep their keys alive but leave Postgres alone and never fail over.
 */
#include <stdio.h>

#include "agent/batonctl/common.h"
#include "agent/ops.h"

static int set_pause(const char *config_path, const struct args *a, bool pause)
{
	char err[1024];
	struct ctl x;
	bool was;
	int rc;

	rc = ctl_open(&x, config_path, true);
	if (rc != EXIT_DONE)
		goto cleanup;
	was = x.view->paused;
	if (!ops_set_pause(x.client, &x.keys, pause, err, sizeof(err))) {
		rc = failed("%s", err);
		goto cleanup;
	}
	if (a->json)
		printf("{\"paused\":%s,\"was_paused\":%s}\n", pause ? "true" : "false", was ? "true" : "false");
	else
		printf("Maintenance mode %s%s\n", pause ? "on" : "off", was == pause ? " (it already was)" : "");
cleanup:
	ctl_close(&x);
	return rc;
}

int cmd_pause(const char *config_path, const struct args *a)
{
	return set_pause(config_path, a, true);
}

int cmd_resume(const char *config_path, const struct args *a)
{
	return set_pause(config_path, a, false);
}
