import os

from setuptools import setup, find_packages
from setuptools.command.build_py import build_py

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, 'requirements.txt')) as f:
    # keep environment markers (pins differ between Python 3.11 and 3.12)
    requirements = [l.split('#')[0].strip() for l in f
                    if l.strip() and not l.startswith('#')]
DEV = ('pytest', 'import-linter', 'grimp')   # the test suite's tools, not the package's dependencies
requirements = [r for r in requirements if not r.split(';')[0].strip().split('=')[0] in DEV]

PTH = 'asymmzoo-mxnet-compat.pth'   # start-up hook: numpy's removed aliases before `import mxnet`


class BuildWithHook(build_py):
    """Also puts the start-up hook's .pth at the top of the install (next to the packages)."""

    def run(self):
        super().run()
        self.copy_file(os.path.join(here, PTH), os.path.join(self.build_lib, PTH),
                       preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return super().get_outputs(include_bytecode) + [os.path.join(self.build_lib, PTH)]


setup(
    name='asymmzoo',
    version='0.1.0',
    description='AsymmNet, ACNet and RotateConv model zoo for MXNet/Gluon, GluonCV style',
    long_description=open(os.path.join(here, 'README.md')).read() if os.path.exists(
        os.path.join(here, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['asymmzoo', 'asymmzoo.*']),   # downstream/ stays a script folder
    py_modules=['train_imagenet', 'asymmzoo_mxnet_hook'],
    python_requires='>=3.11,<3.13',
    install_requires=requirements,
    extras_require={'test': ['pytest', 'import-linter==2.1', 'grimp==3.20']},
    cmdclass={'build_py': BuildWithHook},
    entry_points={'console_scripts': ['asymmzoo=asymmzoo.cli:main']},
)
