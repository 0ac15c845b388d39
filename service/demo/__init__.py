"""Demo data: the demo directory and sign-ins (`linkdesk seed-demo`, `directory`), and synthetic
request history for demos and benchmarks (`linkdesk demo-history`, `history`, made by
`simulator` on the calendar cached by `clock`)."""
