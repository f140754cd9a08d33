"""glide's exceptions. glide.Error is the native module's (every error of the C++ library
arrives as one); the others refine it."""
from ._glide import Error

Error.__module__ = "glide"
Error.__doc__ = ("Every error glide reports (a RuntimeError): the message names what is wrong "
                 "and where, e.g. 'train.txt:12:7: expected ...'.")


class DataError(Error, ValueError):
    """Bad input data: wrong shapes, negative or out-of-range feature/label ids, bad CSR
    offsets, non-finite values. Raised before any work starts."""


class ConfigError(Error, ValueError):
    """An unknown setting or an invalid value, e.g. 'network.sparsity must be in (0, 1]'."""


class NotFittedError(Error):
    """The model has no network yet: call fit() or use Model.load()."""


for _cls in (DataError, ConfigError, NotFittedError):
    _cls.__module__ = "glide"
