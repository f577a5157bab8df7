"""The one exception type for user mistakes.

Anything raised as :class:`UserError` is shown by the CLI as a single line
(``shallowcert: error: ...``) with exit status 2 and no traceback. Programming
errors stay ordinary exceptions so that they are reported in full.
"""


class UserError(Exception):
    """A mistake the user can fix: a missing file, a bad spec, a bad epsilon, ..."""


class UnsupportedLayerError(UserError):
    """A layer that an algorithm cannot handle soundly (it is refused, never skipped)."""
