"""Seeded synthetic traffic for the demo and the benchmarks, with ground truth kept aside.

`population` makes customers (real German Credit profiles, synthetic identities), `events`
turns them into schema-valid events, `typologies` plants labelled fraud and risk cases,
`scenario` runs the simulated days, `truth` scores what the engine detected.
"""
