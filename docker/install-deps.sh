#!/bin/sh
# install-deps.sh EXTRA [--without NAME]...: a virtual environment in
# /opt/seqlab with pyproject.toml's dependencies and EXTRA's, at the versions
# of docker/constraints.txt. Run inside the first stage of api.Dockerfile and
# worker-cpu.Dockerfile; the final stage copies /opt/seqlab alone, so the
# wheelhouse never lands in an image layer.
#
# With wheels in /tmp/wheelhouse (the WHEELHOUSE build argument), pip installs
# from them alone (--no-index): the build reaches no network. Without (the
# default, docker/wheelhouse holds only its README), from PyPI.
set -eu
cd /tmp/build
python3 -m venv /opt/seqlab
python3 requirements.py pyproject.toml "$@" > requirements.txt
if ls /tmp/wheelhouse/*.whl > /dev/null 2>&1; then
    echo "install-deps: from the wheelhouse, no index"
    set -- --no-index --find-links /tmp/wheelhouse
else
    echo "install-deps: from the package index"
    set --
fi
/opt/seqlab/bin/pip install "$@" --constraint constraints.txt --requirement requirements.txt
