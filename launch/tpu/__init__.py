"""Cloud TPU VM helpers: create a TPU VM, install kdjax on every worker, run one command on all."""
