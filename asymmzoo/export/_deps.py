"""onnx and onnxruntime, imported on first use (``import asymmzoo`` stays light), with the pip line
that installs them when they are missing. Pinned versions: mxnet 1.9.1's exporter needs
``onnx==1.18.0`` (1.19+ fails its import check); any current onnxruntime runs the result."""


def _import_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package pinned for mxnet 1.9.1: "
                          "pip install 'onnx==1.18.0' onnxruntime") from e
    return onnx


def _import_ort():
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ImportError("running ONNX models needs onnxruntime: pip install onnxruntime") from e
    return onnxruntime
