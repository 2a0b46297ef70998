#!/usr/bin/env bash
# End-to-end check of a deployed moviebag through its front door (the Gateway or the Ingress on kind,
# minikube or the test cluster, or the local gateway of `make run`):
#   deploy/e2e.sh http://localhost            # kind (make kind-up): the Gateway (HTTPRoute)
#   deploy/e2e.sh http://localhost:8080       # kind: the Ingress
#   deploy/e2e.sh "http://$(minikube ip)"     # minikube: the Gateway (:8080 the Ingress)
#   deploy/e2e.sh http://127.0.0.1:8080       # make run
# Needs curl and jq. Exits non-zero on the first failed expectation.
set -euo pipefail

base="${1:?usage: e2e.sh BASE_URL}"
base="${base%/}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# call METHOD PATH [TOKEN] [JSON]: sets $status and $body (the response body's file).
call() {
  local method="$1" path="$2" token="${3:-}" data="${4:-}"
  local args=(-sS -o "$tmp/body" -w '%{http_code}' -X "$method")
  [[ -n "$token" ]] && args+=(-H "Authorization: Bearer $token")
  [[ -n "$data" ]] && args+=(-H 'Content-Type: application/json' --data "$data")
  status="$(curl "${args[@]}" "$base$path")"
  body="$tmp/body"
}

expect() { # expect STATUS WHAT
  [[ "$status" == "$1" ]] || fail "$2: HTTP $status, want $1: $(head -c 500 "$body")"
  echo "ok   $2 ($status)"
}

echo "waiting for $base/api/movies"
for _ in $(seq 1 60); do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/api/movies" || true)" == 200 ]]; then break; fi
  sleep 3
done

call GET /.well-known/jwks.json
expect 200 "JWKS"
jq -e '.keys | length > 0 and all(.kid and .kty and .alg and .use)' "$body" >/dev/null || fail "JWKS without usable keys"
jq -e '.keys | all(has("d") | not)' "$body" >/dev/null || fail "JWKS publishes a private key"

suffix="$(date +%s)-$RANDOM"
email="e2e-$suffix@example.com"
creds="$(jq -cn --arg e "$email" '{email: $e, password: "e2e-password"}')"

call POST /api/auth/signup "" "$creds"
expect 200 "signup"
call POST /api/auth/signup "" "$creds"
expect 400 "signup again"
[[ "$(jq -r .code "$body")" == EmailAlreadyExistsError ]] || fail "duplicate signup: $(cat "$body")"

call POST /api/auth/login "" "$(jq -cn --arg e "$email" '{email: $e, password: "wrong-password"}')"
expect 401 "login with a wrong password"
[[ "$(jq -r .code "$body")" == UnauthorizedError ]] || fail "wrong password: $(cat "$body")"

call POST /api/auth/login "" "$creds"
expect 200 "login"
token="$(jq -r .token "$body")"
[[ -n "$token" && "$token" != null ]] || fail "login: no token"

call GET /api/auth/me "$token"
expect 200 "me"
[[ "$(jq -r .email "$body")" == "$email" ]] || fail "me: $(cat "$body")"

movie="$(jq -cn --arg n "e2e $suffix" '{name: $n, casts: ["Someone"], genres: ["Test"]}')"
call POST /api/movies "" "$movie"
expect 401 "create without a token"
call POST /api/movies "$token" "$movie"
expect 200 "create"
id="$(jq -r .id "$body")"
call POST /api/movies "$token" "$movie"
expect 400 "create the same name again"
[[ "$(jq -r .code "$body")" == MovieAlreadyExistsError ]] || fail "duplicate movie: $(cat "$body")"

call GET "/api/movies/$id"
expect 200 "get"
[[ "$(jq -r .name "$body")" == "e2e $suffix" ]] || fail "get: $(cat "$body")"
call GET "/api/movies?limit=1"
expect 200 "list"
jq -e 'type == "array" and length <= 1' "$body" >/dev/null || fail "list is not an array of at most 1: $(cat "$body")"

call PUT "/api/movies/$id" "$token" '{"genres": ["Test", "Updated"]}'
expect 200 "update"
call DELETE "/api/movies/$id" "$token"
[[ "$status" == 200 || "$status" == 204 ]] || fail "delete: HTTP $status"
echo "ok   delete ($status)"
call GET "/api/movies/$id"
expect 400 "get a deleted movie"
[[ "$(jq -r .code "$body")" == MovieNotExistsError ]] || fail "deleted movie: $(cat "$body")"

call POST /api/auth/logout "$token"
[[ "$status" == 200 || "$status" == 204 ]] || fail "logout: HTTP $status"
echo "ok   logout ($status)"
sleep 1
call GET /api/auth/me "$token"
expect 401 "me with a revoked token"
call POST /api/movies "$token" "$movie"
expect 401 "create with a revoked token"

# A session renewed with its refresh token; the spent one presented again ends the session (reuse detection).
call POST /api/auth/login "" "$creds"
expect 200 "login again"
refresh="$(jq -r .refresh_token "$body")"
# A refresh token is its session's id (a lowercase UUID), a dot and 32 random bytes in base64url.
refresh_form='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}[.][A-Za-z0-9_-]{43}$'
[[ "$refresh" =~ $refresh_form ]] || fail "login: no refresh_token of the form <sid>.<secret>: $(cat "$body")"
call POST /api/auth/refresh "" "$(jq -cn --arg r "$refresh" '{refresh_token: $r}')"
expect 200 "refresh"
renewed="$(jq -r .token "$body")"
[[ "$(jq -r .refresh_token "$body")" != "$refresh" ]] || fail "refresh gave the same refresh token"
call GET /api/auth/me "$renewed"
expect 200 "me with the refreshed token"
call POST /api/auth/refresh "" "$(jq -cn --arg r "$refresh" '{refresh_token: $r}')"
expect 401 "the spent refresh token again"
[[ "$(jq -r .code "$body")" == RefreshTokenInvalidError ]] || fail "reused refresh token: $(cat "$body")"
sleep 1
call POST /api/movies "$renewed" "$movie"
expect 401 "create with a token of the session its refresh token's reuse ended"

# The account deleted: the user is gone, and its movies shortly after (the movies service's consumer).
call POST /api/auth/login "" "$creds"
expect 200 "login to delete the account"
token="$(jq -r .token "$body")"
call POST /api/movies "$token" "$movie"
expect 200 "create a movie for the deletion to remove"
id="$(jq -r .id "$body")"
call DELETE /api/auth/me "$token" '{"password": "e2e-password"}'
expect 204 "delete the account"
call POST /api/auth/login "" "$creds"
expect 401 "login after the account's deletion"
for _ in $(seq 1 30); do
  call GET "/api/movies/$id"
  [[ "$status" == 400 ]] && break
  sleep 1
done
expect 400 "the deleted account's movie"

call GET /not-routed
expect 404 "a path nothing routes"

echo "e2e: all checks passed against $base"
