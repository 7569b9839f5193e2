"""Start-up hook of asymmzoo (run by ``asymmzoo-mxnet-compat.pth``): before the first
``import mxnet``, run ``asymmzoo/compat.py`` (numpy's removed aliases, distutils on Python 3.12), so
mxnet 1.9.1 imports on newer numpy whatever is imported first. It costs nothing until mxnet is
imported, then removes itself. It does not import the asymmzoo package."""
import importlib.util
import os
import sys


class _MXNetCompatFinder(object):
    def find_spec(self, name, path=None, target=None):
        if name != 'mxnet':
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        spec = importlib.util.find_spec('asymmzoo')   # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return None
        compat = os.path.join(list(spec.submodule_search_locations)[0], 'compat.py')
        if os.path.exists(compat):
            cspec = importlib.util.spec_from_file_location('_asymmzoo_compat', compat)
            module = importlib.util.module_from_spec(cspec)
            cspec.loader.exec_module(module)
            module.apply()
        return None   # the usual finders import mxnet itself


def install():
    if not any(isinstance(f, _MXNetCompatFinder) for f in sys.meta_path) and 'mxnet' not in sys.modules:
        sys.meta_path.insert(0, _MXNetCompatFinder())


install()
