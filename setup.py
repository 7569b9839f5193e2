import os
from setuptools import setup, find_packages

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, 'requirements.txt')) as f:
    requirements = [l.strip() for l in f if l.strip() and not l.startswith('#') and l.strip() != 'pytest']

setup(
    name='asymmzoo',
    version='0.1.0',
    description='AsymmNet, ACNet and RotateConv model zoo for MXNet/Gluon, GluonCV style',
    long_description=open(os.path.join(here, 'README.md')).read() if os.path.exists(
        os.path.join(here, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['asymmzoo', 'asymmzoo.*', 'downstream', 'downstream.*']),
    py_modules=['train_imagenet'],
    python_requires='>=3.8',
    install_requires=requirements,
    extras_require={'test': ['pytest']},
    entry_points={'console_scripts': ['asymmzoo=asymmzoo.cli:main']},
)
