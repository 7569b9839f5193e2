"""Where published weights come from, and getting them into the store safely.

A :class:`WeightSource` is one row of the weights table (``asymmzoo/models/sources.py`` fills it in):
the URL(s) of the published file, its integrity hash and the kind of hash, the conversion that makes
our structure's file of it, the preprocessing the weights were trained with, the published top-1
with its citation, and the license.

:func:`fetch_into_store` downloads to a temporary file next to the store, verifies the hash, converts
and only then renames the result into the store (``{model}-{sha1[:8]}.params``): a truncated or
corrupt download, a server error or no network never leave anything there, and end in one
:class:`FetchError` naming the URL, the expected hash and the ``asymmzoo store add`` command for a
file fetched elsewhere.

URL templates: ``{gluon_repo}`` is GluonCV's model repository (``$MXNET_GLUON_REPO`` when set, a
mirror, as GluonCV honours it), ``{asymmnet_repo}`` the raw-file base of the AsymmNet authors'
repository (``$ASYMMZOO_ASYMMNET_URL`` when set).

Conversions are named in the table and registered by the model families
(:func:`register_conversion`): ``fn(src_path, dst_path, model_name)`` writes ``dst_path`` (a
``.params`` file our model loads by structural names) or raises :class:`~asymmzoo.io.WeightsError`.
"""
import hashlib
import http.client
import os
import shutil
import socket
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Optional, Tuple

from .io import WeightsError, atomic_target, sha1_of

__all__ = ['Preprocess', 'WeightSource', 'FetchError', 'IMAGENET_GLUONCV', 'register_conversion',
           'resolve_url', 'file_hash', 'fetch_into_store', 'store_source_file', 'GLUON_REPO_DEFAULT',
           'ASYMMNET_REPO_DEFAULT']

GLUON_REPO_DEFAULT = 'https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/'
ASYMMNET_COMMIT = '3b048213552ef97fdd337a293adca5980c2a2c1a'
ASYMMNET_REPO_DEFAULT = 'https://raw.githubusercontent.com/Spark001/AsymmNet/%s/' % ASYMMNET_COMMIT
HASH_KINDS = ('sha1', 'git-blob-sha1')


class FetchError(WeightsError):
    """Published weights could not be downloaded, verified or converted; the store is untouched."""


@dataclass(frozen=True)
class Preprocess:
    """How the weights' training run fed images: per-channel ``mean`` / ``std`` in 0..255 pixel
    units (RGB), the square ``input_size`` and the centre-crop ratio of evaluation (resize the
    short side to ``input_size / crop_ratio``, crop ``input_size``)."""
    mean: Tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: Tuple[float, float, float] = (58.395, 57.12, 57.375)
    input_size: int = 224
    crop_ratio: float = 0.875
    input_hw: Optional[Tuple[int, int]] = None   # (height, width) of a non-square input (pose: 256x192)

    @property
    def resize(self):
        return int(round(self.input_size / self.crop_ratio))

    def as_dict(self):
        out = dict(mean=list(self.mean), std=list(self.std), input_size=self.input_size,
                   crop_ratio=self.crop_ratio)
        if self.input_hw:
            out['input_hw'] = list(self.input_hw)
        return out


IMAGENET_GLUONCV = Preprocess()


@dataclass(frozen=True)
class WeightSource:
    """One row of the weights table (see the module docstring)."""
    urls: Tuple[str, ...]
    hash: str
    hash_kind: str = 'sha1'
    conversion: str = 'gluoncv'
    preprocess: Preprocess = field(default_factory=Preprocess)
    top1: Optional[float] = None
    metric: str = 'top-1'                  # what ``top1`` measures (ImageNet top-1 unless said)
    citation: str = ''
    license: str = ''
    archive_member: Optional[str] = None   # the file inside a .zip download
    origin: str = ''                       # the published file in words (e.g. GluonCV's name)

    def __post_init__(self):
        if self.hash_kind not in HASH_KINDS:
            raise ValueError("hash_kind must be one of %s, got %r" % (HASH_KINDS, self.hash_kind))

    def resolved_urls(self):
        return [resolve_url(u) for u in self.urls]


def resolve_url(template):
    repo = os.environ.get('MXNET_GLUON_REPO') or GLUON_REPO_DEFAULT
    base = os.environ.get('ASYMMZOO_ASYMMNET_URL') or ASYMMNET_REPO_DEFAULT
    return template.format(gluon_repo=repo if repo.endswith('/') else repo + '/',
                           asymmnet_repo=base if base.endswith('/') else base + '/')


_CONVERSIONS = {}


def register_conversion(name, fn):
    """Register ``fn(src_path, dst_path, model_name)`` under the conversion name the table uses."""
    _CONVERSIONS[name] = fn
    return fn


def file_hash(path, kind='sha1'):
    """``sha1`` of the file, or its ``git-blob-sha1`` (git's blob id: sha1 of ``b"blob %d\\0" % size``
    followed by the content)."""
    if kind == 'sha1':
        return sha1_of(path)
    if kind != 'git-blob-sha1':
        raise ValueError("unknown hash kind %r (one of %s)" % (kind, HASH_KINDS))
    h = hashlib.sha1(b'blob %d\0' % os.path.getsize(path))
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _store_add_hint(name, source):
    urls = source.resolved_urls()
    return ("expected %s %s. On a machine that can reach it, download %s and run `asymmzoo store add "
            "FILE --model %s` (it checks the hash and converts)" % (source.hash_kind, source.hash,
                                                                   urls[0], name))


def _download(url, dst, progress, timeout):
    req = urllib.request.Request(url, headers={'User-Agent': 'asymmzoo'})
    with urllib.request.urlopen(req, timeout=timeout) as r, open(dst, 'wb') as f:
        total = r.headers.get('Content-Length')
        total = int(total) if total and total.isdigit() else None
        bar = None
        if progress:
            try:
                from tqdm import tqdm
                bar = tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024, file=sys.stderr,
                           desc=os.path.basename(url.split('?')[0])[:40])
            except ImportError:  # pragma: no cover - tqdm is a dependency
                bar = None
        got = 0
        try:
            for block in iter(lambda: r.read(1 << 16), b''):
                f.write(block)
                got += len(block)
                if bar is not None:
                    bar.update(len(block))
        finally:
            if bar is not None:
                bar.close()
        if total is not None and got != total:
            raise OSError("the download stopped after %d of %d bytes" % (got, total))


def _unpack(src, source, workdir):
    """The weights file inside a downloaded ``.zip`` (or ``src`` itself)."""
    if not source.archive_member and not zipfile.is_zipfile(src):
        return src
    if not zipfile.is_zipfile(src):
        return src   # the bare .params file (fetched elsewhere and unzipped)
    with zipfile.ZipFile(src) as zf:
        names = zf.namelist()
        member = source.archive_member if source.archive_member in names else \
            (names[0] if len(names) == 1 else None)
        if member is None:
            raise WeightsError("the archive holds %s, not %s" % (names[:5], source.archive_member))
        out = os.path.join(workdir, 'unpacked.params')
        with zf.open(member) as fin, open(out, 'wb') as fout:
            shutil.copyfileobj(fin, fout)
    return out


def _verify_convert_store(raw, name, source, root, workdir, origin):
    """Check ``raw``'s hash, convert it and rename the result into the store; returns its path."""
    try:
        path = _unpack(raw, source, workdir)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise FetchError("%s from %s is a damaged archive (%s): nothing stored; %s"
                         % (name, origin, e, _store_add_hint(name, source))) from None
    actual = file_hash(path, source.hash_kind)
    if actual != source.hash:
        raise FetchError("%s from %s failed its integrity check (its %s is %s); %s; nothing stored"
                         % (name, origin, source.hash_kind, actual, _store_add_hint(name, source)))
    conv = _CONVERSIONS.get(source.conversion)
    if conv is None:
        raise FetchError("no conversion %r is registered for %s (import asymmzoo first)"
                         % (source.conversion, name))
    converted = os.path.join(workdir, 'converted.params')
    try:
        conv(path, converted, name)
    except WeightsError as e:
        first = str(e).strip().splitlines()[0]
        raise FetchError("%s from %s passed its integrity check but does not convert into our %s (%s); "
                         "nothing stored" % (name, origin, name, first)) from None
    dst = os.path.join(root, '%s-%s.params' % (name, sha1_of(converted)[:8]))
    with atomic_target(dst) as tmp:
        os.replace(converted, tmp)
    return dst


def fetch_into_store(name, source, root, progress=False, timeout=60):
    """Download ``source`` for model ``name``, verify, convert and write the store file atomically;
    returns its path. Any failure raises :class:`FetchError` and leaves ``root`` as it was."""
    os.makedirs(root, exist_ok=True)
    reasons = []
    for url in source.resolved_urls():
        with tempfile.TemporaryDirectory(prefix='.fetch-%s-' % name, dir=root) as work:
            raw = os.path.join(work, 'download')
            try:
                _download(url, raw, progress, timeout)
            except urllib.error.HTTPError as e:
                reasons.append("%s: HTTP %s %s" % (url, e.code, e.reason))
                continue
            except (urllib.error.URLError, socket.timeout, ConnectionError, OSError,
                    http.client.HTTPException, ValueError) as e:
                # HTTPException: a chunked body cut short (IncompleteRead); ValueError: a mirror
                # address urllib cannot use (no scheme, a bad host)
                reason = getattr(e, 'reason', None) or e
                reasons.append("%s: %s" % (url, reason if str(reason) else type(e).__name__))
                continue
            return _verify_convert_store(raw, name, source, root, work, url)
    raise FetchError("cannot download the pretrained weights of %s (%s); %s; nothing stored"
                     % (name, '; '.join(reasons), _store_add_hint(name, source)))


def store_source_file(path, name, source, root):
    """A file fetched elsewhere (the published file itself, zipped or not): verified against the
    table's hash, converted and put in the store like a download; returns the store path."""
    os.makedirs(root, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='.add-%s-' % name, dir=root) as work:
        return _verify_convert_store(path, name, source, root, work, path)


def source_matches(path, source):
    """Whether ``path`` (zipped or not) is the published file of ``source``."""
    with tempfile.TemporaryDirectory() as work:
        try:
            inner = _unpack(path, source, work)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, WeightsError):
            return False
        return file_hash(inner, source.hash_kind) == source.hash
