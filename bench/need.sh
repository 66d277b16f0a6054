# Sourced by the bench scripts: `need COMMAND PACKAGE [COMMAND PACKAGE]...` installs, with apt, the Debian package of
# each command that is not on PATH (a path such as /usr/bin/time counts as a command), reading the package lists first
# since a fresh machine has none.
need() {
    local missing=()
    while (($# >= 2)); do
        command -v "$1" >/dev/null || missing+=("$2")
        shift 2
    done
    ((${#missing[@]} == 0)) && return 0
    local sudo=()
    ((EUID != 0)) && sudo=(sudo)
    echo "bench: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
    # wireshark-common asks whether non-root users may capture; the default answer is fine here.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
}
