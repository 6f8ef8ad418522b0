"""The customer's journey across channels, and the tokens that hand it to an agent.

- ``ports``: the protocols (``JourneySink``, ``KvStore``, ``JourneyStore``) and ``StampedEvent``.
- ``redact``: the rule that keeps PINs, passwords and masked input out of the store.
- ``codec``: the checks and JSON shape every backend shares.
- ``memory``, ``sqlite_store`` (the default), ``pg_store``: the backends.
- ``tokens``: opaque signed context tokens, claims kept server-side.
- ``errors``: typed errors with ``error_id``.
"""
