#!/bin/sh
# Container entry point (both Dockerfiles). Docker starts it as root; it only makes the mounted config
# readable to the gateway's own user, then runs the command as that user (uid 10001): the gateway itself
# never runs as root.
#
# Why: a host config.json with mode 600 (what the gateway recommends: it holds passwords) belongs to a host
# user, so uid 10001 cannot read it through the bind mount, and the gateway would stop with exit code 2 and
# restart-loop under `docker compose`. Instead, when uid 10001 cannot read it, this script reads it as root
# and hands the gateway a private copy (mode 600, owned by uid 10001, in a directory only that user enters).
# Started with `--user` (not root), it changes nothing and runs the command as given.
set -eu

app_uid="${DS2API_UID:-10001}"
private_dir="${DS2API_PRIVATE_DIR:-/run/deepseek2api}"

if [ "$(id -u)" != "0" ]; then
    exec "$@"
fi

as_app() {
    setpriv --reuid="$app_uid" --regid="$app_uid" --clear-groups -- "$@"
}

config="${DS2API_CONFIG:-}"
if [ -n "$config" ] && [ -f "$config" ] && ! as_app test -r "$config"; then
    install -d -o "$app_uid" -g "$app_uid" -m 700 "$private_dir"
    install -o "$app_uid" -g "$app_uid" -m 600 "$config" "$private_dir/config.json"
    echo "deepseek2api: $config cannot be read by uid $app_uid (mode 600 on the host?): serving a private copy" \
         "of it, $private_dir/config.json (restart the container after editing the file)" >&2
    DS2API_CONFIG="$private_dir/config.json"
    export DS2API_CONFIG
fi

exec setpriv --reuid="$app_uid" --regid="$app_uid" --clear-groups -- "$@"
