"""Engine-agnostic speculative decoding: the loop, drafters, verification maths, events.

Nothing in this package imports a backend; engines are reached through the
`Engine` protocol only.
"""
