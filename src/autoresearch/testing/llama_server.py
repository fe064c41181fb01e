"""``python -m autoresearch.testing.llama_server ARGS``: llama-cpp-python's OpenAI-compatible
server (``python -m llama_cpp.server ARGS``) with llama.cpp's extra CPU buffer types off
(weight repacking, and AMX tiles on CPUs that have them). On a CPU with AMX (Sapphire
Rapids) in a sandbox that does not grant AMX state, a native build (llama-cpp-python
0.3.36) with them on dies of SIGSEGV on the first decode of more than one token: every chat
request. The model served is the same; only its weights stay in llama.cpp's plain layout."""

from __future__ import annotations

import runpy

import llama_cpp.llama_cpp as bindings

_default = bindings.llama_model_default_params


def plain_buffers():
    """llama.cpp's default model parameters, extra buffer types off."""
    params = _default()
    params.use_extra_bufts = False
    return params


if __name__ == "__main__":
    bindings.llama_model_default_params = plain_buffers  # read by llama_cpp.Llama at each model load
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
