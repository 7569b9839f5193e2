"""Training machinery behind ``train_imagenet.py``: recipes, the loop, checkpoints / exact resume,
run records. The script itself is :func:`asymmzoo.train.cli.main`."""
from .recipe import RECIPES, resolve_settings, build_lr_scheduler
from .checkpoint import CheckpointError, save_checkpoint, load_resume
from .loop import run, evaluate, export_deployed, TrainingDiverged
from .cli import build_parser, main
