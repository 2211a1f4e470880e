#!/usr/bin/env bash
# The test command: `bash scripts/test.sh [pytest args...]`, from any directory.
#
# On a fresh machine it installs what the tests need, then runs every test:
#   - system parts, when run as root and missing: MariaDB and PostgreSQL (the tests start a
#     throwaway server of each per test session, in a temp dir on a free port: never the
#     system's own service or cluster), Chromium (Playwright drives /usr/bin/chromium; no
#     browser download), a CJK font so Chinese text renders, and Prometheus (its promtool lints
#     /metrics; a Prometheus of the test's own scrapes it). Not root: it says what is missing;
#     those tests skip.
#   - Python packages: requirements-dev.txt (which includes requirements.txt).
# Exit code: pytest's; "no tests collected" (5) is a failure too.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if command -v python >/dev/null 2>&1; then PY=python; else PY=python3; fi
FONT=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc

have_mariadbd() {
    local name dir
    for name in mariadbd mysqld; do
        command -v "$name" >/dev/null 2>&1 && return 0
        for dir in /usr/sbin /usr/local/sbin; do
            [ -x "$dir/$name" ] && return 0
        done
    done
    return 1
}

have_postgres() {  # initdb and postgres: on PATH, or where Debian puts them (off PATH)
    local dir
    command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1 && return 0
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ] && return 0
    done
    return 1
}

missing_system_parts() {
    local missing=()
    have_mariadbd || missing+=("mariadbd (mariadb-server)")
    have_postgres || missing+=("initdb, postgres (postgresql)")
    [ -x /usr/bin/chromium ] || missing+=("/usr/bin/chromium (chromium)")
    [ -f "$FONT" ] || missing+=("$FONT (fonts-wqy-microhei)")
    { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || missing+=("prometheus, promtool (prometheus)")
    if [ ${#missing[@]} -gt 0 ]; then printf '%s\n' "${missing[@]}"; fi
}

retry() {  # retry N cmd...: the package mirrors flake now and then
    local n=$1 i; shift
    for ((i = 1; i <= n; i++)); do
        "$@" && return 0
        [ "$i" -lt "$n" ] && { echo "test.sh: '$*' failed (attempt $i/$n), retrying" >&2; sleep $((i * 5)); }
    done
    return 1
}

missing="$(missing_system_parts)"
if [ -z "$missing" ]; then
    echo "test.sh: MariaDB, PostgreSQL, Chromium, the CJK font and Prometheus are present"
elif [ "$(id -u)" -eq 0 ]; then
    echo "test.sh: installing system parts (missing: $(echo "$missing" | paste -sd, -))"
    export DEBIAN_FRONTEND=noninteractive
    retry 3 apt-get update
    retry 3 apt-get install -y --no-install-recommends mariadb-server postgresql chromium fonts-wqy-microhei \
        prometheus
    # Debian's postgresql package creates and starts a cluster of its own (main, port 5432): the
    # tests never use it (tests/support/postgres.py runs its own), so it is left as apt made it.
    # Likewise prometheus: its service may start on :9090; the tests run their own on a free port.
    missing="$(missing_system_parts)"
    if [ -n "$missing" ]; then
        echo "test.sh: still missing after apt-get install:" >&2
        echo "$missing" >&2
        exit 1
    fi
else
    echo "test.sh: not root, so not installing these (the tests that need them will be skipped):" >&2
    echo "$missing" | sed 's/^/  - /' >&2
    echo "test.sh: as root, or: sudo apt-get install mariadb-server postgresql chromium fonts-wqy-microhei prometheus" >&2
fi
# Root has just installed (or verified) them, so a test that cannot find them is a failure,
# not a skip. Set SHOAL_TEST_REQUIRE_SYSTEM_DEPS=0 to override.
if [ "$(id -u)" -eq 0 ]; then
    export SHOAL_TEST_REQUIRE_SYSTEM_DEPS="${SHOAL_TEST_REQUIRE_SYSTEM_DEPS:-1}"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
retry 3 "$PY" -m pip install -q -r requirements-dev.txt

set +e
"$PY" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure (check the arguments and tests/)" >&2
fi
exit "$rc"
