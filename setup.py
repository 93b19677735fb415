"""Build hook for the optional C fast path (metadata lives in pyproject.toml).

``fink_client._fastdecode`` is marked optional: if it cannot be compiled (no C
compiler, no Python headers), the install still succeeds and ``fink_client.codec``
decodes with fastavro instead (and ``fink_client.decode_batch`` goes through dicts).
It holds two builders over one schema walker: dicts (``_fastdecode.c``) and Arrow
columns (``_arrow.c``, Arrow C data interface, no Arrow headers needed).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fink_client._fastdecode",
            sources=["fink_client/_fastdecode.c", "fink_client/_arrow.c"],
            depends=["fink_client/_avro.h"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
