"""``bmc review``: look at each screened candidate, decide, and keep the decision.

The screen finds candidates; a reviewer opens each one (rules, a lab timeline with CTCAE
bands, the evidence ledger, the coded diagnoses), records confirmed BMC / not BMC / unsure,
and the decision is kept in the append-only DuckDB table ``review`` (:mod:`.store`), where
``bmc check --truth review`` reads it as truth labels. :mod:`.pages` gathers what a page
shows, :mod:`.plot` draws the timeline, :mod:`.app` serves it (Flask, loopback by default),
:mod:`.site` writes the same pages as static HTML.
"""
