#!/bin/bash
# 38_patroni_compat: baton's REST API side by side with the real Patroni 3.0.2
# (issue 13): tests/compat/patroni_side_by_side.sh, run as a scenario. See
# its header for what it compares; the accepted differences, each with its
# reason, are tests/compat/allowed_differences.txt (the README's "Patroni
# compatibility" section refers to it). Skips (77) when Patroni is missing.
# needs packages: patroni python3-psycopg2
exec bash "$(dirname "$0")/../compat/patroni_side_by_side.sh" "$@"
