#!/usr/bin/env bash
# Config of one run, set in this runner's checkout of Pulumi.<stack>.yaml and never committed:
# the registry admin password (registryAdminPassword; adminPassword in the registry project,
# PROJECT=registry) and huggingFaceToken when given, as secrets, piped on stdin so they are
# in no argument list and no log (`pulumi config set` reads a value missing from the command line
# from stdin), and router.image when the run deploys a given image. Inputs come from the
# environment (see action.yml).
set -euo pipefail
: "${STACK:?STACK is empty}"
password_key=registryAdminPassword
if [ "${PROJECT:-fleet}" = registry ]; then
  cd registry-stack
  password_key=adminPassword
fi
if [ -z "${REGISTRY_ADMIN_PASSWORD:-}" ]; then
  echo "::error::REGISTRY_ADMIN_PASSWORD is empty: add it to the secrets of this job's GitHub environment" >&2
  exit 1
fi
pulumi login ${BACKEND_URL:+"$BACKEND_URL"}
printf '%s' "$REGISTRY_ADMIN_PASSWORD" | pulumi config set --secret --stack "$STACK" "$password_key"
if [ -n "${HUGGING_FACE_TOKEN:-}" ]; then
  printf '%s' "$HUGGING_FACE_TOKEN" | pulumi config set --secret --stack "$STACK" huggingFaceToken
fi
if [ "${ROUTER_IMAGE:-}" = deployed ]; then
  # Only a missing output means "never deployed"; any other failure (login, permissions) stops
  # the run instead of silently falling back to a build this runner may not be able to do.
  err=$(mktemp)
  if ! ROUTER_IMAGE=$(pulumi stack output routerImage --stack "$STACK" 2>"$err"); then
    if ! grep -q "does not have output property" "$err"; then
      cat "$err" >&2
      exit 1
    fi
    ROUTER_IMAGE=""
  fi
  rm -f "$err"
  if [ -z "$ROUTER_IMAGE" ]; then
    echo "::notice::$STACK has no routerImage output yet: this run builds the router image (Docker and buildx needed)"
  fi
fi
if [ -n "${ROUTER_IMAGE:-}" ]; then
  pulumi config set --path --stack "$STACK" -- router.image "$ROUTER_IMAGE"
fi
