"""Sub-commands of the `asymmzoo` CLI, one module per feature."""
