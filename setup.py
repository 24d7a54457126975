"""Build the optional native PoW extension; all package metadata lives in pyproject.toml.

The extension is `optional`: without a C compiler (or on a compiler error) the install still
succeeds and `deepseek2api.deepseek.pow` falls back to its numpy search. It uses the limited
API (abi3), so one wheel serves every CPython >= 3.11. No -march flag: the module picks its
fastest kernel (AVX-512 / AVX2 / 2-lane vectors / scalar) from the CPU at import time, so a
wheel built on one machine stays correct on another.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptimizingBuildExt(build_ext):
    """Adds the optimisation flag in the spelling of whichever compiler is in use."""

    def build_extensions(self) -> None:
        flags = ["/O2"] if self.compiler.compiler_type == "msvc" else ["-O3"]
        for ext in self.extensions:
            ext.extra_compile_args = [*ext.extra_compile_args, *flags]
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "deepseek2api.deepseek._pow",
            sources=["src/deepseek2api/deepseek/_pow.c"],
            py_limited_api=True,  # _pow.c defines Py_LIMITED_API 0x030B0000
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptimizingBuildExt},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
