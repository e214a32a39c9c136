"""What a search is: the validated spec, the CNN space's vocabulary, start points and the probe,
and the `hp` object a user's model declares its hyperparameters through.

Everything here is pure description: it imports only the ground modules (`harness._errors`,
`_names`, `_storage`, `_version`), never data, trials, results or Ray.
"""
