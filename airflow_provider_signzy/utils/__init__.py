"""The provider's building blocks, one job per module; internal (the public API is in the role packages,
``exceptions`` and ``callbacks``):

- :mod:`.connection_config`, :mod:`.connection_form`: a ``signzy`` connection, read and checked; its UI form.
- :mod:`.login_exchange`, :mod:`.access_token`, :mod:`.token_xcom`: logging in, the token, its XCom record.
- :mod:`.error_envelope`: a failed answer or request as the right ``SignzyError``.
- :mod:`.retry_policy`, :mod:`.call_pacing`: the one retry policy; pacing many threads' calls.
- :mod:`.answer_conditions`: ``success_when`` / ``failure_when`` on a JSON answer.
- :mod:`.call_metrics`: a task's calls, counted: the summary line and metrics.
- :mod:`.fernet_cipher`: Fernet sealing of the token, results and ledger answers.
"""
