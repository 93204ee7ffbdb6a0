"""The Feast adapter: the feature repository generated from contract.yaml, its store, and the online lookup.

Nothing here names a column: the entity is the contract's id column, the feature view holds the contract's
inputs on its event timestamp with the contract's types, and the derived features stay in the scoring core's
feature matrix (scoring/features.py), computed from the looked-up inputs exactly as from a full record.

Importing Feast sets PROMETHEUS_MULTIPROC_DIR (and PROMETHEUS_MULTIPROCESS_DIR) to a directory of its own
when they are unset (feast/metrics.py), which would switch the service's /metrics to multiprocess mode over an
empty directory: this package imports it first and puts those variables back as they were. prometheus_client
is imported before Feast, so its storage (in-process, or the service's multiprocess directory) is chosen from
the service's own environment, whichever of the two is imported first.
"""

import os

import prometheus_client  # noqa: F401 (before Feast: its value storage is fixed when it is first imported)

PROMETHEUS_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")
_before = {name: os.environ.get(name) for name in PROMETHEUS_VARIABLES}

import feast  # noqa: E402, F401 (after the environment is recorded)

for _name, _value in _before.items():
    if _value is None:
        os.environ.pop(_name, None)
    else:
        os.environ[_name] = _value
