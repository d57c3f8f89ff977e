"""Results with many rows as tables: ``to_pandas()`` and ``to_arrow()``.

A result lists its columns once, each with a kind, and gets a ``pandas.DataFrame`` or a
``pyarrow.Table`` with the same column names and types whatever its number of rows (an
empty result too). pandas and pyarrow are optional: a missing one is a
:class:`~anygram.errors.MissingDependencyError` that names the extra installing it.

Kinds: ``int`` (int64), ``int?`` (int64 or missing: pandas' nullable ``Int64``), ``float``
(float64), ``bool``, ``str?`` (text or missing), ``ints`` (a list of int64 per row) and
``json`` (a JSON text per row, or missing, for values of no fixed shape such as metadata).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .._extras import require

Kind = Literal["int", "int?", "float", "bool", "str?", "ints", "json"]
#: Column name -> (kind, values): a list or a 1-d numpy array, one value per row.
Columns = dict[str, tuple[Kind, Sequence[Any] | np.ndarray]]

_NUMPY = {"int": np.int64, "float": np.float64, "bool": np.bool_}


def json_text(value: Any) -> str | None:
    """``value`` as the text of a ``json`` column (None stays missing)."""
    return None if value is None else json.dumps(value, ensure_ascii=False)


def to_pandas(columns: Columns, what: str) -> Any:
    """A ``pandas.DataFrame`` of ``columns``; ``what`` names the result in an error."""
    pd = require("pandas", "pandas", f"{what}.to_pandas()")
    data: dict[str, Any] = {}
    for name, (kind, values) in columns.items():
        if kind in _NUMPY:
            data[name] = np.asarray(values, dtype=_NUMPY[kind])
        elif kind == "int?":
            data[name] = pd.array(list(values), dtype="Int64")
        else:  # text, lists and JSON as Python objects
            col = np.empty(len(values), dtype=object)
            col[:] = list(values)
            data[name] = col
    return pd.DataFrame(data, columns=list(columns))


def to_arrow(columns: Columns, what: str) -> Any:
    """A ``pyarrow.Table`` of ``columns``; ``what`` names the result in an error."""
    pa = require("pyarrow", "parquet", f"{what}.to_arrow()")
    types = {"int": pa.int64(), "int?": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "str?": pa.string(), "ints": pa.list_(pa.int64()), "json": pa.string()}
    arrays = []
    for kind, values in columns.values():
        if isinstance(values, np.ndarray):
            arrays.append(pa.array(values.astype(_NUMPY[kind], copy=False), type=types[kind]))
        else:
            arrays.append(pa.array(list(values), type=types[kind]))
    return pa.Table.from_arrays(arrays, names=list(columns))


def rows(columns: Columns) -> list[dict[str, Any]]:
    """The rows of ``columns`` as JSON-safe dicts (Python values; NaN as None, ``json``
    columns parsed back), one per row: what ``--jsonl`` prints."""
    names = list(columns)
    lists = []
    for kind, values in columns.values():
        col = values.tolist() if isinstance(values, np.ndarray) else list(values)
        if kind == "float":
            col = [None if v is not None and v != v else v for v in col]  # NaN != NaN
        elif kind == "json":
            col = [None if v is None else json.loads(v) for v in col]
        lists.append(col)
    return [dict(zip(names, row)) for row in zip(*lists)]


class Tabular:
    """A result with many rows: subclasses give :meth:`columns`, and get ``to_pandas()`` and
    ``to_arrow()`` (same columns in both)."""

    __slots__ = ()

    def columns(self) -> Columns:
        """The result's table, column by column: name -> (kind, values)."""
        raise NotImplementedError

    def to_pandas(self) -> Any:
        """The result's rows as a ``pandas.DataFrame`` (needs pandas: the ``pandas`` extra).

        Raises:
            MissingDependencyError: pandas is not installed.
        """
        return to_pandas(self.columns(), type(self).__name__)

    def to_arrow(self) -> Any:
        """The result's rows as a ``pyarrow.Table`` (needs pyarrow: the ``parquet`` extra).

        Raises:
            MissingDependencyError: pyarrow is not installed.
        """
        return to_arrow(self.columns(), type(self).__name__)
