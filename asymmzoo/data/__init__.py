"""Data: the embedded default data set and folder / RecordIO helpers."""
from .embedded import load_digits, DIGITS_CLASSES
from .folder import DataError, check_image_folder, pack_folder
