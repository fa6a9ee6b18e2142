#!/usr/bin/env bash
# Elastic Beanstalk runs this as root before each deploy and configuration change
# (bundle.py puts it in .platform/hooks/ and .platform/confighooks/). The database
# lives outside /var/app/current, which every deploy replaces: this makes its
# directory, owned by the user the app runs as. TAKE_A_NUMBER_DATABASE must name a
# file in it.
set -euo pipefail
data_dir="${DATA_DIR:-/var/app/data}"
app_user="${APP_USER:-webapp}"
mkdir -p "$data_dir"
chown "$app_user:" "$data_dir"
chmod 700 "$data_dir"
