"""The domain's values: what the engines, venues and risk layer exchange, with no storage.

Nothing here imports ``db`` or a venue; the store and the steps build these values and the
engines and venues read them (``tests/test_architecture.py`` keeps it so).
"""
