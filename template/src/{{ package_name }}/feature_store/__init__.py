"""The Feast adapter: the feature repository generated from contract.yaml, its store, and the online lookup.

Nothing here names a column: the entity is the contract's id column, the feature view holds the contract's
inputs on its event timestamp with the contract's types, and the derived features stay in the scoring core's
feature matrix (scoring/features.py), computed from the looked-up inputs exactly as from a full record.
"""
