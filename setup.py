"""Packages of edgecap (the rest of the metadata is in pyproject.toml).

Every package under ``edgecap/`` is found by :func:`setuptools.find_packages`, so a new model
folder needs no packaging edit; the built-in models in ``export/`` install as ``edgecap.released``
(pyproject.toml alone cannot add a package from another folder to a found list).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["edgecap", "edgecap.*"]), "edgecap.released"],
    package_dir={"edgecap.released": "export"},
)
