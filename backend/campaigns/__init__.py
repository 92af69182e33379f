"""Outbound campaigns: contacts from CSV, calling windows, caps, retries, voicemail policy, do-not-call, the dialer.

How correctness is kept without transactions. FerretDB 1.x on SQLite (what tests run against) applies an update as
read-modify-write of the whole document without isolation: two concurrent conditional updates of one document can
both "succeed", and concurrent updates of different fields can lose one another. Unique-key inserts and deletes by
``_id`` are exact. So, in this package:

- every "only one may do this" decision is an insert of a document with a chosen ``_id`` (a lease on a contact,
  a numbered concurrency slot, a calls-per-second token, the fate/final marks of a dial attempt);
- a contact document is written only by whoever holds its lease (the dialer before dialling, the finalizer after the
  call), so it never has two writers at once;
- counters are computed from the documents (aggregation), never incremented.

Layout: ``models`` (API and stored shapes), ``csv_io``/``contacts_import`` (CSV upload), ``dnc`` (do-not-call),
``windows`` (calling hours), ``coordination`` (slots, tokens, leases, marks), ``attempts`` (finalising a dial
attempt: outcome, retry, release), ``callbacks`` (carrier status and AMD callbacks), ``service`` (campaign API
logic, progress, report), ``dialer`` (the worker; ``python -m backend.campaigns`` runs one on its own).
"""
