#!/usr/bin/env bash
# Hand-made lower bound for `make bench`: the work playbooks/site.yml does for
# one primary and one standby, as a plain script of `docker exec` calls.
#
#   bench/baseline.sh PRIMARY STANDBY PASSWORD_FILE
#
# PRIMARY and STANDBY are running lab containers (scripts/lab up). The
# replication password is read from PASSWORD_FILE (mode 0600) and only ever
# travels on stdin into the containers: never on a command line, never printed.
#
# Steps (what a careful DBA types, nothing more):
#   both:    apt-get update, install postgresql-<v> (+ client) in parallel
#   primary: listen_addresses, wal_level, a pg_hba replication line with
#            scram-sha-256 for the standby's /32, a REPLICATION role with a
#            password, a physical slot; restart
#   standby: stop, move the pristine cluster aside, pg_basebackup -R -S slot
#            (password from a 0600 passfile), start
#   wait until the primary's pg_stat_replication shows the standby streaming
set -euo pipefail

primary=${1:?usage: baseline.sh PRIMARY STANDBY PASSWORD_FILE}
standby=${2:?STANDBY missing}
pwfile=${3:?PASSWORD_FILE missing}
user=replicator
slot=$(printf '%s' "$standby" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9_' '_')
timeout_s=${BASELINE_WAIT_TIMEOUT:-300}

log() { printf 'baseline: %s\n' "$*" >&2; }
on() { local c=$1; shift; docker exec "$c" "$@"; }
on_i() { local c=$1; shift; docker exec -i "$c" "$@"; }
psql_p() { on_i "$primary" runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
ip_of() { docker exec "$1" sh -c "ip -4 -o addr show scope global | awk '{split(\$4,a,\"/\"); print a[1]; exit}'"; }

[[ -r $pwfile ]] || { log "cannot read $pwfile"; exit 2; }

apt_install_prep() {
  on "$1" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
}
apt_install() {
  on "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    "postgresql-$2" "postgresql-client-$2" >/dev/null
}

# 1. package index on both hosts at once
apt_install_prep "$primary" &
p1=$!
apt_install_prep "$standby" &
p2=$!
wait "$p1"
wait "$p2"
# the version the distribution ships (what the role's default picks)
version=$(on "$primary" apt-cache show --no-all-versions postgresql |
  sed -n 's/^Depends:.*postgresql-\([0-9][0-9]*\).*/\1/p' | head -n1)
[[ -n $version ]] || { log "could not find the PostgreSQL version"; exit 1; }
log "PostgreSQL $version"

# 2. install on both hosts at once
apt_install "$primary" "$version" &
p1=$!
apt_install "$standby" "$version" &
p2=$!
wait "$p1"
wait "$p2"

primary_ip=$(ip_of "$primary")
standby_ip=$(ip_of "$standby")
conf=/etc/postgresql/$version/main
data=/var/lib/postgresql/$version/main
service=postgresql@$version-main

# 3. primary: settings, pg_hba line, role, slot, restart
on_i "$primary" sh -c "cat > $conf/conf.d/50-baseline.conf" <<EOF
listen_addresses = '*'
wal_level = replica
password_encryption = 'scram-sha-256'
EOF
on "$primary" sh -c "echo 'host replication $user $standby_ip/32 scram-sha-256' >> $conf/pg_hba.conf"
on "$primary" systemctl restart "$service"
# role + slot: SQL (with the password) goes through stdin
{
  printf "SET password_encryption = 'scram-sha-256';\n"
  printf 'CREATE ROLE %s WITH LOGIN REPLICATION PASSWORD ' "$user"
  # SQL string literal: double any single quote
  sed "s/'/''/g; s/^/'/; s/\$/';/" "$pwfile"
  printf "SELECT pg_create_physical_replication_slot('%s');\n" "$slot"
} | psql_p >/dev/null

# 4. standby: stop, move the pristine cluster aside, clone, start
on "$standby" systemctl stop "$service"
on "$standby" mv "$data" "$data.pristine"
# 0600 passfile owned by postgres, written through stdin
# shellcheck disable=SC2016 # expanded by the container's sh
on_i "$standby" runuser -u postgres -- sh -c 'umask 077; f=$HOME/.pgpass; IFS= read -r pw; printf "*:*:*:%s:%s\n" "$1" "$pw" > "$f"' sh "$user" <"$pwfile"
on "$standby" runuser -u postgres -- "/usr/lib/postgresql/$version/bin/pg_basebackup" \
  -D "$data" -d "host=$primary_ip port=5432 user=$user application_name=$standby" \
  -R -S "$slot" -X stream -c fast --no-password
on "$standby" systemctl start "$service"

# 5. wait until the primary reports it streaming
deadline=$((SECONDS + timeout_s))
until [[ $(psql_p -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$standby' AND state = 'streaming'" </dev/null) == 1 ]]; do
  ((SECONDS < deadline)) || { log "$standby did not stream within ${timeout_s}s"; exit 1; }
  sleep 0.2
done
log "$standby is streaming from $primary"
