"""The released default model (installed as the package ``edgecap.released``)."""
