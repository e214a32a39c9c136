"""What users take away from a finished search: the HTML report, the test-set evaluation, the
export of a model with its card (and prediction from it), and benchmark suites.

It may import every stage below it (spec, data, results, trial, search); only the public API
(`harness`, `harness._study`) and the CLI import it.
"""
