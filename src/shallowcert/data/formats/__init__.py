"""Readers for the standard on-disk formats of the datasets we support.

Each reader returns ``(images uint8 N x C x H x W, labels int64 N)`` as numpy arrays and
raises :class:`shallowcert.errors.UserError` naming the file and what is wrong.
"""
