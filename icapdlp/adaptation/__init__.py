"""Joins the ICAP server to the payload and DICOM layers (the Adapter the server calls).

- ``api``: the contract with the server (owned by the lead; both sides rely on it).
- ``factory``: ``build_adapter`` and ``worker_initializer``, called by ``icapdlp.app.application``.
- ``adapter``: triage on the event loop, everything else in the worker pool.
- ``worker_tasks`` / ``splice``: what runs in worker processes.
- ``heads``: the HTTP head that goes with a rewritten body; ``blockpage``: the 403.
- ``inline``: runs worker tasks in threads when the server has no pool.
"""
