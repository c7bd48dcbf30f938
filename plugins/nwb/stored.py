"""``cut: stored``: read a file written by ``ldns sample/encode --out FILE.nwb`` with only its path.

Such a file records, in its ``scratch/ldns`` JSON document, the ``nwb`` source options that cut
its trials again bin for bin (``read_back``: the alignment event, window, bin width, split
selection, ``lengths_from_stop``...). :func:`stored_config` returns the configuration with them;
every file of a directory must record the same options.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ldns_framework import DataError
from ldns_plugins.nwb.source import nwb_files, open_nwb

__all__ = ["stored_config"]

#: The scratch document the core's writer (``ldns_framework.nwb.generated.RECORD``) leaves; plugins
#: use only the public core API, so the name is repeated here (the round-trip tests tie the two).
RECORD = "ldns"


def _read_back(path: Any) -> dict[str, Any]:
    with open_nwb(path) as nwb:
        if RECORD not in nwb.scratch:
            raise DataError(f"{path.name}: scratch/{RECORD}", "no stored trial cut: this file was not written by "
                                                              "`ldns sample/encode --out FILE.nwb`; use cut: trials "
                                                              "or windows")
        data = nwb.scratch[RECORD].data
        text = data.decode("utf-8") if isinstance(data, bytes) else str(data)
    try:
        options = json.loads(text).get("read_back")
    except (ValueError, AttributeError):
        options = None
    if not isinstance(options, dict):
        raise DataError(f"{path.name}: scratch/{RECORD}", "expected a JSON object with a read_back mapping")
    return options


def stored_config(cfg: Any) -> Any:
    """``cfg`` with the trial cut every file under ``cfg.path`` records (they must agree)."""
    files = nwb_files(cfg.path)
    options = _read_back(files[0])
    for path in files[1:]:
        if _read_back(path) != options:
            raise DataError(f"{path.name}: scratch/{RECORD}", f"records another trial cut than {files[0].name}; "
                                                              "read the files one by one")
    fields = {f.name for f in attrs.fields(type(cfg))}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise DataError(f"{files[0].name}: scratch/{RECORD}", f"unknown stored options {unknown} "
                                                              "(written by a newer ldns-framework?)")
    if options.get("cut") not in ("trials", "windows"):
        raise DataError(f"{files[0].name}: scratch/{RECORD}", f"expected a stored cut 'trials' or 'windows', "
                                                              f"got {options.get('cut')!r}")
    try:
        return attrs.evolve(cfg, **{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
    except (TypeError, ValueError) as exc:
        raise DataError(f"{files[0].name}: scratch/{RECORD}", f"invalid stored options ({exc})") from None
