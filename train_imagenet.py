#!/usr/bin/env python
"""Train (or evaluate) any asymmzoo / GluonCV model on ImageNet RecordIO, an ImageFolder, or, with no
data flags, the embedded handwritten digits. `python train_imagenet.py --help`; docs/training.md."""
import sys

from asymmzoo.train.cli import main

if __name__ == '__main__':
    sys.exit(main())
