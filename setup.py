"""Build the Cython sources in native/ into extension modules inside the adserver package.

Directives live here and nowhere else. ADSERVER_DEBUG_BUILD=1 turns on bounds checks,
wraparound and C assertions for a debug build (rebuild with `pip install -e .` after setting it).
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ADSERVER_DEBUG_BUILD", "") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

# Every module in native/ named _<name>.pyx becomes adserver._<name>.
MODULES = sorted(f[:-4] for f in os.listdir("native") if f.endswith(".pyx"))

extensions = [
    Extension(
        f"adserver.{name}",
        [f"native/{name}.pyx"],
        include_dirs=[numpy.get_include(), "native"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + ([] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", "1")]),
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
    )
    for name in MODULES
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, include_path=["native"]))
