"""Build hook for the optional C fast path (metadata lives in pyproject.toml).

``fink_client._fastdecode`` is marked optional: if it cannot be compiled (no C
compiler, no Python headers), the install still succeeds and ``fink_client.codec``
decodes with fastavro instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fink_client._fastdecode",
            sources=["fink_client/_fastdecode.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
