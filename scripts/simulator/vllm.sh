#!/bin/sh
# `vllm` on the simulator image's PATH: the model Deployment runs `vllm serve <model> --flags`.
exec node /opt/vllm-simulator/vllm.js "$@"
