"""The export package's error type."""


class ExportError(RuntimeError):
    """An export failed or the exported model does not reproduce MXNet's output."""
