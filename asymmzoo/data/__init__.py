"""Data: the embedded default data set and folder / RecordIO helpers."""
from .embedded import load_digits, DIGITS_CLASSES
from .digits import digits_arrays, DIGITS_MEAN, DIGITS_STD
from .folder import DataError, check_image_folder, pack_folder
