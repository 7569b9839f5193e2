"""Run records: the log file, the per-epoch CSV and the training-curve PNG."""
import csv
import io
import logging
import os

from ..io import atomic_savefig, atomic_write_bytes

__all__ = ['CSV_FIELDS', 'setup_logger', 'write_csv', 'plot_curves']

CSV_FIELDS = ['epoch', 'train_loss', 'train_acc', 'val_top1', 'val_top5', 'lr', 'epoch_time_s',
              'img_per_s', 'skipped_images']


def setup_logger(log_file=None, quiet=False, name='asymmzoo.train', prefix=''):
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    fmt = logging.Formatter('%(asctime)s ' + prefix + '%(message)s', '%Y-%m-%d %H:%M:%S')
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setFormatter(fmt)
        logger.addHandler(fh)
    if not quiet:
        sh = logging.StreamHandler()
        sh.setFormatter(logging.Formatter(prefix + '%(message)s'))
        logger.addHandler(sh)
    return logger


def write_csv(history, path):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction='ignore')
    w.writeheader()
    for row in history:
        w.writerow(row)
    atomic_write_bytes(buf.getvalue().encode('utf8'), path)


def plot_curves(history, path, title=''):
    """Loss and accuracy per epoch, two panels, saved atomically as PNG."""
    import matplotlib
    matplotlib.use('Agg', force=False)
    import matplotlib.pyplot as plt
    ep = [r['epoch'] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [r['train_loss'] for r in history], 'o-', label='train loss')
    a1.set_xlabel('epoch')
    a1.set_ylabel('loss')
    a1.grid(alpha=0.3)
    a1.legend()
    if any(r.get('train_acc') not in (None, '') for r in history):
        a2.plot(ep, [r.get('train_acc') for r in history], 'o-', label='train top-1')
    a2.plot(ep, [r['val_top1'] for r in history], 'o-', label='val top-1')
    a2.plot(ep, [r['val_top5'] for r in history], 's--', label='val top-5')
    a2.set_xlabel('epoch')
    a2.set_ylabel('accuracy')
    a2.set_ylim(0, 1.0)
    a2.grid(alpha=0.3)
    a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=90, format='png')
