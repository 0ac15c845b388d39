"""LinkDesk's domain, on the ground floor: standard library only.

`service/`, `workflows/` and `activities/` all import it, and it imports none of them, so the
worker's sandbox loads it without Flask or the database. Each fact is written here once:
the vocabulary (`vocabulary`), what each request kind does (`kinds`), SLA targets and states
(`sla`), the business calendar and the SLA clock (`calendar`), how a request moves through its
steps and customer waits and what its outcome says (`lifecycle`), and how durations are
bucketed for the figures (`durations`).
"""
