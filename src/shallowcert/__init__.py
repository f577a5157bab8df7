"""shallowcert: distil deep CNNs into shallow students, prune, attack, train them to be
provably robust and certify them.

The pipeline, one sub-package per stage::

    data -> models -> training -> distill -> prune -> attacks -> bounds -> certify
         -> robust -> study -> report
"""

__version__ = "0.1.0"
