#!/bin/sh
# Rendered by fleetkit (role worker) for node {{node}}: the fleet command on this node. It runs the verbs a
# node has (task, and worker) from the worker's runtime, with this fleet's queue and this node's own token
# unless FLEET_QUEUE_URL / FLEET_TOKEN / FLEET_TOKEN_FILE say otherwise. The token file is the node user's,
# mode 0600: a queued task runs as another user and cannot read it.
if [ -z "${FLEET_QUEUE_URL:-}" ]; then
  FLEET_QUEUE_URL={{queueUrl}}
  export FLEET_QUEUE_URL
fi
if [ -z "${FLEET_TOKEN:-}" ] && [ -z "${FLEET_TOKEN_FILE:-}" ]; then
  FLEET_TOKEN_FILE={{tokenFile}}
  export FLEET_TOKEN_FILE
fi
exec {{nodeExe}} {{entry}} "$@"
