# Shared settings of the emulator scripts; sourced, never run.
#
# VAXPASS_CACHE   where pinned venvs live, keyed by the hash of their requirements file
#                 (default ~/.cache/vaxpass; persist it between CI runs to skip ~5 min of pip)
# EMULATOR_PORT   ministack's port on 127.0.0.1 (default 4566)
# EMULATOR_DIR    the running emulator's pid file, log, HOME and TMPDIR
#                 (default ${TMPDIR:-/tmp}/vaxpass-emulator-$EMULATOR_PORT)
# STACK_NAME      the CloudFormation stack (default vaxpass)
# EMULATOR_AUTH   1 (default): ministack enforces IAM, so a missing policy fails the tests

set -euo pipefail

emu_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
emu_root=$(cd "$emu_here/../.." && pwd)

VAXPASS_CACHE=${VAXPASS_CACHE:-$HOME/.cache/vaxpass}
EMULATOR_PORT=${EMULATOR_PORT:-4566}
EMULATOR_DIR=${EMULATOR_DIR:-${TMPDIR:-/tmp}/vaxpass-emulator-$EMULATOR_PORT}
EMULATOR_ENDPOINT=http://127.0.0.1:$EMULATOR_PORT
EMULATOR_AUTH=${EMULATOR_AUTH:-1}
EMULATOR_REGION=us-east-1
STACK_NAME=${STACK_NAME:-vaxpass}

# venv_dir NAME prints the venv path for requirements-NAME.txt: a new pin set is a new venv.
venv_dir() {
	local req="$emu_here/requirements-$1.txt"
	echo "$VAXPASS_CACHE/venv-$1-$(sha256sum "$req" | cut -c1-16)"
}

MS_VENV=$(venv_dir ministack)
SAM_VENV=$(venv_dir sam)

# emulator_aws_env exports what the SDKs and SAM CLI on the host need to talk to the emulator:
# every client honours AWS_ENDPOINT_URL; the credentials are the emulator's fixed test ones.
emulator_aws_env() {
	export AWS_ENDPOINT_URL=$EMULATOR_ENDPOINT
	export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
	export AWS_REGION=$EMULATOR_REGION AWS_DEFAULT_REGION=$EMULATOR_REGION
	unset AWS_PROFILE AWS_SESSION_TOKEN
	export SAM_CLI_TELEMETRY=0
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { echo "emulator: $*" >&2; }
