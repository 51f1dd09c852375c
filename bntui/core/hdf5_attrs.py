"""Reading the HDF5 attributes Keras writes, in every encoding it has used since 2017.

Keras 2.0 stores name lists as fixed-length byte arrays; later versions as variable-length
strings; a list too large for one attribute is split into ``name0``, ``name1``, ...
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np


def as_text(value: Any) -> str:
    """One attribute value as ``str``, whether HDF5 gave bytes, numpy bytes or str."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return as_text(value[()])
    return str(value)


def text_attr(node: h5py.HLObject, key: str) -> str | None:
    """A scalar string attribute, or None when it is absent."""
    if key not in node.attrs:
        return None
    return as_text(node.attrs[key])


def name_list_attr(node: h5py.HLObject, key: str) -> list[str]:
    """A list-of-names attribute such as ``layer_names``, joined from its split chunks."""
    if key in node.attrs:
        chunks = [node.attrs[key]]
    else:
        chunks = []
        index = 0
        while f"{key}{index}" in node.attrs:
            chunks.append(node.attrs[f"{key}{index}"])
            index += 1
    names: list[str] = []
    for chunk in chunks:
        array = np.atleast_1d(np.asarray(chunk))
        if array.dtype.kind in "fiu" and array.size == 0:
            continue  # Keras writes an empty float array for "no weights"
        names.extend(as_text(item) for item in array.ravel())
    return names
