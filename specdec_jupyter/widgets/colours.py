"""The colours of p and q, one each everywhere: the widgets' bars (teach.css's
--specdec-p / --specdec-q, checked against these) and the notebooks' plots."""

P = "#a855f7"  # the main model's distribution (purple)
Q = "#3b82f6"  # the draft's distribution (blue)
RESIDUAL = "#ea580c"  # normalize(max(0, p - q)), a correction's distribution (orange)
