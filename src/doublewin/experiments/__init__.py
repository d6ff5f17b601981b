"""Experiments: an experiment file planned into a grid of stage jobs (plan/), run through the
store (store/, run/), costed before it runs (estimate/), searched adaptively (adaptive/), and
its tickets exported with their certificates (certify/)."""
