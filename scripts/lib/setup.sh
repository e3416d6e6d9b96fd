# Shared set-up steps for scripts/run and scripts/test (sourced, not run).
# Fresh Debian machine, as root, with only the package registries.

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HOTLINE_BRIDGE_VENV:-$REPO_DIR/.venv}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Install Debian packages that are missing (apt-get only when something is).
need_debs() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# A virtualenv with the project (and the named extras, if any) installed; reinstalled when pyproject.toml changes;
# then Apache ECharts vendored (scripts/vendor-echarts).
python_env() {
  local extras="$1" stamp
  command -v python3 >/dev/null || need_debs python3
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "error: Python 3.11 or newer is needed (python3 is $(python3 -V))" >&2; exit 1; }
  python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || need_debs python3-venv
  [ -x "$VENV/bin/python" ] || { say "creating $VENV"; python3 -m venv "$VENV"; }
  stamp="$VENV/.installed-$(sha256sum "$REPO_DIR/pyproject.toml" | cut -c1-16)-${extras:-base}"
  if [ ! -e "$stamp" ]; then
    say "installing Python packages${extras:+ (with $extras extras)}"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO_DIR${extras:+[$extras]}"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
  # The charts' library, vendored into the package's static files (no CDN on a hotline's network).
  command -v npm >/dev/null || command -v curl >/dev/null || need_debs curl
  "$REPO_DIR/scripts/vendor-echarts"
}

# The local PostgreSQL server: trust auth on 127.0.0.1:5432, database "test".
postgres_up() {
  if ! command -v pg_ctlcluster >/dev/null; then
    need_debs postgresql
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n1)"
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL $version"
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    grep -q "^host all all 127.0.0.1/32 trust" "$hba" \
      || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "create database test" >/dev/null
}

# Secrets for the embedded run, generated once and kept in state/ (never committed).
embedded_secrets() {
  local file="$REPO_DIR/state/secrets.env"
  mkdir -p "$REPO_DIR/state"
  if [ ! -s "$file" ]; then
    umask 077
    {
      echo "HOTLINE_BRIDGE_SESSION_SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
      echo "HOTLINE_BRIDGE_AMI_SECRET=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    } >"$file"
  fi
  set -a; . "$file"; set +a
}
